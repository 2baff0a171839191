"""Logs are JSON lines carrying the request id."""

from __future__ import annotations

import json
import logging

import pytest

from mdm.logs import configure, request_id_var


def test_log_lines_are_json_with_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure("INFO")
        token = request_id_var.set("req-42")
        try:
            logging.getLogger("mdm.worker").warning("delivery %s is dead after %d attempts",
                                                    "d-1", 13)  # fmt: skip
        finally:
            request_id_var.reset(token)
        logging.getLogger("mdm.worker").info("no request here")
    finally:
        root.handlers, root.level = saved[0], saved[1]
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    first, second = lines[-2], lines[-1]
    assert first["event"] == "delivery d-1 is dead after 13 attempts"
    assert (first["level"], first["logger"], first["request_id"]) == (
        "warning",
        "mdm.worker",
        "req-42",
    )
    assert "timestamp" in first
    assert "request_id" not in second
