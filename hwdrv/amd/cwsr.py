"""Reader of a suspended gfx11 queue's context-save (CWSR) area.

After ``AMDKFD_IOC_DBG_TRAP`` SUSPEND_QUEUES, KFD's ``get_wave_state`` (kfd_mqd_manager_v11.c,
Linux >= 6.4) writes ``kfd_context_save_area_header.wave_state`` at the start of the area from
the MQD: ``control_stack_offset`` = cp_hqd_cntl_stack_offset, ``control_stack_size`` =
cntl_stack_size - that offset, ``wave_state_offset`` = cp_hqd_wg_state_offset (the *end* of the
saved waves) and ``wave_state_size`` = wg_state_offset - cntl_stack_size. The CP writes the
control stack downwards from ``ctl_stack_size`` and the wave records upwards from it.

The control stack (read top-down, as ROCdbgapi's gfx10/gfx11 ``control_stack_iterate``): the
first ``CONTROL_STACK_SKIP_WORDS`` words are PM4, then COMPUTE_RELAUNCH words: IS_EVENT words are
skipped, an IS_STATE word is followed by a COMPUTE_RELAUNCH2 word and describes the waves after
it (VGPR blocks, wave32, LDS size, shared VGPRs), and every other word is one wave (SE id,
first/last wave of its workgroup, scratch). The control stack ends where the wave records begin
(ROCdbgapi checks the same). The first wave listed owns the highest record; each
record ends where the previous one began, and the last one must start at ``wave_state_offset -
wave_state_size``.

One wave record (the KFD trap handler, cwsr_trap_handler_gfx10.asm built for gfx11), lowest
address first: VGPRs (row per register, lane-major), shared VGPRs, the SGPR area (s0.., VCC),
the HWREG area (M0, PC, EXEC, STATUS, TRAPSTS, ..., MODE, FLAT_SCRATCH; then the TTMPs), and the
workgroup's LDS after the first wave of the workgroup. Every layout constant comes from
``gen/cwsr.py``; register fields decode with ``gen/gc11.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import HwdrvError
from .gen import cwsr as C
from .gen import gc11 as G
from .kfd import ffi

HEADER = "struct kfd_context_save_area_header"
#: the part of the header KFD writes (copy_to_user of header.wave_state)
WAVE_STATE_BYTES = ffi.sizeof(ffi.typeof(HEADER).fields[0][1].type)
_SLOT = {n: i for i, n in enumerate(C.HWREG_SLOTS)}


class SaveAreaError(HwdrvError):
    """A context-save area that does not hold the layout KFD and its trap handler write."""


def _field(word: int, hi_lo: tuple[int, int]) -> int:
    hi, lo = hi_lo
    return (word >> lo) & ((1 << (hi - lo + 1)) - 1)


@dataclass
class SavedWave:
    """One wave of the save area: its control-stack words and the registers of its record."""
    index: int                  # position in the control stack (0 = top, the highest record)
    relaunch_wave: int
    relaunch_state: int
    relaunch2_state: int
    offset: int                 # byte offset of the record from the area's start
    lanes: int
    hwregs: dict[str, int]      # SQ_WAVE_* name (HWREG_SLOTS) -> value
    sgprs: np.ndarray           # uint32 (SGPRS_SAVED,)
    vgprs: np.ndarray           # uint32 (vgpr count, lanes)
    shared_vgprs: np.ndarray    # uint32 (count, 32)
    ttmps: dict[int, int]       # ttmp number -> value
    lds: bytes | None           # the workgroup's LDS (first wave of a workgroup only)

    @property
    def se_id(self) -> int:
        return _field(self.relaunch_wave, C.RELAUNCH_FIELDS["WAVE_SE_ID"])

    @property
    def first_wave(self) -> bool:
        return bool(_field(self.relaunch_wave, C.RELAUNCH_FIELDS["WAVE_FIRST_WAVE"]))

    @property
    def last_wave(self) -> bool:
        return bool(_field(self.relaunch_wave, C.RELAUNCH_FIELDS["WAVE_LAST_WAVE"]))

    @property
    def pc(self) -> int:
        return self.hwregs["PC_HI"] << 32 | self.hwregs["PC_LO"]

    @property
    def exec(self) -> int:
        """EXEC: 32 bits in wave32, EXEC_HI:EXEC_LO in wave64."""
        return self.hwregs["EXEC_LO"] if self.lanes == 32 else self.hwregs["EXEC_HI"] << 32 | self.hwregs["EXEC_LO"]

    @property
    def workgroup(self) -> tuple[int, int, int]:
        """Workgroup ids from the TTMPs the SPI initialises for a debugged queue (valid when KFD
        turned the SPI's debug TTMP setup on)."""
        t = C.TTMP_GROUP_IDS
        return (self.ttmps.get(t, 0), self.ttmps.get(t + 1, 0), self.ttmps.get(t + 2, 0))

    @property
    def wave_in_group(self) -> int:
        return _field(self.ttmps.get(C.TTMP_WAVE_IN_GROUP, 0), C.TTMP_WAVE_IN_GROUP_FIELD)

    def fields(self, name: str) -> dict[str, int]:
        """Non-zero fields of SQ_WAVE_``name`` (gc11 field tables)."""
        v, pre = self.hwregs[name], f"SQ_WAVE_{name}__"
        return {k[len(pre):]: f.decode(v) for k, f in vars(G).items()
                if k.startswith(pre) and isinstance(f, G.Field) and f.decode(v)}


@dataclass
class SaveArea:
    """The header's four words and the waves found through the control stack."""
    control_stack_offset: int
    control_stack_size: int
    wave_state_offset: int
    wave_state_size: int
    waves: list[SavedWave]


def _sizes(state: int) -> tuple[int, int, int, int]:
    """(lanes, VGPRs, shared VGPRs, LDS bytes) a COMPUTE_RELAUNCH state word describes."""
    f = C.RELAUNCH_FIELDS
    w32 = _field(state, f["STATE_W32_EN"])
    lanes = C.VGPR_ROW_BYTES_W32 // 4 if w32 else C.VGPR_ROW_BYTES_W64 // 4
    vgprs = (_field(state, C.STATE_VGPR_BLOCKS) + 1) * (C.VGPR_GRANULE_W32 if w32 else C.VGPR_GRANULE_W64)
    shared = _field(state, f["STATE_SHARED_VGPRS"]) * C.SHARED_VGPR_GRANULE
    lds = _field(state, f["STATE_LDS_SIZE"]) * C.LDS_GRANULE_DWORDS * 4
    return lanes, vgprs, shared, lds


def record_size(state: int, first_wave: bool) -> int:
    """Bytes of one wave record under COMPUTE_RELAUNCH ``state``."""
    lanes, vgprs, shared, lds = _sizes(state)
    return vgprs * lanes * 4 + shared * C.VGPR_ROW_BYTES_W32 + C.SGPR_AREA_BYTES + C.HWREG_AREA_BYTES \
        + (lds if first_wave else 0)


def _words(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, "<u4")


def _record(read: Callable[[int, int], bytes], index: int, wave: int, state: int, state2: int,
            begin: int) -> SavedWave:
    lanes, nv, ns, lds_bytes = _sizes(state)
    first = bool(_field(wave, C.RELAUNCH_FIELDS["WAVE_FIRST_WAVE"]))
    size = {"VGPR": nv * lanes * 4, "SVGPR": ns * C.VGPR_ROW_BYTES_W32, "SGPR": C.SGPR_AREA_BYTES,
            "HWREG": C.HWREG_AREA_BYTES, "LDS": lds_bytes if first else 0}
    at, off = {}, begin
    for area in C.AREA_ORDER:
        at[area] = off
        off += size[area]
    v = _words(read(at["VGPR"], size["VGPR"])).reshape(nv, lanes).copy()
    sv = _words(read(at["SVGPR"], size["SVGPR"])).reshape(ns, C.VGPR_ROW_BYTES_W32 // 4).copy()
    s = _words(read(at["SGPR"], 4 * C.SGPRS_SAVED)).copy()
    hw = _words(read(at["HWREG"], C.HWREG_AREA_BYTES))
    hwregs = {n: int(hw[i]) for i, n in enumerate(C.HWREG_SLOTS)}
    ttmps = {t: int(hw[C.TTMP_OFFSET // 4 + t]) for t in C.TTMPS_SAVED}
    lds = read(at["LDS"], size["LDS"]) if size["LDS"] else None
    return SavedWave(index, wave, state, state2, begin, lanes, hwregs, s, v, sv, ttmps, lds)


def parse(read: Callable[[int, int], bytes], area_size: int) -> SaveArea:
    """Parse a context-save area of ``area_size`` bytes; ``read(offset, n)`` returns n bytes of it."""
    def inside(off: int, n: int) -> None:
        if off < 0 or n < 0 or off + n > area_size:
            raise SaveAreaError(f"context-save area: bytes {off:#x}..{off + n:#x} lie outside its {area_size:#x} "
                                "bytes; the header or control stack is corrupt (was the queue suspended?)")

    def rd(off: int, n: int) -> bytes:
        inside(off, n)
        b = read(off, n)
        if len(b) != n:
            raise SaveAreaError(f"context-save area: read {len(b)} of {n} bytes at {off:#x}")
        return b
    h = ffi.new(HEADER + " *")
    ffi.memmove(h, rd(0, WAVE_STATE_BYTES), WAVE_STATE_BYTES)
    ws = h.wave_state
    cs_off, cs_size, wv_end, wv_size = (int(ws.control_stack_offset), int(ws.control_stack_size),
                                        int(ws.wave_state_offset), int(ws.wave_state_size))
    if cs_off % 4 or cs_size % 4 or wv_end % 4 or wv_size % 4:
        raise SaveAreaError(f"context-save header: offsets/sizes must be dword multiples (control stack "
                            f"{cs_off:#x}+{cs_size:#x}, waves end {wv_end:#x} size {wv_size:#x})")
    if cs_off < WAVE_STATE_BYTES and cs_size:
        raise SaveAreaError(f"context-save header: control stack at {cs_off:#x} overlaps the header")
    if wv_size > wv_end:
        raise SaveAreaError(f"context-save header: wave state size {wv_size:#x} > its end offset {wv_end:#x}")
    if cs_off + cs_size != wv_end - wv_size:
        raise SaveAreaError(f"context-save header: the control stack {cs_off:#x}+{cs_size:#x} and the wave records "
                            f"from {wv_end - wv_size:#x} are not contiguous (both grow from ctl_stack_size)")
    stack = _words(rd(cs_off, cs_size)) if cs_size else _words(b"")
    inside(wv_end - wv_size, wv_size)
    if cs_size and len(stack) < C.CONTROL_STACK_SKIP_WORDS:
        raise SaveAreaError(f"control stack of {cs_size} bytes is shorter than its {C.CONTROL_STACK_SKIP_WORDS} "
                            "PM4 words")
    ev, st = C.COMPUTE_RELAUNCH_IS_EVENT[1], C.COMPUTE_RELAUNCH_IS_STATE[1]
    waves: list[SavedWave] = []
    last, state, state2 = wv_end, None, 0
    i = C.CONTROL_STACK_SKIP_WORDS
    while i < len(stack):
        word = int(stack[i])
        if word & ev:
            pass
        elif word & st:
            if i + 1 >= len(stack):
                raise SaveAreaError(f"control stack word {i}: a state word without its COMPUTE_RELAUNCH2 word")
            state, state2 = word, int(stack[i + 1])
            i += 1
        else:
            if state is None:
                raise SaveAreaError(f"control stack word {i} ({word:#010x}): a wave before any state word")
            first = bool(_field(word, C.RELAUNCH_FIELDS["WAVE_FIRST_WAVE"]))
            begin = last - record_size(state, first)
            if begin < wv_end - wv_size:
                raise SaveAreaError(f"control stack wave {len(waves)} (word {i}): its record would start at "
                                    f"{begin:#x}, below the wave state's start {wv_end - wv_size:#x}")
            waves.append(_record(rd, len(waves), word, state, state2, begin))
            last = begin
        i += 1
    if last != wv_end - wv_size:
        raise SaveAreaError(f"control stack and wave state disagree: {len(waves)} wave record(s) end at {last:#x}, "
                            f"the wave state starts at {wv_end - wv_size:#x}")
    return SaveArea(cs_off, cs_size, wv_end, wv_size, waves)


def parse_bytes(buf: bytes) -> SaveArea:
    """:func:`parse` over an in-memory copy of the area."""
    return parse(lambda off, n: bytes(buf[off:off + n]), len(buf))
