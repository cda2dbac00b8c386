"""The pushbuffer ring's in-flight records: a new segment never overwrites a submission the
GPU has not finished, including when the ring wraps past records at its start."""
from __future__ import annotations

import numpy as np

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


def _channel(tl: _Timeline) -> Channel:
    return Channel("test", kernel=None, ring=np.zeros(8, np.uint64), userd=np.zeros(64, np.uint32),
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
