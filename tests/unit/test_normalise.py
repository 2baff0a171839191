from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdm.flow.normalise import (
    UnreadableValue,
    fold_name,
    given_name_keys,
    normalise,
    normalise_date,
    normalise_email,
    normalise_phone,
)
from mdm.model.errors import InvalidRecord
from tests.factories import BLIND_KEY, incoming


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  John.Smith@Example.COM ", "john.smith@example.com"),
        ("ana@EXAMPLE.es", "ana@example.es"),
        ("o'brien+hr@mail.co.uk", "o'brien+hr@mail.co.uk"),
    ],
)
def test_emails_are_lowercased_and_trimmed(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["john.smith@@gmail", "no-at-sign", "a@localhost", "@x.com"])
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(UnreadableValue):
        normalise_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0132", "US", "+14155550132"),
        ("+1 415 555 0132", None, "+14155550132"),
        ("415.555.0132", "US", "+14155550132"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("030 12345678", "DE", "+493012345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_phones_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"), [("12", "US"), ("(415) 555-0132", None), ("000-000-0000", "US")]
)
def test_unreadable_phones_are_refused(raw: str, region: str | None) -> None:
    with pytest.raises(UnreadableValue):
        normalise_phone(raw, region)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  José   Núñez ", "jose nunez"),
        ("MÜLLER", "muller"),
        ("Jean-Luc", "jean luc"),
        ("O'Brien", "obrien"),
        ("Søren", "soren"),
        ("Łukasz", "lukasz"),
    ],
)
def test_names_fold_case_accents_and_punctuation(raw: str, expected: str) -> None:
    assert fold_name(raw) == expected


@pytest.mark.parametrize(
    ("nickname", "canonical"),
    [("bill", "william"), ("bob", "robert"), ("peggy", "margaret"), ("liz", "elizabeth")],
)
def test_nickname_keys_reach_the_canonical_name(nickname: str, canonical: str) -> None:
    assert canonical in given_name_keys(nickname)
    assert given_name_keys(nickname) & given_name_keys(canonical)


@pytest.mark.parametrize(
    ("raw", "expected"), [("1985-02-03", "1985-02-03"), ("1985-02-03T00:00:00Z", "1985-02-03")]
)
def test_dates_become_iso(raw: str, expected: str) -> None:
    assert normalise_date(raw) == expected


@pytest.mark.parametrize("raw", ["1985-02-30", "03/04/1985", "1850-01-01", "2999-01-01"])
def test_impossible_birth_dates_are_refused(raw: str) -> None:
    with pytest.raises(UnreadableValue):
        normalise_date(raw, "birth_date")


def test_invalid_optional_value_is_dropped_with_a_warning_naming_it() -> None:
    record = normalise(
        incoming(email="ana.garcia@example.com", phone="12", birth_date="1985-02-30"),
        blind_index_key=BLIND_KEY,
    )
    assert {w.field for w in record.warnings} == {"data.phone", "data.birth_date"}
    assert "phones" not in record.attributes
    assert "birth_date" not in record.attributes
    assert record.features.emails == {"ana.garcia@example.com"}


def test_a_record_without_a_name_is_refused() -> None:
    with pytest.raises(InvalidRecord) as info:
        normalise(incoming(given_name=None, family_name="  "), blind_index_key=BLIND_KEY)
    assert [e.field for e in info.value.errors] == ["data.given_name"]


def test_a_record_without_identity_is_refused() -> None:
    with pytest.raises(InvalidRecord) as info:
        normalise(incoming(email=None, country=None), blind_index_key=BLIND_KEY)
    assert info.value.errors[0].field == "data"


def test_when_the_only_identity_is_invalid_the_error_names_it() -> None:
    with pytest.raises(InvalidRecord) as info:
        normalise(incoming(email="x@@y"), blind_index_key=BLIND_KEY)
    assert [e.field for e in info.value.errors] == ["data.email"]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("given_name", 123, "data.given_name"),
        ("emails", "a@b.com", "data.emails"),
        ("emails", ["a@b.com", 5], "data.emails.1"),
        ("compensation", {"amount": "lots", "currency": "USD"}, "data.compensation.amount"),
        ("birth_date", ["1985"], "data.birth_date"),
    ],
)
def test_wrong_json_types_are_errors_naming_the_field(field: str, value: object, path: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        normalise(incoming(**{field: value}), blind_index_key=BLIND_KEY)
    assert path in [e.field for e in info.value.errors]


def test_unknown_data_fields_are_kept_in_raw_and_reported() -> None:
    record = normalise(incoming(favourite_colour="blue"), blind_index_key=BLIND_KEY)
    assert [w.field for w in record.warnings] == ["data.favourite_colour"]
    assert record.incoming.data["favourite_colour"] == "blue"


def test_national_id_is_matched_by_blind_index_only() -> None:
    record = normalise(incoming(national_id="123-45-6789", country="US"), blind_index_key="k")
    assert record.attributes["national_id"] == "123456789"
    assert record.features.national_id_index is not None
    assert "123456789" not in record.features.national_id_index


@given(st.text(max_size=40))
def test_folding_is_idempotent(name: str) -> None:
    assert fold_name(fold_name(name)) == fold_name(name)


@given(st.emails())
def test_email_normalisation_is_idempotent(email: str) -> None:
    try:
        once = normalise_email(email)
    except UnreadableValue:
        return
    assert normalise_email(once) == once


def test_ids_are_version_7_and_carry_their_creation_time() -> None:
    import time

    from mdm.model.ids import new_id

    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert {(i.version, i.variant) for i in ids} == {(7, "specified in RFC 4122")}
    assert all(before <= i.int >> 80 <= after for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_never_repeats_its_parents_ids() -> None:
    import os

    from mdm.model.ids import new_id

    new_id()  # the parent has a block of random bits in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: same memory, must draw fresh random bits
        os.write(write, b"".join(new_id().bytes for _ in range(50)))
        os._exit(0)
    os.waitpid(pid, 0)
    data = os.read(read, 16 * 50)
    child = {data[i : i + 16] for i in range(0, len(data), 16)}
    parent = {new_id().bytes for _ in range(50)}
    assert len(child) == 50
    assert {c[6:] for c in child}.isdisjoint({p[6:] for p in parent})
