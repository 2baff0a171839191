"""`mdm evaluate`: the registry's decisions measured against labels."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.generator import generate
from mdm.flow.normalise import parse_timestamp
from mdm.model.ids import new_id
from mdm.model.person import ReviewItem
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.evaluation import InvalidLabels, LabelledPair, evaluate, read_labels
from mdm.services.ingest import ingest_many
from mdm.store.tables import ReviewItemRow, SourceRecordRow
from tests.factories import incoming


def test_labelled_pairs_give_the_registrys_pairwise_precision_and_recall(
    registry: Registry, tmp_path: Path
) -> None:
    generated = list(generate(700, seed=5))
    truth = {(g.source, g.source_id): g.truth for g in generated}
    ingest_many(
        registry,
        [IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))
         for g in generated],
        actor="t",
    )  # fmt: skip
    with registry.database.engine.connect() as conn:
        person_of = {
            (s, i): p
            for s, i, p in conn.execute(
                select(SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id)
            )
        }
        reviews = {
            frozenset((a, b))
            for a, b in conn.execute(
                select(ReviewItemRow.person_a, ReviewItemRow.person_b).where(
                    ReviewItemRow.kind == "match"
                )
            )
        }
    # Every pair of stored records, labelled with the truth: the figures must be the
    # exact pairwise ones.
    stored = sorted(person_of)
    labels = [LabelledPair(a, b, truth[a] == truth[b]) for a, b in combinations(stored, 2)]
    labels.append(LabelledPair(("crm", "never-sent"), stored[0], True))
    path = tmp_path / "labels.csv"
    path.write_text(
        "source_a,source_id_a,source_b,source_id_b,match\n"
        + "".join(f"{a[0]},{a[1]},{b[0]},{b[1]},{int(m)}\n" for a, b, m in
                  ((p.a, p.b, p.match) for p in labels)),
        encoding="utf-8",
    )  # fmt: skip

    result = evaluate(registry, read_labels(path))

    by_person: dict[object, list[tuple[str, str]]] = defaultdict(list)
    for key, person in person_of.items():
        by_person[person].append(key)
    predicted = {frozenset(p) for m in by_person.values() for p in combinations(m, 2)}
    actual = {frozenset((a, b)) for a, b in combinations(stored, 2) if truth[a] == truth[b]}
    under_review = {
        frozenset((a, b))
        for a, b in combinations(stored, 2)
        if frozenset((person_of[a], person_of[b])) in reviews
    }
    pairs = result.pairs
    assert pairs is not None
    assert pairs.unknown == 1 and pairs.labelled == len(labels)
    assert pairs.matches == len(actual) > 100
    assert pairs.linked == len(predicted)
    assert pairs.precision == len(predicted & actual) / len(predicted)
    assert pairs.recall == len(predicted & actual) / len(actual)
    assert pairs.in_review == len(under_review) > 0
    assert pairs.in_review_true == len(under_review & actual)
    assert 0.9 < pairs.precision <= 1.0 and 0.5 < pairs.recall < 1.0
    assert result.model == registry.scorer.version
    assert any("does not hold" in note for note in result.notes)


def test_resolved_review_items_measure_the_review_band(registry: Registry) -> None:
    ingest_many(
        registry,
        [incoming(given_name="Ada", family_name=f"Byron{i}", email=f"a{i}@x.org") for i in (1, 2)],
        actor="t",
    )
    with registry.database.engine.connect() as conn:
        a, b = conn.scalars(select(SourceRecordRow.person_id)).all()
    resolved = [(0.72, "merge"), (0.75, "distinct"), (0.85, "merge"), (0.93, "merge"),
                (0.97, "distinct")]  # fmt: skip
    items = [
        _item(a, b, score, "merged" if d == "merge" else "distinct", d) for score, d in resolved
    ]
    # Closed by a merge, not by a steward: not a label.
    items.append(_item(a, b, 0.8, "merged", "auto_merge"))
    items.append(_item(a, b, 0.8, "open", None))
    with registry.database.uow() as uow:
        uow.registry.insert_reviews(items)
        uow.commit()

    stewards = evaluate(registry).stewards

    assert (stewards.merged, stewards.distinct, stewards.open_items) == (3, 2, 1)
    assert stewards.true_share == pytest.approx(0.6)
    low, middle, high, guarded = stewards.bands
    assert (low.merged, low.distinct, low.true_share) == (1, 1, 0.5)
    assert low.mean_score == pytest.approx(0.735)
    assert (middle.resolved, high.resolved, guarded.distinct) == (1, 1, 1)


def _item(a: object, b: object, score: float, status: str, decision: str | None) -> ReviewItem:
    return ReviewItem(
        id=new_id(),
        kind="match",
        status=status,
        person_a=a,  # type: ignore[arg-type]
        person_b=b,  # type: ignore[arg-type]
        score=score,
        explanation={},
        created_at=datetime.now(UTC),
        decision=decision,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("source_a,source_id_a,source_b,match\n", "line 1: missing column(s) source_id_b"),
        (
            "source_a,source_id_a,source_b,source_id_b,match\ncrm,1,ats,2,1\ncrm,1,ats,3,maybe\n",
            "line 3: match is 'maybe'",
        ),
        ("source_a,source_id_a,source_b,source_id_b,match\ncrm,,ats,2,1\n", "source_id_a is empty"),
    ],
)
def test_a_bad_labelled_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidLabels, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_labels(path)
