"""Engine: threaded and sync modes, polling while blocked, error capture, clean stop."""
from __future__ import annotations

import threading
import time

import pytest

from hwdrv.errors import EngineError, HwdrvError
from hwdrv.mock import Engine, Work
from hwdrv.mock.engine import sync_mode_from_env


class Counter:
    def __init__(self, todo=0):
        self.todo, self.done, self.threads = todo, 0, set()

    def __call__(self):
        self.threads.add(threading.get_ident())
        if self.todo:
            self.todo -= 1
            self.done += 1
            return True
        return False


def test_threaded_runs_on_worker_until_idle():
    c = Counter(5)
    e = Engine("t", c, sync=False)
    try:
        e.kick()
        assert e.wait_idle(5.0)
        assert c.done == 5 and threading.get_ident() not in c.threads
    finally:
        e.stop()
    with pytest.raises(HwdrvError, match="stopped"):
        e.kick()


def test_sync_runs_inline(monkeypatch):
    monkeypatch.setenv("HWDRV_MOCK_SYNC", "1")
    assert sync_mode_from_env()
    c = Counter(3)
    e = Engine("s", c)
    assert e.sync
    e.kick()
    assert c.done == 3 and c.threads == {threading.get_ident()}     # done before kick() returned
    monkeypatch.setenv("HWDRV_MOCK_SYNC", "0")
    assert not sync_mode_from_env()


def test_sync_reentrant_kick_does_not_recurse():
    depth = [0, 0]
    calls = []

    def work():
        depth[0] += 1
        depth[1] = max(depth)
        calls.append(1)
        if len(calls) == 1:
            e.kick()                      # a doorbell rung from inside the engine
        depth[0] -= 1
        return False

    e = Engine("r", work, sync=True)
    e.kick()
    assert depth[1] == 1 and len(calls) == 2          # ran again after, not inside


def test_blocked_engine_polls_without_kick():
    flag = {"set": False, "polls": 0}

    def work():
        flag["polls"] += 1
        return Work.PROGRESS if flag.pop("go", False) else (Work.IDLE if flag["set"] else Work.BLOCKED)

    e = Engine("b", work, sync=False, poll_interval=0.001)
    try:
        e.kick()
        time.sleep(0.05)
        assert e.blocked and flag["polls"] > 5         # re-polled on its own
        flag["set"] = True
        deadline = time.monotonic() + 5
        while e.blocked and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not e.blocked
        n = flag["polls"]
        time.sleep(0.05)
        assert flag["polls"] == n                      # idle: no busy polling
    finally:
        e.stop()


def test_exception_is_recorded_and_surfaced():
    def work():
        raise ZeroDivisionError("boom")

    e = Engine("x", work, sync=False)
    e.kick()
    with pytest.raises(EngineError) as ei:
        e.wait_idle(5.0)
    assert isinstance(ei.value.__cause__, ZeroDivisionError) and "boom" in str(ei.value)
    assert "ZeroDivisionError" in ei.value.tb_text and "in work" in ei.value.tb_text
    with pytest.raises(EngineError):
        e.kick()
    e.stop()                                           # already seen: stop is quiet


def test_unseen_exception_raised_by_stop():
    e = Engine("y", lambda: 1 / 0, sync=False)
    e.kick()
    deadline = time.monotonic() + 5
    while e.error is None and time.monotonic() < deadline:
        time.sleep(0.001)
    with pytest.raises(EngineError, match="ZeroDivisionError"):
        e.stop()


def test_sync_exception_propagates_to_kicker():
    e = Engine("z", lambda: 1 / 0, sync=True)
    with pytest.raises(EngineError) as ei:
        e.kick()
    assert isinstance(ei.value.__cause__, ZeroDivisionError)
    e.stop()


def test_stuck_work_fn_stop_times_out_with_stack():
    release = threading.Event()

    def stuck_here():
        release.wait(10)
        return False

    e = Engine("stuck", stuck_here, sync=False)
    e.kick()
    time.sleep(0.02)
    t = time.monotonic()
    with pytest.raises(HwdrvError, match="did not stop within 0.1s") as ei:
        e.stop(timeout=0.1)
    assert time.monotonic() - t < 2 and "stuck_here" in str(ei.value)
    release.set()
    e.stop()


def test_endless_progress_is_an_error():
    e = Engine("loop", lambda: True, sync=True, max_steps=1000)
    with pytest.raises(EngineError, match="without going idle"):
        e.kick()


def test_bad_return_value():
    e = Engine("bad", lambda: 3, sync=True)
    with pytest.raises(EngineError, match="returned 3"):
        e.kick()
