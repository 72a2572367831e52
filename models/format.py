"""Human formatting of money, prices and quantities, shared by CLI and GUI."""
from __future__ import annotations

import math


def usd(x: float) -> str:
    """$860.0M style, the way headlines print money."""
    sign, a = ("-" if x < 0 else ""), abs(x)
    units = (("", 1.0, 0), ("K", 1e3, 1), ("M", 1e6, 1), ("B", 1e9, 1))
    i = 0
    while i + 1 < len(units) and a >= units[i + 1][1]:
        i += 1
    if i + 1 < len(units) and float(f"{a / units[i][1]:.{units[i][2]}f}") >= 1000:
        i += 1  # 999,950 rounds up: print $1.0M, not $1,000.0K
    unit, div, decimals = units[i]
    return f"{sign}${a / div:,.{decimals}f}{unit}"


def number(x: float, sig: int = 8) -> str:
    """A price or quantity with separators, up to ``sig`` significant digits, no trailing zeros."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = min(8, max(0, sig - 1 - int(math.floor(math.log10(abs(x))))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
