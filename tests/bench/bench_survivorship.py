"""`make bench`: what survivorship costs per ingest for a person with 10 source records.

In process: persons of 10 records each (CRM, ATS and HRIS records of one human from the
generator's field mix: names, emails, phones, dates, pay, titles, statuses, some with
conflicting hire dates or pay) have their golden record, lineage and conflicts built, as
an ingest does for every person it touches. Building the records is set-up.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from mdm.flow.survivorship import RecordView, build_golden

KINDS = ("crm", "ats", "hris")


def person(rnd: random.Random, n: int) -> list[RecordView]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    views = []
    for i in range(n):
        kind = KINDS[i % 3]
        attributes: dict[str, object] = {
            "given_name": rnd.choice(["Ana", "Anna", "Ana María"]),
            "family_name": rnd.choice(["García", "Garcia"]),
            "emails": [f"ana{rnd.randrange(4)}@example.com"],
            "phones": [f"+3461234567{rnd.randrange(3)}"],
            "country": "ES",
            "birth_date": rnd.choice(["1990-04-05", "1990-05-04"]),
            "job_title": rnd.choice(["Nurse", "Head Nurse"]),
            "status": rnd.choice(["candidate", "offer", "hired", "employee"]),
        }
        if kind == "hris":
            attributes |= {
                "employee_id": f"E{rnd.randrange(2)}",
                "hire_date": rnd.choice(["2020-01-06", "2020-01-06", "2021-03-01"]),
                "department": "Ward 3",
                "cost_center": "CC-41",
                "national_id": "123456789",
            }
        if kind in ("ats", "hris"):
            amount = rnd.choice([50000, 50500, 56000])
            attributes["compensation"] = {"amount": amount, "currency": "EUR", "period": "annual"}
        if kind == "ats":
            attributes["interview_feedback"] = "Calm under pressure. " * 10
        day = timedelta(days=rnd.randrange(300), seconds=i)
        views.append(RecordView(kind, f"{kind}-{i}", 1 + i % 3, attributes, t0 + day, kind))
    return views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--records", type=int, default=10)
    args = parser.parse_args()
    rnd = random.Random(11)
    persons = [person(rnd, args.records) for _ in range(args.persons)]
    for views in persons[:200]:
        build_golden(views)
    gc.collect()
    gc.disable()
    timings: list[float] = []
    conflicts = 0
    for views in persons:
        start = time.perf_counter_ns()
        result = build_golden(views)
        timings.append((time.perf_counter_ns() - start) / 1e6)
        conflicts += bool(result.conflicts)
    gc.enable()
    timings.sort()
    p95 = timings[int(0.95 * len(timings))]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}")  # fmt: skip
    print(
        f"{args.persons} persons of {args.records} records ({conflicts} with a conflict): "
        f"p50 {statistics.median(timings):.3f} ms, p95 {p95:.3f} ms, "
        f"p99 {timings[int(0.99 * len(timings))]:.3f} ms per golden record"
    )
    print(f"survivorship p95 {p95:.3f} ms ({'meets' if p95 <= 1 else 'MISSES'} the 1 ms bar)")


if __name__ == "__main__":
    main()
