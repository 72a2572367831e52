"""Human formatting of money, prices and quantities, shared by CLI and GUI."""
from __future__ import annotations

import math


def usd(x: float) -> str:
    """$860.0M style, the way headlines print money."""
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"${x / div:,.1f}{unit}"
    return f"${x:,.0f}"


def number(x: float, sig: int = 8) -> str:
    """A price or quantity with separators, up to ``sig`` significant digits, no trailing zeros."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = min(8, max(0, sig - 1 - int(math.floor(math.log10(abs(x))))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
