"""One check run on mock:amd (tests/test_amd_cwsr.py) and on a real gfx11 (tests/hardware/
test_diagnose_amd_hw.py): waves of a running kernel, suspended through KFD's debugger interface,
read back from the queue's context-save area; the expected values come from the launch itself
(grid, block, the code object's kernel descriptor), not from the save-area code."""
from __future__ import annotations

import time

import numpy as np

from hwdrv import provoke as D
from hwdrv.amd import diagnose as DG
from hwdrv.amd.gen import gc11 as G

GRID, BLOCK = 2, 64                       # two workgroups of two wave32 waves


def suspended_spin_waves(dev):
    """Launch ``spin_forever`` (it spins until its flag is set), SUSPEND_QUEUES, parse the area,
    RESUME_QUEUES, set the flag and check the kernel then finishes. Returns (area, program)."""
    prog = D.sample(dev, "endless_loop")
    flag = dev.alloc(4096, host_visible=True)
    flag.view(np.uint32)[:] = 0
    s = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(GRID,), block=(BLOCK,), args=[flag]).signal(s, 1).submit()
    time.sleep(0.3)                       # let the waves start spinning
    dbg, qid = dev.debugger, dev._hw_queues["compute"]
    dbg.enable()
    assert dbg.suspend([qid]) == [], "SUSPEND_QUEUES refused the compute queue"
    try:
        area = DG.read_save_area(dev._qbufs["compute"]["cwsr"].va, dev.node.queue_sizes().cwsr_size)
    finally:
        assert dbg.resume([qid]) == [], "RESUME_QUEUES refused the compute queue"
    flag.view(np.uint32)[:] = 1
    s.wait(1, timeout=10.0)               # the restored waves see the flag and end
    return area, prog


def check_spin_waves(area, prog) -> None:
    """What must hold for the saved waves of ``suspended_spin_waves`` on any gfx11."""
    waves = area.waves
    kd = prog.kernel.descriptor
    lanes = 32 if kd.field("KERNEL_CODE_PROPERTY", "ENABLE_WAVEFRONT_SIZE32") else 64
    per_group = -(-BLOCK // lanes)
    assert len(waves) == GRID * per_group, [w.hwregs for w in waves]
    code_end = prog.code_va + prog.code_object.size
    # the descriptor's VGPR blocks (8 registers in wave32, 4 in wave64); hardware may allocate more
    vgprs = (kd.field("COMPUTE_PGM_RSRC1", "GRANULATED_WORKITEM_VGPR_COUNT") + 1) * (8 if lanes == 32 else 4)
    for w in waves:
        assert prog.code_va <= w.pc < code_end, f"saved PC {w.pc:#x} is outside spin_forever"
        assert w.lanes == lanes and w.exec == (1 << lanes) - 1
        assert w.vgprs.shape[0] >= vgprs
        assert not w.fields("STATUS").get("HALT") and not w.hwregs["TRAPSTS"] & G.SQ_WAVE_TRAPSTS__EXCP.mask
    assert sum(w.first_wave for w in waves) == GRID and sum(w.last_wave for w in waves) == GRID
    assert area.wave_state_size == sum(
        len(w.vgprs) * w.lanes * 4 + 512 + 128 + (len(w.lds) if w.lds else 0) for w in waves)
