"""Is today's volume of records normal? A pure judgement on daily counts.

Counts are compared like with like: today's count up to now against the same window of
earlier days (the caller counts them so), and against the same weekday where there is
history enough, so a quiet Saturday is not a drop and a Monday morning is not a spike.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Verdict = Literal["ok", "drop", "spike", "new", "low_volume"]
DROP_BELOW = 0.5  # of the baseline
SPIKE_ABOVE = 3.0
MIN_BASELINE = 5.0  # fewer a day: too little to tell a drop from chance
HISTORY_DAYS = 7


@dataclass(frozen=True, slots=True)
class VolumeJudgement:
    verdict: Verdict
    today: int
    baseline: float | None

    @property
    def anomalous(self) -> bool:
        return self.verdict in ("drop", "spike")


def judge_volume(counts: Mapping[date, int], today: date) -> VolumeJudgement:
    """`counts`: records per day (today's included), days without records may be absent.

    A source seen for less than a week is `new`: nothing to compare with yet. The baseline
    is the median of the same weekday over the last four weeks when at least two of them
    are known, else the median of the trailing seven days.
    """
    n = counts.get(today, 0)
    past = [d for d in counts if d < today]
    if not past or (today - min(past)).days < HISTORY_DAYS:
        return VolumeJudgement("new", n, None)
    first = min(past)
    same_weekday = [
        counts.get(today - timedelta(weeks=k), 0)
        for k in range(1, 5)
        if today - timedelta(weeks=k) >= first
    ]
    if len(same_weekday) >= 2:
        baseline = statistics.median(same_weekday)
    else:
        baseline = statistics.median(
            counts.get(today - timedelta(days=k), 0) for k in range(1, HISTORY_DAYS + 1)
        )
    if baseline < MIN_BASELINE:
        if n >= SPIKE_ABOVE * MIN_BASELINE and n > SPIKE_ABOVE * baseline:
            return VolumeJudgement("spike", n, baseline)
        return VolumeJudgement("low_volume", n, baseline)
    if n < DROP_BELOW * baseline:
        return VolumeJudgement("drop", n, baseline)
    if n > SPIKE_ABOVE * baseline:
        return VolumeJudgement("spike", n, baseline)
    return VolumeJudgement("ok", n, baseline)
