"""Volume anomaly detection on synthetic daily series."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mdm.flow.volume import judge_volume

TODAY = date(2026, 11, 27)  # a Friday


def series(values: list[int], today: date = TODAY) -> dict[date, int]:
    """`values` oldest first, the last one today's."""
    return {today - timedelta(days=len(values) - 1 - i): v for i, v in enumerate(values)}


def workweek(
    weeks: int, weekday: int, weekend: int, today_value: int, today: date
) -> dict[date, int]:
    counts = {}
    for k in range(weeks * 7, 0, -1):
        day = today - timedelta(days=k)
        counts[day] = weekend if day.weekday() >= 5 else weekday
    counts[today] = today_value
    return counts


@pytest.mark.parametrize(
    ("counts", "today", "verdict"),
    [
        (series([10] * 14 + [10]), TODAY, "ok"),
        (series([10] * 14 + [2]), TODAY, "drop"),  # 10 hires a day, then 2
        (series([10] * 14 + [0]), TODAY, "drop"),
        (series([10] * 14 + [6]), TODAY, "ok"),
        (series([10] * 14 + [45]), TODAY, "spike"),
        (series([10] * 14 + [25]), TODAY, "ok"),
        # weekends: a quiet Saturday is not a drop, a busy Monday not a spike
        (workweek(4, 100, 3, 4, date(2026, 11, 28)), date(2026, 11, 28), "low_volume"),
        (workweek(4, 100, 3, 96, date(2026, 11, 30)), date(2026, 11, 30), "ok"),
        (workweek(4, 100, 3, 20, date(2026, 11, 30)), date(2026, 11, 30), "drop"),
        (workweek(4, 100, 30, 120, date(2026, 11, 29)), date(2026, 11, 29), "spike"),
        # a new source: under a week of history, nothing to judge
        (series([50, 40, 3]), TODAY, "new"),
        (series([0, 0, 0, 0, 0, 0, 12]), TODAY, "new"),
        ({TODAY: 7}, TODAY, "new"),
        # trickles: too few a day to call a drop
        (series([2] * 14 + [0]), TODAY, "low_volume"),
        (series([1] * 14 + [40]), TODAY, "spike"),
        # days without records count as zero
        ({TODAY - timedelta(days=20): 10, TODAY: 0}, TODAY, "low_volume"),
    ],
)
def test_volume_judgement(counts: dict[date, int], today: date, verdict: str) -> None:
    assert judge_volume(counts, today).verdict == verdict


def test_the_baseline_is_the_same_weekday_when_there_is_history() -> None:
    counts = workweek(4, 100, 3, 100, date(2026, 11, 30))
    judged = judge_volume(counts, date(2026, 11, 30))
    assert judged.baseline == 100
    assert not judged.anomalous
