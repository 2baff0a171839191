"""The server process's garbage collector: start-up heap frozen, young threshold raised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from api.app import REQUEST_COLLECTOR

_PROBE = """
import gc, json, sys
from fastapi.testclient import TestClient
from api.app import create_app
from mdm.config import Settings
before = gc.get_threshold()
app = create_app(Settings(database_url=sys.argv[1]))
with TestClient(app) as client:
    ready = client.get("/livez").status_code
    # A reference cycle made while serving is still reclaimed, only later.
    cycle = []
    cycle.append(cycle)
    del cycle
    state = {"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
             "enabled": gc.isenabled(), "collected": gc.collect(), "ready": ready}
    print(json.dumps(state))
"""


def test_a_served_process_freezes_its_start_up_heap_and_collects_rarely(tmp_path: Path) -> None:
    # A fresh interpreter: the test process may have frozen its heap already.
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, url], capture_output=True, text=True, check=True, timeout=120
    )
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state["ready"] == 200
    # Whatever the interpreter starts with (700, 10, 10 on CPython 3.11), the app sets its own.
    assert tuple(state["before"]) != REQUEST_COLLECTOR
    assert tuple(state["after"]) == REQUEST_COLLECTOR == (50_000, 20, 100)
    assert state["frozen"] > 10_000  # the modules and tables loaded at start-up
    assert state["enabled"] and state["collected"] >= 1
