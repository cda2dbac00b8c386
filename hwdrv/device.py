"""Device: the vendor-neutral half of every backend.

The core owns buffers' lifetime, signals, one timeline per engine (an internal signal the
engine bumps after each submission, so the host knows what finished), command memory for
queues, synchronous upload/download, waits and hang reports. A backend subclass declares
``kind``, ``arch``, ``compiler``, ``limits`` and its engines, implements the ``_backend_*``
hooks and the queue classes (which push their own submissions: see hwdrv/queue.py).
"""
from __future__ import annotations

import threading
import time
import weakref
from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from .cmdmem import CommandMemory
from .compiler import Compiler
from .errors import BufferFreed, DeviceClosed, GPUHang, InvalidArgument
from .hang import HangReport
from .ioctl.kernel import Kernel
from .limits import DeviceLimits
from .memory.buffer import Buffer
from .program import Program
from .queue import Queue, QueueLife
from .trace import Span, Trace
from .signal import DEFAULT_TIMEOUT, SIGNAL_SIZE, Signal, Timeline, check_timeout

#: bytes per staging buffer for upload/download through the copy engine
STAGING_SIZE = 64 << 20
_SIGNAL_PAGE = 4096
#: how long a waiting thread sleeps between looks when the backend cannot block in the driver
_POLL_SLEEP_S = 0.0002


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

    def __init__(self, name: str, kernel: Kernel):
        self.name = name
        self.kernel = kernel
        self.is_mock = kernel.is_mock
        self._closed = False
        self._buffers: set[Buffer] = set()
        self._signal_slots: list[tuple[int, np.ndarray]] = []      # free (va, view) slots
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

    # ---- set-up by the backend, once its memory works -----------------------------------
    def _init_core(self) -> None:
        self._cmdmem = CommandMemory(self._alloc_command_chunk)
        for kind in self.engines:
            self._timelines[kind] = Timeline(self.signal(0))

    def _alloc_command_chunk(self, size: int) -> Buffer:
        """Memory for queues' side buffers: host-writable, GPU-readable; a backend may place it
        where the GPU reads it fastest."""
        buf = self._backend_alloc(size, True, for_commands=True)
        self._buffers.add(buf)
        return buf

    # ---- public API -------------------------------------------------------------------
    def alloc(self, size: int, host_visible: bool = False) -> Buffer:
        """Allocate ``size`` bytes of GPU memory. ``host_visible=True`` gives memory the CPU
        can map (``buf.view()``); otherwise device memory reached with upload/download."""
        self._check_open()
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise InvalidArgument(f"alloc size must be a positive int, got {size!r}")
        buf = self._backend_alloc(int(size), host_visible)
        self._buffers.add(buf)
        return buf

    def signal(self, value: int = 0) -> Signal:
        """A new signal holding ``value``."""
        self._check_open()
        if not self._signal_slots:
            page = self._backend_alloc(_SIGNAL_PAGE, True, for_signals=True)
            self._signal_pages.append(page)
            words = page.view(np.uint64)
            for i in range(_SIGNAL_PAGE // SIGNAL_SIZE - 1, -1, -1):
                self._signal_slots.append((page.va + i * SIGNAL_SIZE, words[2 * i:2 * i + 2]))
        va, mem = self._signal_slots.pop()
        mem[:] = 0
        sig = Signal(self, va, mem)
        sig.value = value
        weakref.finalize(sig, self._signal_slots.append, (va, mem))
        return sig

    def compute_queue(self) -> Queue:
        """A new, empty compute queue."""
        self._check_open()
        return self._backend_queue("compute")

    def copy_queue(self) -> Queue:
        """A new, empty copy queue: on the copy engine, or, on a device without one (see
        ``engines``), a compute queue whose copies run as a compute blit."""
        self._check_open()
        return self._backend_queue("copy" if "copy" in self.engines else "compute")

    def program(self, binary: bytes, name: str) -> Program:
        """Load kernel ``name`` from ``binary`` (what ``dev.compiler.compile`` returned)."""
        self._check_open()
        return self._backend_program(binary, name)

    def upload(self, buf: Buffer, data: Any, offset: int = 0) -> None:
        """Copy ``data`` (numpy array, bytes, anything with the buffer protocol) into ``buf``
        at ``offset``; returns when the bytes are in place."""
        self._check_buffer(buf)
        raw = memoryview(np.ascontiguousarray(data) if not isinstance(data, (bytes, bytearray))
                         else data).cast("B")
        n = raw.nbytes
        if offset < 0 or offset + n > buf.size:
            raise InvalidArgument(f"upload of {n} bytes at offset {offset} does not fit in a "
                                  f"{buf.size}-byte buffer")
        if buf.host_visible:
            buf.view()[offset:offset + n] = np.frombuffer(raw, np.uint8)
            self._host_write_fence()
            return
        with self._transfer_lock:
            done = 0
            last = None
            while done < n:
                step = min(STAGING_SIZE, n - done)
                i, stage = self._staging_slot()
                stage.view()[:step] = np.frombuffer(raw[done:done + step], np.uint8)
                last = self._traced_copy("upload", buf.va + offset + done, stage.va, step).submit()
                self._staging_busy[i] = last._life.done
                done += step
            if last is not None:
                last.synchronize()

    def download(self, buf: Buffer, size: int | None = None, offset: int = 0,
                 dtype: Any = np.uint8) -> np.ndarray:
        """Read ``size`` bytes (default: the rest of the buffer) at ``offset`` into a new
        numpy array of ``dtype``."""
        self._check_buffer(buf)
        size = buf.size - offset if size is None else size
        if offset < 0 or size < 0 or offset + size > buf.size:
            raise InvalidArgument(f"download of {size} bytes at offset {offset} is outside the "
                                  f"{buf.size}-byte buffer")
        out = np.empty(size, np.uint8)
        if buf.host_visible:
            self.synchronize()
            out[:] = buf.view()[offset:offset + size]
            return out.view(dtype)
        with self._transfer_lock:
            done = 0
            while done < size:
                step = min(STAGING_SIZE, size - done)
                i, stage = self._staging_slot()
                self._traced_copy("download", stage.va, buf.va + offset + done, step).submit().synchronize()
                out[done:done + step] = stage.view()[:step]
                self._staging_busy[i] = None
                done += step
        return out.view(dtype)

    def synchronize(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Wait until everything submitted so far has finished (at most ``timeout`` seconds in
        all; None: the default)."""
        self._check_open()
        deadline = time.perf_counter() + check_timeout(timeout)
        for tl in self._timelines.values():
            tl.wait(tl.value, max(0.0, deadline - time.perf_counter()))

    def recover(self) -> None:
        """Make the device usable again after a GPU error, or abandon stuck work (an endless
        kernel, a wait on a signal nobody sets): the backend replaces its hardware queues.
        Unfinished submissions are lost (the backend documents what that means); buffers,
        programs, signals and queues survive. Runs by itself on the first submit after a wait
        reported a GPU error; call it yourself after a timeout you want to give up on."""
        self._check_open()
        self._recover_pending = False
        self._backend_recover()

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

    def diagnose(self) -> HangReport:
        """A report of the device's state now (queues, faults, SM state)."""
        self._check_open()
        return self._hang_report("requested")

    def close(self) -> None:
        """Release every buffer, queue memory and kernel object of this device."""
        if self._closed:
            return
        try:
            if not self._backend_broken():
                try:
                    for tl in self._timelines.values():
                        tl.wait(tl.value, timeout=2.0)
                except GPUHang:
                    pass    # closing anyway: tearing the channel down stops the GPU work
            if self.trace is not None and not self._backend_broken():
                self.trace.resolve()      # the signals' memory goes with the device
            if self._cmdmem is not None:
                self._cmdmem.close()
            for buf in list(self._buffers):
                if not buf.freed:
                    buf._release("device close")
        finally:
            self._closed = True
            self._backend_close()

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

    def _check_buffer(self, buf: Buffer) -> None:
        if buf.freed:
            raise BufferFreed(f"{buf!r} was freed; allocate a new buffer")
        if buf.device is not self:
            raise InvalidArgument(f"{buf!r} belongs to {buf.device.name}, "
                                  f"not {self.name}")

    def _check_signal(self, sig: Signal) -> None:
        if sig.device is not self:
            raise InvalidArgument(f"signal {sig.va:#x} belongs to {sig.device.name}, not {self.name}")

    def _free_buffer(self, buf: Buffer) -> None:
        self._buffers.discard(buf)
        self._backend_free(buf)

    def _staging_slot(self) -> tuple[int, Buffer]:
        for i, busy in enumerate(self._staging_busy):
            if busy is None or busy():
                return i, self._staging[i]
        if len(self._staging) < 2:
            self._staging.append(self.alloc(STAGING_SIZE, host_visible=True))
            self._staging_busy.append(None)
            return len(self._staging) - 1, self._staging[-1]
        # both busy: the engine finishes in order, so wait for everything it was given
        tl = self._timelines["copy" if "copy" in self.engines else "compute"]
        tl.wait(tl.value)
        return 0, self._staging[0]

    def _next_timeline(self, engine: str) -> tuple[Timeline, int]:
        """The timeline value a submission to ``engine`` will release when it finishes (the
        device recovers first if a wait reported a GPU error)."""
        if self._recover_pending:
            self.recover()
        tl = self._timelines[engine]
        return tl, tl.next()

    def _cmd_alloc(self, q: Queue, nbytes: int, align: int = 256) -> tuple[int, np.ndarray]:
        """Command memory owned by queue ``q`` until it dies."""
        assert self._cmdmem is not None
        va, view = self._cmdmem.alloc(nbytes, align)
        q._life.vas.append(va)
        return va, view

    def _release_queue(self, life: QueueLife) -> None:
        """A queue died: its command memory returns once its last submission finished."""
        if not self._closed and self._cmdmem is not None:
            self._cmdmem.release(life.vas, life.timeline, life.last_submit)

    def _check_error(self, sig: Signal, value: int) -> HangReport | None:
        """Called while a wait is slow: a report if the GPU has flagged an error."""
        if not self._backend_error_pending():
            return None
        self._recover_pending = True
        return self._hang_report("error", signal=sig, expected=value)

    def _hang_report(self, cause: str, signal: Signal | None = None,
                     expected: int | None = None) -> HangReport:
        report = HangReport(device=self.name, cause=cause)
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



