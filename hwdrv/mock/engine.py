"""Engine: one worker thread per mock GPU engine (GPFIFO/compute, copy, SDMA, ...).

Doorbell handlers call `kick()`; the worker calls `work_fn()` until it reports no progress, the
way a hardware front end fetches until its ring is empty. `work_fn` returns:
  * Work.PROGRESS (or True): did something, call again at once;
  * Work.BLOCKED: waiting on memory (a semaphore acquire): poll again after `poll_interval`, like
    hardware re-polling, even without a kick (the CPU may release the semaphore with a plain store);
  * Work.IDLE (or False/None): nothing to do until the next kick.
An exception in work_fn is recorded; the engine stops working, and the error (EngineError, with
the original as __cause__) is raised by the next kick(), check() or stop(): never lost, never a
hung thread.

With HWDRV_MOCK_SYNC=1 (or sync=True) there is no thread: kick() runs work_fn inline in the
caller's thread, so the whole mock runs deterministically. A BLOCKED engine is then retried on the
next kick() or poll() (a waiting host may call poll()).
"""
from __future__ import annotations

import enum
import os
import sys
import threading
import traceback
from typing import Callable

from ..errors import EngineError, HwdrvError


class Work(enum.Enum):
    PROGRESS = "progress"
    BLOCKED = "blocked"
    IDLE = "idle"


def _status(r) -> Work:
    if isinstance(r, Work):
        return r
    if r is True:
        return Work.PROGRESS
    if r is False or r is None:
        return Work.IDLE
    raise HwdrvError(f"engine work_fn returned {r!r}; return a Work value, True (progress) or False (idle)")


def sync_mode_from_env() -> bool:
    """True when HWDRV_MOCK_SYNC is set to a true value (1, yes, true, on)."""
    return os.environ.get("HWDRV_MOCK_SYNC", "").strip().lower() in ("1", "yes", "true", "on")


class Engine:
    """A mock GPU engine named `name` running `work_fn` (see module doc)."""

    def __init__(self, name: str, work_fn: Callable[[], object], *, sync: bool | None = None,
                 poll_interval: float = 0.0005, max_steps: int = 10_000_000):
        self.name = name
        self.work_fn = work_fn
        self.sync = sync_mode_from_env() if sync is None else sync
        self.poll_interval = poll_interval
        self.max_steps = max_steps           # per wake: a work_fn that never stops reporting progress is a bug
        self._cv = threading.Condition()
        self._kicks = 0                      # kicks requested
        self._seen = 0                       # kicks the worker has started serving
        self._busy = False
        self._blocked = False
        self._stop = False
        self._error: EngineError | None = None
        self._error_reported = False
        self._inline_depth = 0
        self._rekick = False
        self._thread: threading.Thread | None = None
        if not self.sync:
            self._thread = threading.Thread(target=self._loop, name=f"hwdrv-mock-{name}", daemon=True)
            self._thread.start()

    # --- public -----------------------------------------------------------------------------------------
    def kick(self) -> None:
        """Wake the engine (a doorbell write). Raises EngineError if work_fn failed earlier."""
        self._raise_if_failed()
        if self._stop:
            raise HwdrvError(f"mock engine {self.name!r} was stopped; it cannot be kicked")
        if self.sync:
            self._run_inline()
            return
        with self._cv:
            self._kicks += 1
            self._cv.notify_all()

    def poll(self) -> None:
        """Retry blocked work now (sync mode; in threaded mode the worker polls by itself)."""
        self._raise_if_failed()
        if self.sync and self._blocked:
            self._run_inline()

    @property
    def blocked(self) -> bool:
        """True while the last work_fn call reported BLOCKED."""
        return self._blocked

    @property
    def error(self) -> EngineError | None:
        return self._error

    def check(self) -> None:
        """Raise the recorded EngineError, if any."""
        self._raise_if_failed()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every kick so far was served and work_fn reported IDLE or BLOCKED. Returns
        False on timeout; raises EngineError if work_fn failed."""
        if self.sync:
            self._raise_if_failed()
            return True
        with self._cv:
            ok = self._cv.wait_for(lambda: self._error is not None or self._stop or
                                   (self._seen == self._kicks and not self._busy), timeout)
        self._raise_if_failed()
        return ok

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (join with `timeout`). Raises HwdrvError with the worker's stack if it does
        not stop in time, and EngineError if work_fn failed and no one has seen that error yet."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                frame = sys._current_frames().get(t.ident)
                stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
                raise HwdrvError(f"mock engine {self.name!r} did not stop within {timeout}s: work_fn is stuck "
                                 f"(never returns). Its stack:\n{stack}")
        if self._error is not None and not self._error_reported:
            self._raise_if_failed()

    # --- internals --------------------------------------------------------------------------------------
    def _raise_if_failed(self) -> None:
        if self._error is not None:
            self._error_reported = True
            raise self._error

    def _record(self, exc: BaseException) -> EngineError:
        err = EngineError(self.name, exc, "".join(traceback.format_exception(exc)))
        err.__cause__ = exc
        with self._cv:
            self._error = err
            self._cv.notify_all()
        return err

    def _drain(self) -> Work:
        """Call work_fn until it stops reporting progress."""
        for _ in range(self.max_steps):
            st = _status(self.work_fn())
            if st is not Work.PROGRESS:
                return st
        raise HwdrvError(f"mock engine {self.name!r}: work_fn reported progress {self.max_steps} times in a "
                         "row without going idle (an endless command stream?)")

    def _run_inline(self) -> None:
        # A doorbell rung from inside work_fn (e.g. one engine kicking another, or itself) must not
        # recurse: note it and let the outer loop run again.
        if self._inline_depth:
            self._rekick = True
            return
        self._inline_depth += 1
        try:
            while True:
                self._rekick = False
                try:
                    self._blocked = self._drain() is Work.BLOCKED
                except Exception as e:
                    self._error_reported = True   # the caller sees it right now
                    raise self._record(e) from e
                if not self._rekick:
                    break
        finally:
            self._inline_depth -= 1

    def _loop(self) -> None:
        while True:
            with self._cv:
                # Timed waits only: a lost wakeup costs at most one interval, never a hang.
                while not self._stop and self._seen == self._kicks:
                    if self._blocked:
                        self._cv.wait(self.poll_interval)
                        break
                    self._cv.wait(0.25)
                if self._stop:
                    return
                self._seen = self._kicks
                self._busy = True
            try:
                st = self._drain()
            except BaseException as e:
                self._record(e)
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
                return
            with self._cv:
                self._blocked = st is Work.BLOCKED
                self._busy = False
                self._cv.notify_all()

    def __repr__(self) -> str:
        mode = "sync" if self.sync else "threaded"
        state = "failed" if self._error else "stopped" if self._stop else "blocked" if self._blocked else "ok"
        return f"<Engine {self.name!r} {mode} {state}>"
