"""`mdm serve` in a subprocess for tests that need real HTTP and worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import ADMIN_KEY


@contextmanager
def served(database_url: str, *, workers: int, **env: str) -> Iterator[str]:
    """Serve the registry at `database_url`; yields the base URL once /readyz answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {
        **os.environ, "MDM_DATABASE_URL": database_url, "MDM_ADMIN_KEY": ADMIN_KEY, **env,
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdm.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not become ready")
        time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
