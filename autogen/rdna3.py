"""RDNA3 (gfx11) ISA facts → ``hwdrv/amd/gen/rdna3_isa.py``.

Sources (pinned in ``manifest.py``; a sha256 of each file goes into the output):
- opcode numbers: Mesa ``src/amd/compiler/aco_opcodes.py`` (the ``gfx11`` column of every
  instruction), executed in a private namespace at generation time;
- COMPUTE_PGM_RSRC1/2/3 and kernel_code_properties fields: LLVM
  ``llvm/include/llvm/Support/AMDHSAKernelDescriptor.h`` (the entries valid on gfx11);
- instruction word layouts (``FORMATS`` below): LLVM's gfx11 ``*_Real_gfx11`` encodings
  (``SOPInstructions.td``, ``SMInstructions.td``, ``VOP1/2/3/3P/CInstructions.td``,
  ``VOPDInstructions.td``, ``DSInstructions.td``, ``FLATInstructions.td``,
  ``BUFInstructions.td``, ``SIInstrFormats.td``) and the RDNA3 ISA guide, chapter 15
  "Microcode Formats". They are checked field by field against llvm-mc-19 by
  ``tests/test_rdna3_isa_llvm.py`` (vectors in ``tests/data/amd/isa``).

Mesa spells instructions the pre-gfx11 way (``global_load_dword``, ``ds_write_b32``,
``v_add_u32``); LLVM's gfx11 assembler renamed many. ``llvm_name`` applies the documented gfx11
renames so the disassembler prints LLVM's spelling; the llvm-mc test checks every name used.
"""
from __future__ import annotations

import hashlib
import os
import re
import runpy

from .manifest import REPOS

MESA_FILE = "src/amd/compiler/aco_opcodes.py"
KD_FILE = "llvm/include/llvm/Support/AMDHSAKernelDescriptor.h"

# Mesa format name -> our format key. VOP1/VOP2/VOPC instructions also exist in VOP3 encoding
# with opcode VOPC+0, VOP2+0x100, VOP1+0x180 (ISA guide 15.3.4; LLVM VOP3_Real_gfx11 via
# VOP1/VOP2/VOPC "e64" promotion).
FORMATS_KEPT = ("SOP1", "SOP2", "SOPK", "SOPC", "SOPP", "SMEM", "VOP1", "VOP2", "VOP3", "VOP3P",
                "VOPC", "VOPD", "DS", "FLAT", "GLOBAL", "SCRATCH", "MUBUF")
VOP3_FROM = {"VOPC": 0x000, "VOP2": 0x100, "VOP1": 0x180}
# VOP1/VOP2 instructions LLVM defines only in the 32-bit encoding (VOP2Instructions.td /
# VOP1Instructions.td: VOP2_e32-only definitions, no _e64 form on gfx11).
NO_VOP3_FORM = {"v_dot2acc_f32_f16", "v_swap_b32", "v_swap_b16", "v_fmamk_f32", "v_fmaak_f32", "v_fmamk_f16",
                "v_fmaak_f16", "v_pk_fmac_f16", "v_dot2c_f32_f16", "v_swaprel_b32", "v_nop", "v_pipeflush"}

# Instruction word layouts: format -> (match mask, match value on dword 0, size in dwords,
# {field: (dword, hi, lo)}). Order matters: the decoder tries them in this order.
FORMATS: dict[str, tuple[int, int, int, dict[str, tuple[int, int, int]]]] = {
    "SOPP": (0xFF800000, 0xBF800000, 1, {"op": (0, 22, 16), "simm16": (0, 15, 0)}),
    "SOPC": (0xFF800000, 0xBF000000, 1, {"op": (0, 22, 16), "ssrc1": (0, 15, 8), "ssrc0": (0, 7, 0)}),
    "SOP1": (0xFF800000, 0xBE800000, 1, {"sdst": (0, 22, 16), "op": (0, 15, 8), "ssrc0": (0, 7, 0)}),
    "SOPK": (0xF0000000, 0xB0000000, 1, {"op": (0, 27, 23), "sdst": (0, 22, 16), "simm16": (0, 15, 0)}),
    "SOP2": (0xC0000000, 0x80000000, 1, {"op": (0, 29, 23), "sdst": (0, 22, 16), "ssrc1": (0, 15, 8),
                                         "ssrc0": (0, 7, 0)}),
    "SMEM": (0xFC000000, 0xF4000000, 2, {"op": (0, 25, 18), "glc": (0, 14, 14), "dlc": (0, 13, 13),
                                         "sdata": (0, 12, 6), "sbase": (0, 5, 0), "soffset": (1, 31, 25),
                                         "offset": (1, 20, 0)}),
    "VOP1": (0xFE000000, 0x7E000000, 1, {"vdst": (0, 24, 17), "op": (0, 16, 9), "src0": (0, 8, 0)}),
    "VOPC": (0xFE000000, 0x7C000000, 1, {"op": (0, 24, 17), "vsrc1": (0, 16, 9), "src0": (0, 8, 0)}),
    "VOP2": (0x80000000, 0x00000000, 1, {"op": (0, 30, 25), "vdst": (0, 24, 17), "vsrc1": (0, 16, 9),
                                         "src0": (0, 8, 0)}),
    "VOP3": (0xFC000000, 0xD4000000, 2, {"op": (0, 25, 16), "clamp": (0, 15, 15), "opsel": (0, 14, 11),
                                         "abs": (0, 10, 8), "sdst": (0, 14, 8), "vdst": (0, 7, 0),
                                         "neg": (1, 31, 29), "omod": (1, 28, 27), "src2": (1, 26, 18),
                                         "src1": (1, 17, 9), "src0": (1, 8, 0)}),
    "VOP3P": (0xFF000000, 0xCC000000, 2, {"op": (0, 22, 16), "clamp": (0, 15, 15), "opsel_hi2": (0, 14, 14),
                                          "opsel": (0, 13, 11), "neg_hi": (0, 10, 8), "vdst": (0, 7, 0),
                                          "neg": (1, 31, 29), "opsel_hi": (1, 28, 27), "src2": (1, 26, 18),
                                          "src1": (1, 17, 9), "src0": (1, 8, 0)}),
    "VOPD": (0xFC000000, 0xC8000000, 2, {"opx": (0, 25, 22), "opy": (0, 21, 17), "vsrcx1": (0, 16, 9),
                                         "srcx0": (0, 8, 0), "vdstx": (1, 31, 24), "vdsty": (1, 23, 17),
                                         "vsrcy1": (1, 16, 9), "srcy0": (1, 8, 0)}),
    "DS": (0xFC000000, 0xD8000000, 2, {"op": (0, 25, 18), "gds": (0, 17, 17), "offset1": (0, 15, 8),
                                       "offset0": (0, 7, 0), "vdst": (1, 31, 24), "data1": (1, 23, 16),
                                       "data0": (1, 15, 8), "addr": (1, 7, 0)}),
    # FLAT, GLOBAL and SCRATCH share one encoding; "seg" selects (0 flat, 1 scratch, 2 global).
    "FLAT": (0xFC000000, 0xDC000000, 2, {"op": (0, 24, 18), "seg": (0, 17, 16), "slc": (0, 15, 15),
                                         "glc": (0, 14, 14), "dlc": (0, 13, 13), "offset": (0, 12, 0),
                                         "vdst": (1, 31, 24), "sve": (1, 23, 23), "saddr": (1, 22, 16),
                                         "data": (1, 15, 8), "addr": (1, 7, 0)}),
    "MUBUF": (0xFC000000, 0xE0000000, 2, {"op": (0, 25, 18), "lds": (0, 16, 16), "glc": (0, 14, 14),
                                          "dlc": (0, 13, 13), "slc": (0, 12, 12), "offset": (0, 11, 0),
                                          "soffset": (1, 31, 24), "idxen": (1, 23, 23), "offen": (1, 22, 22),
                                          "tfe": (1, 21, 21), "srsrc": (1, 20, 16), "vdata": (1, 15, 8),
                                          "vaddr": (1, 7, 0)}),
}
# Extra words: VOP1/VOP2/VOPC (and VOP3 on gfx11) with src0 == DPP16 / DPP8 take one more dword.
DPP16_FIELDS = {"src0": (7, 0), "dpp_ctrl": (16, 8), "fi": (18, 18), "bound_ctrl": (19, 19),
                "src0_neg": (20, 20), "src0_abs": (21, 21), "src1_neg": (22, 22), "src1_abs": (23, 23),
                "bank_mask": (27, 24), "row_mask": (31, 28)}
DPP8_FIELDS = {"src0": (7, 0), "lane_sel": (31, 8)}

# gfx11 operand encoding of 9-bit sources (ISA guide 15.1 / LLVM SIDefines.h, AMDGPU::EncValues).
# gfx11 swapped null and m0 relative to gfx10 (LLVM SIRegisterInfo.td: SGPR_NULL_gfx11plus = 124, M0_gfx11plus = 125).
OPERANDS = {"SGPR_MAX": 105, "VCC_LO": 106, "VCC_HI": 107, "TTMP_MIN": 108, "TTMP_MAX": 123, "NULL": 124,
            "M0": 125, "EXEC_LO": 126, "EXEC_HI": 127, "INLINE_INT_ZERO": 128, "INLINE_INT_POS_MAX": 192,
            "INLINE_INT_NEG_MIN": 193, "INLINE_INT_NEG_MAX": 208, "DPP8": 233, "DPP8_FI": 234,
            "SHARED_BASE": 235, "SHARED_LIMIT": 236, "PRIVATE_BASE": 237, "PRIVATE_LIMIT": 238,
            "INLINE_F_0_5": 240, "INLINE_F_NEG_0_5": 241, "INLINE_F_1": 242, "INLINE_F_NEG_1": 243,
            "INLINE_F_2": 244, "INLINE_F_NEG_2": 245, "INLINE_F_4": 246, "INLINE_F_NEG_4": 247,
            "INLINE_INV_2PI": 248, "DPP16": 250, "VCCZ": 251, "EXECZ": 252, "SCC": 253, "LITERAL": 255,
            "VGPR_MIN": 256}

# Mesa (pre-gfx11) spelling -> LLVM gfx11 spelling. Whole-name exceptions first.
_RENAME_EXACT = {
    "v_add_u32": "v_add_nc_u32", "v_sub_u32": "v_sub_nc_u32", "v_subrev_u32": "v_subrev_nc_u32",
    "v_addc_co_u32": "v_add_co_ci_u32", "v_subb_co_u32": "v_sub_co_ci_u32",
    "v_subbrev_co_u32": "v_subrev_co_ci_u32", "v_dot2c_f32_f16": "v_dot2acc_f32_f16",
    "v_fmac_legacy_f32": "v_fmac_dx9_zero_f32", "v_mul_legacy_f32": "v_mul_dx9_zero_f32",
    "v_fma_legacy_f32": "v_fma_dx9_zero_f32",
    "v_cvt_pkrtz_f16_f32": "v_cvt_pk_rtz_f16_f32", "v_ffbh_u32": "v_clz_i32_u32",
    "v_ffbl_b32": "v_ctz_i32_b32", "v_ffbh_i32": "v_cls_i32", "v_cvt_rpi_i32_f32": "v_cvt_nearest_i32_f32",
    "v_cvt_flr_i32_f32": "v_cvt_floor_i32_f32", "v_add_u16": "v_add_nc_u16", "v_sub_u16": "v_sub_nc_u16",
    "v_add_i16": "v_add_nc_i16", "v_sub_i16": "v_sub_nc_i16", "v_add_i32": "v_add_nc_i32",
    "v_sub_i32": "v_sub_nc_i32", "v_mul_lo_i32": "v_mul_lo_u32",
    "s_ff1_i32_b32": "s_ctz_i32_b32", "s_ff1_i32_b64": "s_ctz_i32_b64", "s_flbit_i32_b32": "s_clz_i32_u32",
    "s_flbit_i32_b64": "s_clz_i32_u64", "s_flbit_i32": "s_cls_i32", "s_flbit_i32_i64": "s_cls_i32_i64",
    "s_andn1_saveexec_b32": "s_and_not0_saveexec_b32", "s_andn1_saveexec_b64": "s_and_not0_saveexec_b64",
    "s_orn1_saveexec_b32": "s_or_not0_saveexec_b32", "s_orn1_saveexec_b64": "s_or_not0_saveexec_b64",
    "s_andn2_saveexec_b32": "s_and_not1_saveexec_b32", "s_andn2_saveexec_b64": "s_and_not1_saveexec_b64",
    "s_orn2_saveexec_b32": "s_or_not1_saveexec_b32", "s_orn2_saveexec_b64": "s_or_not1_saveexec_b64",
    "s_andn1_wrexec_b32": "s_and_not0_wrexec_b32", "s_andn1_wrexec_b64": "s_and_not0_wrexec_b64",
    "s_andn2_wrexec_b32": "s_and_not1_wrexec_b32", "s_andn2_wrexec_b64": "s_and_not1_wrexec_b64",
    "s_andn2_b32": "s_and_not1_b32", "s_andn2_b64": "s_and_not1_b64", "s_orn2_b32": "s_or_not1_b32",
    "s_orn2_b64": "s_or_not1_b64",
    "global_load_dword_addtid": "global_load_addtid_b32", "global_store_dword_addtid": "global_store_addtid_b32",
    "ds_read_addtid_b32": "ds_load_addtid_b32", "ds_write_addtid_b32": "ds_store_addtid_b32",
    "s_inst_prefetch": "s_set_inst_prefetch_distance",
}
_MEM_SIZES = [("dwordx2", "b64"), ("dwordx3", "b96"), ("dwordx4", "b128"), ("dwordx8", "b256"),
              ("dwordx16", "b512"), ("dword", "b32"), ("ubyte", "u8"), ("sbyte", "i8"), ("ushort", "u16"),
              ("sshort", "i16"), ("byte", "b8"), ("short", "b16")]
_ATOMIC = {"add": "add_u32", "sub": "sub_u32", "smin": "min_i32", "umin": "min_u32", "smax": "max_i32",
           "umax": "max_u32", "and": "and_b32", "or": "or_b32", "xor": "xor_b32", "inc": "inc_u32",
           "dec": "dec_u32", "swap": "swap_b32", "cmpswap": "cmpswap_b32", "fcmpswap": "cmpswap_f32",
           "fmin": "min_f32", "fmax": "max_f32", "csub": "csub_u32", "add_f32": "add_f32"}
_DS = [("read2st64_", "load_2addr_stride64_"), ("write2st64_", "store_2addr_stride64_"),
       ("wrxchg2st64_", "storexchg_2addr_stride64_"), ("read2_", "load_2addr_"), ("write2_", "store_2addr_"),
       ("wrxchg2_", "storexchg_2addr_"), ("wrxchg_", "storexchg_"), ("read_", "load_"), ("write_", "store_"),
       ("cmpst_", "cmpstore_")]


def llvm_name(name: str, fmt: str) -> str:
    """The LLVM gfx11 spelling of Mesa's instruction name ``name`` (format ``fmt``)."""
    name = name.removesuffix("_e64")
    if name in _RENAME_EXACT:
        return _RENAME_EXACT[name]
    if fmt == "VOPC":
        name = re.sub(r"_tru_", "_t_", name)
        if re.search(r"_[iu](16|32|64)$", name):
            name = name.replace("_lg_", "_ne_")
        return name
    if fmt in ("SMEM", "FLAT", "GLOBAL", "SCRATCH", "MUBUF"):
        pre, _, rest = name.partition("_")
        if rest.startswith("atomic_"):
            base = rest[len("atomic_"):]
            x2 = base.endswith("_x2")
            base = base.removesuffix("_x2")
            new = _ATOMIC[base]
            if x2:
                new = new.replace("32", "64")
            return f"{pre}_atomic_{new}"
        # d16 loads/stores: <op>_<type>_d16[_hi] -> <op>_d16[_hi]_<type>
        m = re.fullmatch(r"(load|store)_(\w+?)_d16(_hi)?", rest)
        if m and not rest.startswith(("load_format", "store_format")):
            op, ty, hi = m.groups()
            ty = dict(_MEM_SIZES).get(ty, ty)
            ty = {"u16": "b16", "i16": "b16"}.get(ty, ty) if op == "store" or ty in ("b16",) else ty
            return f"{pre}_{op}_d16{hi or ''}_{ty}"
        for old, new in _MEM_SIZES:
            if rest.endswith("_" + old):
                return f"{pre}_{rest[:-len(old)]}{new}"
        return name
    if fmt == "DS":
        for old, new in _DS:
            if name.startswith("ds_" + old):
                return "ds_" + new + name[len("ds_" + old):]
        return name
    return name


def _mesa_ops(path: str) -> dict[str, dict[int, str]]:
    ns = runpy.run_path(path, run_name="aco_opcodes")
    out: dict[str, dict[int, str]] = {f: {} for f in FORMATS_KEPT}
    for name, ins in sorted(ns["instructions"].items()):
        fmt, op = ins.format.name, ins.op.gfx11
        if op < 0 or fmt not in out:
            continue
        new = llvm_name(name, fmt)
        # Mesa lists v_mul_lo_i32 and v_mul_lo_u32 under one opcode (same bits); keep LLVM's name.
        if op in out[fmt] and out[fmt][op] != new:
            raise ValueError(f"{fmt} opcode {op:#x}: {out[fmt][op]!r} and {new!r}")
        out[fmt][op] = new
    return out


def _kd_fields(path: str) -> dict[str, dict[str, tuple[int, int]]]:
    """{register: {field: (shift, width)}} for the entries of AMDHSAKernelDescriptor.h valid on gfx11."""
    ok_suffix = {"", "_GFX6_GFX11", "_GFX10_PLUS", "_GFX10_GFX11", "_GFX11_PLUS", "_GFX11"}
    out: dict[str, dict[str, tuple[int, int]]] = {}
    pat = re.compile(r"^\s*(COMPUTE_PGM_RSRC[123]|KERNEL_CODE_PROPERTY)((?:_GFX\w+?)?)\((\w+),\s*(\d+),\s*(\d+)\),")
    for line in open(path):
        m = pat.match(line)
        if m and m.group(2) in ok_suffix and not m.group(3).startswith("RESERVED"):
            out.setdefault(m.group(1), {})[m.group(3)] = (int(m.group(4)), int(m.group(5)))
    if set(out) != {"COMPUTE_PGM_RSRC1", "COMPUTE_PGM_RSRC2", "COMPUTE_PGM_RSRC3", "KERNEL_CODE_PROPERTY"}:
        raise ValueError(f"{path}: expected RSRC1/2/3 and kernel code property fields, found {sorted(out)}")
    return out


def _sha(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def source_paths(src: str) -> list[str]:
    return [os.path.join(src, REPOS["mesa_aco"].dir, MESA_FILE), os.path.join(src, REPOS["llvm19"].dir, KD_FILE)]


def generate(src: str) -> str:
    """Module text of hwdrv/amd/gen/rdna3_isa.py from the sources under ``src``."""
    mesa, kd = source_paths(src)
    ops = _mesa_ops(mesa)
    for fmt, base in VOP3_FROM.items():
        for op, name in ops[fmt].items():
            if name not in NO_VOP3_FORM:
                ops["VOP3"].setdefault(base + op, name)
    fields = _kd_fields(kd)
    L = ['"""RDNA3 (gfx11) ISA facts: opcodes per encoding, word layouts, kernel descriptor fields.',
         "", "Generated by `python -m autogen generate rdna3` (autogen/rdna3.py); do not edit.", "Sources:"]
    for key, path, rel in (("mesa_aco", mesa, MESA_FILE), ("llvm19", kd, KD_FILE)):
        r = REPOS[key]
        L.append(f"- {r.repo} {r.tag or ''} {r.commit} {rel} sha256 {_sha(path)}".replace("  ", " "))
    L += ["- word layouts: LLVM gfx11 *_Real_gfx11 encodings / RDNA3 ISA guide ch. 15 (autogen/rdna3.py)",
          '"""', "", "# format -> {opcode: LLVM gfx11 mnemonic}", "OPCODES = {"]
    for fmt in FORMATS_KEPT:
        L.append(f"    {fmt!r}: {{")
        for op in sorted(ops[fmt]):
            L.append(f"        {op:#x}: {ops[fmt][op]!r},")
        L.append("    },")
    L += ["}", "", "# format -> (mask, value) on dword 0, size in dwords, {field: (dword, hi, lo)}; decode in this order",
          "FORMATS = {"]
    for fmt, (mask, val, size, flds) in FORMATS.items():
        L.append(f"    {fmt!r}: ({mask:#010x}, {val:#010x}, {size}, {flds!r}),")
    L += ["}", f"DPP16_FIELDS = {DPP16_FIELDS!r}", f"DPP8_FIELDS = {DPP8_FIELDS!r}",
          "# VOP1/VOP2/VOPC instructions in VOP3 encoding: VOP3 opcode = base + opcode",
          f"VOP3_FROM = {VOP3_FROM!r}", "# 9-bit source operand encodings", "OPERANDS = {"]
    for k, v in OPERANDS.items():
        L.append(f"    {k!r}: {v},")
    L += ["}", "", "# register -> {field: (shift, width)} (AMDHSAKernelDescriptor.h, gfx11 entries)", "KD_FIELDS = {"]
    for reg, f in fields.items():
        L.append(f"    {reg!r}: {{")
        for name, (sh, w) in f.items():
            L.append(f"        {name!r}: ({sh}, {w}),")
        L.append("    },")
    L += ["}", ""]
    return "\n".join(L)
