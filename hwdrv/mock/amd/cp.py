"""Queue engines of the mock GPU: one mock.engine.Engine per KFD queue, woken by its doorbell.

A compute (PM4) queue runs pm4.Pm4Runner, an SDMA queue sdma.SdmaRunner. When a queue cannot go
on, it stops and the fault is reported the way KFD reports it to the process: a GPU memory fault
fills and fires the process's MEMORY events (address, not-present / read-only); an unknown packet,
a shader trap, an illegal or unsupported instruction, a kernel timeout or a queue stuck on one wait
longer than the hang timeout (HWDRV_MOCK_AMD_HANG_TIMEOUT, 30 s) fires its HW_EXCEPTION events.
``queue.error`` keeps the message (with the packet or instruction and its location).
"""
from __future__ import annotations

import threading

from hwdrv.mock.engine import Engine, Work
from hwdrv.mock.gpumem import MemoryFault

from .dbg_trap import record_stop
from .pm4 import Pm4Runner, QueueError
from .rdna3.faults import ShaderFault
from .sdma import SdmaRunner


class CommandProcessor:
    """Installs itself on a MockAmdGpu's doorbell/release hooks and runs each queue's engine."""

    def __init__(self, gpu, sync: bool | None = None, hang_timeout: float | None = None):
        self.gpu, self.sync, self.hang_timeout = gpu, sync, hang_timeout
        self.engines: dict[int, tuple[Engine, object]] = {}       # id(queue) -> (engine, runner)
        self.lock = threading.Lock()
        gpu.cp = self                                  # the debugger (dbg_trap.py) preempts through it
        gpu.doorbell_listener = self.doorbell
        gpu.release_listener = self.release
        if self._sync_mode():
            gpu.poll_listener = self.poll

    def _sync_mode(self) -> bool:
        from hwdrv.mock.engine import sync_mode_from_env
        return sync_mode_from_env() if self.sync is None else self.sync

    def poll(self) -> None:
        """Retry blocked queues now (synchronous mode has no engine threads to do it)."""
        for eng, _ in list(self.engines.values()):
            if eng.blocked:
                eng.poll()

    def runner(self, queue):
        """The runner of ``queue`` (diagnosis: its rptr, registers, ``blocked_on``)."""
        ent = self.engines.get(id(queue))
        return ent[1] if ent else None

    def status(self) -> list[dict]:
        """Per started queue, what a hang report needs (reference/amd.md 7.2): id, type, ring base and
        size, the CP's read pointer, the host's write pointer, the wait it is blocked on, its error."""
        out = []
        for _, (eng, r) in list(self.engines.items()):
            q = r.q
            wptr = int.from_bytes(self.gpu.page_table.read(q.wptr_addr, 8), "little")
            out.append({"queue_id": q.queue_id, "type": "sdma" if q.is_sdma else "pm4", "ring_base": q.ring_base,
                        "ring_size": q.ring_size, "rptr": r.rptr, "wptr": wptr, "units": "bytes" if q.is_sdma else "dwords",
                        "blocked_on": r.blocked_on, "error": q.error, "engine_error": eng.error})
        return out

    def doorbell(self, queue, value: int) -> None:
        if queue.is_aql:
            self._fail(queue, "AQL queues are not modelled by the mock CP (use a PM4 compute queue)", memory=None)
            return
        with self.lock:
            ent = self.engines.get(id(queue))
            if ent is None:
                runner = (SdmaRunner if queue.is_sdma else Pm4Runner)(self.gpu, queue, self.hang_timeout)
                eng = Engine(f"{'sdma' if queue.is_sdma else 'pm4'}-q{queue.queue_id}",
                             lambda q=queue, r=runner: self._work(q, r), sync=self.sync)
                ent = self.engines[id(queue)] = (eng, runner)
        ent[0].kick()

    def release(self, queue) -> None:
        with self.lock:
            ent = self.engines.pop(id(queue), None)
        if ent is not None:
            cancel = getattr(ent[1], "cancel", None)
            if cancel is not None:
                cancel.set()            # a dispatch still running on the destroyed queue stops
            ent[0].stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queue engine is idle or blocked (tests)."""
        return all(e.wait_idle(timeout) for e, _ in list(self.engines.values()))

    def _work(self, queue, runner) -> Work:
        if queue.error is not None or queue.suspended:
            return Work.IDLE                # a faulted queue runs nothing more (KFD evicts it)
        cancel = getattr(runner, "cancel", None)
        if cancel is not None and cancel.is_set():
            return Work.IDLE                # destroyed while running: nothing to report
        try:
            r = runner.step()
        except MemoryFault as e:
            record_stop(queue, e)
            self._fail(queue, str(e), memory=e)
            return Work.IDLE
        except (QueueError, ShaderFault) as e:
            if isinstance(e, ShaderFault):
                record_stop(queue, e)
            if cancel is None or not cancel.is_set():
                self._fail(queue, str(e), memory=None)
            return Work.IDLE
        return Work.BLOCKED if r == "blocked" else Work.IDLE

    def _fail(self, queue, message: str, memory: MemoryFault | None) -> None:
        queue.error = message
        ev = queue.owner.events if queue.owner is not None else None
        if ev is None:
            return
        if memory is not None:
            ev.memory_fault(memory.address, self.gpu.gpu_id, not_present=memory.reason != "read-only",
                            read_only=memory.reason == "read-only")
        else:
            ev.hw_exception(self.gpu.gpu_id, reset_type=1, reset_cause=0, memory_lost=0)
