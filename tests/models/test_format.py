"""Money and number formatting shared by the CLI and the GUI."""
from __future__ import annotations

import pytest

from liqscope.models.format import number, usd


@pytest.mark.parametrize(("x", "text"), [
    (860_000_667.16, "$860.0M"), (360e6, "$360.0M"), (1.5e9, "$1.5B"), (2_450, "$2.5K"),
    (999, "$999"), (0, "$0"), (12.4, "$12"),
    (999_949, "$999.9K"), (999_950, "$1.0M"), (999.96, "$1.0K"),  # rounding carries into the next unit
    (-5e6, "-$5.0M"), (-12, "-$12"),
])
def test_usd(x, text):
    assert usd(x) == text


@pytest.mark.parametrize(("x", "text"), [
    (103_043.7, "103,043.7"), (1_962_755.0, "1,962,755"), (0.7715, "0.7715"), (0.00012345, "0.00012345"),
    (57.598, "57.598"), (0, "0"), (-2.5, "-2.5"), (9.9999999999, "10"),
])
def test_number(x, text):
    assert number(x) == text
