"""The pushbuffer ring's in-flight records: a new segment never overwrites a submission the
GPU has not finished, including when the ring wraps past records at its start."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.nvidia.gpfifo import Channel

CAP = 100       # pushbuffer words


class _Timeline:
    def __init__(self):
        self.value = 0
        self.waited: list[int] = []

    def done(self, v: int) -> bool:
        return self.value >= v

    def wait(self, v: int, seconds: float) -> None:
        self.waited.append(v)
        self.value = max(self.value, v)          # the GPU finishes what was waited for


class _Kernel:
    """Counts doorbells (the channel rings the one it prepared with doorbell32)."""

    def __init__(self):
        self.doorbells = 0

    def doorbell32(self, addr: int, value: int):
        def ring() -> None:
            self.doorbells += 1
        return ring


def _channel(tl: _Timeline, kernel=None) -> Channel:
    return Channel("test", kernel=kernel or _Kernel(), ring=np.zeros(4096, np.uint64), userd=np.zeros(64, np.uint32),
                   gpput_word=0, gpget_word=1, pb_va=0x1000, pb=np.zeros(CAP, np.uint32), token=0,
                   doorbell=0, timeline_done=tl.done, wait_timeline=tl.wait, stall_timeout=lambda: 5.0,
                   on_stall=lambda msg: RuntimeError(msg))


def test_wrap_waits_for_records_at_the_ring_start():
    tl = _Timeline()
    ch = _channel(tl)
    assert ch._reserve(90, 1) == 0          # [0, 90)
    tl.value = 1
    assert ch._reserve(10, 2) == 90         # [90, 100): the tail, still running
    assert ch._reserve(15, 3) == 0          # wraps: [0, 15) over the finished first record
    assert ch._reserve(70, 4) == 15         # [15, 85)
    # 20 words do not fit after 85: the segment wraps to [0, 20), over submission 3 at [0, 15),
    # which is newer than submission 2 in the skipped tail: it must wait for 3 (hence 2) to end
    assert ch._reserve(20, 5) == 0
    assert 3 in tl.waited and tl.value >= 3


def test_no_wait_when_the_space_is_free():
    tl = _Timeline()
    ch = _channel(tl)
    assert ch._reserve(30, 1) == 0
    assert ch._reserve(30, 2) == 30
    assert ch._reserve(30, 3) == 60
    assert tl.waited == []


def test_push_copy_never_overwrites_unfinished_work():
    """Random segment sizes and completion times through push_copy (its inline no-wrap path and
    _reserve): a new segment never overlaps a submission the GPU has not finished."""
    import random
    from hwdrv.nvidia.gpfifo import SEMAPHORE_WORDS
    rng = random.Random(1234)
    tl = _Timeline()
    ch = _channel(tl, _Kernel())
    pushed: list[tuple[int, int, int]] = []
    wraps = 0
    for v in range(1, 3000):
        if rng.random() < 0.3:
            tl.value = rng.randint(tl.value, v - 1)       # the GPU finishes some work
        n = rng.randint(1, CAP - SEMAPHORE_WORDS)
        words = np.full(n, v, np.uint32)
        ch.push_copy(words.tobytes(), 0x5000, v)
        _, va, ndw = ch.history[-1]
        off = (va - ch.pb_va) // 4
        assert ndw == n + SEMAPHORE_WORDS and off + ndw <= CAP
        wraps += bool(pushed) and off < pushed[-1][0]
        for s, e, pv in pushed:
            if pv > tl.value:
                assert e <= off or off + ndw <= s, f"submission {v} at [{off}, {off + ndw}) overwrote unfinished {pv} at [{s}, {e})"
        assert (ch.pb[off:off + n] == v).all()
        pushed.append((off, off + ndw, v))
    assert ch.kernel.doorbells == 2999 and wraps > 100


def test_bind_refuses_a_stream_one_gp_entry_cannot_fetch():
    """A bound queue is pushed as one segment: bind() checks its length once (submits then skip
    the check), and refuses what one GP entry cannot fetch with a clear error."""
    import hwdrv
    from hwdrv.errors import InvalidArgument
    from hwdrv.nvidia.gpfifo import MAX_SEGMENT_WORDS
    dev = hwdrv.open_device("mock:nvidia")
    try:
        q = dev.compute_queue()
        per = len(dev.compute_queue().memory_barrier().words)
        for _ in range(MAX_SEGMENT_WORDS // per + 1):
            q.memory_barrier()
        with pytest.raises(InvalidArgument, match="split its work"):
            q.bind()
        small = dev.compute_queue().memory_barrier().bind()
        small.submit()
        dev.synchronize(30)
    finally:
        dev.close()


class _LaggingTimeline:
    """A timeline that reaches its value after ``polls`` looks (or never, with None)."""

    def __init__(self, value: int, polls: "int | None"):
        self.value, self.polls, self.looks = value, polls, 0

    def completed(self) -> int:
        self.looks += 1
        return self.value if self.polls is not None and self.looks > self.polls else self.value - 1


def test_a_bound_resubmit_waits_briefly_for_its_last_release():
    """A bound queue's run ends with the engine's timeline release just after the queue's own
    last signal: a resubmit right after a wait on that signal waits the few microseconds for the
    release (at most BOUND_RUN_GRACE_S) instead of raising QueueBusy; a run still going then
    is busy."""
    import time
    from hwdrv.queue import BOUND_RUN_GRACE_S, _ends_soon
    tl = _LaggingTimeline(7, polls=50)
    assert _ends_soon(tl, 7) and tl.looks == 51
    stuck = _LaggingTimeline(7, polls=None)
    t = time.perf_counter()
    assert not _ends_soon(stuck, 7)
    assert BOUND_RUN_GRACE_S <= time.perf_counter() - t < BOUND_RUN_GRACE_S + 0.5
