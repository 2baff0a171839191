"""Work split over forked processes: every part's result comes back, in part order, and a
part that fails or dies fails the whole, with no process left behind."""

from __future__ import annotations

import os

import pytest

from mdm.services.dedupe import forked


def test_each_part_runs_once_in_its_own_process() -> None:
    parent = os.getpid()
    results, peak = forked(lambda k: (k, os.getpid(), [k] * 1000), 3)
    assert [k for k, _, _ in results] == [0, 1, 2]
    pids = [pid for _, pid, _ in results]
    assert pids[0] == parent and len(set(pids)) == 3
    assert all(len(data) == 1000 for _, _, data in results)
    assert peak > 0


def test_one_worker_runs_here() -> None:
    results, peak = forked(lambda k: os.getpid(), 1)
    assert results == [os.getpid()] and peak == 0.0


def test_a_part_that_raises_fails_the_whole() -> None:
    def work(k: int) -> int:
        if k == 1:
            raise ValueError("bad block")
        return k

    with pytest.raises(RuntimeError, match="ValueError: bad block"):
        forked(work, 2)


def test_a_part_whose_process_dies_fails_the_whole() -> None:
    def work(k: int) -> int:
        if k == 1:
            os._exit(3)
        return k

    with pytest.raises(RuntimeError, match="died"):
        forked(work, 2)
