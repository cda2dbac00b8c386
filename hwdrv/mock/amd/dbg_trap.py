"""AMDKFD_IOC_DBG_TRAP for the mock KFD: the subset a hang report needs (kfd_chardev.c
kfd_ioctl_set_debug_trap, kfd_debug.c).

Checks, in kfd_ioctl_set_debug_trap's order: the target ``pid`` must be a KFD process (ESRCH; the
mock serves only the calling process, which the kernel lets debug itself: ``target != p`` skips
the ptrace check); every op but ENABLE needs debugging enabled (EINVAL); SUSPEND/RESUME_QUEUES
need the target's RUNTIME_ENABLE (EPERM). Ops:

- ENABLE (kfd_dbg_trap_enable): copies ``struct kfd_runtime_info`` to ``rinfo_ptr`` (at most
  ``rinfo_size`` bytes, ``rinfo_size`` set to its size); a second ENABLE is EALREADY.
- DISABLE: debugging off; suspended queues resume.
- SUSPEND_QUEUES (kfd_dbg... suspend_queues in kfd_device_queue_manager.c): for each queue id of
  ``queue_array_ptr`` the queue stops (a running dispatch is preempted) and its waves are saved
  into the queue's context-save area; ids that name no queue get KFD_DBG_QUEUE_INVALID_MASK, a
  queue already suspended KFD_DBG_QUEUE_ERROR_MASK (the ids are written back).
- RESUME_QUEUES: the reverse (a preempted mock dispatch starts again: see below).
- QUERY_EXCEPTION_INFO (kfd_dbg_trap_query_exception_info): ``source_id`` is a queue id for
  queue exceptions, the gpu_id for device ones; an exception not raised is ENODATA;
  EC_DEVICE_MEMORY_VIOLATION copies ``struct kfd_hsa_memory_exception_data``.
- GET_QUEUE_SNAPSHOT (pqm_get_queue_snapshot): ``struct kfd_queue_snapshot_entry`` per queue,
  reporting and clearing the exception bits of ``exception_mask``.

The context-save area after SUSPEND_QUEUES holds what a gfx11 context save leaves there: the
control stack, one trap-handler record per resident wave, and KFD's
``kfd_context_save_area_header.wave_state`` at its start (cwsr_save.py), from the registers the
RDNA3 emulator holds for the stopped batch (rdna3/snapshot.py). The emulator cannot restore a
saved wave: a dispatch preempted by SUSPEND_QUEUES stops, and RESUME_QUEUES runs its
DISPATCH_DIRECT again from the start.
"""
from __future__ import annotations

import errno as E
import os

from hwdrv.amd.gen import gc11 as G
from hwdrv.amd.gen import kfd as K
from hwdrv.ioctl import hostmem
from hwdrv.mock.gpumem import MemoryFault
from hwdrv.mock.kernel import Errno

from .cwsr_save import save_area

F = K.ffi
PREEMPT_TIMEOUT_S = 10.0


def ec_mask(code: int) -> int:
    """KFD_EC_MASK: exception code -> its bit."""
    return 1 << (code - 1)


def exception_of(fault: BaseException) -> int:
    """The queue exception code a stopped wave raises (kfd_dbg_ev_raise callers in kfd_int_process_v11.c)."""
    if isinstance(fault, MemoryFault):
        return K.EC_QUEUE_WAVE_MEMORY_VIOLATION
    kind = getattr(fault, "kind", "")
    if kind == "trap":
        return K.EC_QUEUE_WAVE_TRAP
    if kind in ("illegal", "unsupported"):
        return K.EC_QUEUE_WAVE_ILLEGAL_INSTRUCTION
    return K.EC_QUEUE_WAVE_ABORT if kind != "timeout" else 0


def record_stop(queue, fault: BaseException) -> None:
    """The CP stopped ``queue``'s wave on ``fault``: keep the wave for SUSPEND_QUEUES and raise the
    queue's exception (and, for a memory violation, the device's)."""
    queue.stopped_wave = fault
    code = exception_of(fault)
    if code:
        queue.exception_status |= ec_mask(code)
    if isinstance(fault, MemoryFault) and queue.owner is not None:
        st = _state(queue.owner)
        st["device_exceptions"] |= ec_mask(K.EC_DEVICE_MEMORY_VIOLATION)
        st["vm_fault"] = {"va": fault.address, "not_present": fault.reason != "read-only",
                          "read_only": fault.reason == "read-only"}


def saved_waves(fault: BaseException) -> list:
    """The resident waves the emulator left when ``fault`` stopped the dispatch (none for a
    dispatch refused before any wave started). A memory violation sets the faulting wave's
    TRAPSTS.EXCP MEM_VIOL bit (the KFD debug trap masks mirror the EXCP bits:
    KFD_DBG_TRAP_MASK_DBG_MEMORY_VIOLATION)."""
    snap = getattr(fault, "snapshot", None)
    if snap is None:
        return []
    waves = snap.waves()
    if isinstance(fault, MemoryFault):
        for w in waves:
            if w.wave == fault.wave:
                w.trapsts |= K.KFD_DBG_TRAP_MASK_DBG_MEMORY_VIOLATION << G.SQ_WAVE_TRAPSTS__EXCP.shift
    return waves


def _state(p) -> dict:
    st = getattr(p, "dbg", None)
    if st is None:
        st = p.dbg = {"enabled": False, "exception_mask": 0, "device_exceptions": 0, "vm_fault": None}
    return st


def _save_waves(gpu, q) -> None:
    """Context-save ``q``'s resident waves into its CWSR area (cwsr_save.py)."""
    fault = getattr(q, "stopped_wave", None)
    waves = saved_waves(fault) if fault is not None else []
    for off, data in save_area(waves, q.ctx_save_addr, q.ctl_stack_size, q.ctx_save_size):
        gpu.page_table.write(q.ctx_save_addr + off, data)


def _suspend(driver, p, q) -> None:
    cp = driver.gpu.cp
    runner = cp.runner(q)
    if runner is not None and getattr(runner, "cancel", None) is not None and q.error is None:
        # preempt: the running dispatch stops at its next check and leaves its wave state
        runner.cancel.set()
        p.lock.release()
        try:
            cp.wait_idle(PREEMPT_TIMEOUT_S)
        finally:
            p.lock.acquire()
        runner.cancel.clear()           # RESUME_QUEUES runs the queue again (from the preempted packet)
    _save_waves(driver.gpu, q)
    q.suspended = True


def _queue_ids(a_ptr: int, n: int) -> list[int]:
    if n and not a_ptr:
        raise Errno(E.EFAULT, "DBG_TRAP: NULL queue_array_ptr")
    raw = hostmem.read(a_ptr, 4 * n) if n else b""
    return [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(n)]


def _write_ids(a_ptr: int, ids: list[int]) -> None:
    if ids:
        hostmem.write(a_ptr, b"".join((i & 0xFFFFFFFF).to_bytes(4, "little") for i in ids))


def dbg_trap(driver, p, a) -> None:
    """kfd_ioctl_set_debug_trap for the calling process."""
    if a.pid != os.getpid():
        raise Errno(E.ESRCH, f"DBG_TRAP: no KFD process with pid {a.pid} (the mock serves the calling process, "
                             f"pid {os.getpid()})")
    st = _state(p)
    if a.op != K.KFD_IOC_DBG_TRAP_ENABLE and not st["enabled"]:
        raise Errno(E.EINVAL, f"DBG_TRAP op {a.op}: debugging is not enabled for this process (ENABLE first)")
    if a.op in (K.KFD_IOC_DBG_TRAP_SUSPEND_QUEUES, K.KFD_IOC_DBG_TRAP_RESUME_QUEUES) and not p.runtime_enabled:
        raise Errno(E.EPERM, f"DBG_TRAP op {a.op}: the process's runtime is not enabled (RUNTIME_ENABLE before "
                             "creating queues)")
    fn = _OPS.get(a.op)
    if fn is None:
        raise Errno(E.EINVAL, f"DBG_TRAP op {a.op} is not served by the mock KFD (it serves ENABLE, DISABLE, "
                              "SUSPEND/RESUME_QUEUES, QUERY_EXCEPTION_INFO, GET_QUEUE_SNAPSHOT)")
    fn(driver, p, a, st)


def _enable(driver, p, a, st) -> None:
    e = a.enable
    if st["enabled"]:
        raise Errno(E.EALREADY, "DBG_TRAP ENABLE: debugging is already enabled for this process")
    info = F.new("struct kfd_runtime_info *")
    info.runtime_state = K.DEBUG_RUNTIME_STATE_ENABLED if p.runtime_enabled else K.DEBUG_RUNTIME_STATE_DISABLED
    if e.rinfo_ptr:
        hostmem.write(e.rinfo_ptr, bytes(F.buffer(info))[:e.rinfo_size])
    e.rinfo_size = F.sizeof("struct kfd_runtime_info")
    st["enabled"], st["exception_mask"] = True, e.exception_mask


def _disable(driver, p, a, st) -> None:
    for q in p.queues.values():
        q.suspended = False
    st["enabled"] = False


def _suspend_queues(driver, p, a, st) -> None:
    s = a.suspend_queues
    ids = _queue_ids(s.queue_array_ptr, s.num_queues)
    for i, qid in enumerate(ids):
        q = p.queues.get(qid)
        if q is None:
            ids[i] = qid | K.KFD_DBG_QUEUE_INVALID_MASK
        elif getattr(q, "suspended", False):
            ids[i] = qid | K.KFD_DBG_QUEUE_ERROR_MASK
        else:
            _suspend(driver, p, q)
            q.exception_status &= ~s.exception_mask
    _write_ids(s.queue_array_ptr, ids)


def _resume_queues(driver, p, a, st) -> None:
    r = a.resume_queues
    ids = _queue_ids(r.queue_array_ptr, r.num_queues)
    for i, qid in enumerate(ids):
        q = p.queues.get(qid)
        if q is None:
            ids[i] = qid | K.KFD_DBG_QUEUE_INVALID_MASK
        elif not getattr(q, "suspended", False):
            ids[i] = qid | K.KFD_DBG_QUEUE_ERROR_MASK
        else:
            q.suspended = False
            if q.error is None:
                q.stopped_wave = None           # a preempted dispatch runs again (from its DISPATCH_DIRECT)
            driver.gpu.ring_doorbell(q, 0)     # the CP looks at the queue again
    _write_ids(r.queue_array_ptr, ids)


def _query_exception_info(driver, p, a, st) -> None:
    x = a.query_exception_info
    code = x.exception_code
    if code == K.EC_DEVICE_MEMORY_VIOLATION:
        if x.source_id != driver.gpu.gpu_id:
            raise Errno(E.EINVAL, f"QUERY_EXCEPTION_INFO: device source {x.source_id:#x} is not gpu_id "
                                  f"{driver.gpu.gpu_id:#x}")
        if not st["device_exceptions"] & ec_mask(code):
            raise Errno(E.ENODATA, "QUERY_EXCEPTION_INFO: no device memory violation was raised")
        d = F.new("struct kfd_hsa_memory_exception_data *")
        vf = st["vm_fault"]
        d.va, d.gpu_id = vf["va"], driver.gpu.gpu_id
        d.failure.NotPresent, d.failure.ReadOnly = int(vf["not_present"]), int(vf["read_only"])
        if x.info_ptr:
            hostmem.write(x.info_ptr, bytes(F.buffer(d))[:x.info_size])
        x.info_size = F.sizeof("struct kfd_hsa_memory_exception_data")
        if x.clear_exception:
            st["device_exceptions"] &= ~ec_mask(code)
        return
    q = p.queues.get(x.source_id)
    if q is None:
        raise Errno(E.EINVAL, f"QUERY_EXCEPTION_INFO: no queue {x.source_id}")
    if not q.exception_status & ec_mask(code):
        raise Errno(E.ENODATA, f"QUERY_EXCEPTION_INFO: queue {x.source_id} has not raised exception {code}")
    x.info_size = 0                     # queue exceptions carry no payload
    if x.clear_exception:
        q.exception_status &= ~ec_mask(code)


def _queue_snapshot(driver, p, a, st) -> None:
    s = a.queue_snapshot
    one = F.sizeof("struct kfd_queue_snapshot_entry")
    queues = sorted(p.queues.values(), key=lambda q: q.queue_id)
    if s.num_queues and not s.snapshot_buf_ptr:
        raise Errno(E.EFAULT, "GET_QUEUE_SNAPSHOT: NULL snapshot_buf_ptr")
    size = min(s.entry_size, one)
    for i, q in enumerate(queues[:s.num_queues]):
        e = F.new("struct kfd_queue_snapshot_entry *")
        e.exception_status = q.exception_status & s.exception_mask
        q.exception_status &= ~s.exception_mask
        e.ring_base_address, e.write_pointer_address, e.read_pointer_address = q.ring_base, q.wptr_addr, q.rptr_addr
        e.ctx_save_restore_address, e.ctx_save_restore_area_size = q.ctx_save_addr, q.ctx_save_size
        e.queue_id, e.gpu_id, e.ring_size, e.queue_type = q.queue_id, q.gpu_id, q.ring_size, q.type
        hostmem.write(s.snapshot_buf_ptr + i * s.entry_size, bytes(F.buffer(e))[:size])
    s.num_queues, s.entry_size = len(queues), size


_OPS = {K.KFD_IOC_DBG_TRAP_ENABLE: _enable, K.KFD_IOC_DBG_TRAP_DISABLE: _disable,
        K.KFD_IOC_DBG_TRAP_SUSPEND_QUEUES: _suspend_queues, K.KFD_IOC_DBG_TRAP_RESUME_QUEUES: _resume_queues,
        K.KFD_IOC_DBG_TRAP_QUERY_EXCEPTION_INFO: _query_exception_info,
        K.KFD_IOC_DBG_TRAP_GET_QUEUE_SNAPSHOT: _queue_snapshot}

