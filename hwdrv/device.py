"""Device: the vendor-neutral half of every backend.

The core owns buffers' lifetime, signals, one timeline per engine (an internal signal the
engine bumps after each submission, so the host knows what finished), command memory for
queues, synchronous upload/download, waits and hang reports. A backend subclass declares
``kind``, ``arch``, ``compiler``, ``limits`` and its engines, implements the ``_backend_*``
hooks and the queue classes (which push their own submissions: see hwdrv/queue.py).
"""
from __future__ import annotations

import atexit
import collections
import threading
import time
import warnings
import weakref
from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from .cmdmem import CommandMemory, Piece, SlotRing
from .compiler import Compiler
from .errors import BufferFreed, DeviceClosed, GPUHang, HwdrvError, InvalidArgument
from .hang import HangReport
from .ioctl.kernel import Kernel
from .limits import DeviceLimits
from .memory.buffer import Buffer
from .peer import PeerAccessError, PeerFallbackWarning, PeerLink
from .program import Program, remembered_dims
from .queue import _ARG_SEQS, Queue, QueueLife
from .trace import Span, Trace
from .signal import DEFAULT_TIMEOUT, SIGNAL_SIZE, Signal, Timeline, check_timeout
from .var import VarExpr

#: bytes per staging buffer for upload/download through the copy engine
STAGING_SIZE = 64 << 20
_SIGNAL_PAGE = 4096
#: how long a waiting thread sleeps between looks when the backend cannot block in the driver
_POLL_SLEEP_S = 0.0002
#: open devices, closed at interpreter exit if the program did not close them
_OPEN: "weakref.WeakSet[Device]" = weakref.WeakSet()
#: submissions whose launches a hang report can name (the newest are kept)
SUBMISSION_RECORD = 64
#: no allocation is larger (2**48 bytes: beyond any GPU's address space)
_MAX_ALLOC = 1 << 48


def _close_open_devices() -> None:
    for dev in list(_OPEN):
        try:
            dev.close(wait=False)
        except HwdrvError:
            pass


atexit.register(_close_open_devices)


class _Reaper:
    """Closes devices dropped without close(). A finalizer runs in whatever thread the garbage
    collector happens to run in -- possibly a mock GPU engine thread in the middle of a kernel,
    whose memory the close would free under it -- so it only hands the device to this thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: "collections.deque[Device]" = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._thread: threading.Thread | None = None

    def close_later(self, dev: "Device") -> None:
        with self._lock:
            self._queue.append(dev)            # keeps the device alive until it is closed
            self._busy = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hwdrv-reaper", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    if not self._queue:
                        self._busy = False
                        self._idle.notify_all()
                        break
                    dev = self._queue.popleft()
                    self._busy = True
                try:
                    dev.close(wait=False)
                except Exception:  # noqa: BLE001 - nobody to report to: the program dropped it
                    pass
                del dev

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every dropped device handed over so far is closed (e.g. before retrying
        an open that ran out of address-pool slots)."""
        with self._lock:
            self._idle.wait_for(lambda: not self._queue and not self._busy, timeout)


def collect_dropped_devices(timeout: float = 10.0) -> None:
    """Run the garbage collector and close the devices it found dropped without close()."""
    import gc
    gc.collect()
    _REAPER.drain(timeout)


_REAPER = _Reaper()
#: dead queues whose command memory _cmd_alloc lets wait before handing it back in one go
_DEAD_QUEUE_BATCH = 32


def launch_var_error(kernel: object) -> InvalidArgument:
    """What ``launch()`` raises for a Var argument (its fast paths say it too)."""
    return InvalidArgument(f"launch: {kernel} got a Var argument; launch() takes concrete values (build "
                           f"a queue and submit(**values) to patch Vars)")


#: launch()'s slot ring: each slot holds one launch (its QMD, constant bank and words); a
#: launch that does not fit goes through a queue. 2048 launches in flight before one waits.
LAUNCH_SLOT_BYTES = 2048
LAUNCH_RING_BYTES = 4 << 20


class Device(ABC):
    """An open GPU. Use :func:`hwdrv.open_device` to get one; close it (or use ``with``)."""

    #: vendor kind: "nvidia", "amd", "qcom"
    kind = ""
    #: device clock rate of signal timestamps, in Hz
    timestamp_hz = 1_000_000_000
    #: the engines this device has queues for; a device without "copy" (Qualcomm) serves
    #: copy_queue() with a compute queue, whose copies run as a compute blit
    engines: tuple[str, ...] = ("compute", "copy")
    #: the ISA binaries must target, e.g. "sm_90" (set by the backend at bring-up)
    arch: str
    #: turns source text into binaries for ``arch`` (set by the backend at bring-up)
    compiler: Compiler
    #: launch limits (set by the backend at bring-up)
    limits: DeviceLimits
    #: the backend's sample kernels, name -> (source for ``compiler``, kernel name): at least
    #: "vecadd", "oob_store", "illegal_instruction", "endless_loop" (conventions: hwdrv.provoke)
    samples: dict[str, tuple[str | bytes, str]] = {}
    #: whether GPU virtual addresses equal the CPU addresses of the same memory. A backend
    #: choice where its driver allows it (NVIDIA and KFD do; kgsl assigns GPU addresses itself);
    #: the core never assumes it: a Buffer carries ``va`` (GPU) and ``cpu_addr`` separately.
    gpu_va_is_cpu_va = True
    #: whether signal timestamps count from the Unix epoch (NVIDIA's global timer); Adreno's
    #: always-on counter counts from power-up instead
    timestamps_track_wall_clock = True

    #: seconds a submission may wait for ring space or for an earlier run of its queue (work
    #: stuck on the GPU) before raising GPUHang with a report; set it per device
    submit_timeout: float = DEFAULT_TIMEOUT

    def __init__(self, name: str, kernel: Kernel):
        self.name = name
        self.kernel = kernel
        self.is_mock = kernel.is_mock
        self._closed = False
        #: guards every piece of shared device state (buffers, signal slots, command memory,
        #: timelines and the rings submissions are pushed onto); never held while waiting on a
        #: signal the caller asked for, only around bounded submit-path waits
        self._lock = threading.RLock()
        #: buffers freed by the program, released once the work submitted before free() finished:
        #: (timeline values at free time, buffer), oldest first
        self._pending_frees: list[tuple[tuple[tuple[Timeline, int], ...], Buffer]] = []
        #: freed buffers whose views are still alive (released when the last view dies)
        self._pinned: dict[int, tuple[Buffer, weakref.ref]] = {}
        #: appended to from finalizers (any thread, any moment); drained under the lock
        self._unpinned: list[Buffer] = []
        self._dead_queues: list[QueueLife] = []
        #: buffers of programs collected without free() (appended to by finalizers)
        self._orphans: list[Buffer] = []
        #: runs releases of detached memory once the backend has closed (see _Teardown)
        self._late_releases = _Teardown()
        self._buffers: set[Buffer] = set()
        self._signal_slots: list[int] = []               # free slots (va); finalizers append
        self._slot_mem: dict[int, np.ndarray] = {}       # va -> the slot's (value, timestamp) view
        self._signal_pages: list[Buffer] = []
        self._staging: list[Buffer] = []
        self._staging_busy: list[Callable[[], bool] | None] = []
        #: serialises the synchronous helpers (staging buffers are shared device state)
        self._transfer_lock = threading.RLock()
        #: one timeline per engine kind: each engine completes its submissions in order
        self._timelines: dict[str, Timeline] = {}
        self._cmdmem: CommandMemory | None = None
        #: set when a wait reported a GPU error: the next submit recovers the device first
        self._recover_pending = False
        #: when set (``start_trace()``), uploads, downloads and tensor launches record GPU spans
        self.trace: Trace | None = None
        # diagnosis state every backend keeps: loaded programs (PC -> kernel), the launches of
        # recent submissions (the backend decides the record's shape), what each recovery lost
        self.programs: weakref.WeakSet[Program] = weakref.WeakSet()
        self.submissions: collections.deque = collections.deque(maxlen=SUBMISSION_RECORD)
        self.recoveries: list[str] = []
        #: peers this device enabled (enable_peer) and other devices' buffers mapped here
        self._peers: "weakref.WeakKeyDictionary[Device, PeerLink]" = weakref.WeakKeyDictionary()
        self._foreign: "weakref.WeakSet[Buffer]" = weakref.WeakSet()

    # ---- set-up by the backend, once its memory works -----------------------------------
    def _init_core(self) -> None:
        self._cmdmem = CommandMemory(self._alloc_command_chunk, self._collect_frees)
        self._launch_slots: SlotRing | None = None       # launch()'s, made at the first one
        for kind in self.engines:
            self._timelines[kind] = Timeline(self.signal(0))
        _OPEN.add(self)

    def _alloc_command_chunk(self, size: int) -> Buffer:
        """Memory for queues' side buffers: host-writable, GPU-readable; a backend may place it
        where the GPU reads it fastest."""
        with self._lock:
            buf = self._backend_alloc(size, True, for_commands=True)
            self._buffers.add(buf)
            return buf

    # ---- public API -------------------------------------------------------------------
    def alloc(self, size: int, host_visible: bool = False) -> Buffer:
        """Allocate ``size`` bytes of GPU memory. ``host_visible=True`` gives memory the CPU
        can map (``buf.view()``); otherwise device memory reached with upload/download."""
        if not isinstance(size, (int, np.integer)) or isinstance(size, (bool, np.bool_)) \
                or not 0 < size <= _MAX_ALLOC:
            raise InvalidArgument(f"alloc: size must be a positive int (bytes) up to "
                                  f"{_MAX_ALLOC:#x}, got {size!r}")
        if not isinstance(host_visible, (bool, np.bool_)):
            raise InvalidArgument(f"alloc: host_visible must be True or False, got {host_visible!r}")
        with self._lock:
            self._check_open()
            self._collect_frees()
            buf = self._backend_alloc(int(size), bool(host_visible))
            self._buffers.add(buf)
            return buf

    def signal(self, value: int = 0) -> Signal:
        """A new signal holding ``value``."""
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value < 1 << 64:
            raise InvalidArgument(f"signal: value must be an int in [0, 2**64), got {value!r}")
        with self._lock:
            self._check_open()
            if not self._signal_slots:
                page = self._backend_alloc(_SIGNAL_PAGE, True, for_signals=True)
                self._signal_pages.append(page)
                self._buffers.add(page)      # released (or detached, if signals live on) at close
                words = page.view(np.uint64)
                for i in range(_SIGNAL_PAGE // SIGNAL_SIZE - 1, -1, -1):
                    self._slot_mem[page.va + i * SIGNAL_SIZE] = words[2 * i:2 * i + 2]
                    self._signal_slots.append(page.va + i * SIGNAL_SIZE)
            va = self._signal_slots.pop()
            mem = self._slot_mem[va]
        mem[:] = 0
        sig = Signal(self, va, mem)
        sig.value = int(value)
        # the finalizer holds no view: a closed device's signal pages go once no Signal is left
        weakref.finalize(sig, self._signal_slots.append, va)
        return sig

    def compute_queue(self) -> Queue:
        """A new, empty compute queue."""
        if self._closed:
            self._check_open()
        return self._backend_queue("compute")

    def launch(self, program: Program, grid: Any, block: Any, args: Any = (), shared: int = 0) -> None:
        """Launch ``program`` now, on its own: what ``compute_queue().exec(program, grid, block,
        args, shared).submit()`` does, in one call and without a queue object (an eager
        runtime's launch). Arguments are concrete (a Var has nothing to patch it: use a queue).
        The launch runs in order with this device's earlier compute submissions; wait for it
        with ``synchronize()`` or a signal set by a later queue."""
        # A shape this program has launched before, spelt the same way (exec's eager path):
        # the backend launches it straight away; anything else goes through a queue, whose
        # exec checks it all (and remembers the shape for next time).
        if type(args) in _ARG_SEQS:
            dims = remembered_dims(program, grid, block, shared)
            if dims is not None and program.device is self \
                    and self._launch_now(program, dims[0], dims[1], args, shared):
                return
        if isinstance(args, (list, tuple)) and any(isinstance(a, VarExpr) for a in args):
            raise launch_var_error(getattr(program, "name", program))
        self.compute_queue().exec(program, grid, block, args, shared).submit()

    def copy_queue(self) -> Queue:
        """A new, empty copy queue: on the copy engine, or, on a device without one (see
        ``engines``), a compute queue whose copies run as a compute blit."""
        self._check_open()
        return self._backend_queue("copy" if "copy" in self.engines else "compute")

    def program(self, binary: bytes, name: str) -> Program:
        """Load kernel ``name`` from ``binary`` (what ``dev.compiler.compile`` returned). Its
        memory is released by ``Program.free()``, or once the Program is garbage collected (and
        the work submitted before that has finished)."""
        self._check_open()
        if not isinstance(binary, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"program: binary must be bytes (what dev.compiler.compile "
                                  f"returned), got {type(binary).__name__}")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"program: name must be the kernel's name (a non-empty str), "
                                  f"got {name!r}")
        prog = self._backend_program(bytes(binary), name)
        prog._release_at_gc()
        return prog

    def upload(self, buf: Buffer, data: Any, offset: int = 0,
               timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Copy ``data`` (a numeric numpy array, bytes, bytearray or memoryview) into ``buf`` at
        ``offset``; returns when the bytes are in place (at most ``timeout`` seconds, waits
        behind earlier work included; None: the default)."""
        self._check_buffer(buf, "upload")
        deadline = time.perf_counter() + check_timeout(timeout)
        raw = _host_bytes(data)
        n = raw.nbytes
        offset = _offset(offset, "upload")
        if offset + n > buf.size:
            raise InvalidArgument(f"upload: {n} bytes at offset {offset} do not fit in a "
                                  f"{buf.size}-byte buffer")
        if n == 0:
            return
        if buf.host_visible:
            buf.view()[offset:offset + n] = np.frombuffer(raw, np.uint8)
            self._host_write_fence()
            return
        with self._transfer_lock:
            done = 0
            last = None
            while done < n:
                step = min(STAGING_SIZE, n - done)
                i, stage = self._staging_slot(deadline)
                stage.view()[:step] = np.frombuffer(raw[done:done + step], np.uint8)
                last = self._traced_copy("upload", buf.va + offset + done, stage.va, step).submit()
                self._staging_busy[i] = last._life.done
                done += step
            if last is not None:
                last.synchronize(_left(deadline))

    def download(self, buf: Buffer, size: int | None = None, offset: int = 0,
                 dtype: Any = np.uint8, timeout: float | None = DEFAULT_TIMEOUT) -> np.ndarray:
        """Read ``size`` bytes (default: the rest of the buffer) at ``offset`` into a new
        numpy array of ``dtype`` (at most ``timeout`` seconds, waits behind earlier work
        included; None: the default)."""
        self._check_buffer(buf, "download")
        deadline = time.perf_counter() + check_timeout(timeout)
        offset = _offset(offset, "download")
        if size is None:
            size = max(buf.size - offset, 0)
        elif isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise InvalidArgument(f"download: size must be an int >= 0 (bytes) or None, got {size!r}")
        size = int(size)
        if offset + size > buf.size:
            raise InvalidArgument(f"download: size {size} at offset {offset} is outside the "
                                  f"{buf.size}-byte buffer")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise InvalidArgument(f"download: dtype must be a numpy dtype, got {dtype!r}") from None
        if dt.hasobject or dt.kind not in "biufc" or size % dt.itemsize:
            raise InvalidArgument(f"download: dtype must be a numeric numpy dtype whose item size "
                                  f"divides {size}, got {dt}")
        out = np.empty(size, np.uint8)
        if buf.host_visible:
            self.synchronize(_left(deadline))
            out[:] = buf.view()[offset:offset + size]
            return out.view(dt)
        with self._transfer_lock:
            done = 0
            while done < size:
                step = min(STAGING_SIZE, size - done)
                i, stage = self._staging_slot(deadline)
                self._traced_copy("download", stage.va, buf.va + offset + done, step).submit() \
                    .synchronize(_left(deadline))
                out[done:done + step] = stage.view()[:step]
                self._staging_busy[i] = None
                done += step
        return out.view(dt)

    def synchronize(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Wait until everything submitted so far has finished (at most ``timeout`` seconds in
        all; None: the default)."""
        self._check_open()
        deadline = time.perf_counter() + check_timeout(timeout)
        for tl in list(self._timelines.values()):
            tl.wait(tl.value, _left(deadline))
        with self._lock:
            self._collect_frees()

    def recover(self) -> None:
        """Make the device usable again after a GPU error, or abandon stuck work (an endless
        kernel, a wait on a signal nobody sets): the backend replaces its hardware queues.
        Unfinished submissions are lost (the backend documents what that means); buffers,
        programs, signals and queues survive. Runs by itself on the first submit after a wait
        reported a GPU error; call it yourself after a timeout you want to give up on."""
        with self._lock:
            self._check_open()
            self._recover_pending = False
            self._backend_recover()
            self._collect_frees()

    def start_trace(self) -> Trace:
        """Record GPU timestamps around the synchronous copies (and, in ``tensor``, every
        kernel) from now on; export with :func:`hwdrv.trace.write_chrome_trace`."""
        self._check_open()
        if self.trace is None:
            self.trace = Trace(self.name, self.timestamp_hz)
        return self.trace

    def _traced_copy(self, name: str, dst: int, src: int, size: int) -> Queue:
        """A copy queue moving ``size`` bytes, with GPU timestamps around it when tracing."""
        q = self.copy_queue()
        tr = self.trace
        if tr is None:
            return q.copy(dst, src, size)
        start, end = self.signal(0), self.signal(0)
        tr.add(Span(name, "copy", q.kind, start, end, {"bytes": size}))
        return q.timestamp(start).copy(dst, src, size).timestamp(end)

    # ---- peers (hwdrv/peer.py, docs/multi-gpu.md) ---------------------------------------------
    def peer_link(self, other: "Device") -> PeerLink:
        """How this device reaches ``other``'s memory (a :class:`~hwdrv.peer.PeerLink`)."""
        if not isinstance(other, Device) or other is self:
            raise InvalidArgument(f"peer_link: expected another open Device, got {other!r}")
        self._check_open()
        other._check_open()
        return self._backend_peer_link(other)

    def can_access_peer(self, other: "Device") -> bool:
        """Whether this device's engines can reach ``other``'s device memory directly."""
        return self.peer_link(other).direct

    def enable_peer(self, other: "Device") -> PeerLink:
        """Let each of the two devices use the other's buffers and signals in its queues. Where
        P2P is refused this warns (:class:`~hwdrv.peer.PeerFallbackWarning`) and returns a link
        with ``direct`` False: then only signals and host-visible buffers cross, and
        :func:`hwdrv.peer.copy` stages device memory through the host."""
        link = self.peer_link(other)
        with self._lock:
            if link.direct and other not in self._peers:
                self._backend_enable_peer(other, link)
            self._peers[other] = link
            other._peers[self] = link
        if not link.direct:
            warnings.warn(PeerFallbackWarning(f"no P2P between {self.name} and {other.name}: "
                                              f"{link.reason}; copies between them stage through "
                                              f"host memory (hwdrv.peer.copy)"), stacklevel=2)
        return link

    def _use_foreign(self, buf: Buffer, what: str) -> None:
        """``buf`` belongs to another device: map it here (once) if this device may use it."""
        owner = buf.device
        owner._check_open()
        if buf in self._foreign:
            return
        link = self._peers.get(owner)
        if not (buf.host_visible and self._backend_can_map_host(owner)) \
                and not (link is not None and link.direct):
            why = ("call dev.enable_peer(other) first" if link is None else
                   f"there is no P2P between them ({link.reason}); move the data with "
                   f"hwdrv.peer.copy(dst, src), which stages through host memory")
            raise PeerAccessError(f"{what}: {buf!r} belongs to {owner.name}, and {self.name} cannot "
                                  f"reach its {'host' if buf.host_visible else 'device'} memory: {why}")
        with self._lock:
            self._backend_map_foreign(buf)
            self._foreign.add(buf)

    def diagnose(self) -> HangReport:
        """A report of the device's state now (queues, faults, SM state)."""
        with self._lock:
            self._check_open()
            return self._hang_report("requested")

    def close(self, wait: bool = True) -> None:
        """Release every buffer, queue memory and kernel object of this device (after waiting up
        to 2 s for submitted work unless ``wait`` is False). Other threads' waits on its signals
        then fail with DeviceClosed; numpy views of its memory stay harmless (they read zeros)."""
        with self._lock:
            if self._closed:
                return
            try:
                if wait and self._timelines and not self._backend_broken():
                    try:
                        for tl in self._timelines.values():
                            tl.wait(tl.value, timeout=2.0)
                    except GPUHang:
                        pass    # closing anyway: tearing the channel down stops the GPU work
                if self.trace is not None and not self._backend_broken():
                    self.trace.resolve()      # the signals' memory goes with the device
            finally:
                self._closed = True
                _OPEN.discard(self)
                try:
                    self._release_all()
                finally:
                    try:
                        self._backend_close()
                    finally:
                        self._late_releases.finish()

    def _release_all(self) -> None:
        """Close time: every buffer goes; those with live views are detached (see Buffer)."""
        # drop the device's own views first, so only the program's views keep pages detached
        self._timelines = {}
        self._slot_mem.clear()
        self._signal_slots.clear()
        self._staging_busy = [None] * len(self._staging)
        self._backend_forget_views()
        if self._cmdmem is not None:
            self._cmdmem.close()
        for buf in list(self._buffers):
            if not buf.freed:
                buf._release("device close")
        for _, buf in self._pending_frees:
            self._drop(buf)
        self._pending_frees.clear()
        self._unpinned.clear()
        self._dead_queues.clear()
        self._orphans.clear()
        for buf, _ in list(self._pinned.values()):
            self._detach(buf)

    def __del__(self) -> None:
        # a device dropped without close(): its kernel objects, fds and threads are released by
        # the reaper thread (see _Reaper for why not here)
        if getattr(self, "_closed", True) or not hasattr(self, "_lock"):
            return
        _REAPER.close_later(self)

    @property
    def closed(self) -> bool:
        """Whether close() has run (a closed device refuses every call)."""
        return self._closed

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}{' (mock)' if self.is_mock else ''}>"

    # ---- internals shared by queues, signals, buffers ------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed(f"{self.name} is closed; open it again with hwdrv.open_device()")

    def _check_buffer(self, buf: Buffer, what: str = "buffer") -> None:
        if not isinstance(buf, Buffer):
            raise InvalidArgument(f"{what}: expected a Buffer from dev.alloc(), got "
                                  f"{type(buf).__name__}")
        if buf.freed:
            raise BufferFreed(f"{what}: {buf!r} was freed; allocate a new buffer")
        self._check_open()
        if buf.device is not self:
            self._use_foreign(buf, what)

    def _check_signal(self, sig: Signal, what: str = "signal") -> None:
        if not isinstance(sig, Signal):
            raise InvalidArgument(f"{what}: expected a Signal from dev.signal(), got "
                                  f"{type(sig).__name__}")
        if sig.device is not self:
            # a signal of another device: its page is host memory, mapped here on first use
            owner = sig.device
            owner._check_open()
            page = next((p for p in owner._signal_pages if p.va <= sig.va < p.va + p.size), None)
            if page is None:
                raise InvalidArgument(f"{what}: signal {sig.va:#x} of {owner.name} has no signal page")
            self._use_foreign(page, f"{what} (signal of {owner.name})")

    # ---- buffer release: after the work that may use it, and after its last view -------------
    def _free_buffer(self, buf: Buffer) -> None:
        """Buffer.free() lands here. The memory is released once every submission made before
        the free() has finished (the GPU may still use it) and no numpy view of it remains
        (a view must never reach memory given to another allocation)."""
        with self._lock:
            self._buffers.discard(buf)
            if self._closed:
                self._drop(buf)
                return
            marks = tuple((tl, tl.value) for tl in self._timelines.values())
            self._pending_frees.append((marks, buf))
            self._collect_frees()

    def _collect_frees(self) -> None:
        """Release what is ready: frees whose work finished, buffers whose last view died,
        command memory of dead queues (called with the lock held)."""
        while self._orphans:
            buf = self._orphans.pop()
            if not buf.freed:
                buf._freed_by = "garbage collection of its Program"
                self._buffers.discard(buf)
                self._pending_frees.append((tuple((tl, tl.value) for tl in self._timelines.values()), buf))
        pend = self._pending_frees
        n = 0
        while n < len(pend) and all(tl.done(v) for tl, v in pend[n][0]):
            n += 1
        if n:
            ready = [b for _, b in pend[:n]]
            del pend[:n]
            for buf in ready:
                self._drop(buf)
        while self._unpinned:
            buf = self._unpinned.pop()
            if self._pinned.pop(id(buf), None) is not None:
                self._backend_free(buf)
        dead = self._dead_queues
        if dead and self._cmdmem is not None:
            # finalizers append from any thread: take what is there, leave what comes meanwhile
            lives = [dead.pop() for _ in range(len(dead))]
            self._cmdmem.release_lives(lives)

    def _drop(self, buf: Buffer) -> None:
        pin = buf._take_pin()
        if pin is None:
            if self._closed:
                return           # the backend's close releases the memory of the whole device
            self._backend_free(buf)
            return
        self._pinned[id(buf)] = (buf, pin)
        weakref.finalize(pin(), self._unpinned.append, buf)
        if self._closed:
            self._detach(buf)

    def _detach(self, buf: Buffer) -> None:
        """Close time, views of ``buf`` alive: swap its host pages for harmless ones, released
        when the last view dies."""
        entry = self._pinned.pop(id(buf), None)
        if entry is None:
            return
        undo = self._backend_detach(buf)
        pin = entry[1]()
        if undo is not None:
            if pin is None:
                self._late_releases.run_when_done(undo)
            else:
                weakref.finalize(pin, self._late_releases.run_when_done, undo)

    def _staging_slot(self, deadline: float) -> tuple[int, Buffer]:
        for i, busy in enumerate(self._staging_busy):
            if busy is None or busy():
                return i, self._staging[i]
        if len(self._staging) < 2:
            self._staging.append(self.alloc(STAGING_SIZE, host_visible=True))
            self._staging_busy.append(None)
            return len(self._staging) - 1, self._staging[-1]
        # both busy: the engine finishes in order, so wait for everything it was given
        tl = self._timelines["copy" if "copy" in self.engines else "compute"]
        tl.wait(tl.value, _left(deadline))
        return 0, self._staging[0]

    def _cmd_alloc(self, q: Queue, nbytes: int, align: int = 256) -> tuple[int, np.ndarray]:
        """Command memory owned by queue ``q`` until it dies: (GPU VA, uint8 view of ``nbytes``)."""
        piece = self._cmd_piece(q, nbytes, align)
        return piece[0], piece[2][:nbytes]

    def _cmd_piece(self, q: Queue, nbytes: int, align: int = 256) -> Piece:
        """``_cmd_alloc`` for the submit path: the piece (GPU VA, size class, uint8 view, byte
        memoryview), views of the whole piece (``nbytes`` rounded up to the pool's size class)."""
        with self._lock:
            if self._closed:
                self._check_open()
            piece = self._take_piece(nbytes, align)
        q._life.pieces.append(piece)
        return piece

    def _launch_slot_ring(self, prepare: Callable[[SlotRing], None]) -> SlotRing:
        """The slots ``launch()``'s fast path writes its launches into, made at the first one
        (``prepare(ring)`` writes what every slot holds, before any launch can take one)."""
        self._check_open()
        buf = self._alloc_command_chunk(LAUNCH_RING_BYTES)
        ring = SlotRing(buf, LAUNCH_SLOT_BYTES)
        prepare(ring)
        with self._lock:
            if self._launch_slots is None:
                self._launch_slots = ring
                buf = None
            ring = self._launch_slots
        if buf is not None:                   # another thread made it first
            buf.free()
        return ring

    def _take_piece(self, nbytes: int, align: int) -> Piece:
        """A command-memory piece (the lock held, the device open)."""
        # dead queues' pieces go back in batches (a piece per eager launch otherwise), and
        # always before the pool would carve a new chunk (its on_empty hook)
        if self._orphans or self._pending_frees or self._unpinned or len(self._dead_queues) >= _DEAD_QUEUE_BATCH:
            self._collect_frees()
        return self._cmdmem.alloc(nbytes, align)        # type: ignore[union-attr]

    def _check_error(self, sig: Signal, value: int) -> HangReport | None:
        """Called while a wait is slow: a report if the GPU has flagged an error."""
        if not self._lock.acquire(timeout=0.05):
            return None           # a submit holds the device: look again at the next poll
        try:
            self._check_open()
            if not self._backend_error_pending():
                return None
            self._recover_pending = True
            return self._hang_report("error", signal=sig, expected=value)
        finally:
            self._lock.release()

    def _hang_report(self, cause: str, signal: Signal | None = None,
                     expected: int | None = None) -> HangReport:
        report = HangReport(device=self.name, cause=cause)
        with self._lock:      # the backend reads rings and notifiers close() unmaps
            if self._closed:
                report.notes.append("the device was closed while waiting")
                return report
            if signal is not None:
                report.signal_va = signal.va
                report.expected = expected
                report.seen = signal.value
            try:
                self._backend_fill_report(report)
            except Exception as e:  # noqa: BLE001 - a report must come back even if a probe fails
                report.notes.append(f"collecting backend state failed: {type(e).__name__}: {e}")
        return report

    def _host_write_fence(self) -> None:
        from .ioctl import hostmem
        hostmem.store_fence()

    # ---- backend hooks ------------------------------------------------------------------
    @abstractmethod
    def _backend_alloc(self, size: int, host_visible: bool, for_signals: bool = False,
                       for_commands: bool = False) -> Buffer:
        """Backend hook."""

    @abstractmethod
    def _backend_free(self, buf: Buffer) -> None:
        """Backend hook."""

    @abstractmethod
    def _backend_queue(self, kind: str) -> Queue:
        """Backend hook."""

    def _launch_now(self, program: Program, grid: tuple, block: tuple, args: Any, shared: int) -> bool:
        """``launch()``'s fast path for a shape ``program`` passed the checks with (``grid``
        and ``block`` normalized): submit it and return True, or return False to have it go
        through a queue (the default: backends without a fast path)."""
        return False

    @abstractmethod
    def _backend_program(self, binary: bytes, name: str) -> Program:
        """Backend hook."""

    def _backend_sleep(self, signal: Signal, value: int, seconds: float) -> None:
        """Block for at most ``seconds`` while ``signal`` is below ``value`` (a backend whose
        driver can sleep until the GPU signals, e.g. kgsl or KFD events, overrides this)."""
        time.sleep(min(seconds, _POLL_SLEEP_S))

    def _backend_error_pending(self) -> bool:
        return False

    def _backend_broken(self) -> bool:
        return False

    def _backend_fill_report(self, report: HangReport) -> None:
        pass

    def _backend_recover(self) -> None:
        from .errors import HwdrvError
        raise HwdrvError(f"{self.name}: this backend cannot recover from GPU errors; close the "
                         f"device and open it again")

    def _backend_close(self) -> None:
        pass

    def _backend_peer_link(self, other: "Device") -> PeerLink:
        raise HwdrvError(f"{self.name}: using another device's memory or signals is not supported "
                         f"by the {self.kind} backend yet; copy through the host instead "
                         f"(other.upload(dst, dev.download(src))) and synchronize on the CPU")

    def _backend_enable_peer(self, other: "Device", link: PeerLink) -> None:
        """Turn on direct access between the two devices (``link.direct`` is True)."""

    def _backend_can_map_host(self, other: "Device") -> bool:
        """Whether host memory of ``other`` (its signals, host-visible buffers) can be mapped here."""
        return False

    def _backend_map_foreign(self, buf: Buffer) -> None:
        """Map ``buf`` of another device here, at ``buf.va``."""
        self._backend_peer_link(buf.device)

    def _backend_forget_views(self) -> None:
        """Close time: drop the backend's references to numpy views of device buffers (and to
        the timelines, whose signals are such views)."""

    def _backend_detach(self, buf: Buffer) -> Callable[[], None] | None:
        """Close time: replace the host pages of ``buf`` (views of it are still alive) by
        memory that stays valid after the device is gone; returns what releases that memory
        once the views are gone (None: the backend's memory outlives close by itself)."""
        return None


class _Teardown:
    """Releases of detached memory wait for the backend's close: until then the GPU may still
    write there. Finalizers call ``run_when_done``; it holds no reference to the device."""

    __slots__ = ("lock", "done", "late")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.late: list[Callable[[], None]] = []

    def run_when_done(self, undo: Callable[[], None]) -> None:
        with self.lock:
            if not self.done:
                self.late.append(undo)
                return
        _quietly(undo)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            late, self.late = self.late, []
        for undo in late:
            _quietly(undo)


def _quietly(fn: Callable[[], None]) -> None:
    """Run a release from a finalizer or close(): nothing can report its failure."""
    try:
        fn()
    except HwdrvError:
        pass


def _left(deadline: float) -> float:
    """Seconds left until ``deadline`` (never negative)."""
    return max(0.0, deadline - time.perf_counter())


def _offset(offset: Any, what: str) -> int:
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise InvalidArgument(f"{what}: offset must be an int >= 0 (bytes), got {offset!r}")
    return int(offset)


def _host_bytes(data: Any) -> memoryview:
    """The bytes of ``data`` for upload: numeric numpy arrays (any shape, made contiguous),
    bytes, bytearray, memoryview; anything else (None, str, int, object arrays: those hold
    Python object pointers, not data) is refused."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        mv = memoryview(data)
        if not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
        return mv.cast("B")
    if isinstance(data, np.ndarray):
        if data.dtype.hasobject or data.dtype.kind not in "biufcmMV":
            raise InvalidArgument(f"upload: data must hold numbers; a numpy array of dtype "
                                  f"{data.dtype} cannot be copied to the GPU")
        return memoryview(np.ascontiguousarray(data)).cast("B")
    raise InvalidArgument(f"upload: data must be a numpy array, bytes, bytearray or memoryview, "
                          f"got {type(data).__name__} (wrap numbers with np.asarray(x, dtype))")



