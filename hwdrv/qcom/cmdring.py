"""CmdRing: GPU-readable memory the unbound submissions' IBs are copied into, reused in a circle.

Each piece is tagged with the timeline value of its submission; before a piece is overwritten the
ring waits until the engine has passed that value (the engine runs submissions in order)."""
from __future__ import annotations

import collections

import numpy as np

from ..errors import InvalidArgument
from ..memory.buffer import Buffer
from ..signal import Timeline

_ALIGN = 64


class CmdRing:
    """Circular command memory in ``buf`` (host-visible), guarded by ``timeline``."""

    def __init__(self, buf: Buffer, timeline: Timeline):
        self.buf, self.timeline = buf, timeline
        self.words = buf.view(np.uint32)
        self.pos = 0
        self.pieces: collections.deque[tuple[int, int, int]] = collections.deque()   # (start, end, value)

    def put(self, words: np.ndarray, value: int) -> int:
        """Copy ``words`` in; returns their GPU address. ``value``: the submission's timeline value."""
        n = -(-words.nbytes // _ALIGN) * _ALIGN
        if n > self.buf.size:
            raise InvalidArgument(f"a {words.nbytes}-byte command stream does not fit the {self.buf.size}-byte "
                                  "submission ring; bind() the queue (its stream then lives in its own memory)")
        if self.pos + n > self.buf.size:
            self.pos = 0
        start, end = self.pos, self.pos + n
        while self.pieces and not self.timeline.done(self.pieces[0][2]) and any(
                s < end and start < e for s, e, _ in self.pieces):
            self.timeline.wait(self.pieces[0][2])
            self.pieces.popleft()
        while self.pieces and self.timeline.done(self.pieces[0][2]):
            self.pieces.popleft()
        self.words[start // 4:start // 4 + words.size] = words
        self.pieces.append((start, end, value))
        self.pos = end
        return self.buf.va + start
