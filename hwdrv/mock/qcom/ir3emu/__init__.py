"""The mock Adreno a6xx's shader core: an ir3 emulator, numpy-vectorised over fibers.

Entry point for the mock CP (hwdrv/mock/qcom/cp.py calls it on CP_EXEC_CS / CP_RUN_OPENCL):

    run_cs(state: CsState, timeout: float = DEFAULT_TIMEOUT_S) -> None

runs every workgroup of the dispatch to completion, or raises ``hwdrv.mock.gpumem.MemoryFault`` for
a bad global/IBO access and ``ShaderFault`` (a ``MockFault``) for an unsupported or illegal
instruction, a scheduling hazard (``HazardFault``), a divergent barrier, a bad local/private access
or a hang (still running after ``timeout`` seconds). See docs/ir3-emulator.md.
"""
from __future__ import annotations

import time

from ..cs_state import CsState
from .machine import Batch
from .program import HazardFault, ShaderFault, load_program

DEFAULT_TIMEOUT_S = 30.0
MAX_BATCH_LANES = 1 << 18        # lanes run together
REGFILE_BUDGET = 64 << 20        # bytes of register file per batch (relative addressing keeps every register)
HIGH_REG = 48 * 4                # r48.x: registers from here up are outside the footprint ("high registers", qcom.md §3.3)

__all__ = ["run_cs", "ShaderFault", "HazardFault", "DEFAULT_TIMEOUT_S"]


def _check_footprint(state: CsState, prog) -> None:
    """Registers past SP_CS_CTRL_REG0.FULLREGFOOTPRINT / HALFREGFOOTPRINT are not allocated to the
    wave: reading or writing them touches another wave's registers."""
    for n in sorted(prog.full_regs):
        if n < HIGH_REG and (n >> 2) >= state.full_regs:
            raise ShaderFault(f"the program uses r{n >> 2}.{'xyzw'[n & 3]} but SP_CS_CTRL_REG0.FULLREGFOOTPRINT = "
                              f"{state.full_regs} (r0..r{state.full_regs - 1})")
    for n in sorted(prog.half_regs):
        if state.mergedregs:
            if (n >> 1) < HIGH_REG and (n >> 3) >= state.full_regs:
                raise ShaderFault(f"the program uses hr{n >> 2}.{'xyzw'[n & 3]} (merged into r{n >> 3}) but "
                                  f"SP_CS_CTRL_REG0.FULLREGFOOTPRINT = {state.full_regs}")
        elif n < HIGH_REG and (n >> 2) >= state.half_regs:
            raise ShaderFault(f"the program uses hr{n >> 2}.{'xyzw'[n & 3]} but SP_CS_CTRL_REG0.HALFREGFOOTPRINT = "
                              f"{state.half_regs}")


def run_cs(state: CsState, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Run one compute dispatch (see the module doc)."""
    if state.threadsize not in (64, 128):
        raise ShaderFault(f"threadsize {state.threadsize}: the a6xx runs waves of 64 or 128 fibers")
    if min(state.local_size) < 1 or min(state.groups) < 0:
        raise ShaderFault(f"bad dispatch geometry: local size {state.local_size}, groups {state.groups}")
    code = state.memory.read(state.shader_iova, state.instrlen * 128)
    prog = load_program(state.shader_iova, code, state.mergedregs)
    _check_footprint(state, prog)
    gx, gy, gz = state.groups
    total = gx * gy * gz
    lx, ly, lz = state.local_size
    lanes_per_wg = -(-(lx * ly * lz) // state.threadsize) * state.threadsize
    rows = len(prog.full_regs | {h >> 1 for h in prog.half_regs}) + 8      # + system values
    if prog.uses_relative:
        rows = max(rows, 4 * state.full_regs + 8)
    lanes = max(lanes_per_wg, min(MAX_BATCH_LANES, REGFILE_BUDGET // (4 * rows)))
    per_batch = max(1, lanes // lanes_per_wg)
    deadline = time.monotonic() + timeout
    for first in range(0, total, per_batch):
        Batch(state, prog, first, min(per_batch, total - first), deadline).run()
