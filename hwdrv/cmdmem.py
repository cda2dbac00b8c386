"""Command memory: GPU-readable, CPU-writable memory for queues' side buffers (NVIDIA QMDs
and constant banks, bound command streams, kernel arguments).

Each queue owns its pieces for as long as it lives, so it can be resubmitted and patched any
number of times. When a queue dies its pieces are not reused until the engine that ran it has
passed the queue's last submission (the GPU may still be reading them). Pieces come in
power-of-two size classes from free lists, and freed pieces wait in one FIFO per engine
timeline (timelines complete in order), so allocating and releasing are O(1) on the submit
path.
"""
from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Callable


from .errors import InvalidArgument

if TYPE_CHECKING:
    from .memory.buffer import Buffer
    from .queue import QueueLife
    from .signal import Timeline

CHUNK_SIZE = 4 << 20
MIN_PIECE = 256
#: pieces larger than this get a chunk of their own
MAX_PIECE = CHUNK_SIZE


#: A piece: (GPU VA, size class, uint8 numpy view, byte memoryview), views of the whole piece.
#: The same tuple travels from the free list to its queue and back (no lookups on the way).
Piece = tuple


class SlotRing:
    """Equal slots of one command-memory chunk, taken in turn by one-shot submissions on one
    engine (``Device.launch``). The engine's timeline completes in order, so a slot may be
    taken again once the timeline has passed the submission that used it last: taking one
    costs an index step and a compare, with nothing to allocate or release."""

    __slots__ = ("va", "slot_size", "views", "last", "next")

    def __init__(self, buf: "Buffer", slot_size: int):
        self.va, self.slot_size = buf.va, slot_size
        whole = memoryview(buf.view())
        count = buf.size // slot_size
        #: each slot's bytes, and the timeline value of the submission that used it last
        self.views = [whole[i * slot_size:(i + 1) * slot_size] for i in range(count)]
        self.last = [0] * count
        self.next = 0


class CommandMemory:
    """A growable pool of command-memory pieces."""

    def __init__(self, alloc_chunk: Callable[[int], "Buffer"], on_empty: Callable[[], None] = lambda: None):
        """``alloc_chunk(n)`` allocates a chunk; ``on_empty()`` runs when a size class has no
        free piece, before the pool reclaims or carves (the owner hands back dead queues' pieces)."""
        self._alloc_chunk = alloc_chunk
        self._on_empty = on_empty
        self._chunks: list["Buffer"] = []
        self._free: dict[int, list[Piece]] = collections.defaultdict(list)    # per size class
        self._big: dict[int, "Buffer"] = {}          # pieces with a chunk of their own (class -1)
        self._pending: dict[int, tuple["Timeline", collections.deque]] = {}
        self._classes: dict[int, int] = {}       # request size -> size class, as computed before

    def alloc(self, nbytes: int, align: int = MIN_PIECE) -> Piece:
        """A piece of at least ``nbytes`` bytes aligned to ``align`` (<= 4 KiB, or the piece's
        size), its views covering the whole piece (``nbytes`` rounded up to its size class)."""
        cls = self._classes.get(nbytes)
        if cls is None:
            if nbytes <= 0:
                raise InvalidArgument(f"command memory request must be > 0 bytes, got {nbytes}")
            cls = MIN_PIECE if nbytes <= MIN_PIECE else 1 << (nbytes - 1).bit_length()
            if cls <= MAX_PIECE:
                self._classes[nbytes] = cls
        if align > 4096 or align & (align - 1):
            raise InvalidArgument(f"command memory alignment must be a power of two <= 4096, got {align}")
        if cls > MAX_PIECE:
            buf = self._alloc_chunk(nbytes)
            self._big[buf.va] = buf
            view = buf.view()
            return (buf.va, -1, view, memoryview(view))
        free = self._free[cls]
        if not free:
            self._on_empty()
            self._reclaim()
            if not free:
                self._carve(cls)
        return free.pop()

    def _carve(self, cls: int) -> None:
        buf = self._alloc_chunk(CHUNK_SIZE)
        self._chunks.append(buf)
        whole = buf.view()
        whole_mv = memoryview(whole)
        free = self._free[cls]
        # pieces are naturally aligned to their class (chunks are page aligned)
        for off in range(CHUNK_SIZE - cls, -1, -cls):
            free.append((buf.va + off, cls, whole[off:off + cls], whole_mv[off:off + cls]))

    def release(self, pieces: list[Piece], timeline: "Timeline | None", value: int) -> None:
        """Give ``pieces`` back once ``timeline`` reaches ``value`` (None: now)."""
        if not pieces:
            return
        if timeline is None or timeline.done(value):
            self._free_now(pieces)
        else:
            self.release_later(pieces, timeline, value)

    def release_lives(self, lives: list["QueueLife"]) -> None:
        """``release`` for dead queues' pieces in a batch (each timeline is read once)."""
        done_upto: dict[int, int] = {}
        for life in lives:
            tl = life.timeline
            if tl is None:
                self._free_now(life.pieces)
                continue
            upto = done_upto.get(id(tl))
            if upto is None:
                upto = done_upto[id(tl)] = tl.completed()
            if life.last_submit <= upto:
                self._free_now(life.pieces)
            elif life.pieces:
                self.release_later(life.pieces, tl, life.last_submit)

    def release_later(self, pieces: list[Piece], timeline: "Timeline", value: int) -> None:
        """``release`` without looking whether ``timeline`` has reached ``value`` (work just
        submitted has not): the pieces wait in the timeline's FIFO."""
        # timelines complete in order, so _reclaim pops from the front
        entry = self._pending.get(id(timeline))
        if entry is None:
            entry = self._pending[id(timeline)] = (timeline, collections.deque())
        entry[1].append((value, pieces))

    def _reclaim(self) -> None:
        for timeline, q in self._pending.values():
            upto = timeline.completed()
            while q and q[0][0] <= upto:
                self._free_now(q.popleft()[1])

    def _free_now(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            if piece[1] < 0:
                buf = self._big.pop(piece[0])
                if not buf.freed:
                    buf.free()
            else:
                self._free[piece[1]].append(piece)

    def close(self) -> None:
        """Free every chunk (the device is closing; nothing may run any more)."""
        for buf in [*self._chunks, *self._big.values()]:
            if not buf.freed:
                buf.free()
        self._chunks.clear()
        self._big.clear()
        self._free.clear()
        self._pending.clear()
