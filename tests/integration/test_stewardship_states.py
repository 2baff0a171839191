"""Stewards and the online path, interleaved at random: the registry's promises hold after
every step.

A hypothesis state machine over ingest (with automatic links and bridging merges), review
decisions (merge, distinct), manual merges and splits, on the embedded SQLite database.
After every step: every record sent is stored and linked to exactly one live person,
every merged-away id leads to a live person, every golden record is derived from its
records, and no pair a steward called distinct is ever one person again.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from mdm.model.errors import SplitRefused, StaleDecision
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestResult, ingest_many
from mdm.services.stewardship import merge_persons, resolve_review, split_record
from mdm.store.tables import NotAMatchRow, PersonRow, ReviewItemRow, SourceRecordRow
from tests.conftest import settings_for
from tests.integration.test_invariants import check_invariants, record_data

STEPS = 30
EXAMPLES = 200
SEEN: Counter[str] = Counter()


def _seen(what: str) -> None:
    event(what)
    SEEN[what] += 1


def _machine(template: Path) -> type[RuleBasedStateMachine]:
    class Registry_(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = tempfile.TemporaryDirectory()
            path = Path(self.tmp.name) / "mdm.db"
            shutil.copy(template, path)
            self.registry = Registry.from_settings(settings_for(f"sqlite:///{path}"))
            self.sent: set[tuple[str, str]] = set()

        def teardown(self) -> None:
            self.registry.close()
            self.tmp.cleanup()

        def _rows(self, stmt):  # type: ignore[no-untyped-def]
            with self.registry.database.engine.connect() as conn:
                return conn.execute(stmt).all()

        @rule(
            batch=st.lists(
                st.tuples(st.sampled_from(["crm", "ats", "hris"]), st.integers(0, 8), record_data),
                min_size=1,
                max_size=4,
            )
        )
        def ingest(self, batch: list[tuple[str, int, dict]]) -> None:
            records = [
                IncomingRecord(source, f"{source}-{n}", {k: v for k, v in d.items() if v})
                for source, n, d in batch
            ]
            outcomes = ingest_many(self.registry, records, actor="online")
            assert all(isinstance(o, IngestResult) for o in outcomes)
            if any(isinstance(o, IngestResult) and o.merged_ids for o in outcomes):
                _seen("bridging merge")
            self.sent |= {(r.source, r.source_id) for r in records}

        @rule(pick=st.integers(0, 50), merge=st.booleans())
        def resolve(self, pick: int, merge: bool) -> None:
            items = self._rows(
                select(
                    ReviewItemRow.id,
                    ReviewItemRow.person_a,
                    ReviewItemRow.person_b,
                    ReviewItemRow.kind,
                )
                .where(ReviewItemRow.status == "open")
                .order_by(ReviewItemRow.created_at, ReviewItemRow.id)
            )
            if not items:
                return
            item_id, a, b, kind = items[pick % len(items)]
            if kind == "conflict":
                _seen("resolve conflict")
                # Refused only when the record the value came from changed since.
                with contextlib.suppress(StaleDecision):
                    resolve_review(
                        self.registry, item_id, "replace" if merge else "keep", actor="s"
                    )
                return
            if merge and self._distinct(a, b):
                return  # a steward does not merge what another said is two people
            _seen("resolve " + ("merge" if merge else "distinct"))
            try:
                resolve_review(self.registry, item_id, "merge" if merge else "distinct", actor="s")
            except StaleDecision:
                raise AssertionError("an open item was refused") from None

        @rule(i=st.integers(0, 50), j=st.integers(0, 50))
        def merge(self, i: int, j: int) -> None:
            live = [p for (p,) in self._rows(
                select(PersonRow.id).where(PersonRow.status == "active").order_by(PersonRow.id)
            )]  # fmt: skip
            if len(live) < 2:
                return
            a, b = live[i % len(live)], live[j % len(live)]
            if a == b or self._distinct(a, b):
                return
            _seen("manual merge")
            merge_persons(self.registry, a, b, actor="s")

        @rule(pick=st.integers(0, 50))
        def split(self, pick: int) -> None:
            rows = self._rows(
                select(SourceRecordRow.source, SourceRecordRow.source_id).order_by(
                    SourceRecordRow.source, SourceRecordRow.source_id
                )
            )
            if not rows:
                return
            source, source_id = rows[pick % len(rows)]
            # Refused when the record is its person's only one.
            with contextlib.suppress(SplitRefused):
                split_record(self.registry, source, source_id, actor="s")
                _seen("split")

        def _distinct(self, a: UUID, b: UUID) -> bool:
            with self.registry.database.uow() as uow:
                return uow.registry.marked_distinct(a, b)

        @invariant()
        def registry_is_consistent(self) -> None:
            check_invariants(self.registry, self.sent)

        @invariant()
        def distinct_pairs_stay_apart(self) -> None:
            persons = {p: (s, m) for p, s, m in self._rows(
                select(PersonRow.id, PersonRow.status, PersonRow.merged_into)
            )}  # fmt: skip

            def live(person_id: UUID) -> UUID:
                while persons[person_id][0] == "merged":
                    person_id = persons[person_id][1]
                return person_id

            for a, b in self._rows(select(NotAMatchRow.person_a, NotAMatchRow.person_b)):
                assert live(a) != live(b), (a, b)

    return Registry_


def test_stewards_and_ingests_keep_every_promise(sqlite_template: Path) -> None:
    SEEN.clear()
    run_state_machine_as_test(
        _machine(sqlite_template),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The machine went everywhere it should: no promise held only because nothing happened.
    kinds = (
        "bridging merge", "resolve merge", "resolve distinct", "resolve conflict", "manual merge",
        "split",
    )  # fmt: skip
    assert all(SEEN[k] > 0 for k in kinds), SEEN
