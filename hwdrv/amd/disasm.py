"""A small gfx11 instruction describer for hang reports: the encoding, the LLVM mnemonic, the
instruction's size and its raw fields, from the generated RDNA3 tables (gen/rdna3_isa.py).

The backend cannot use the mock's RDNA3 decoder (mock independence), and a report needs the
faulting instruction's name and operands rather than LLVM's exact operand syntax, so this module
prints ``mnemonic field=value ...`` (scalar registers and constants named) and is checked against
llvm-mc's disassembly for the mnemonic and the size (tests/test_amd_diagnose_disasm.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .gen import rdna3_isa as R

_O = R.OPERANDS
_SRC_FIELDS = ("src0", "src1", "src2", "ssrc0", "ssrc1", "srcx0", "srcy0")
_FLAT_SEG = {0: "FLAT", 1: "SCRATCH", 2: "GLOBAL"}
#: v_fmamk/fmaak/madmk/madak (and their VOPD halves) carry a literal that no source field names
_IMPLICIT_LITERAL = re.compile(r"_(fma|mad)(mk|ak)_")
_VOP3_BASE = sorted(((base, fmt) for fmt, base in R.VOP3_FROM.items()), reverse=True)


@dataclass
class Described:
    """One instruction: its encoding, mnemonic, size in bytes and text."""
    encoding: str
    name: str
    size: int
    text: str


def operand(v: int) -> str:
    """A 9-bit (or 8-bit scalar) source operand's name: s5, vcc_lo, exec_lo, m0, null, 0.5, v3, ..."""
    if v <= _O["SGPR_MAX"]:
        return f"s{v}"
    if v >= _O["VGPR_MIN"]:
        return f"v{v - _O['VGPR_MIN']}"
    if _O["TTMP_MIN"] <= v <= _O["TTMP_MAX"]:
        return f"ttmp{v - _O['TTMP_MIN']}"
    if _O["INLINE_INT_ZERO"] <= v <= _O["INLINE_INT_POS_MAX"]:
        return str(v - _O["INLINE_INT_ZERO"])
    if _O["INLINE_INT_NEG_MIN"] <= v <= _O["INLINE_INT_NEG_MAX"]:
        return str(_O["INLINE_INT_NEG_MIN"] - 1 - v)
    names = {val: key.lower() for key, val in _O.items()}
    return {_O["INLINE_F_0_5"]: "0.5", _O["INLINE_F_NEG_0_5"]: "-0.5", _O["INLINE_F_1"]: "1.0",
            _O["INLINE_F_NEG_1"]: "-1.0", _O["INLINE_F_2"]: "2.0", _O["INLINE_F_NEG_2"]: "-2.0",
            _O["INLINE_F_4"]: "4.0", _O["INLINE_F_NEG_4"]: "-4.0", _O["INLINE_INV_2PI"]: "0.15915494"}.get(
        v, names.get(v, f"operand {v}"))


def _field(words: list[int], spec: tuple[int, int, int]) -> int:
    w, hi, lo = spec
    return (words[w] >> lo) & ((1 << (hi - lo + 1)) - 1) if w < len(words) else 0


def _encoding(w0: int) -> str | None:
    for fmt, (mask, match, _, _) in R.FORMATS.items():
        if w0 & mask == match:
            return fmt
    return None


def describe(words: list[int]) -> Described:
    """Describe the instruction whose dwords start ``words`` (give at least 3 dwords where there
    are: a literal or DPP word follows the base encoding)."""
    if not words:
        return Described("?", "?", 0, "<no instruction words>")
    fmt = _encoding(words[0])
    if fmt is None:
        return Described("?", "?", 4, f"<no gfx11 encoding matches {words[0]:#010x}>")
    _, _, nwords, spec = R.FORMATS[fmt]
    f = {name: _field(words, s) for name, s in spec.items()}
    table = fmt
    if fmt == "FLAT":
        table = _FLAT_SEG.get(f["seg"], "FLAT")
    if fmt == "VOPD":
        name = f"{R.OPCODES['VOPD'].get(f['opx'], '?')} :: {R.OPCODES['VOPD'].get(f['opy'], '?')}"
        op_known = True
    else:
        name = R.OPCODES.get(table, {}).get(f["op"])
        if name is None and fmt == "VOP3":
            for base, src in _VOP3_BASE:       # a VOP1/VOP2/VOPC instruction in the VOP3 encoding
                if f["op"] >= base and (n := R.OPCODES[src].get(f["op"] - base)):
                    name = n
                    break
        op_known = name is not None
        name = name or f"<{table} opcode {f['op']:#x}>"
    size = 4 * nwords
    srcs = [f[k] for k in _SRC_FIELDS if k in f]
    if fmt.startswith(("SOP", "VOP")) and _O["LITERAL"] in srcs or _IMPLICIT_LITERAL.search(name):
        size += 4
    if fmt in ("SOPK",) and name.startswith("s_setreg_imm32"):
        size += 4
    if fmt in ("VOP1", "VOP2", "VOPC") and f["src0"] in (_O["DPP8"], _O["DPP8_FI"], _O["DPP16"]):
        size += 4
    parts = []
    for k, v in f.items():
        if k == "op" or (fmt == "VOPD" and k in ("opx", "opy")) or (k == "vdst" and "store" in name) \
                or (k == "seg" and fmt == "FLAT"):
            continue
        if k in _SRC_FIELDS or k in ("sdst", "soffset", "saddr") and fmt not in ("VOP3",):
            parts.append(f"{k}={operand(v)}")
        elif k in ("vdst", "vsrc1", "vdata", "vaddr", "addr", "data", "data0", "data1", "vdstx", "vdsty",
                   "vsrcx1", "vsrcy1") and fmt not in ("VOP3", "VOP3P"):
            parts.append(f"{k}=v{v}")
        elif v:
            parts.append(f"{k}={v:#x}" if v > 9 else f"{k}={v}")
    if size > 4 * nwords and len(words) > nwords:
        parts.append(f"extra={words[nwords]:#010x}")
    text = f"{name} " + " ".join(parts) if parts else name
    if not op_known:
        text += " (not a gfx11 opcode)"
    return Described(fmt if fmt != "FLAT" else table, name, size, text.strip())
