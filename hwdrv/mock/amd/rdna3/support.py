"""Which gfx11 instructions the emulator executes: every (format, opcode) of the generated tables
whose instruction compiles (the compilers raise ``Unsupported`` for the rest), probed with a plain
register-operand encoding of each opcode."""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

from ....amd.gen import rdna3_isa as isa
from .decode import DecodeError, decode

_SEG = {"FLAT": 0, "SCRATCH": 1, "GLOBAL": 2}


def encode(fmt: str, fields: dict) -> list[int]:
    """Instruction words of ``fmt`` (a FORMATS key; GLOBAL/SCRATCH use FLAT's layout with their
    segment) with the given fields; unnamed fields are 0."""
    key = "FLAT" if fmt in _SEG else fmt
    mask, val, n, layout = isa.FORMATS[key]
    words = [0] * n
    words[0] = val
    fields = dict(fields)
    if fmt in _SEG:
        fields["seg"] = _SEG[fmt]
    for k, v in fields.items():
        d, hi, lo = layout[k]
        width = hi - lo + 1
        if v < 0 or v >= 1 << width:
            raise ValueError(f"{fmt}.{k} = {v} does not fit {width} bits")
        words[d] |= v << lo
    return words


def _probe_fields(fmt: str, op: int) -> dict:
    vg = isa.OPERANDS["VGPR_MIN"]
    return {
        "SOP1": {"op": op, "sdst": 2, "ssrc0": 4}, "SOP2": {"op": op, "sdst": 2, "ssrc0": 4, "ssrc1": 6},
        "SOPC": {"op": op, "ssrc0": 4, "ssrc1": 6}, "SOPK": {"op": op, "sdst": 2, "simm16": 0},
        "SOPP": {"op": op, "simm16": 0}, "SMEM": {"op": op, "sdata": 4, "sbase": 1, "soffset": isa.OPERANDS["NULL"]},
        "VOP1": {"op": op, "vdst": 1, "src0": vg + 2}, "VOP2": {"op": op, "vdst": 1, "src0": vg + 2, "vsrc1": 3},
        "VOPC": {"op": op, "src0": vg + 2, "vsrc1": 3},
        "VOP3": {"op": op, "vdst": 1, "src0": vg + 2, "src1": vg + 4, "src2": vg + 6},
        "VOP3P": {"op": op, "vdst": 8, "src0": vg + 16, "src1": vg + 24, "src2": vg + 32, "opsel_hi": 3, "opsel_hi2": 1},
        "DS": {"op": op, "vdst": 1, "addr": 2, "data0": 4, "data1": 6},
        "FLAT": {"op": op, "vdst": 1, "addr": 2, "data": 4, "saddr": isa.OPERANDS["NULL"]},
        "GLOBAL": {"op": op, "vdst": 1, "addr": 2, "data": 4, "saddr": isa.OPERANDS["NULL"]},
        "SCRATCH": {"op": op, "vdst": 1, "addr": 2, "data": 4, "saddr": isa.OPERANDS["NULL"], "sve": 1},
        "MUBUF": {"op": op, "vdata": 1, "vaddr": 2, "srsrc": 1, "soffset": 128},
    }[fmt]


def _probes(fmt: str, op: int) -> list[dict]:
    """A register-operand encoding, and for VOP3 one with scalar sources (lane-select operands)."""
    p = _probe_fields(fmt, op)
    if fmt != "VOP3":
        return [p]
    return [p, dict(p, src1=4, src2=6), dict(p, src0=2, src1=4)]


@lru_cache(maxsize=1)
def supported() -> dict[str, dict[int, str]]:
    """{format: {opcode: mnemonic}} of the instructions the emulator executes (VOPD: both halves)."""
    from .dispatch import _COMPILERS
    from .faults import Unsupported
    ctx = SimpleNamespace(mem=None, pgm_addr=0)
    out: dict[str, dict[int, str]] = {}
    for fmt, ops in isa.OPCODES.items():
        if fmt == "VOPD":
            continue
        for op, name in ops.items():
            for probe in _probes(fmt, op):
                try:
                    inst = decode(encode(fmt, probe) + [0])
                    if inst.name != name:
                        continue
                    _COMPILERS[inst.fmt](inst, ctx)
                except (Unsupported, DecodeError, KeyError, ValueError):
                    continue
                out.setdefault(fmt, {})[op] = name
                break
    from .valu import _VOPD_NAMES
    out["VOPD"] = {op: n for op, n in isa.OPCODES["VOPD"].items() if n in _VOPD_NAMES}
    return out
