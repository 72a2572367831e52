"""Side colours (longs/shorts liquidated) and exchange colours never collide, also for colour-blind readers.

Distances are CIEDE2000 (ΔE00) in CIELAB, computed here from sRGB (D65) so the
test depends on nothing but the hex strings in gui/theme.py. Colour-blind
vision is simulated with Machado, Oliveira & Fernandes (2009) at full severity.
"""
from __future__ import annotations

import itertools
import math

import pytest

from liqscope.gui import theme

# The reported collision: Binance orange #E69F00 next to long vermillion #D55E00 is ΔE00 ≈ 22, and
# readers took mostly-orange bars for longs. ΔE00 ≈ 2 is just noticeable between large patches, but
# bars and markers a few pixels wide need several times more to read as different categories at a
# glance (Szafir 2018, "Modeling Color Difference for Visualization Design": the difference needed
# grows as marks shrink). 30 keeps every side colour a third further from every exchange colour
# than the pair that was confused.
MIN_SIDE_VS_EXCHANGE = 30.0
# the same under simulated protanopia/deuteranopia, where everything draws closer together:
# still well above the 12.5 that the old Binance orange was from the long colour for a deuteranope
MIN_SIDE_VS_EXCHANGE_CVD = 20.0
# longs vs shorts are the app's main contrast: far apart for everyone
MIN_SIDES = 40.0

# Machado et al. 2009, severity 1.0, applied to linear RGB
CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def linear_rgb(hex_color: str) -> tuple[float, float, float]:
    h = hex_color.lstrip("#")
    c = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    return tuple(v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c)


def lab(hex_color: str, vision: str | None = None) -> tuple[float, float, float]:
    """sRGB hex -> CIELAB (D65), optionally as seen with a colour-vision deficiency."""
    r, g, b = linear_rgb(hex_color)
    if vision:
        m = CVD[vision]
        r, g, b = (min(1.0, max(0.0, row[0] * r + row[1] * g + row[2] * b)) for row in m)
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883
    f = [t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29 for t in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def delta_e00(lab1, lab2) -> float:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar ** 7 / (c_bar ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p, h2p = (math.degrees(math.atan2(b, a)) % 360 for a, b in ((a1p, b1), (a2p, b2)))
    dlp, dcp = l2 - l1, c2p - c1p
    dhp = 0.0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    dhp_big = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dhp / 2))
    lp_bar, cp_bar = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hp_bar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hp_bar = (h1p + h2p) / 2
    else:
        hp_bar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hp_bar - 30)) + 0.24 * math.cos(math.radians(2 * hp_bar))
         + 0.32 * math.cos(math.radians(3 * hp_bar + 6)) - 0.20 * math.cos(math.radians(4 * hp_bar - 63)))
    d_theta = 30 * math.exp(-(((hp_bar - 275) / 25) ** 2))
    r_c = 2 * math.sqrt(cp_bar ** 7 / (cp_bar ** 7 + 25 ** 7))
    s_l = 1 + 0.015 * (lp_bar - 50) ** 2 / math.sqrt(20 + (lp_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -math.sin(math.radians(2 * d_theta)) * r_c
    return math.sqrt((dlp / s_l) ** 2 + (dcp / s_c) ** 2 + (dhp_big / s_h) ** 2
                     + r_t * (dcp / s_c) * (dhp_big / s_h))


def de(c1: str, c2: str, vision: str | None = None) -> float:
    return delta_e00(lab(c1, vision), lab(c2, vision))


SIDES = {"long": theme.LONG_COLOR, "short": theme.SHORT_COLOR}
EXCHANGES = {**theme.EXCHANGE_COLORS, **{f"fallback {i}": c for i, c in enumerate(theme._FALLBACK)}}


def test_delta_e_matches_published_values():
    # Sharma, Wu & Dalal (2005) test data, pairs 1, 7 and 17
    assert delta_e00((50, 2.6772, -79.7751), (50, 0, -82.7485)) == pytest.approx(2.0425, abs=1e-4)
    assert delta_e00((50, 0, 0), (50, -1, 2)) == pytest.approx(2.3669, abs=1e-4)
    assert delta_e00((50, 2.5, 0), (73, 25, -18)) == pytest.approx(27.1492, abs=1e-4)
    # sRGB -> Lab (D65): white and the primaries as commonly tabulated (e.g. Lindbloom's calculator)
    assert lab("#ffffff") == pytest.approx((100, 0, 0), abs=0.01)
    assert lab("#ff0000") == pytest.approx((53.24, 80.09, 67.20), abs=0.05)
    assert lab("#0000ff") == pytest.approx((32.30, 79.19, -107.86), abs=0.05)


def test_old_binance_orange_was_too_close_to_longs():
    """The threshold rejects the pair users confused (so it would have caught the bug)."""
    assert de("#D55E00", "#E69F00") < MIN_SIDE_VS_EXCHANGE
    assert de("#D55E00", "#E69F00", "deuteranopia") < MIN_SIDE_VS_EXCHANGE_CVD


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("exchange", EXCHANGES)
def test_side_and_exchange_colours_are_far_apart(side, exchange):
    s, e = SIDES[side], EXCHANGES[exchange]
    assert de(s, e) >= MIN_SIDE_VS_EXCHANGE, f"{side} {s} vs {exchange} {e}: ΔE00 {de(s, e):.1f}"
    for vision in ("protanopia", "deuteranopia"):
        d = de(s, e, vision)
        assert d >= MIN_SIDE_VS_EXCHANGE_CVD, f"{side} {s} vs {exchange} {e} with {vision}: ΔE00 {d:.1f}"


@pytest.mark.parametrize("vision", [None, *CVD])
def test_longs_and_shorts_are_far_apart(vision):
    assert de(theme.LONG_COLOR, theme.SHORT_COLOR, vision) >= MIN_SIDES


def test_exchange_colours_tell_exchanges_apart():
    """The named exchanges (stacked in one bar) differ as much as the old Okabe-Ito set did (≥ 20)."""
    named = theme.EXCHANGE_COLORS
    for (n1, c1), (n2, c2) in itertools.combinations(named.items(), 2):
        assert de(c1, c2) >= 20, (n1, n2)
        for vision in ("protanopia", "deuteranopia"):
            assert de(c1, c2, vision) >= 11, (n1, n2, vision)
    assert len(set(theme._FALLBACK)) == len(theme._FALLBACK)
    assert not set(theme._FALLBACK) & set(named.values())


@pytest.mark.parametrize("background", [theme.DARK.background, theme.LIGHT.background])
def test_every_colour_stands_out_on_both_backgrounds(background):
    for name, color in {**SIDES, **EXCHANGES}.items():
        assert de(color, background) >= 20, (name, color, background)


def test_exchange_color_uses_the_palette():
    for name, color in theme.EXCHANGE_COLORS.items():
        assert theme.exchange_color(name) == color
    assert theme.exchange_color("somewhere-new") in theme._FALLBACK
    assert theme.exchange_color("somewhere-new") == theme.exchange_color("somewhere-new")  # stable
    assert {theme.exchange_color("x", i) for i in range(len(theme._FALLBACK))} == set(theme._FALLBACK)
