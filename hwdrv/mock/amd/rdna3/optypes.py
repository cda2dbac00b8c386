"""Operand types of gfx11 instructions, derived from their names (the ISA's naming rule: the last
type token is the source type, the first one after the operation the result type), with the
exceptions the ISA guide lists per instruction. Used by the disassembler (register widths, how
to print inline constants) and by the emulator (how to read and write operands)."""
from __future__ import annotations

import re
from functools import lru_cache

TYPES = ("f16", "f32", "f64", "bf16", "i16", "u16", "b16", "i32", "u32", "b32", "i64", "u64", "b64",
         "i8", "u8", "b8", "i24", "u24", "i4", "u4", "b96", "b128")
_T = re.compile(r"_(f16|f32|f64|bf16|i16|u16|b16|i32|u32|b32|i64|u64|b64|i24|u24)(?=_|$)")


def dwords(t: str) -> int:
    """Registers an operand of type ``t`` occupies."""
    return 2 if t.endswith("64") else 1


@lru_cache(maxsize=None)
def valu_types(name: str) -> tuple[str, tuple[str, ...]]:
    """(result type, source types) of a VALU instruction (up to 3 sources; '' = none).
    Lane masks (VOPC results, carry in/out) are 'mask'."""
    base = name.removesuffix("_e32").removesuffix("_e64")
    ex = _VALU_EXCEPTIONS.get(base)
    if ex:
        return ex
    toks = _T.findall(base)
    if base.startswith(("v_cmp_", "v_cmpx_")):
        t = toks[-1]
        if "_class_" in base:
            return "mask", (t, "u32")
        return "mask", (t, t)
    if base.startswith("v_cvt_") and len(toks) >= 2:
        return toks[0], (toks[1],)
    if not toks:
        return "b32", ("b32", "b32", "b32")
    t = toks[-1]
    if len(toks) >= 2 and toks[0] != t:   # e.g. v_mul_hi_u32_u24, v_frexp_exp_i32_f32
        return toks[0], (t, t, t)
    return t, (t, t, t)


_VALU_EXCEPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "v_lshlrev_b64": ("b64", ("u32", "b64")), "v_lshrrev_b64": ("b64", ("u32", "b64")),
    "v_ashrrev_i64": ("i64", ("u32", "i64")),
    "v_ldexp_f32": ("f32", ("f32", "i32")), "v_ldexp_f64": ("f64", ("f64", "i32")),
    "v_ldexp_f16": ("f16", ("f16", "i16")),
    "v_mad_u64_u32": ("u64", ("u32", "u32", "u64")), "v_mad_i64_i32": ("i64", ("i32", "i32", "i64")),
    "v_frexp_exp_i32_f64": ("i32", ("f64",)), "v_frexp_exp_i32_f32": ("i32", ("f32",)),
    "v_frexp_exp_i16_f16": ("i16", ("f16",)),
    "v_trig_preop_f64": ("f64", ("f64", "u32")),
    "v_readlane_b32": ("b32", ("b32", "u32")), "v_writelane_b32": ("b32", ("b32", "u32")),
    "v_readfirstlane_b32": ("b32", ("b32",)),
    "v_cvt_f32_ubyte0": ("f32", ("u32",)), "v_cvt_f32_ubyte1": ("f32", ("u32",)),
    "v_cvt_f32_ubyte2": ("f32", ("u32",)), "v_cvt_f32_ubyte3": ("f32", ("u32",)),
    "v_cvt_pk_rtz_f16_f32": ("b32", ("f32", "f32")), "v_cvt_pk_u8_f32": ("b32", ("f32", "u32", "u32")),
    "v_cvt_pk_i16_i32": ("b32", ("i32", "i32")), "v_cvt_pk_u16_u32": ("b32", ("u32", "u32")),
    "v_cvt_pk_i16_f32": ("b32", ("f32", "f32")), "v_cvt_pk_u16_f32": ("b32", ("f32", "f32")),
    "v_cvt_pknorm_i16_f32": ("b32", ("f32", "f32")), "v_cvt_pknorm_u16_f32": ("b32", ("f32", "f32")),
    "v_cvt_pknorm_i16_f16": ("b32", ("f16", "f16")), "v_cvt_pknorm_u16_f16": ("b32", ("f16", "f16")),
    "v_pack_b32_f16": ("b32", ("f16", "f16")),
    "v_cvt_f64_f32": ("f64", ("f32",)), "v_cvt_f32_f64": ("f32", ("f64",)),
    "v_cvt_i32_f64": ("i32", ("f64",)), "v_cvt_u32_f64": ("u32", ("f64",)),
    "v_cvt_f64_i32": ("f64", ("i32",)), "v_cvt_f64_u32": ("f64", ("u32",)),
    "v_cvt_i32_i16": ("i32", ("i16",)), "v_cvt_u32_u16": ("u32", ("u16",)),
    "v_cvt_off_f32_i4": ("f32", ("u32",)),
    "v_mbcnt_lo_u32_b32": ("u32", ("b32", "u32")), "v_mbcnt_hi_u32_b32": ("u32", ("b32", "u32")),
    "v_bcnt_u32_b32": ("u32", ("b32", "u32")),
    "v_cndmask_b32": ("b32", ("b32", "b32", "mask")), "v_cndmask_b16": ("b16", ("b16", "b16", "mask")),
    "v_add_co_ci_u32": ("u32", ("u32", "u32", "mask")), "v_sub_co_ci_u32": ("u32", ("u32", "u32", "mask")),
    "v_subrev_co_ci_u32": ("u32", ("u32", "u32", "mask")),
    "v_div_fmas_f32": ("f32", ("f32", "f32", "f32")), "v_div_fmas_f64": ("f64", ("f64", "f64", "f64")),
    "v_dot2_f32_f16": ("f32", ("b32", "b32", "f32")), "v_dot2_f32_bf16": ("f32", ("b32", "b32", "f32")),
    "v_dot2acc_f32_f16": ("f32", ("b32", "b32", "f32")),
    "v_dot2_f16_f16": ("f16", ("b32", "b32", "f16")), "v_dot2_bf16_bf16": ("bf16", ("b32", "b32", "bf16")),
    "v_dot4_i32_iu8": ("i32", ("b32", "b32", "i32")), "v_dot4_u32_u8": ("u32", ("b32", "b32", "u32")),
    "v_dot8_i32_iu4": ("i32", ("b32", "b32", "i32")), "v_dot8_u32_u4": ("u32", ("b32", "b32", "u32")),
    "v_fma_mix_f32": ("f32", ("f32", "f32", "f32")), "v_fma_mixlo_f16": ("f16", ("f32", "f32", "f32")),
    "v_fma_mixhi_f16": ("f16", ("f32", "f32", "f32")),
    "v_permlane16_b32": ("b32", ("b32", "u32", "u32")), "v_permlanex16_b32": ("b32", ("b32", "u32", "u32")),
    "v_swap_b32": ("b32", ("b32",)), "v_mov_b32": ("b32", ("b32",)), "v_not_b32": ("b32", ("b32",)),
    "v_bfrev_b32": ("b32", ("b32",)), "v_clz_i32_u32": ("u32", ("u32",)), "v_ctz_i32_b32": ("u32", ("b32",)),
    "v_cls_i32": ("i32", ("i32",)), "v_mov_b16": ("b16", ("b16",)), "v_not_b16": ("b16", ("b16",)),
    "v_perm_b32": ("b32", ("b32", "b32", "b32")), "v_sat_pk_u8_i16": ("b32", ("b32",)),
    "v_mad_u32_u24": ("u32", ("u24", "u24", "u32")), "v_mad_i32_i24": ("i32", ("i24", "i24", "i32")),
    "v_mad_u32_u16": ("u32", ("u16", "u16", "u32")), "v_mad_i32_i16": ("i32", ("i16", "i16", "i32")),
    "v_mul_u32_u24": ("u32", ("u24", "u24")), "v_mul_i32_i24": ("i32", ("i24", "i24")),
    "v_mul_hi_u32_u24": ("u32", ("u24", "u24")), "v_mul_hi_i32_i24": ("i32", ("i24", "i24")),
    "v_lshlrev_b16": ("b16", ("u16", "b16")), "v_lshrrev_b16": ("b16", ("u16", "b16")),
    "v_ashrrev_i16": ("i16", ("u16", "i16")),
    "v_lshlrev_b32": ("b32", ("u32", "b32")), "v_lshrrev_b32": ("b32", ("u32", "b32")),
    "v_ashrrev_i32": ("i32", ("u32", "i32")), "v_bfm_b32": ("b32", ("u32", "u32")),
    "v_bfe_u32": ("u32", ("u32", "u32", "u32")), "v_bfe_i32": ("i32", ("i32", "u32", "u32")),
    "v_sad_u8": ("u32", ("u32", "u32", "u32")), "v_sad_hi_u8": ("u32", ("u32", "u32", "u32")),
    "v_sad_u16": ("u32", ("u32", "u32", "u32")), "v_sad_u32": ("u32", ("u32", "u32", "u32")),
    "v_msad_u8": ("u32", ("u32", "u32", "u32")), "v_lerp_u8": ("u32", ("u32", "u32", "u32")),
    "v_movrels_b32": ("b32", ("b32",)), "v_movreld_b32": ("b32", ("b32",)), "v_movrelsd_b32": ("b32", ("b32",)),
    "v_cvt_f16_f32": ("f16", ("f32",)), "v_cvt_f32_f16": ("f32", ("f16",)),
    "v_cvt_i16_f16": ("i16", ("f16",)), "v_cvt_u16_f16": ("u16", ("f16",)),
    "v_cvt_f16_i16": ("f16", ("i16",)), "v_cvt_f16_u16": ("f16", ("u16",)),
}


@lru_cache(maxsize=None)
def salu_types(name: str) -> tuple[int, tuple[int, ...]]:
    """(result dwords, source dwords) of a scalar instruction (SOP1/SOP2/SOPC/SOPK)."""
    ex = _SALU_EXCEPTIONS.get(name)
    if ex:
        return ex
    n = 2 if re.search(r"_[biu]64$", name) else 1
    return n, (n, n)


_SALU_EXCEPTIONS = {
    "s_lshl_b64": (2, (2, 1)), "s_lshr_b64": (2, (2, 1)), "s_ashr_i64": (2, (2, 1)),
    "s_bfe_u64": (2, (2, 1)), "s_bfe_i64": (2, (2, 1)), "s_bfm_b64": (2, (1, 1)),
    "s_bcnt0_i32_b64": (1, (2,)), "s_bcnt1_i32_b64": (1, (2,)), "s_ctz_i32_b64": (1, (2,)),
    "s_clz_i32_u64": (1, (2,)), "s_cls_i32_i64": (1, (2,)), "s_bitset0_b64": (2, (1,)),
    "s_bitset1_b64": (2, (1,)), "s_bitcmp0_b64": (0, (2, 1)), "s_bitcmp1_b64": (0, (2, 1)),
    "s_bitreplicate_b64_b32": (2, (1,)), "s_getpc_b64": (2, ()), "s_setpc_b64": (0, (2,)),
    "s_swappc_b64": (2, (2,)), "s_quadmask_b64": (2, (2,)), "s_wqm_b64": (2, (2,)),
    "s_movrels_b64": (2, (2,)), "s_movreld_b64": (2, (2,)), "s_rfe_b64": (0, (2,)), "s_sendmsg_rtn_b64": (2, ()),
    "s_sendmsg_rtn_b32": (1, ()),
}
