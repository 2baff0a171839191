"""The nightly dedupe's write stage: merges, then review items, a chunk per transaction.

Groups are disjoint, so their chunks commit in any order. On PostgreSQL `workers`
processes, forked from the run, take every W-th chunk each: the stage is bound by Python
(golden records, events, sealing), which threads could not spread over the cores. SQLite
has one writer at a time, so it writes from the run's own process. A writing process
dies with the run: killed, the run leaves only whole chunks behind (each is one
transaction), and run again it goes on from them.

A chunk's commit does not wait for the server to flush it to disk: a server crash may undo
the last chunks (whole, as if they had never run), and the next run does them again. The
stage ends with one flushed commit, which puts every chunk on disk before the run reports.
Waiting for a flush per chunk cost about a tenth of the stage's time.

Each writing process appends its audit events to a lane of the trail of its own
(mdm/store/audit.py): neither the other process nor an online ingest waits for its chunk.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Any, NamedTuple
from uuid import UUID

from mdm.flow.score import Score
from mdm.model.ids import new_id
from mdm.model.person import AuditEvent, OutboxEvent, ReviewItem
from mdm.services.context import Registry
from mdm.services.merge_groups import merge_groups
from mdm.services.retry import run_with_retries
from mdm.store.audit import DEDUPE_LANE

ACTOR = "dedupe"
Progress = Callable[[str, int, int], None]


class Proposal(NamedTuple):
    """A pair of persons put before a steward, with why."""

    a: UUID
    b: UUID
    score: Score
    rule: str
    reasons: tuple[str, ...]


def write(
    registry: Registry,
    merges: Sequence[Sequence[UUID]],
    reviews: Sequence[Proposal],
    *,
    chunk: int,
    workers: int,
    tick: Progress,
) -> tuple[int, int]:
    """Merge the groups, then open the review items; persons merged away and items
    opened."""
    total = len(merges) + len(reviews)
    parts = [merges[start : start + chunk] for start in range(0, len(merges), chunk)]
    done = merged = 0
    if registry.database.dialect == "postgresql" and workers > 1 and _can_fork():
        for count, groups in _forked_writes(registry, parts, workers):
            merged += count
            done += groups
            tick("write", done, total)
    else:
        for part in parts:
            merged += run_with_retries(partial(_merge, registry, part, DEDUPE_LANE))
            done += len(part)
            tick("write", done, total)
    opened = 0
    held: set[tuple[UUID, UUID]] = set()  # proposals that met at one pair once merged
    # Review items cost little each: larger chunks, fewer round trips.
    step = max(chunk, 500)
    for start in range(0, len(reviews), step):
        batch = reviews[start : start + step]
        opened += run_with_retries(partial(_review, registry, batch, held))
        done += len(batch)
        tick("write", done, total)
    registry.database.flush_all()
    return merged, opened


def _merge(registry: Registry, groups: Sequence[Sequence[UUID]], lane: int) -> int:
    with registry.database.uow(flushed=False) as uow:
        uow.registry.audit_lane = lane
        merged = merge_groups(
            uow.registry,
            groups,
            now=datetime.now(UTC),
            actor=ACTOR,
            cause={"rule": "nightly_dedupe"},
            kinds=registry.source_kinds,
            rules=registry.rules,
        )
        uow.commit()
    return merged


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _forked_writes(
    registry: Registry, parts: Sequence[Sequence[Sequence[UUID]]], workers: int
) -> Iterator[tuple[int, int]]:
    """(persons merged, groups written) for each chunk as writing processes commit it."""
    context = multiprocessing.get_context("fork")
    children: dict[Connection, Any] = {}
    for k in range(workers):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_writer,
            args=(registry, parts[k::workers], DEDUPE_LANE + k, sender, os.getpid()),
            daemon=True,
        )
        child.start()
        sender.close()
        children[receiver] = child
    pending = dict(children)
    try:
        while pending:
            for ready in wait(list(pending)):
                receiver = next(r for r in pending if r is ready)
                try:
                    kind, count, groups = receiver.recv()
                except EOFError:
                    child = pending[receiver]
                    child.join()
                    raise RuntimeError(
                        f"a writing process died (exit code {child.exitcode})"
                    ) from None
                if kind == "error":
                    raise RuntimeError(f"a writing process failed: {count}")
                if kind == "done":
                    del pending[receiver]
                else:
                    yield count, groups
    except BaseException:
        for child in children.values():
            child.kill()  # what it committed stays; a rerun goes on from there
        raise
    finally:
        for receiver, child in children.items():
            receiver.close()
            child.join()


def _writer(
    registry: Registry,
    parts: Sequence[Sequence[Sequence[UUID]]],
    lane: int,
    sender: Connection,
    parent: int,
) -> None:
    _die_with(parent)
    # The run's pooled connections are its own: this process opens its own.
    registry.database.engine.dispose(close=False)
    # A chunk's objects die with it, but the collector would walk the young ones every few
    # hundred allocations (a third of a merge's time): it runs once per chunk instead, over
    # what the chunk left alive.
    gc.disable()
    try:
        for part in parts:
            merged = run_with_retries(partial(_merge, registry, part, lane))
            sender.send(("chunk", merged, len(part)))
            gc.collect(1)
        sender.send(("done", 0, 0))
    except BaseException as exc:  # reported to the run, which stops
        sender.send(("error", f"{type(exc).__name__}: {exc}", 0))
    finally:
        sender.close()


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when the run dies (Linux), so that no write
    outlives a killed run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the run died before the request was made
        os._exit(1)


def _review(registry: Registry, part: Sequence[Proposal], held: set[tuple[UUID, UUID]]) -> int:
    """Review items for proposals whose persons are still two live persons, not already
    before a steward (in this run or earlier) and not called distinct since the run read
    the registry."""
    now = datetime.now(UTC)
    items: list[ReviewItem] = []
    audit: list[AuditEvent] = []
    outbox: list[OutboxEvent] = []
    done: set[tuple[UUID, UUID]] = set()
    with registry.database.uow(flushed=False) as uow:
        repo = uow.registry
        repo.audit_lane = DEDUPE_LANE
        persons = repo.live_persons({pid for p in part for pid in (p.a, p.b)})
        distinct = repo.not_a_match_among(list({p.id for p in persons.values()}))
        for p in part:
            a, b = persons.get(p.a), persons.get(p.b)
            if a is None or b is None or a.id == b.id:
                continue
            pair = (a.id, b.id) if a.id < b.id else (b.id, a.id)
            if pair in held or pair in done or pair in distinct:
                continue
            done.add(pair)
            first, second = sorted((a, b), key=lambda person: (person.created_at, person.id))
            item = ReviewItem(
                id=new_id(), kind="match", status="open", person_a=first.id,
                person_b=second.id, score=round(p.score.confidence, 6),
                explanation={
                    "rule": "nightly_dedupe",
                    "decision": p.rule,
                    "guards": list(p.reasons),
                    "model": p.score.model,
                    "comparisons": [c.as_json() for c in p.score.comparisons],
                },
                created_at=now, source=None,
            )  # fmt: skip
            items.append(item)
            after = {"review_id": str(item.id), "person_a": str(item.person_a),
                     "person_b": str(item.person_b), "score": item.score}  # fmt: skip
            audit.append(
                AuditEvent(new_id(), now, ACTOR, "review.opened", "review", str(item.id), None,
                           None, after)
            )  # fmt: skip
            outbox.append(OutboxEvent(new_id(), "review.opened", item.person_b, after, now))
        with repo.pipelined():
            repo.insert_reviews(items)
            repo.insert_outbox(outbox)
        repo.insert_audit(audit)
        uow.commit()
    held |= done  # only once committed: a retried chunk starts again from what was
    return len(items)
