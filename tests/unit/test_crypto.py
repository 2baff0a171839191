"""The key ring and the sealing of stored documents."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdm.crypto import (
    KeyRing,
    UnreadableValue,
    is_sealed,
    key_id,
    new_key,
    new_person_key,
    open_document,
    seal_document,
)
from mdm.store.sealing import Sealer

OLD, NEW = f"old:{new_key()}", f"new:{new_key()}"
RING = KeyRing.parse(OLD)
SSN = "078051120"
texts = st.text(min_size=1, max_size=40)


@given(texts)
def test_a_sealed_value_opens_to_itself_and_shows_nothing_of_it(value: str) -> None:
    token = RING.seal(value)
    assert is_sealed(token) and key_id(token) == "old"
    assert RING.open(token) == value
    assert KeyRing.parse(OLD).seal(value) != token  # a random nonce per process and value


def test_a_tampered_or_foreign_value_does_not_open() -> None:
    token = RING.seal(SSN)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(UnreadableValue):
        RING.open(flipped)
    with pytest.raises(UnreadableValue, match="not in MDM_DATA_KEYS"):
        KeyRing.parse(NEW).open(token)
    # A person's wrapped key is not a field value, and the other way round.
    with pytest.raises(UnreadableValue):
        RING.unwrap(token)


def test_a_ring_opens_with_any_key_and_seals_with_the_first() -> None:
    token = RING.seal(SSN)
    both = KeyRing.parse(f"{NEW},{OLD}")
    assert both.open(token) == SSN
    assert key_id(both.seal(SSN)) == "new"
    moved = both.reseal(token)
    assert moved is not None and KeyRing.parse(NEW).open(moved) == SSN
    assert both.reseal(moved) is None


def test_a_person_document_is_unreadable_without_its_key() -> None:
    key = new_person_key()
    sealed = seal_document(key, {"national_id": SSN, "given_name": "Ana"})
    assert SSN not in sealed and "Ana" not in sealed
    assert open_document(key, sealed)["national_id"] == SSN
    with pytest.raises(UnreadableValue):
        open_document(new_person_key(), sealed)


DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("attributes", {"given_name": "Ana", "national_id": SSN}),
    ("lineage", {"national_id": {"rule": "x", "source": "hris",
                                 "candidates": [{"source": "crm", "value": SSN}]}}),
    ("stewardship", {"choices": {"national_id": {"source": "hris", "value": SSN}},
                     "raised": ["k"]}),
    ("explanation", {"field": "national_id", "kept": {"value": SSN}, "other": {"value": SSN}}),
    ("event", {"person_id": "p", "changes": {"national_id": SSN}, "sources": {}}),
    ("event", {"type": "person.updated", "data": {"changes": {"national_id": SSN}}}),
    ("raw", {"data": {"Personal": [{"SSN": int(SSN)}], "name": "Ana"},
             "sealed": ["data.Personal.0.SSN"],
             "mapping": {"values": {"national_id": SSN}}}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "doc"), DOCUMENTS)
def test_every_kind_of_document_stores_no_national_id_in_clear(
    kind: str, doc: dict[str, Any]
) -> None:
    sealer = Sealer(RING)
    stored = sealer.seal(kind, doc)
    assert SSN not in orjson.dumps(stored).decode()
    assert sealer.open(kind, stored) == doc
    assert sealer.open(kind, doc) == doc  # values written before sealing read as they are
    rotated, moved = Sealer(KeyRing.parse(f"{NEW},{OLD}")).rotate(kind, stored)
    assert moved >= 1 and Sealer(KeyRing.parse(NEW)).open(kind, rotated) == doc


@given(st.dictionaries(st.sampled_from(["given_name", "email", "national_id"]), texts))
def test_attributes_round_trip(doc: dict[str, str]) -> None:
    sealer = Sealer(RING)
    assert sealer.open("attributes", sealer.seal("attributes", doc)) == doc
