"""gfx11 instruction decoder and disassembler (LLVM syntax).

``decode(words, index)`` reads one instruction from a sequence of little-endian dwords using the
generated word layouts and opcode tables (``hwdrv.amd.gen.rdna3_isa``): format, opcode, mnemonic,
fields, the trailing literal / DPP word. ``disasm(inst)`` prints it the way llvm-objdump-19 does
for the instructions the emulator runs (checked against llvm-mc by tests/test_rdna3_isa_llvm.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ....amd.gen import rdna3_isa as isa
from ....errors import MockFault
from .optypes import salu_types, valu_types
from .valu_ops import arity

OP = isa.OPERANDS
_FMT_ORDER = list(isa.FORMATS.items())
_FLAT_SEG = {0: "flat", 1: "scratch", 2: "global"}
_SRC_FIELDS = ("src0", "src1", "src2", "ssrc0", "ssrc1", "srcx0", "srcy0")
# VOP3 opcodes that are VOP1/VOP2/VOPC instructions promoted to the 64-bit encoding
_PROMOTED = {base + op for fmt, base in isa.VOP3_FROM.items() for op in isa.OPCODES[fmt]}
_TRUE16_VOP1 = {"v_mov_b16"}
_VOP2_LITERAL = {"v_fmamk_f32", "v_fmaak_f32", "v_fmamk_f16", "v_fmaak_f16"}
_VOPD_LITERAL = {"v_dual_fmamk_f32", "v_dual_fmaak_f32"}


class DecodeError(MockFault):
    """An instruction word that is not a gfx11 instruction this decoder knows."""


@dataclass(slots=True)
class Inst:
    """One decoded instruction. ``f`` holds the format's fields; ``literal`` the 32-bit constant
    that follows when a source is 255 (or the K of fmamk/fmaak); ``dpp`` the DPP word's fields."""
    fmt: str
    op: int
    name: str
    f: dict
    size: int                       # bytes
    words: tuple
    literal: int | None = None
    dpp: dict | None = None
    dpp8: bool = False
    promoted: bool = False          # VOP1/2/C instruction in VOP3 encoding (printed with _e64)
    vopd_y: str = field(default="")


def _bits(w: int, hi: int, lo: int) -> int:
    return (w >> lo) & ((1 << (hi - lo + 1)) - 1)


def decode(words, i: int = 0) -> Inst:
    """Decode the instruction starting at dword ``i`` of ``words`` (a sequence of ints)."""
    w0 = words[i]
    for fmt, (mask, val, n, layout) in _FMT_ORDER:
        if w0 & mask == val:
            break
    else:
        raise DecodeError(f"dword {w0:#010x} is not a supported gfx11 encoding (format unknown)")
    if i + n > len(words):
        raise DecodeError(f"{fmt} instruction {w0:#010x} runs past the end of the code")
    ws = words[i:i + n]
    f = {k: _bits(ws[d], hi, lo) for k, (d, hi, lo) in layout.items()}
    tab_fmt = fmt
    if fmt == "FLAT":
        tab_fmt = _FLAT_SEG.get(f["seg"], "").upper()
        if not tab_fmt:
            raise DecodeError(f"FLAT word {w0:#010x}: reserved segment {f['seg']}")
    if fmt == "VOPD":
        x = isa.OPCODES["VOPD"].get(f["opx"])
        y = isa.OPCODES["VOPD"].get(f["opy"])
        if x is None or y is None:
            raise DecodeError(f"VOPD word {w0:#010x}: unknown opx {f['opx']} / opy {f['opy']}")
        name, op = x, f["opx"]
    else:
        op = f["op"]
        name = isa.OPCODES[tab_fmt].get(op)
        if name is None:
            raise DecodeError(f"{tab_fmt} opcode {op:#x} (word {w0:#010x}) is not a gfx11 instruction")
    inst = Inst(tab_fmt, op, name, f, 4 * n, tuple(ws))
    if fmt == "VOPD":
        inst.vopd_y = y
    if fmt == "VOP3" and op in _PROMOTED:
        inst.promoted = True
    # trailing words
    extra = None
    if fmt in ("VOP1", "VOP2", "VOPC", "VOP3") and f["src0"] in (OP["DPP16"], OP["DPP8"], OP["DPP8_FI"]):
        extra = "dpp"
    elif any(f.get(k) == OP["LITERAL"] for k in _SRC_FIELDS) or name in _VOP2_LITERAL \
            or (fmt == "VOPD" and (name in _VOPD_LITERAL or inst.vopd_y in _VOPD_LITERAL)) \
            or name == "s_setreg_imm32_b32":
        extra = "lit"
    if extra:
        if i + n >= len(words):
            raise DecodeError(f"{name}: its trailing dword is past the end of the code")
        w = words[i + n]
        inst.size += 4
        inst.words = inst.words + (w,)
        if extra == "lit":
            inst.literal = w
        else:
            if f["src0"] == OP["DPP16"]:
                inst.dpp = {k: _bits(w, hi, lo) for k, (hi, lo) in isa.DPP16_FIELDS.items()}
            else:
                inst.dpp = {k: _bits(w, hi, lo) for k, (hi, lo) in isa.DPP8_FIELDS.items()}
                inst.dpp["fi"] = int(f["src0"] == OP["DPP8_FI"])
                inst.dpp8 = True
    return inst


def decode_all(code: bytes) -> list[Inst]:
    """Decode a whole code blob (stops at the end; for disassembly listings)."""
    words = struct.unpack(f"<{len(code) // 4}I", code[:len(code) // 4 * 4])
    out, i = [], 0
    while i < len(words):
        ins = decode(words, i)
        out.append(ins)
        i += ins.size // 4
    return out


# ------------------------------------------------------------------------------------------------
# operand printing
_SPECIAL = {OP["VCC_LO"]: "vcc_lo", OP["VCC_HI"]: "vcc_hi", OP["M0"]: "m0", OP["NULL"]: "null",
            OP["EXEC_LO"]: "exec_lo", OP["EXEC_HI"]: "exec_hi", OP["SCC"]: "src_scc",
            OP["VCCZ"]: "src_vccz", OP["EXECZ"]: "src_execz", OP["SHARED_BASE"]: "src_shared_base",
            OP["SHARED_LIMIT"]: "src_shared_limit", OP["PRIVATE_BASE"]: "src_private_base",
            OP["PRIVATE_LIMIT"]: "src_private_limit", 254: "src_pops_exiting_wave_id"}
_PAIRS = {OP["VCC_LO"]: "vcc", OP["EXEC_LO"]: "exec"}
_FLOATS = {240: (0.5, "0.5"), 241: (-0.5, "-0.5"), 242: (1.0, "1.0"), 243: (-1.0, "-1.0"), 244: (2.0, "2.0"),
           245: (-2.0, "-2.0"), 246: (4.0, "4.0"), 247: (-4.0, "-4.0")}
_INV2PI = {"f64": "0.15915494309189532", "f32": "0.15915494", "f16": "0.15915494"}
_SIXTEEN = ("f16", "i16", "u16", "b16", "bf16")


def reg_name(code: int, n: int = 1) -> str:
    """Name of scalar/vector register operand ``code`` (9-bit source encoding) spanning n dwords."""
    if code >= OP["VGPR_MIN"]:
        r = code - OP["VGPR_MIN"]
        return f"v{r}" if n == 1 else f"v[{r}:{r + n - 1}]"
    if code <= OP["SGPR_MAX"]:
        return f"s{code}" if n == 1 else f"s[{code}:{code + n - 1}]"
    if OP["TTMP_MIN"] <= code <= OP["TTMP_MAX"]:
        r = code - OP["TTMP_MIN"]
        return f"ttmp{r}" if n == 1 else f"ttmp[{r}:{r + n - 1}]"
    if n == 2 and code in _PAIRS:
        return _PAIRS[code]
    if code in _SPECIAL:
        return _SPECIAL[code]
    raise DecodeError(f"operand code {code} is not a register")


def src_text(code: int, n: int, ty: str, literal: int | None) -> str:
    """Text of a 9-bit source operand of type ``ty`` (e.g. 'f32', 'u64', 'b32')."""
    if code == OP["LITERAL"]:
        if literal is None:
            raise DecodeError("literal operand in an encoding that has no literal dword")
        return f"0x{literal & 0xFFFF:x}" if ty in _SIXTEEN else f"0x{literal:x}"
    if OP["INLINE_INT_ZERO"] <= code <= OP["INLINE_INT_POS_MAX"]:
        return str(code - OP["INLINE_INT_ZERO"])
    if OP["INLINE_INT_NEG_MIN"] <= code <= OP["INLINE_INT_NEG_MAX"]:
        return str(OP["INLINE_INT_NEG_MIN"] - 1 - code)
    if code in _FLOATS:
        return _FLOATS[code][1]
    if code == OP["INLINE_INV_2PI"]:
        return _INV2PI.get(ty, "0.15915494309189532" if n == 2 else "0.15915494")
    return reg_name(code, n)


def _vdst(r: int, n: int = 1) -> str:
    return f"v{r}" if n == 1 else f"v[{r}:{r + n - 1}]"


def _sdst(code: int, n: int = 1) -> str:
    return reg_name(code, n)


def _n(t: str) -> int:
    return 2 if t.endswith("64") else 1


def disasm(inst: Inst) -> str:
    """LLVM-syntax text of ``inst``."""
    fn = _DISASM.get(inst.fmt)
    if fn is None:
        raise DecodeError(f"no disassembler for format {inst.fmt}")
    return fn(inst)


def _sop2(i: Inst) -> str:
    d, (a, b) = salu_types(i.name)[0], (salu_types(i.name)[1] + (1, 1))[:2]
    f = i.f
    return f"{i.name} {_sdst(f['sdst'], d)}, {src_text(f['ssrc0'], a, 'b32', i.literal)}, " \
           f"{src_text(f['ssrc1'], b, 'b32', i.literal)}"


def _sop1(i: Inst) -> str:
    d, srcs = salu_types(i.name)
    f = i.f
    parts = []
    if d:
        parts.append(_sdst(f["sdst"], d))
    if srcs:
        parts.append(src_text(f["ssrc0"], srcs[0], "b32", i.literal))
    return f"{i.name} {', '.join(parts)}" if parts else i.name


def _sopc(i: Inst) -> str:
    _, srcs = salu_types(i.name)
    f = i.f
    return f"{i.name} {src_text(f['ssrc0'], srcs[0], 'b32', i.literal)}, " \
           f"{src_text(f['ssrc1'], srcs[1], 'b32', i.literal)}"


# hwreg names LLVM uses on gfx11 (AMDGPUAsmUtils.cpp Hwreg::Opr, entries whose predicate holds for
# gfx11); other ids print as numbers
_HWREG = {1: "HW_REG_MODE", 2: "HW_REG_STATUS", 3: "HW_REG_TRAPSTS", 5: "HW_REG_GPR_ALLOC", 6: "HW_REG_LDS_ALLOC",
          7: "HW_REG_IB_STS", 15: "HW_REG_SH_MEM_BASES", 20: "HW_REG_FLAT_SCR_LO", 21: "HW_REG_FLAT_SCR_HI",
          23: "HW_REG_HW_ID1", 24: "HW_REG_HW_ID2", 29: "HW_REG_SHADER_CYCLES"}


def hwreg_text(simm: int) -> str:
    rid, off, size = simm & 0x3F, (simm >> 6) & 0x1F, ((simm >> 11) & 0x1F) + 1
    name = _HWREG.get(rid, str(rid))
    if off == 0 and size == 32:
        return f"hwreg({name})"
    return f"hwreg({name}, {off}, {size})"


def _sopk(i: Inst) -> str:
    f, n = i.f, i.name
    simm = f["simm16"]
    if n in ("s_getreg_b32",):
        return f"{n} {_sdst(f['sdst'])}, {hwreg_text(simm)}"
    if n in ("s_setreg_b32",):
        return f"{n} {hwreg_text(simm)}, {_sdst(f['sdst'])}"
    if n == "s_setreg_imm32_b32":
        return f"{n} {hwreg_text(simm)}, 0x{i.literal:x}"
    if n in ("s_waitcnt_vscnt", "s_waitcnt_vmcnt", "s_waitcnt_expcnt", "s_waitcnt_lgkmcnt"):
        return f"{n} {_sdst(f['sdst'])}, 0x{simm:x}"
    if n == "s_call_b64":
        return f"{n} {_sdst(f['sdst'], 2)}, {_sext16(simm)}"
    if n == "s_version":
        return f"{n} {version_text(simm)}"
    if n in ("s_cmpk_eq_u32", "s_cmpk_lg_u32", "s_cmpk_gt_u32", "s_cmpk_ge_u32", "s_cmpk_lt_u32", "s_cmpk_le_u32"):
        return f"{n} {_sdst(f['sdst'])}, 0x{simm:x}"
    return f"{n} {_sdst(f['sdst'])}, 0x{simm:x}"


# s_version flag bits (LLVM SIDefines.h UCVersion: W64 1<<13, W32 1<<14, MDP 1<<15)
_UC_BITS = ((1 << 13, "UC_VERSION_W64_BIT"), (1 << 14, "UC_VERSION_W32_BIT"), (1 << 15, "UC_VERSION_MDP_BIT"))


def version_text(simm: int) -> str:
    low = simm & 0x1FFF
    flags = [nm for bit, nm in _UC_BITS if simm & bit]
    if not flags or low > 0xFF:
        return f"0x{simm:x}"
    txt = str(low)
    for k, nm in enumerate(flags):
        txt = f"{txt}|{nm}" if k == 0 else f"({txt})|{nm}"
    return txt


def _sext16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


_DELAY_ID = {0: "NO_DEP", 1: "VALU_DEP_1", 2: "VALU_DEP_2", 3: "VALU_DEP_3", 4: "VALU_DEP_4", 5: "TRANS32_DEP_1",
             6: "TRANS32_DEP_2", 7: "TRANS32_DEP_3", 8: "FMA_ACCUM_CYCLE_1", 9: "SALU_CYCLE_1",
             10: "SALU_CYCLE_2", 11: "SALU_CYCLE_3"}
_DELAY_SKIP = {0: "SAME", 1: "NEXT", 2: "SKIP_1", 3: "SKIP_2", 4: "SKIP_3", 5: "SKIP_4"}
_MSG = {1: "MSG_INTERRUPT", 2: "MSG_GS", 3: "MSG_DEALLOC_VGPRS", 10: "MSG_GS_ALLOC_REQ"}
_BRANCHES = {"s_branch", "s_cbranch_scc0", "s_cbranch_scc1", "s_cbranch_vccz", "s_cbranch_vccnz",
             "s_cbranch_execz", "s_cbranch_execnz", "s_cbranch_cdbgsys", "s_cbranch_cdbguser",
             "s_cbranch_cdbgsys_or_user", "s_cbranch_cdbgsys_and_user"}
_NO_OPERAND = {"s_endpgm", "s_barrier", "s_wakeup", "s_icache_inv", "s_wait_idle", "s_endpgm_saved",
               "s_code_end", "s_ttracedata", "s_setkill", "s_sethalt", "s_endpgm_ordered_ps_done"}


def waitcnt_text(s: int) -> str:
    vm, exp, lgkm = (s >> 10) & 0x3F, s & 7, (s >> 4) & 0x3F
    parts = []
    if vm != 0x3F:
        parts.append(f"vmcnt({vm})")
    if exp != 7:
        parts.append(f"expcnt({exp})")
    if lgkm != 0x3F:
        parts.append(f"lgkmcnt({lgkm})")
    return " ".join(parts) if parts else f"0x{s:x}"


def delay_text(s: int) -> str:
    id0, skip, id1 = s & 0xF, (s >> 4) & 7, (s >> 7) & 0xF
    parts = []
    if id0:
        parts.append(f"instid0({_DELAY_ID.get(id0, id0)})")
    if skip:
        parts.append(f"instskip({_DELAY_SKIP.get(skip, skip)})")
    if id1:
        parts.append(f"instid1({_DELAY_ID.get(id1, id1)})")
    return " | ".join(parts) if parts else "0"


def _sopp(i: Inst) -> str:
    n, s = i.name, i.f["simm16"]
    if n in _NO_OPERAND:
        return n if s == 0 else f"{n} 0x{s:x}"
    if n in _BRANCHES:
        return f"{n} {_sext16(s)}"
    if n == "s_waitcnt":
        return f"{n} {waitcnt_text(s)}"
    if n == "s_delay_alu":
        return f"{n} {delay_text(s)}"
    if n in ("s_sendmsg", "s_sendmsghalt") and s in _MSG:
        return f"{n} sendmsg({_MSG[s]})"
    if n in ("s_nop", "s_sleep", "s_setprio", "s_trap", "s_incperflevel", "s_decperflevel"):
        return f"{n} {s}"
    if n == "s_waitcnt_depctr":
        return f"{n} {depctr_text(s)}"
    return f"{n} 0x{s:x}"


# s_waitcnt_depctr fields (LLVM AMDGPUAsmUtils.cpp DepCtrInfo, gfx11): name, shift, width, default
_DEPCTR = (("depctr_hold_cnt", 7, 1, 1), ("depctr_sa_sdst", 0, 1, 1), ("depctr_va_vdst", 12, 4, 15),
           ("depctr_va_sdst", 9, 3, 7), ("depctr_va_ssrc", 8, 1, 1), ("depctr_va_vcc", 1, 1, 1),
           ("depctr_vm_vsrc", 2, 3, 7))


def depctr_text(s: int) -> str:
    known = sum(((1 << w) - 1) << sh for _, sh, w, _ in _DEPCTR)
    if s & ~known & 0xFFFF:
        return f"0x{s:x}"
    parts = [f"{nm}({(s >> sh) & ((1 << w) - 1)})" for nm, sh, w, d in _DEPCTR if (s >> sh) & ((1 << w) - 1) != d]
    return " ".join(parts) if parts else f"0x{s:x}"


def _smem(i: Inst) -> str:
    f, n = i.f, i.name
    if n in ("s_dcache_inv", "s_gl1_inv"):
        return n
    if n.startswith("s_atc_probe"):
        raise DecodeError(f"{n}: no disassembly")
    width = {"b32": 1, "b64": 2, "b128": 4, "b256": 8, "b512": 16}[n.rsplit("_", 1)[1]]
    base = reg_name(f["sbase"] * 2, 4 if n.startswith("s_buffer") else 2)
    off = f["offset"]
    if off & 0x100000:
        off -= 0x200000
    parts = [f"{n} {reg_name(f['sdata'], width)}, {base}, "]
    if f["soffset"] != OP["NULL"]:
        parts.append(reg_name(f["soffset"]))
        if off:
            parts.append(f" offset:0x{off & 0x1FFFFF:x}" if off > 0 else f" offset:{off}")
    elif off:
        parts.append(f"0x{off:x}" if off > 0 else f"{off}")
    else:
        parts.append("null")
    for k in ("glc", "dlc"):
        if f[k]:
            parts.append(f" {k}")
    return "".join(parts)


# ---- VALU ----------------------------------------------------------------------------------------
def _mod(txt: str, neg: int, abs_: int, const: bool = False) -> str:
    """LLVM prints neg as neg(x) on a constant without abs, else as a '-' prefix."""
    if abs_:
        txt = f"|{txt}|"
    if neg:
        txt = f"neg({txt})" if const and not abs_ else f"-{txt}"
    return txt


def _is_const(code: int) -> bool:
    return OP["INLINE_INT_ZERO"] <= code <= OP["LITERAL"] and code not in _SPECIAL


def _dpp_text(d: dict, dpp8: bool) -> str:
    if dpp8:
        sel = d["lane_sel"]
        s = f"dpp8:[{','.join(str((sel >> (3 * k)) & 7) for k in range(8))}]"
        return s + (" fi:1" if d["fi"] else "")
    c = d["dpp_ctrl"]
    if c <= 0xFF:
        ctl = f"quad_perm:[{c & 3},{(c >> 2) & 3},{(c >> 4) & 3},{(c >> 6) & 3}]"
    elif 0x101 <= c <= 0x10F:
        ctl = f"row_shl:{c & 0xF}"
    elif 0x111 <= c <= 0x11F:
        ctl = f"row_shr:{c & 0xF}"
    elif 0x121 <= c <= 0x12F:
        ctl = f"row_ror:{c & 0xF}"
    elif c == 0x140:
        ctl = "row_mirror"
    elif c == 0x141:
        ctl = "row_half_mirror"
    elif 0x150 <= c <= 0x15F:
        ctl = f"row_share:{c & 0xF}"
    elif 0x160 <= c <= 0x16F:
        ctl = f"row_xmask:{c & 0xF}"
    else:
        ctl = f"dpp_ctrl:0x{c:x}"
    s = f"{ctl} row_mask:0x{d['row_mask']:x} bank_mask:0x{d['bank_mask']:x}"
    if d["bound_ctrl"]:
        s += " bound_ctrl:1"
    if d["fi"]:
        s += " fi:1"
    return s


def _vop_src(i: Inst, code: int, t: str) -> str:
    return src_text(code, _n(t), t, i.literal)


def _vop12c(i: Inst) -> str:
    f, n = i.f, i.name
    dt, sts = valu_types(n)
    dpp = i.dpp is not None
    has_e64 = isa.OPCODES["VOP3"].get(isa.VOP3_FROM[i.fmt] + i.op) == n
    suffix = ("" if i.fmt == "VOPC" else "_dpp") if dpp else "_e32" if has_e64 else ""
    src0 = i.dpp["src0"] + OP["VGPR_MIN"] if dpp else f["src0"]
    s0 = _vop_src(i, src0, sts[0]) if sts else ""
    if dpp and not i.dpp8:
        s0 = _mod(s0, i.dpp["src0_neg"], i.dpp["src0_abs"])
    if i.fmt == "VOPC":
        s1 = _vdst(f["vsrc1"], _n(sts[1]))
        if dpp and not i.dpp8:
            s1 = _mod(s1, i.dpp["src1_neg"], i.dpp["src1_abs"])
        if n.startswith("v_cmpx_"):
            txt = f"{n}{suffix} {s0}, {s1}"
        else:
            txt = f"{n}{suffix} vcc_lo, {s0}, {s1}"
    elif i.fmt == "VOP1":
        if n in ("v_nop", "v_pipeflush"):
            return n + suffix
        if n == "v_readfirstlane_b32":
            return f"{n} {_sdst(f['vdst'])}, {s0}"
        if n in _TRUE16_VOP1:
            # LLVM 19 decodes these as true16: register bit 7 selects the high half (.h)
            def half(r):
                return f"v{r & 127}.{'h' if r & 128 else 'l'}"
            s0t = half(src0 - OP["VGPR_MIN"]) if src0 >= OP["VGPR_MIN"] else s0
            txt = f"{n}{suffix} {half(f['vdst'])}, {s0t}"
            return txt + (" " + _dpp_text(i.dpp, i.dpp8) if dpp else "")
        txt = f"{n}{suffix} {_vdst(f['vdst'], _n(dt))}, {s0}"
    else:  # VOP2
        s1 = _vdst(f["vsrc1"], _n(sts[1]))
        if dpp and not i.dpp8:
            s1 = _mod(s1, i.dpp["src1_neg"], i.dpp["src1_abs"])
        d = _vdst(f["vdst"], _n(dt))
        if n in _VOP2_LITERAL:
            k = f"0x{i.literal:x}"
            if "fmamk" in n:
                return f"{n} {d}, {s0}, {k}, {s1}"
            return f"{n} {d}, {s0}, {s1}, {k}"
        if n in ("v_cndmask_b32",):
            txt = f"{n}{suffix} {d}, {s0}, {s1}, vcc_lo"
        elif n in ("v_add_co_ci_u32", "v_sub_co_ci_u32", "v_subrev_co_ci_u32"):
            txt = f"{n}{suffix} {d}, vcc_lo, {s0}, {s1}, vcc_lo"
        else:
            txt = f"{n}{suffix} {d}, {s0}, {s1}"
    if dpp:
        txt += " " + _dpp_text(i.dpp, i.dpp8)
    return txt


_VOP3_SD = {"v_add_co_u32", "v_sub_co_u32", "v_subrev_co_u32", "v_add_co_ci_u32", "v_sub_co_ci_u32",
            "v_subrev_co_ci_u32", "v_div_scale_f32", "v_div_scale_f64", "v_mad_u64_u32", "v_mad_i64_i32"}
_OMOD = {1: " mul:2", 2: " mul:4", 3: " div:2"}


def _nsrc_vop3(n: str, i: Inst) -> int:
    if i.promoted and i.op < 0x100:
        return 2                                       # VOPC
    if i.promoted and i.op >= 0x180:
        return 0 if n in ("v_nop", "v_pipeflush") else 1   # VOP1
    k = arity(n)
    if k is None:
        k = len([t for t in valu_types(n)[1] if t])
    return k


def _vop3(i: Inst) -> str:
    f, n = i.f, i.name
    dt, sts = valu_types(n)
    nsrc = _nsrc_vop3(n, i)
    sd = n in _VOP3_SD
    abs_ = 0 if sd else f["abs"]
    opsel = 0 if sd else f["opsel"]
    ops = []
    for k in range(nsrc):
        t = sts[k] if k < len(sts) else "b32"
        code = f[f"src{k}"]
        if t == "mask":
            ops.append(reg_name(code, 1))
            continue
        ops.append(_mod(_vop_src(i, code, t), (f["neg"] >> k) & 1, (abs_ >> k) & 1, _is_const(code)))
    name = n + ("_e64" if i.promoted else "")
    if n.startswith("v_cmpx_"):
        head = ""
    elif n.startswith("v_cmp_") or n == "v_readlane_b32" or n == "v_readfirstlane_b32":
        head = _sdst(f["vdst"])
    else:
        head = _vdst(f["vdst"], _n(dt) if dt != "mask" else 1)
        if sd:
            head += ", " + _sdst(f["sdst"])
    txt = f"{name} {', '.join(([head] if head else []) + ops)}"
    if nsrc == 0:
        txt = name
    if f["clamp"]:
        txt += " clamp"
    if opsel:
        bits = [(opsel >> k) & 1 for k in range(nsrc)] + [(opsel >> 3) & 1]
        txt += f" op_sel:[{','.join(map(str, bits))}]"
    if f["omod"]:
        txt += _OMOD[f["omod"]]
    return txt


def _vop3p(i: Inst) -> str:
    f, n = i.f, i.name
    nsrc = arity(n) or 3
    if n.startswith("v_wmma_"):
        ab = 4 if n.endswith("iu8") else 2 if n.endswith("iu4") else 8     # A/B registers per lane
        cd = 4 if n.split("_")[2] in ("f16", "bf16") else 8                 # packed 16-bit C/D: 4
        ops = [_vdst(f["vdst"], cd), src_text(f["src0"], ab, "b32", None), src_text(f["src1"], ab, "b32", None),
               src_text(f["src2"], cd, "b32", None)]
        return f"{n} {', '.join(ops)}" + _vop3p_mods(i, 3)
    if n.startswith("v_fma_mix"):
        # mix: neg_lo negates and neg_hi takes the absolute value of each source; op_sel_hi
        # (f16 vs f32 source) defaults to 0 (LLVM AMDGPUInstPrinter, FMA_MIX)
        ops = [_vdst(f["vdst"])]
        for k in range(3):
            code = f[f"src{k}"]
            ops.append(_mod(src_text(code, 1, "f32", i.literal), (f["neg"] >> k) & 1, (f["neg_hi"] >> k) & 1,
                            _is_const(code)))
        opsel = [(f["opsel"] >> k) & 1 for k in range(3)]
        hi = [(f["opsel_hi"] >> k) & 1 for k in range(2)] + [f["opsel_hi2"]]
        txt = f"{n} {', '.join(ops)}"
        if any(opsel):
            txt += f" op_sel:[{','.join(map(str, opsel))}]"
        if any(hi):
            txt += f" op_sel_hi:[{','.join(map(str, hi))}]"
        return txt + (" clamp" if f["clamp"] else "")
    dt, sts = valu_types(n)
    ops = [_vdst(f["vdst"])]
    for k in range(nsrc):
        t = sts[k] if k < len(sts) else "b32"
        ops.append(src_text(f[f"src{k}"], 1, "f16" if t == "b32" else t, i.literal))
    return f"{n} {', '.join(ops)}" + _vop3p_mods(i, nsrc)


def _vop3p_mods(i: Inst, nsrc: int) -> str:
    f = i.f
    opsel = [(f["opsel"] >> k) & 1 for k in range(nsrc)]
    hi = [(f["opsel_hi"] >> k) & 1 for k in range(min(nsrc, 2))] + ([f["opsel_hi2"]] if nsrc == 3 else [])
    neg = [(f["neg"] >> k) & 1 for k in range(nsrc)]
    neg_hi = [(f["neg_hi"] >> k) & 1 for k in range(nsrc)]
    s = ""
    if any(opsel):
        s += f" op_sel:[{','.join(map(str, opsel))}]"
    if not all(hi):
        s += f" op_sel_hi:[{','.join(map(str, hi))}]"
    if any(neg):
        s += f" neg_lo:[{','.join(map(str, neg))}]"
    if any(neg_hi):
        s += f" neg_hi:[{','.join(map(str, neg_hi))}]"
    if f["clamp"]:
        s += " clamp"
    return s


def _vopd(i: Inst) -> str:
    f = i.f
    vdsty = (f["vdsty"] << 1) | ((f["vdstx"] & 1) ^ 1)

    def half(name, dst, s0, s1):
        a = src_text(s0, 1, "f32", i.literal)
        b = f"v{s1}"
        if name == "v_dual_mov_b32":
            return f"{name} v{dst}, {a}"
        if name == "v_dual_fmamk_f32":
            return f"{name} v{dst}, {a}, 0x{i.literal:x}, {b}"
        if name == "v_dual_fmaak_f32":
            return f"{name} v{dst}, {a}, {b}, 0x{i.literal:x}"
        return f"{name} v{dst}, {a}, {b}"
    return f"{half(i.name, f['vdstx'], f['srcx0'], f['vsrcx1'])} :: " \
           f"{half(i.vopd_y, vdsty, f['srcy0'], f['vsrcy1'])}"


# ---- memory --------------------------------------------------------------------------------------
def _ds_width(n: str) -> int:
    for suf, w in (("b128", 4), ("b96", 3), ("b64", 2), ("u64", 2), ("i64", 2), ("f64", 2)):
        if n.endswith(suf):
            return w
    return 1


def _ds(i: Inst) -> str:
    f, n = i.f, i.name
    if n == "ds_nop":
        return n
    w = _ds_width(n)
    two = "_2addr" in n or "2addr" in n
    rtn = "_rtn" in n or n.startswith("ds_load") or n in ("ds_swizzle_b32", "ds_permute_b32", "ds_bpermute_b32")
    ops = []
    if rtn:
        ops.append(_vdst(f["vdst"], w * (2 if two else 1) if "storexchg_2addr" in n or n.startswith("ds_load_2addr")
                         else w))
    if n in ("ds_append", "ds_consume"):
        ops = [_vdst(f["vdst"])]
    else:
        ops.append(_vdst(f["addr"]))
    nd = 0
    if n.startswith(("ds_store", "ds_storexchg")) or (not n.startswith(("ds_load", "ds_swizzle", "ds_append",
                                                                           "ds_consume")) and n != "ds_nop"):
        nd = 2 if (two or "cmpstore" in n or "mskor" in n) else 1
    if n in ("ds_swizzle_b32",):
        nd = 0
    if n in ("ds_permute_b32", "ds_bpermute_b32"):
        nd = 1
    if nd >= 1:
        ops.append(_vdst(f["data0"], w))
    if nd == 2:
        ops.append(_vdst(f["data1"], w))
    txt = f"{n} {', '.join(ops)}"
    if two:
        if f["offset0"]:
            txt += f" offset0:{f['offset0']}"
        if f["offset1"]:
            txt += f" offset1:{f['offset1']}"
    else:
        off = f["offset0"] | (f["offset1"] << 8)
        if n == "ds_swizzle_b32" and off:
            txt += f" offset:{swizzle_text(off)}"
        elif off:
            txt += f" offset:{off}"
    if f["gds"]:
        txt += " gds"
    return txt


def swizzle_text(off: int) -> str:
    """ds_swizzle offset as LLVM prints it (AMDGPUInstPrinter::printSwizzle)."""
    if off & 0xFF00 == 0x8000:
        return f"swizzle(QUAD_PERM,{off & 3},{(off >> 2) & 3},{(off >> 4) & 3},{(off >> 6) & 3})"
    if off & 0x8000:
        return str(off)
    and_m, or_m, xor_m = off & 0x1F, (off >> 5) & 0x1F, (off >> 10) & 0x1F
    if and_m == 0x1F and or_m == 0 and bin(xor_m).count("1") == 1:
        return f"swizzle(SWAP,{xor_m})"
    if and_m == 0x1F and or_m == 0 and xor_m > 0 and (xor_m + 1) & xor_m == 0:
        return f"swizzle(REVERSE,{xor_m + 1})"
    group = 0x1F - and_m + 1
    if group > 1 and group & (group - 1) == 0 and or_m < group and xor_m == 0:
        return f"swizzle(BROADCAST,{group},{or_m})"
    p0 = ((0 & and_m) | or_m) ^ xor_m
    p1 = ((0x1F & and_m) | or_m) ^ xor_m
    chars = []
    for b in range(4, -1, -1):
        a0, a1 = (p0 >> b) & 1, (p1 >> b) & 1
        chars.append(("1" if a0 else "0") if a0 == a1 else ("i" if a0 else "p"))
    return f'swizzle(BITMASK_PERM,"{"".join(chars)}")'


def _mem_width(n: str) -> int:
    tail = n.rsplit("_", 1)[1]
    return {"b64": 2, "u64": 2, "i64": 2, "f64": 2, "b96": 3, "b128": 4}.get(tail, 1)


def _cpol(f: dict) -> str:
    return "".join(f" {k}" for k in ("glc", "slc", "dlc") if f[k])


def _flat(i: Inst) -> str:
    f, n = i.f, i.name
    w = _mem_width(n)
    is_store = "_store" in n
    is_atomic = "_atomic" in n
    off = f["offset"]
    if i.fmt != "FLAT" and off & 0x1000:
        off -= 0x2000
    ops = []
    if not is_store and (not is_atomic or f["glc"]):
        ops.append(_vdst(f["vdst"], w * (2 if "cmpswap" in n else 1) // (2 if "cmpswap" in n else 1)))
    saddr_off = f["saddr"] == OP["NULL"] or f["saddr"] == 0x7F
    if i.fmt == "SCRATCH":
        addr = _vdst(f["addr"]) if f["sve"] else "off"
        ops.append(addr)
    elif i.fmt == "GLOBAL" and not saddr_off:
        ops.append(_vdst(f["addr"]))
    else:
        ops.append(_vdst(f["addr"], 2))
    if is_store or is_atomic:
        ops.append(_vdst(f["data"], w * (2 if "cmpswap" in n else 1)))
    if i.fmt != "FLAT":
        ops.append("off" if saddr_off else reg_name(f["saddr"], 1 if i.fmt == "SCRATCH" else 2))
    txt = f"{n} {', '.join(ops)}"
    if off:
        txt += f" offset:{off}"
    return txt + _cpol(f)


def _mubuf(i: Inst) -> str:
    f, n = i.f, i.name
    if n in ("buffer_gl0_inv", "buffer_gl1_inv"):
        return n
    w = _mem_width(n) * (2 if "cmpswap" in n else 1)
    vaddr = "off"
    if f["idxen"] and f["offen"]:
        vaddr = _vdst(f["vaddr"], 2)
    elif f["idxen"] or f["offen"]:
        vaddr = _vdst(f["vaddr"])
    txt = f"{n} {_vdst(f['vdata'], w)}, {vaddr}, {reg_name(f['srsrc'] * 4, 4)}, " \
          f"{src_text(f['soffset'], 1, 'b32', None)}"
    if f["idxen"]:
        txt += " idxen"
    if f["offen"]:
        txt += " offen"
    if f["offset"]:
        txt += f" offset:{f['offset']}"
    return txt + _cpol(f) + (" tfe" if f["tfe"] else "") + (" lds" if f["lds"] else "")


_DISASM = {"SOP2": _sop2, "SOP1": _sop1, "SOPC": _sopc, "SOPK": _sopk, "SOPP": _sopp, "SMEM": _smem,
           "VOP1": _vop12c, "VOP2": _vop12c, "VOPC": _vop12c, "VOP3": _vop3, "VOP3P": _vop3p, "VOPD": _vopd,
           "DS": _ds, "FLAT": _flat, "GLOBAL": _flat, "SCRATCH": _flat, "MUBUF": _mubuf}
