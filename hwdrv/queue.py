"""The vendor-neutral raw queue: verbs, patch sites, submit and bind.

A queue is built once as a list of 32-bit command words plus *patch sites*: places (in the
command stream or in side buffers such as NVIDIA QMDs and constant banks) whose value comes
from a :class:`~hwdrv.var.Var`. ``submit(**vals)`` evaluates every site, rewrites only the
words whose value changed, takes the engine's next timeline value from the device and pushes
the stream onto the engine's ring (``_push``, the backend's). Backends subclass :class:`Queue`,
encode the verbs (``_q_*`` methods) and implement ``_push`` and ``_bind_stream``.

The submit path, file by file: ``Queue.submit`` (here: patches, then the engine's next
timeline value under the device lock, recovering the device first if a wait reported a GPU
error) -> the backend queue's ``_push`` (e.g. hwdrv/nvidia/queue.py) -> its ring's push and
doorbell write (e.g. hwdrv/nvidia/gpfifo.py).
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from array import array
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import InvalidArgument, QueueBusy, UnsupportedDevice
from .program import Program, remembered_dims
from .signal import check_timeout
from .var import IntArg, VarExpr

if TYPE_CHECKING:
    from .device import Device
    from .memory.buffer import Buffer
    from .signal import Signal, Timeline

_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
# a new queue's stream before it is sealed (sealing replaces it, nothing writes into it)
if array("I").itemsize != 4:
    raise ImportError("hwdrv needs a 4-byte C unsigned int (array typecode 'I') for command words")
_NO_WORDS = np.zeros(0, np.uint32)
_NO_WORDS.flags.writeable = False
_ARG_SEQS = (tuple, list)


class WordBuffer:
    """A patchable array of 32-bit words (a numpy uint32 array or an ``array('I')``). ``words``
    may be re-pointed (e.g. when a queue is bound and its stream moves into GPU-visible memory);
    patch sites follow it."""

    __slots__ = ("words",)

    def __init__(self, words: "np.ndarray | array"):
        self.words = words


class PatchSite:
    """One place whose value is an expression of a Var: ``nwords`` = 2 writes a 64-bit value
    as (low, high) words; ``nwords`` = 1 writes ``(value << shift) & mask`` into one word,
    keeping the word's other bits."""

    __slots__ = ("target", "index", "nwords", "shift", "mask", "expr", "last", "side")

    def __init__(self, target: WordBuffer, index: int, nwords: int, expr: VarExpr,
                 shift: int = 0, mask: int = _U32, side: bool = False):
        self.target, self.index, self.nwords = target, index, nwords
        self.expr, self.shift, self.mask, self.side = expr, shift, mask, side
        self.last: int | None = None

    def write(self, v: int) -> int:
        """Store ``v``; returns the number of words written."""
        if self.nwords == 2 and 0 <= v <= _U64:      # the common 64-bit value, inline
            words, i = self.target.words, self.index
            words[i] = v & _U32
            words[i + 1] = v >> 32
            return 2
        return write_word(self.target.words, self.index, self.nwords, self.shift, self.mask, v,
                          self.expr)


def write_word(words: np.ndarray, index: int, nwords: int, shift: int, mask: int, v: int,
               what: object = "value") -> int:
    """Store ``v`` as 2 words (low, high) or into one word's ``mask`` at ``shift``, keeping the
    word's other bits; raises InvalidArgument if it does not fit. Returns words written."""
    if nwords == 2:
        if not 0 <= v <= _U64:
            raise InvalidArgument(f"{what!r} = {v} does not fit in 64 bits")
        words[index] = v & _U32
        words[index + 1] = v >> 32
        return 2
    if v < 0 or (v << shift) & ~mask:
        raise InvalidArgument(f"{what!r} = {v} does not fit its field (mask {mask:#x}, shift {shift})")
    words[index] = (int(words[index]) & ~mask & _U32) | (v << shift)
    return 1


#: how long a bound queue's resubmit waits for its previous run's end before QueueBusy: a run
#: ends with the engine's timeline release just after the queue's own last command, so a caller
#: that waited for a signal the queue sets last may look a few microseconds before that release
BOUND_RUN_GRACE_S = 0.005


def _ends_soon(timeline: "Timeline", value: int) -> bool:
    """Whether ``timeline`` reaches ``value`` within BOUND_RUN_GRACE_S (polled, not slept)."""
    deadline = time.perf_counter() + BOUND_RUN_GRACE_S
    while timeline.completed() < value:
        if time.perf_counter() > deadline:
            return False
    return True


class BoundStream:
    """A queue's command stream uploaded once into GPU-readable command memory (``bind()``),
    followed by the backend's end-of-submission words. ``tail`` is the patch site of the
    timeline value those words publish: each submit rewrites it, then pushes ``(va, nwords)``."""

    __slots__ = ("va", "nwords", "words", "tail")

    def __init__(self, va: int, nwords: int, words: "np.ndarray | memoryview", tail: np.ndarray):
        self.va, self.nwords, self.words, self.tail = va, nwords, words, tail

    def set_timeline_value(self, value: int) -> None:
        """Write the 64-bit timeline value into the tail (low word, high word)."""
        self.tail[0] = value & _U32
        self.tail[1] = value >> 32


class QueueLife:
    """What outlives a queue object: its command-memory pieces and its last submission
    (the pieces are reused only after that submission has finished)."""

    __slots__ = ("pieces", "last_submit", "timeline")

    def __init__(self) -> None:
        self.pieces: list[tuple] = []
        self.last_submit = 0
        self.timeline: "Timeline | None" = None

    def done(self) -> bool:
        """Whether the last submission (if any) has finished."""
        return self.timeline is None or self.timeline.done(self.last_submit)


class Queue(ABC):
    """Build commands with the verbs, then ``submit()``. Every verb returns the queue."""

    #: engine kind, set by subclasses: "compute" or "copy"
    kind = "compute"
    # Immutable starting values live on the class (a queue per eager launch: fewer stores);
    # the first patch site replaces the empty ones with the queue's own
    _sealed = False
    #: set by bind(): the stream's copy in command memory
    _bound: BoundStream | None = None
    #: words rewritten by patching over this queue's life (tests read it)
    patched_words = 0
    _sites: "list[PatchSite] | tuple" = ()
    #: an exec the backend has not written yet (NVIDIA: a queue's first exec, written at submit
    #: with Device.launch's fast path when nothing else comes; any other use writes it first)
    _pending: "tuple | None" = None
    _var_names: "set[str] | frozenset" = frozenset()
    _side_sites = False

    def __init__(self, device: "Device"):
        self.device = device
        self._words: list[int] = []
        #: the sealed stream (made by the first stream patch site or by sealing)
        self._stream: WordBuffer | None = None
        self._life = QueueLife()
        #: one submit or bind at a time per queue (patching rewrites shared words)
        self._qlock = threading.Lock()

    # ---- verbs ---------------------------------------------------------------------
    def wait(self, signal: "Signal", value: IntArg) -> "Queue":
        """GPU waits until ``signal.value >= value``."""
        self._check_building()
        self.device._check_signal(signal)
        self._q_wait(signal, self._int(value, "wait value"))
        return self

    def signal(self, signal: "Signal", value: IntArg) -> "Queue":
        """After all earlier work completes, the GPU writes ``value`` to ``signal``."""
        self._check_building()
        self.device._check_signal(signal)
        self._q_signal(signal, self._int(value, "signal value"))
        return self

    def timestamp(self, signal: "Signal") -> "Queue":
        """After earlier work completes, the GPU writes its clock to ``signal``'s timestamp."""
        self._check_building()
        self.device._check_signal(signal)
        self._q_timestamp(signal)
        return self

    def exec(self, program: "Program", grid: Sequence[IntArg], block: Sequence[int],
             args: Sequence[Any] = (), shared: int = 0, *, early_start: bool = False,
             cluster: Sequence[int] | None = None) -> "Queue":
        """Launch ``program`` over ``grid`` blocks of ``block`` threads with ``args``
        packed from the kernel's parameter metadata; ``shared`` = dynamic shared bytes.

        ``cluster=(cx, cy, cz)`` launches thread-block clusters of that shape (NVIDIA sm_90: the
        cluster's blocks run together and share distributed shared memory; the grid must be a
        whole number of clusters, given as plain ints, and a cluster holds at most the device's
        ``limits.max_cluster_size`` blocks). Devices without clusters raise UnsupportedDevice.

        ``early_start=True`` (programmatic dependent launch): this launch may start once every
        block of the exec just before it in this queue has run ``griddepcontrol.launch_dependents``
        (PTX), before that kernel has finished; this kernel must then run ``griddepcontrol.wait``
        before it reads anything the previous one wrote. It is a permission: a backend that runs
        launches strictly in order ignores it."""
        # The eager path: a launch shape this program has run before, given the same way, with
        # nothing unusual, skips the checks it passed then (a queue per launch: this is hot).
        if not self._sealed and early_start is False and cluster is None and type(args) in _ARG_SEQS \
                and self.kind == "compute":
            dims = remembered_dims(program, grid, block, shared)
            if dims is not None and program.device is self.device and not self.device._closed:
                self._q_exec(program, dims[0], dims[1], args, shared)
                return self
        self._check_building()
        if not isinstance(early_start, bool):
            raise InvalidArgument(f"exec: early_start must be True or False, got {early_start!r}")
        if self.kind != "compute":
            raise InvalidArgument(f"exec needs a compute queue; this is a {self.kind} queue")
        if not isinstance(program, Program):
            raise InvalidArgument(f"exec: program must be a Program from dev.program(), got "
                                  f"{type(program).__name__}")
        if not isinstance(args, (list, tuple)):
            raise InvalidArgument(f"exec: args must be a list or tuple of kernel arguments, got "
                                  f"{type(args).__name__}")
        if program.device is not self.device:
            raise InvalidArgument(f"program {program.name!r} belongs to {program.device.name}, "
                                  f"not {self.device.name}")
        g = _dims(grid, "grid")
        b = _dims(block, "block")
        if not (type(b[0]) is int and type(b[1]) is int and type(b[2]) is int) and \
                any(isinstance(x, VarExpr) for x in b):
            raise InvalidArgument("block dimensions must be plain ints (they decide register "
                                  "and shared-memory allocation at build time)")
        program.check_launch(g, b, shared)
        if cluster is None:
            program.remember_shape(grid, block, shared, g, b)
            self._q_exec(program, g, b, args, int(shared))
        else:
            self._q_exec(program, g, b, args, int(shared),
                         cluster=self._cluster_dims(cluster, g))
        if early_start:
            self._q_early_start()
        return self

    def memory_barrier(self) -> "Queue":
        """Make earlier writes visible to later commands and to the host."""
        self._check_building()
        self._q_memory_barrier()
        return self

    def copy(self, dst: "Buffer | IntArg", src: "Buffer | IntArg", size: int) -> "Queue":
        """Copy ``size`` bytes from ``src`` to ``dst`` (buffers or device addresses). Copy queues
        use the copy engine; a backend's compute queue may copy with the SMs."""
        self._check_building()
        if not isinstance(size, int) or size <= 0:
            raise InvalidArgument(f"copy size must be a positive int, got {size!r}")
        d = self._addr(dst, size, "copy destination")
        s = self._addr(src, size, "copy source")
        self._q_copy(d, s, size)
        return self

    # ---- lifecycle -------------------------------------------------------------------
    def submit(self, **vals: int) -> "Queue":
        """Patch Var values (only changed words are rewritten) and hand the queue to the GPU.
        Safe from several threads (one submit of a queue runs at a time). Waits behind stuck
        work (a full ring, an unbound queue's previous run) last at most the device's
        ``submit_timeout`` and then raise GPUHang with a report."""
        dev = self.device
        if dev._closed:
            dev._check_open()
        with self._qlock:
            if self._pending is not None:
                if not vals and not self._sealed and self._submit_pending():
                    return self
                self._materialize()
            if not self._sealed:
                self._seal()
            life = self._life
            # life.done(), inline (once per resubmit of a bound queue)
            if self._bound is not None and life.timeline is not None \
                    and life.timeline.completed() < life.last_submit \
                    and not _ends_soon(life.timeline, life.last_submit):
                raise QueueBusy("this bound queue's previous run has not finished; wait for it "
                                "(e.g. on a signal it sets) before resubmitting (or build a second "
                                "queue to double-buffer)")
            if vals or self._sites:
                if not vals.keys() <= self._var_names:
                    unknown = vals.keys() - self._var_names
                    raise InvalidArgument(f"submit() got values for {sorted(unknown)} but this queue "
                                          f"uses {sorted(self._var_names) or 'no Vars'}")
                if self._side_sites and self._bound is None and not life.done():
                    # side buffers the previous run may still read: evaluate every site first,
                    # and wait for that run if a side site changes
                    changed = []
                    for site in self._sites:
                        v = site.expr.eval(vals)
                        if v != site.last:
                            changed.append((site, v))
                    if any(s.side for s, _ in changed):
                        life.timeline.wait(life.last_submit, dev.submit_timeout)
                    for site, v in changed:
                        self.patched_words += site.write(v)
                        site.last = v
                else:                  # nothing the GPU reads now: patch as the sites come
                    patched = 0
                    for site in self._sites:
                        v = site.expr.eval(vals)
                        if v != site.last:
                            patched += site.write(v)
                            site.last = v
                    self.patched_words += patched
            with dev._lock:
                # Device._next_timeline, inline (once per submission)
                if dev._closed:
                    dev._check_open()
                if dev._recover_pending:
                    dev.recover()
                timeline = dev._timelines[self.kind]
                timeline.value = value = timeline.value + 1
                try:
                    self._push(value)
                except BaseException:
                    timeline.unreserve(value)
                    raise
            life.timeline = timeline
            life.last_submit = value
        return self

    def bind(self) -> "Queue":
        """Upload the command stream once into GPU-visible memory; later submits only push a
        pointer. A bound queue may not be resubmitted before its previous run finished."""
        self.device._check_open()
        with self._qlock:
            if self._bound is not None:
                return self
            if not self._sealed:
                self._seal()
            self._bound = bound = self._bind_stream()
            # patch sites in the stream now write into the bound copy
            self._stream.words = bound.words
        return self

    def synchronize(self, timeout: float | None = None) -> None:
        """Block until this queue's last submission has finished (at most ``timeout`` seconds;
        None: the default)."""
        life = self._life
        timeout = check_timeout(timeout)
        if life.timeline is not None:
            life.timeline.wait(life.last_submit, timeout)

    def __del__(self) -> None:
        # A finalizer (any thread, any moment): the device takes the queue's command memory
        # back once its last submission finished, at the next allocation under its lock.
        life = getattr(self, "_life", None)
        if life is not None and life.pieces:
            dev = self.device
            if not dev._closed:
                dev._dead_queues.append(life)

    @property
    def words(self) -> np.ndarray:
        """The command stream (read-only copy) for inspection and dumps."""
        if self._bound is not None:
            # a bound stream lives in the device's command memory, gone once the device closes
            self.device._check_open()
        if self._pending is not None:
            self._materialize()
        return np.array(self._stream.words if self._sealed else self._words, np.uint32)

    # ---- helpers for backends ---------------------------------------------------------
    def _emit(self, *words: int) -> None:
        self._words.extend(words)

    def _emit_val(self, x: IntArg, nwords: int = 1, shift: int = 0, mask: int = _U32) -> None:
        """Append a value (1 word, or 2 words low/high); a Var becomes a patch site."""
        idx = len(self._words)
        if isinstance(x, VarExpr):
            self._words.extend([0] * nwords)
            if self._stream is None:
                self._stream = WordBuffer(_NO_WORDS)
            self._add_site(PatchSite(self._stream, idx, nwords, x, shift, mask))
        elif nwords == 2:
            self._words.extend((x & _U32, (x >> 32) & _U32))
        else:
            self._words.append((x << shift) & mask)

    def _site(self, target: WordBuffer, index: int, x: IntArg, nwords: int = 1, shift: int = 0,
              mask: int = _U32) -> None:
        """Write ``x`` into a side buffer now, or register a patch site if it is symbolic."""
        if isinstance(x, VarExpr):
            self._add_site(PatchSite(target, index, nwords, x, shift, mask, side=True))
        else:
            write_word(target.words, index, nwords, shift, mask, x)

    def _add_site(self, site: PatchSite) -> None:
        if not self._sites:
            self._sites, self._var_names = [], set()
        self._sites.append(site)
        self._var_names.add(site.expr.var.name)
        # whether any site writes a side buffer (only those may have to wait for the last run)
        self._side_sites = self._side_sites or site.side

    def _seal(self) -> None:
        # array('I'): a third of np.array's cost for the few words of a launch; indexing, len(),
        # tobytes() and the buffer protocol (numpy takes it as uint32) are all the rest needs
        if self._pending is not None:
            self._materialize()
        if self._stream is None:
            self._stream = WordBuffer(array("I", self._words))
        else:
            self._stream.words = array("I", self._words)
        self._sealed = True

    def _submit_pending(self) -> bool:
        """Submit a queue holding only its pending exec, the backend's fast way; False: it
        cannot (the exec is then written as any other and the queue submitted as usual)."""
        return False

    def _materialize(self) -> None:
        """Write the pending exec as any other. Only a backend that sets ``_pending`` (NVIDIA's
        compute queue) reaches this, and it overrides it; reaching this one is a backend bug."""
        raise NotImplementedError(f"{type(self).__name__} keeps a pending exec but cannot write it "
                                  f"(it must override _materialize)")

    def _check_building(self) -> None:
        if self._sealed:
            raise InvalidArgument("this queue was already submitted or bound; build a new queue "
                                  "for new commands (resubmit this one with submit(**vals))")
        self.device._check_open()
        if self._pending is not None:
            self._materialize()

    def _cluster_dims(self, cluster: Sequence[int], grid: tuple) -> tuple[int, int, int]:
        """exec's ``cluster`` as 3 ints, checked against the device and the grid."""
        dev = self.device
        top = dev.limits.max_cluster_size
        if not top:
            raise UnsupportedDevice(f"{dev.name} ({dev.kind}, {dev.arch}) has no thread-block clusters; "
                                    f"launch without cluster=")
        if isinstance(cluster, int) and not isinstance(cluster, bool):
            cluster = (cluster,)
        if not isinstance(cluster, (tuple, list)) or not 1 <= len(cluster) <= 3 or not all(
                isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 1 for c in cluster):
            raise InvalidArgument(f"exec: cluster must be 1 to 3 positive ints, got {cluster!r}")
        c = tuple(int(x) for x in cluster) + (1,) * (3 - len(cluster))
        size = c[0] * c[1] * c[2]
        if size > top:
            raise InvalidArgument(f"exec: cluster {c} holds {size} blocks; {dev.name} allows at most {top} "
                                  f"(the portable cluster size; 16-block non-portable clusters are not supported)")
        if any(isinstance(x, VarExpr) for x in grid):
            raise InvalidArgument(f"exec: a cluster launch needs a grid of plain ints, got {grid!r} "
                                  f"(the clusters per grid are written when the queue is built)")
        if any(g % k for g, k in zip(grid, c)):
            raise InvalidArgument(f"exec: grid {grid} is not a whole number of clusters {c}; make each grid "
                                  f"dimension a multiple of the cluster's")
        return c

    @staticmethod
    def _int(x: IntArg, what: str) -> IntArg:
        if isinstance(x, VarExpr):
            return x
        if not isinstance(x, (int, np.integer)) or isinstance(x, bool) or not 0 <= x <= _U64:
            raise InvalidArgument(f"{what} must be an int in [0, 2**64) or a Var, got {x!r}")
        return int(x)

    def _addr(self, x: "Buffer | IntArg", size: int, what: str) -> IntArg:
        from .memory.buffer import Buffer
        if isinstance(x, Buffer):
            self.device._check_buffer(x, what)
            if size > x.size:
                raise InvalidArgument(f"{what}: {size} bytes do not fit in a {x.size}-byte buffer")
            return x.va
        return self._int(x, what)

    # ---- backend interface -----------------------------------------------------------
    def _q_wait(self, signal: "Signal", value: IntArg) -> None:
        raise InvalidArgument(f"{type(self).__name__} does not support wait")

    def _q_signal(self, signal: "Signal", value: IntArg) -> None:
        raise InvalidArgument(f"{type(self).__name__} does not support signal")

    def _q_timestamp(self, signal: "Signal") -> None:
        raise InvalidArgument(f"{type(self).__name__} does not support timestamp")

    def _q_exec(self, program: "Program", grid: tuple, block: tuple, args: list, shared: int) -> None:
        raise InvalidArgument(f"{type(self).__name__} does not support exec")

    def _q_early_start(self) -> None:
        """Let the launch just recorded start early (exec's ``early_start``); in-order backends
        need nothing."""

    def _q_memory_barrier(self) -> None:
        raise InvalidArgument(f"{type(self).__name__} does not support memory_barrier")

    def _q_copy(self, dst: IntArg, src: IntArg, size: int) -> None:
        raise InvalidArgument(f"{type(self).__name__} does not support copy")

    @abstractmethod
    def _push(self, value: int) -> None:
        """Put this submission on the engine's ring, ending with a release of timeline
        ``value``, and ring the doorbell (bound: push the bound stream)."""

    @abstractmethod
    def _bind_stream(self) -> BoundStream:
        """Copy the sealed stream plus the end-of-submission words into command memory."""


def _dims(d: Sequence[IntArg], what: str) -> tuple:
    if type(d) is tuple:       # the common cases, checked cheaply: dims sit on the submit path
        n = len(d)
        if n == 3:
            x, y, z = d
            if type(x) is int and type(y) is int and type(z) is int and x > 0 and y > 0 and z > 0:
                return d
        elif n == 1:
            x = d[0]
            if type(x) is int and x > 0:
                return (x, 1, 1)
    if isinstance(d, (int, VarExpr)):
        d = (d,)
    if not isinstance(d, (tuple, list)):
        raise InvalidArgument(f"{what} must be a tuple of 1 to 3 positive ints, got {d!r}")
    d = tuple(d)
    if not 1 <= len(d) <= 3:
        raise InvalidArgument(f"{what} must have 1 to 3 dimensions, got {d!r}")
    d = d + (1,) * (3 - len(d))
    for x in d:
        if isinstance(x, VarExpr):
            continue
        if not isinstance(x, (int, np.integer)) or isinstance(x, bool) or x < 1:
            raise InvalidArgument(f"{what} dimensions must be positive ints, got {d!r}")
    return tuple(x if isinstance(x, VarExpr) else int(x) for x in d)
