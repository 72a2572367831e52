"""UTC parsing, durations and the bucket ladder."""
from __future__ import annotations

import pandas as pd
import pytest

from liqscope.models.timeutil import (
    BUCKETS, TimeParseError, format_duration, iso_z, parse_duration, parse_time, pick_bucket,
)


@pytest.mark.parametrize(("text", "utc"), [
    ("2025-05-09T00:00:00Z", "2025-05-09T00:00:00"),
    ("2025-05-09", "2025-05-09T00:00:00"),                 # naive = UTC
    ("2025-05-09 13:45", "2025-05-09T13:45:00"),
    ("2025-05-09T02:00:00+02:00", "2025-05-09T00:00:00"),  # offsets converted
    (" 2025-05-09T00:00Z ", "2025-05-09T00:00:00"),
])
def test_parse_time(text, utc):
    ts = parse_time(text)
    assert str(ts.tz) == "UTC"
    assert ts == pd.Timestamp(utc, tz="UTC")


def test_parse_time_timestamps():
    assert parse_time(pd.Timestamp("2025-05-09 02:00", tz="Europe/Berlin")) == pd.Timestamp("2025-05-09T00:00Z")
    assert parse_time(pd.Timestamp("2025-05-09")) == pd.Timestamp("2025-05-09T00:00Z")


@pytest.mark.parametrize("bad", ["", "garbage", "2025-13-01", "2025-02-30", "9", "NaT"])
def test_parse_time_rejects(bad):
    with pytest.raises(TimeParseError):
        parse_time(bad)


@pytest.mark.parametrize(("text", "seconds"), [("1m", 60), ("5m", 300), ("15m", 900), ("4h", 14400),
                                               ("1d", 86400), ("1w", 604800), ("30s", 30), (" 2h ", 7200)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "m", "5x", "-5m", "0m", "1.5h"])
def test_parse_duration_rejects(bad):
    with pytest.raises(TimeParseError):
        parse_duration(bad)


def test_format_duration_round_trips_the_ladder():
    for name, seconds in BUCKETS.items():
        assert format_duration(seconds) == name
        assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(90) == "90s"
    assert format_duration(604800) == "1w"


def test_pick_bucket_is_the_smallest_that_fits():
    assert pick_bucket(86_400, 1440) == 60
    assert pick_bucket(86_400, 300) == 300
    assert pick_bucket(86_400, 288) == 300   # exactly 288 five-minute bars fit
    assert pick_bucket(86_400, 287) == 900
    assert pick_bucket(30 * 86_400, 300) == 14_400
    assert pick_bucket(3650 * 86_400, 300) == 86_400  # the coarsest rung when nothing fits


def test_iso_z():
    assert iso_z(pd.Timestamp("2025-05-09 02:00", tz="Europe/Berlin")) == "2025-05-09T00:00:00Z"


def test_one_time_formatter_for_every_surface():
    from liqscope.models.timeutil import format_time

    t = pd.Timestamp("2025-05-09 10:15:38.116789", tz="Europe/Berlin")  # 08:15:38.116789 UTC
    assert format_time(t) == "2025-05-09T08:15:38.116Z"  # sub-second times keep their milliseconds
    assert format_time("2025-05-09T08:15Z") == "2025-05-09T08:15:00Z"
    assert format_time(t, "iso_ms") == "2025-05-09T08:15:38.116Z"
    assert format_time(t, "second") == "2025-05-09 08:15:38"
    assert format_time(t, "minute") == "2025-05-09 08:15"
    assert format_time(t, "clock") == "08:15"
    assert format_time(t, "file") == "2025-05-09T08-15Z"
    assert format_time(pd.Timestamp("2025-05-09 08:15")) == "2025-05-09T08:15:00Z"  # naive = UTC
