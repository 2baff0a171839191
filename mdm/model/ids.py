"""Identifiers: time-ordered UUIDs (version 7, RFC 9562).

Person GUIDs, record ids and event ids are all UUIDv7: their leading 48 bits are the
creation time in milliseconds, so new rows land at the right edge of every B-tree index
instead of at random pages, which keeps bulk inserts fast on a registry of millions.
(Python 3.14's `uuid.uuid7` does the same; this project supports 3.11.)
"""

from __future__ import annotations

import os
import threading
import time
import uuid

# Random bits are read from the OS in blocks: one system call per id costs more than the
# rest of making it. A forked worker must not reuse its parent's block.
_BLOCK = 10 * 512
_lock = threading.Lock()
_pool = b""
_offset = 0


def _reset_pool() -> None:
    global _pool, _offset
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_reset_pool)


def _random_bits() -> int:
    global _pool, _offset
    with _lock:
        if _offset + 10 > len(_pool):
            _pool, _offset = os.urandom(_BLOCK), 0
        chunk = _pool[_offset : _offset + 10]
        _offset += 10
    return int.from_bytes(chunk, "big")


def new_id() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | _random_bits()
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)
