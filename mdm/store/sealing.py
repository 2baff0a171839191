"""Where encrypted fields sit in each stored document, sealed on the way into the database
and opened on the way out: everything above the store sees clear values, nothing in the
database holds them.

Each document kind knows its own positions, so a check is a dictionary look-up or two: a
record without a national id costs nothing. Raw payloads name their own positions
(`sealed`: locations such as ``data.Personal.SSN``), found by the source's profile when
the payload arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from mdm.crypto import KeyRing, is_sealed, key_id
from mdm.model.redaction import ENCRYPTED_FIELDS

Doc = dict[str, Any]
Cipher = Callable[[str], str]


def _flat(doc: Mapping[str, Any] | None, fn: Cipher) -> Any:
    """{"national_id": "..."}: attributes, golden records, event changes."""
    if not doc or not any(isinstance(doc.get(f), str) for f in ENCRYPTED_FIELDS):
        return doc
    out = dict(doc)
    for name in ENCRYPTED_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = fn(out[name])
    return out


def _values_in(entry: Any, fn: Cipher) -> Any:
    """Every "value" inside one field's lineage or choice (the chosen one, candidates)."""
    if isinstance(entry, list):
        return [_values_in(e, fn) for e in entry]
    if not isinstance(entry, Mapping):
        return entry
    return {
        k: fn(v) if k == "value" and isinstance(v, str) else _values_in(v, fn)
        for k, v in entry.items()
    }


def _by_field(doc: Mapping[str, Any] | None, fn: Cipher) -> Any:
    """{field: {... "value": ...}}: lineage, stewards' choices."""
    if not doc or not any(f in doc for f in ENCRYPTED_FIELDS):
        return doc
    out = dict(doc)
    for name in ENCRYPTED_FIELDS:
        if name in out:
            out[name] = _values_in(out[name], fn)
    return out


def _stewardship(doc: Mapping[str, Any] | None, fn: Cipher) -> Any:
    if not doc or not isinstance(doc.get("choices"), Mapping):
        return doc
    return {**doc, "choices": _by_field(doc["choices"], fn)}


def _explanation(doc: Mapping[str, Any] | None, fn: Cipher) -> Any:
    """A conflict item names its field and shows both values."""
    if not doc or doc.get("field") not in ENCRYPTED_FIELDS:
        return doc
    return {k: _values_in(v, fn) if k in ("kept", "other") else v for k, v in doc.items()}


def _event(doc: Mapping[str, Any] | None, fn: Cipher) -> Any:
    """An outbox event ({"changes": ...}) or a delivery ({"data": {"changes": ...}})."""
    if not doc:
        return doc
    if isinstance(doc.get("data"), Mapping):
        return {**doc, "data": _event(doc["data"], fn)}
    if isinstance(doc.get("changes"), Mapping):
        return {**doc, "changes": _flat(doc["changes"], fn)}
    return doc


def _raw(doc: Mapping[str, Any] | None, fn: Cipher) -> Any:
    """A payload as posted; the values at its `sealed` locations travel as sealed JSON."""
    if not doc or not doc.get("sealed"):
        return doc
    out = orjson.loads(orjson.dumps(doc))  # a deep copy: the caller's payload stays as is
    for location in out["sealed"]:
        _replace(out, location.split("."), fn)
    mapping = out.get("mapping")
    if isinstance(mapping, dict):
        for part in ("values", "unmapped", "truncated"):
            if isinstance(mapping.get(part), dict):
                mapping[part] = {
                    k: fn(v) if k in ENCRYPTED_FIELDS else v for k, v in mapping[part].items()
                }
    return out


def _replace(node: Any, steps: list[str], fn: Callable[[Any], Any]) -> None:
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node.get(step)
        if node is None:
            return
    last = steps[-1]
    if isinstance(node, list) and int(last) < len(node):
        node[int(last)] = fn(node[int(last)])
    elif isinstance(node, dict) and last in node:
        node[last] = fn(node[last])


class Sealer:
    """Seals and opens the encrypted fields of each kind of stored document."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def _json_seal(self, value: Any) -> str:
        return self.ring.seal(orjson.dumps(value).decode())

    def _json_open(self, token: Any) -> Any:
        return orjson.loads(self.ring.open(token)) if is_sealed(token) else token

    def _open(self, value: str) -> str:
        # A value written before sealing existed is read as it is; `rotate-data` seals it.
        return self.ring.open(value) if is_sealed(value) else value

    def seal(self, kind: str, doc: Any) -> Any:
        if kind == "raw":
            return _raw(doc, self._json_seal)
        return _KINDS[kind](doc, self.ring.seal)

    def open(self, kind: str, doc: Any) -> Any:
        if kind == "raw":
            return _raw(doc, self._json_open)
        return _KINDS[kind](doc, self._open)

    def rotate(self, kind: str, doc: Any) -> tuple[Any, int]:
        """`doc` with every value under the active key (clear ones sealed), and how many
        values that took; `doc` itself when none."""
        ring, changed = self.ring, 0

        def move(value: Any) -> Any:
            nonlocal changed
            if is_sealed(value):
                if key_id(value) == ring.active:
                    return value
                changed += 1
                return ring.seal(ring.open(value))
            changed += 1
            return ring.seal(value if kind != "raw" else orjson.dumps(value).decode())

        out = (_raw if kind == "raw" else _KINDS[kind])(doc, move)
        return (out, changed) if changed else (doc, 0)


_KINDS: dict[str, Callable[[Any, Cipher], Any]] = {
    "attributes": _flat,
    "lineage": _by_field,
    "stewardship": _stewardship,
    "explanation": _explanation,
    "event": _event,
}
