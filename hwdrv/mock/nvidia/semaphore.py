"""Semaphore memory operations shared by the host (PBDMA), the copy engine and QMD releases:
acquire conditions, releases, reductions and timestamps, all through the GPU page table.

Reductions are read-modify-write under one GPU-wide lock, so two mock engines reducing the same
word behave like the hardware's atomic units. Reduction op names are the common vocabulary; each
class numbers them differently (see the *_REDUCTIONS tables built from the generated facts).
"""
from __future__ import annotations

import threading
import time

from hwdrv.mock.gpumem import GpuPageTable

from .facts import HW

_LOCK = threading.Lock()


def now_ns() -> int:
    """The GPU's nanosecond timer (PTIMER): wall-clock ns, like RM's notifier timestamps."""
    return time.time_ns()


def read(pt: GpuPageTable, va: int, size: int) -> int:
    return int.from_bytes(pt.read(va, size), "little")


def write(pt: GpuPageTable, va: int, value: int, size: int) -> None:
    pt.write(va, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))


def write_timestamp(pt: GpuPageTable, va: int) -> None:
    """The 64-bit ns timestamp a four-word release writes at +8."""
    write(pt, va + 8, now_ns(), 8)


# host (C56F/C86F SEM_EXECUTE_REDUCTION) and copy-engine (C8B5 LAUNCH_DMA_SEMAPHORE_REDUCTION)
# number the operations the same way; QMD releases (CBC0) use another order.
HOST_REDUCTIONS = {
    HW.NVC56F_SEM_EXECUTE_REDUCTION_IMIN: "min", HW.NVC56F_SEM_EXECUTE_REDUCTION_IMAX: "max",
    HW.NVC56F_SEM_EXECUTE_REDUCTION_IXOR: "xor", HW.NVC56F_SEM_EXECUTE_REDUCTION_IAND: "and",
    HW.NVC56F_SEM_EXECUTE_REDUCTION_IOR: "or", HW.NVC56F_SEM_EXECUTE_REDUCTION_IADD: "add",
    HW.NVC56F_SEM_EXECUTE_REDUCTION_INC: "inc", HW.NVC56F_SEM_EXECUTE_REDUCTION_DEC: "dec",
}
CE_REDUCTIONS = {
    HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_IMIN: "min", HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_IMAX: "max",
    HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_IXOR: "xor", HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_IAND: "and",
    HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_IOR: "or", HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_IADD: "add",
    HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_INC: "inc", HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_DEC: "dec",
}
QMD_REDUCTIONS = {
    HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_ADD: "add", HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_MIN: "min",
    HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_MAX: "max", HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_INC: "inc",
    HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_DEC: "dec", HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_AND: "and",
    HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_OR: "or", HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_OP_RED_XOR: "xor",
}


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def reduce(pt: GpuPageTable, va: int, op: str, payload: int, size: int, signed: bool) -> int:
    """Atomically apply reduction `op` with `payload` to the `size`-byte word at `va`; returns
    the new value. inc/dec wrap like CUDA atomicInc/atomicDec (payload is the limit)."""
    bits = 8 * size
    mask = (1 << bits) - 1
    payload &= mask
    with _LOCK:
        old = read(pt, va, size)
        a, b = (_signed(old, bits), _signed(payload, bits)) if signed else (old, payload)
        if op == "add":
            new = old + payload
        elif op == "min":
            new = min(a, b)
        elif op == "max":
            new = max(a, b)
        elif op == "and":
            new = old & payload
        elif op == "or":
            new = old | payload
        elif op == "xor":
            new = old ^ payload
        elif op == "inc":
            new = 0 if old >= payload else old + 1
        elif op == "dec":
            new = payload if old == 0 or old > payload else old - 1
        else:
            raise ValueError(f"unknown semaphore reduction {op!r}")
        write(pt, va, new & mask, size)
    return new & mask


def acquire_satisfied(op: int, mem: int, payload: int, size: int) -> bool:
    """Whether a host SEM_EXECUTE acquire `op` (C56F numbering) is satisfied by `mem`."""
    bits = 8 * size
    mask = (1 << bits) - 1
    mem, payload = mem & mask, payload & mask
    if op == HW.NVC56F_SEM_EXECUTE_OPERATION_ACQUIRE:
        return mem == payload
    if op == HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_STRICT_GEQ:
        return mem >= payload
    if op == HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ:
        # circular compare: (mem - payload) interpreted as signed is >= 0
        return _signed((mem - payload) & mask, bits) >= 0
    if op == HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_AND:
        return (mem & payload) != 0
    if op == HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_NOR:
        return (~(mem | payload) & mask) != 0
    raise ValueError(f"SEM_EXECUTE operation {op} is not an acquire")
