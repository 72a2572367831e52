"""Layout constants shared by the main panes and the drill-down panels (one place, so they line up).

Colours live in :mod:`.theme`; sizes and proportions live here.
"""
from __future__ import annotations

# Fixed width of every right-hand value axis, px: plots stacked in one column (price over
# liquidations, panel over panel) only line up if their axes are equally wide, and a
# 7-digit price with separators ("100,000.5") or "-$120.5M" must fit without clipping.
AXIS_WIDTH = 78

# Narrowest bar or candle the time bucket may produce, px: thinner bars stop reading as
# bars (and more bars than pixels/4 costs drawing time without showing anything more).
MIN_BAR_PX = 4

# Empty room above the tallest (and below the deepest) bar, as a factor of it, so the
# biggest bucket never touches the frame or hides under the pane's caption.
Y_HEADROOM = 1.1

# A panel's caption row above its plot, px: one 8 pt line, fixed so captions never
# push the plots of a panel out of line with each other.
TITLE_HEIGHT = 18

# Height left for a time axis that shows no values (a plot stacked above another), px:
# just the axis line and its ticks.
HIDDEN_TIME_AXIS_HEIGHT = 6

# Smallest distance between two price labels on the log-scale price axis, px: a label is
# ~13 px tall at the default font, so this leaves a visible gap between neighbours.
PRICE_LABEL_GAP_PX = 24

# Aim for about one price label per this many px of axis height (at least 4, at most 10).
PRICE_LABEL_PITCH_PX = 60

# How far a price label's centre must keep from the ends of its axis, px: pyqtgraph drops
# a label that would stick out of the axis, so ticks closer than this are not counted on.
PRICE_LABEL_EDGE_PX = 9

# Free band kept above the highest bar of a liquidation pane, px: the legend and the pane's
# caption sit there, so bars (even when only longs, drawn downwards, are shown) never cover them.
CAPTION_BAND_PX = 30

# date axes: a finer level's tick nearer than this to a coarser one is left out (labels would overlap)
MIN_LABEL_GAP_PX = 64

# context panes (open interest, funding, outside series) under the liquidation pane: each this tall
# relative to the price pane's 3 and the liquidation pane's 2
CONTEXT_PANE_STRETCH = 1

# annotation level labels (and their ▲/▼ tags when off the visible prices) end this far across the price
# pane: the last-price tag owns the right edge
LEVEL_LABEL_AT = 0.86
