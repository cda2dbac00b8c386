"""What a gfx11 context save leaves in a queue's CWSR area, written for the mock KFD's SUSPEND_QUEUES.

Written from the hardware and kernel rules (facts from ``gen/cwsr.py``; this module never reads
the backend's parser):

- The CP (kfd_mqd_manager_v11.c: cp_hqd_cntl_stack_offset / cp_hqd_wg_state_offset both start at
  ``ctl_stack_size``) writes the control stack downwards from ``ctl_stack_size`` and the wave
  records upwards from it, one record per wave in save order. Read from the top, the control
  stack holds ``CONTROL_STACK_SKIP_WORDS`` PM4 words (their contents are not modelled: zeros),
  then per workgroup a COMPUTE_RELAUNCH state word (IS_STATE, VGPR blocks, W32_EN, LDS size) and
  its COMPUTE_RELAUNCH2 word (0 here), then a wave word per wave (FIRST_WAVE / LAST_WAVE of its
  workgroup, SE 0), the most recently saved wave first.
- Each wave record is the KFD trap handler's (cwsr_trap_handler_gfx10.asm, gfx11): VGPRs row by
  row, the SGPR area (s0.. and VCC), the HWREG area (slots of ``HWREG_SLOTS``; the XNACK_MASK slot
  holds what the gfx11 handler leaves in that register, the upper half of the HWREG area's
  address; TTMPs 8-10 the workgroup id and TTMP11 the wave's place in its workgroup, as the SPI's
  debug TTMP setup writes them), and the workgroup's LDS after its first wave.
- KFD's get_wave_state then copies ``kfd_context_save_area_header.wave_state`` to the start of
  the area: control stack offset/size and the wave state's end offset (cp_hqd_wg_state_offset)
  and size.

Waves are saved while they fit: the control stack's and the wave area's sizes bound how many
waves a real GPU can hold resident; waves beyond that would not have been launched yet.
"""
from __future__ import annotations

import numpy as np

from hwdrv.amd.gen import cwsr as C
from hwdrv.amd.gen import kfd as K

from .rdna3.snapshot import WaveRegs

HEADER = "struct kfd_context_save_area_header"
_RF = C.RELAUNCH_FIELDS
_IS_STATE = C.COMPUTE_RELAUNCH_IS_STATE[1]
LANES = C.VGPR_ROW_BYTES_W32 // 4          # the emulator runs wave32
VGPR_GRANULE = C.VGPR_GRANULE_W32
LDS_GRANULE = C.LDS_GRANULE_DWORDS * 4


def _put(hi_lo: tuple[int, int], value: int) -> int:
    hi, lo = hi_lo
    if value >> (hi - lo + 1):
        raise ValueError(f"{value} does not fit bits {hi}:{lo}")
    return value << lo


def state_words(n_vgprs: int, lds_bytes: int) -> tuple[int, int]:
    """COMPUTE_RELAUNCH / COMPUTE_RELAUNCH2 state words of a wave32 workgroup."""
    blocks = -(-n_vgprs // VGPR_GRANULE)
    lds = -(-lds_bytes // LDS_GRANULE)
    return (_IS_STATE | _put(C.STATE_VGPR_BLOCKS, blocks - 1) | _put(_RF["STATE_W32_EN"], 1)
            | _put(_RF["STATE_LDS_SIZE"], lds)), 0


def wave_word(w: WaveRegs) -> int:
    return _put(_RF["WAVE_FIRST_WAVE"], int(w.first_wave)) | _put(_RF["WAVE_LAST_WAVE"], int(w.last_wave))


def wave_record(w: WaveRegs, address: int) -> bytes:
    """One wave's record as the trap handler stores it at GPU address ``address``."""
    nv = -(-w.vgprs.shape[0] // VGPR_GRANULE) * VGPR_GRANULE
    vg = np.zeros((nv, LANES), "<u4")
    vg[:w.vgprs.shape[0]] = w.vgprs
    sg = np.zeros(C.SGPR_AREA_BYTES // 4, "<u4")
    sg[:C.SGPRS_SAVED] = w.sgprs[:C.SGPRS_SAVED]
    hw = np.zeros(C.HWREG_AREA_BYTES // 4, "<u4")
    hwreg_addr = address + vg.nbytes + sg.nbytes
    vals = {"M0": w.m0, "PC_LO": w.pc & 0xFFFFFFFF, "PC_HI": w.pc >> 32 & 0xFFFF, "EXEC_LO": w.exec & 0xFFFFFFFF,
            "EXEC_HI": w.exec >> 32, "STATUS": w.status, "TRAPSTS": w.trapsts, "XNACK_MASK": hwreg_addr >> 32,
            "MODE": w.mode, "FLAT_SCRATCH_LO": w.flat_scratch & 0xFFFFFFFF, "FLAT_SCRATCH_HI": w.flat_scratch >> 32}
    for i, n in enumerate(C.HWREG_SLOTS):
        hw[i] = vals[n]
    ttmps = {C.TTMP_GROUP_IDS + k: w.workgroup[k] for k in range(3)}
    ttmps[C.TTMP_WAVE_IN_GROUP] = _put(C.TTMP_WAVE_IN_GROUP_FIELD, w.wave_in_group)
    for t in C.TTMPS_SAVED:
        hw[C.TTMP_OFFSET // 4 + t] = ttmps.get(t, 0)
    parts = {"VGPR": vg.tobytes(), "SVGPR": b"", "SGPR": sg.tobytes(), "HWREG": hw.tobytes(), "LDS": b""}
    if w.first_wave and w.lds:
        n = -(-len(w.lds) // LDS_GRANULE) * LDS_GRANULE
        parts["LDS"] = w.lds + bytes(n - len(w.lds))
    return b"".join(parts[a] for a in C.AREA_ORDER)


def save_area(waves: list[WaveRegs], base: int, ctl_stack_size: int, area_size: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) writes that leave ``waves`` saved in the area at GPU address ``base``."""
    records, stack, end = [], [], ctl_stack_size
    groups: list[list[WaveRegs]] = []
    for w in waves:
        if groups and groups[-1][0].workgroup == w.workgroup:
            groups[-1].append(w)
        else:
            groups.append([w])
    saved_groups = []
    for g in groups:                       # whole workgroups, while control stack and wave area have room
        recs = []
        at = end
        for w in g:
            r = wave_record(w, base + at)
            recs.append((at, r))
            at += len(r)
        words = 2 + len(g)
        used = 4 * (C.CONTROL_STACK_SKIP_WORDS + len(stack) + words)
        hsize = K.ffi.sizeof(HEADER)
        if at > area_size or ctl_stack_size - used < hsize:
            break
        records += recs
        end = at
        saved_groups.append(g)
        stack.append((g, state_words(g[0].vgprs.shape[0], len(g[0].lds))))
    # the control stack read top-down: latest-saved workgroup first, each state pair before its waves
    top: list[int] = []
    for g, (s0, s1) in reversed(stack):
        top += [s0, s1] + [wave_word(w) for w in reversed(g)]
    if top:
        top = [0] * C.CONTROL_STACK_SKIP_WORDS + top
    cs = np.array(top, "<u4").tobytes()
    h = K.ffi.new(HEADER + " *")
    ws = h.wave_state
    ws.control_stack_offset, ws.control_stack_size = ctl_stack_size - len(cs), len(cs)
    ws.wave_state_offset, ws.wave_state_size = end, end - ctl_stack_size
    head = bytes(K.ffi.buffer(h))[:K.ffi.sizeof(ws)]
    return [(0, head), (ctl_stack_size - len(cs), cs)] + records
