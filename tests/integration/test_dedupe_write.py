"""The dedupe's writing processes: every chunk is written once, a process that fails
stops the run, and a writing process never outlives a killed run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from mdm.services import dedupe_write
from mdm.services.context import Registry
from mdm.services.dedupe_write import _die_with, write
from mdm.store.audit import DEDUPE_LANE, LOCK_SQL, ONLINE_LANE, verify
from mdm.store.registry import RegistryRepository
from tests.integration.test_merge_groups import _groups


def test_processes_write_every_chunk_once(pg_registry: Registry) -> None:
    groups = _groups(pg_registry)
    ticks: list[int] = []
    merged, _ = write(pg_registry, groups, [], chunk=3, workers=3,
                      tick=lambda stage, done, total: ticks.append(done))  # fmt: skip
    assert merged == sum(len(g) - 1 for g in groups)
    assert ticks[-1] == len(groups) and ticks == sorted(ticks)
    again, _ = write(pg_registry, groups, [], chunk=3, workers=3, tick=lambda *a: None)
    assert again == 0


def test_a_writing_process_that_fails_stops_the_run(
    pg_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = _groups(pg_registry)
    real = dedupe_write._merge

    def merge(registry: Registry, part: Sequence[Sequence[UUID]], lane: int) -> int:
        if groups[5] in part:
            raise ValueError("a chunk that cannot be written")
        return real(registry, part, lane)

    monkeypatch.setattr(dedupe_write, "_merge", merge)  # the forked processes inherit it
    with pytest.raises(RuntimeError, match="ValueError: a chunk that cannot be written"):
        write(pg_registry, groups, [], chunk=2, workers=2, tick=lambda *a: None)


def _writer(sender: Connection, parent: int) -> None:
    _die_with(parent)
    sender.send(os.getpid())
    time.sleep(600)


def _run(sender: Connection) -> None:
    context = multiprocessing.get_context("fork")
    context.Process(target=_writer, args=(sender, os.getpid())).start()
    time.sleep(600)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # dead, not yet reaped


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc (Linux)")
def test_a_writing_process_dies_with_the_run() -> None:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    run = context.Process(target=_run, args=(sender,))
    run.start()
    writer = receiver.recv()
    assert not _gone(writer)
    os.kill(run.pid or 0, signal.SIGKILL)
    run.join()
    deadline = time.monotonic() + 10
    while not _gone(writer) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(writer)


def test_chunks_commit_without_waiting_for_the_flush_and_the_stage_ends_flushed(
    pg_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = _groups(pg_registry)
    seen: list[str] = []
    real = dedupe_write.merge_groups

    def merge_groups(repo: RegistryRepository, *args: Any, **kwargs: Any) -> int:
        seen.append(repo.conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())
        return real(repo, *args, **kwargs)

    monkeypatch.setattr(dedupe_write, "merge_groups", merge_groups)
    write(pg_registry, groups, [], chunk=4, workers=1, tick=lambda *a: None)
    assert seen and set(seen) == {"off"}
    with pg_registry.database.engine.connect() as conn:
        # SET LOCAL: the pooled connection, and every other unit of work, still wait.
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
        written = conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar_one()
    with pg_registry.database.uow() as uow:
        assert uow.registry.conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    pg_registry.database.flush_all()
    with pg_registry.database.engine.connect() as conn:
        flushed = conn.exec_driver_sql(
            "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (written,)
        ).scalar_one()
    assert flushed


def test_each_writing_process_appends_to_a_lane_of_its_own(pg_registry: Registry) -> None:
    groups = _groups(pg_registry)
    write(pg_registry, groups, [], chunk=3, workers=2, tick=lambda *a: None)
    with pg_registry.database.engine.connect() as conn:
        lanes = dict(
            conn.exec_driver_sql(
                "SELECT lane, count(*) FROM audit_events WHERE actor = 'dedupe' GROUP BY lane"
            ).all()
        )
        online = conn.exec_driver_sql(
            "SELECT count(*) FROM audit_events WHERE actor <> 'dedupe' AND lane <> 0"
        ).scalar_one()
        result = verify(conn)
    assert set(lanes) == {DEDUPE_LANE, DEDUPE_LANE + 1} and online == 0
    assert result.ok and set(result.heads) == {0, DEDUPE_LANE, DEDUPE_LANE + 1}

    # An edit on a dedupe lane is found like one on lane 0.
    with pg_registry.database.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        seq = conn.exec_driver_sql(
            "SELECT max(seq) FROM audit_events WHERE lane = %s", (DEDUPE_LANE + 1,)
        ).scalar_one()
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = %s", (seq,))
    with pg_registry.database.engine.connect() as conn:
        broken = verify(conn)
    assert (broken.broken_seq, broken.reason) == (seq, "its content was changed")


def test_a_dedupe_chunk_does_not_wait_for_the_online_lane(pg_registry: Registry) -> None:
    groups = _groups(pg_registry)
    finished = threading.Event()

    def run() -> None:
        write(pg_registry, groups, [], chunk=5, workers=1, tick=lambda *a: None)
        finished.set()

    with pg_registry.database.engine.connect() as holder, holder.begin():
        # An online unit of work holding lane 0 for as long as this block lasts.
        holder.exec_driver_sql(LOCK_SQL, (ONLINE_LANE,))
        writer = threading.Thread(target=run, daemon=True)
        writer.start()
        writer.join(timeout=120)
        assert finished.is_set()
