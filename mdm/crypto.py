"""Encryption at rest: a key ring for values the registry must not keep in clear, and
per-person keys that erasure destroys (crypto-shredding).

A sealed value is text, so it can sit wherever the clear value sat in a JSON document:
``enc:v1:<key id>:<base64url(nonce | ciphertext | tag)>``. The key id travels with the
value, so a ring may hold several keys while `mdm keys rotate-data` moves every value to
the active one. AES-256-GCM with a random 96-bit nonce per value.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_NONCE = 12
# Binds a sealed value to its use: a wrapped person key cannot be passed off as a field.
_FIELD_AAD = b"mdm:field"
_WRAP_AAD = b"mdm:person-key"
_DOC_AAD = b"mdm:audit"


class KeyRingError(ValueError):
    """A key ring setting that cannot be used; the message never holds key material."""


class UnreadableValue(ValueError):
    """A sealed value no key of the ring opens (unknown key id, or tampered with)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> str:
    """A fresh 256-bit key, base64url, as `MDM_DATA_KEYS` and `MDM_BLIND_INDEX_KEY` take it."""
    return _b64(os.urandom(32))


class KeyRing:
    """Named AES-256 keys; the first of the setting seals, every one of them opens."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyRingError(f"the active key {active!r} is not in the ring")
        self.active = active
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        # A registry reads the same stored values over and over (every candidate person's
        # records, at every ingest that finds them) and re-writes a golden record's values
        # unchanged: both directions are remembered, up to a bound. Sealing a value again
        # with the nonce it had gives the same ciphertext and tells nothing new.
        self._opened: dict[str, str] = {}
        self._sealed: dict[str, str] = {}

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """``id:base64key[,id:base64key...]``: the first key seals, all of them open."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for n, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
            kid, sep, encoded = part.partition(":")
            if not sep or not _KEY_ID.match(kid):
                raise KeyRingError(
                    f"MDM_DATA_KEYS entry {n + 1}: expected <id>:<base64 key>, "
                    "the id 1-16 of A-Z a-z 0-9 _ -"
                )
            try:
                key = _unb64(encoded)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"MDM_DATA_KEYS key {kid!r}: not base64") from None
            if len(key) != 32:
                raise KeyRingError(f"MDM_DATA_KEYS key {kid!r}: must be 32 bytes (AES-256)")
            if kid in keys:
                raise KeyRingError(f"MDM_DATA_KEYS: key id {kid!r} appears twice")
            keys[kid] = key
            order.append(kid)
        if not order:
            raise KeyRingError("MDM_DATA_KEYS holds no key")
        return cls(keys, order[0])

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def seal(self, text: str) -> str:
        token = self._sealed.get(text)
        if token is None:
            token = self._seal(text.encode(), _FIELD_AAD)
            _remember(self._sealed, text, token)
            _remember(self._opened, token, text)
        return token

    def open(self, token: str) -> str:
        text = self._opened.get(token)
        if text is None:
            text = self._open(token, _FIELD_AAD).decode()
            _remember(self._opened, token, text)
        return text

    def wrap(self, key: bytes) -> str:
        """A person's key, sealed under the ring for storage next to the person."""
        return self._seal(key, _WRAP_AAD)

    def unwrap(self, token: str) -> bytes:
        return self._open(token, _WRAP_AAD)

    def rewrap(self, token: str) -> str | None:
        """`token` under the active key, or None when it already is (nothing to write)."""
        return None if key_id(token) == self.active else self.wrap(self.unwrap(token))

    def reseal(self, token: str) -> str | None:
        return None if key_id(token) == self.active else self.seal(self.open(token))

    def _seal(self, data: bytes, aad: bytes) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[self.active].encrypt(nonce, data, aad)
        return f"{PREFIX}{self.active}:{_b64(nonce + sealed)}"

    def _open(self, token: str, aad: bytes) -> bytes:
        kid = key_id(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnreadableValue(f"sealed under key {kid!r}, which is not in MDM_DATA_KEYS")
        try:
            blob = _unb64(token[len(PREFIX) + len(kid) + 1 :])
            return cipher.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            raise UnreadableValue(f"a value sealed under key {kid!r} does not open") from None


_REMEMBERED = 100_000


def _remember(cache: dict[str, str], key: str, value: str) -> None:
    if len(cache) >= _REMEMBERED:
        cache.clear()  # cheaper than tracking recency, and rare
    cache[key] = value


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id(token: str) -> str:
    if not token.startswith(PREFIX):
        raise UnreadableValue("not a sealed value")
    return token[len(PREFIX) :].split(":", 1)[0]


# -- per-person keys -------------------------------------------------------------------------
def new_person_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal_document(key: bytes, document: Mapping[str, Any]) -> str:
    """A JSON document sealed under a person's own key: unreadable once the key is gone."""
    nonce = os.urandom(_NONCE)
    return _b64(nonce + AESGCM(key).encrypt(nonce, orjson.dumps(document), _DOC_AAD))


def open_document(key: bytes, sealed: str) -> dict[str, Any]:
    blob = _unb64(sealed)
    try:
        opened = AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], _DOC_AAD)
    except InvalidTag:
        raise UnreadableValue("an audit document does not open with its person's key") from None
    document: dict[str, Any] = orjson.loads(opened)
    return document
