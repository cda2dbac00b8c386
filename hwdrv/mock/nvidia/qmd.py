"""Reading a Hopper QMD V04_00 (384 bytes) with the generated Field facts (clcbc0qmd.h).

`Qmd.read` fetches the QMD through the page table and decodes what the mock's launch needs;
every field is taken with the generated `NVCBC0_QMDV04_00_*` Fields, never hand-typed offsets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwdrv.mock.gpumem import GpuPageTable

from .facts import HW

QMD_SIZE = 384
Q = "NVCBC0_QMDV04_00_"


def _f(name: str, *i: int):
    f = getattr(HW, Q + name)
    return f(*i) if i else f


@dataclass
class Release:
    """One of the QMD's release semaphores (applied after the grid completes)."""
    index: int
    va: int
    payload: int
    structure_size: int
    payload64: bool
    reduction: int | None        # QMD reduction op number, or None
    signed: bool


@dataclass
class Qmd:
    """The decoded fields of a QMD V04_00 that the mock acts on."""
    va: int
    words: np.ndarray
    major: int
    minor: int
    qmd_type: int
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    registers: int
    shared_size: int
    program_va: int
    cbufs: dict[int, tuple[int, int]]          # index -> (va, size)
    cbuf_invalidate: set[int]                  # banks whose CONSTANT_BUFFER_INVALIDATE is set
    releases: list[Release]
    dependent: list[tuple[int, int]]           # (action, qmd va) for enabled dependent QMDs
    local_high: int
    local_low: int
    barriers: int
    gpc_cga: tuple[int, int, int]              # GPC_CGA_WIDTH/HEIGHT/DEPTH (cluster shape)
    gpu_cga: tuple[int, int, int]              # GPU_CGA_WIDTH/HEIGHT/DEPTH

    @classmethod
    def read(cls, pt: GpuPageTable, va: int) -> "Qmd":
        w = np.frombuffer(pt.read(va, QMD_SIZE), np.uint32)
        g = lambda name, *i: _f(name, *i).get(w)  # noqa: E731
        cbufs = {}
        cbuf_invalidate = set()
        for i in range(8):
            if g("CONSTANT_BUFFER_VALID", i):
                if g("CONSTANT_BUFFER_INVALIDATE", i):
                    cbuf_invalidate.add(i)
                addr = (g("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6", i)
                        | (g("CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6", i) << 32)) << 6
                cbufs[i] = (addr, g("CONSTANT_BUFFER_SIZE_SHIFTED4", i) << 4)
        releases = []
        for i in range(3):
            if g("RELEASE_ENABLE", i):
                va_r = g(f"RELEASE_SEMAPHORE{i}_ADDR_LOWER") | (g(f"RELEASE_SEMAPHORE{i}_ADDR_UPPER") << 32)
                payload = g(f"RELEASE_SEMAPHORE{i}_PAYLOAD_LOWER") | (g(f"RELEASE_SEMAPHORE{i}_PAYLOAD_UPPER") << 32)
                red = g("RELEASE_REDUCTION_OP", i) if g("RELEASE_REDUCTION_ENABLE", i) else None
                releases.append(Release(i, va_r, payload, g("RELEASE_STRUCTURE_SIZE", i),
                                        bool(g("RELEASE_PAYLOAD64B", i)), red,
                                        g("RELEASE_REDUCTION_FORMAT", i)
                                        == HW.NVCBC0_QMDV04_00_RELEASE_REDUCTION_FORMAT_SIGNED))
        dependent = []
        for i, ptr in ((0, "DEPENDENT_QMD0_POINTER"), (1, "DEPENDENT_QMD1_POINTER")):
            if g("DEPENDENT_QMD_ENABLE", i):
                dependent.append((g("DEPENDENT_QMD_ACTION", i), g(ptr) << 8))
        return cls(
            va=va, words=w, major=g("QMD_MAJOR_VERSION"), minor=g("QMD_MINOR_VERSION"),
            qmd_type=g("QMD_TYPE"),
            grid=(g("GRID_WIDTH"), g("GRID_HEIGHT"), g("GRID_DEPTH")),
            block=(g("CTA_THREAD_DIMENSION0"), g("CTA_THREAD_DIMENSION1"), g("CTA_THREAD_DIMENSION2")),
            registers=g("REGISTER_COUNT"), shared_size=g("SHARED_MEMORY_SIZE"),
            program_va=g("PROGRAM_ADDRESS_LOWER") | (g("PROGRAM_ADDRESS_UPPER") << 32),
            cbufs=cbufs, cbuf_invalidate=cbuf_invalidate, releases=releases, dependent=dependent,
            local_high=g("SHADER_LOCAL_MEMORY_HIGH_SIZE"), local_low=g("SHADER_LOCAL_MEMORY_LOW_SIZE"),
            barriers=g("BARRIER_COUNT"),
            gpc_cga=(g("GPC_CGA_WIDTH"), g("GPC_CGA_HEIGHT"), g("GPC_CGA_DEPTH")),
            gpu_cga=(g("GPU_CGA_WIDTH"), g("GPU_CGA_HEIGHT"), g("GPU_CGA_DEPTH")))
