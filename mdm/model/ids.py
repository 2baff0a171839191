"""Identifiers: time-ordered UUIDs (version 7, RFC 9562).

Person GUIDs, record ids and event ids are all UUIDv7: their leading 48 bits are the
creation time in milliseconds, so new rows land at the right edge of every B-tree index
instead of at random pages, which keeps bulk inserts fast on a registry of millions.
(Python 3.14's `uuid.uuid7` does the same; this project supports 3.11.)
"""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)
