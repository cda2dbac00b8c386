"""Dispatch of the arithmetic opcodes to the integer or floating-point implementation by type."""
from __future__ import annotations

from . import ops_float, ops_int, ops_packed
from .decode import Ctx, family


@family("add", "sub", "mul", "mad", "fma", "div", "rem", "abs", "neg", "min", "max", "copysign",
        "rcp", "sqrt", "rsqrt", "ex2", "lg2", "sin", "cos", "tanh", "mul24", "mad24", "sad", "testp", "madc",
        "addc", "subc", "dp4a", "dp2a")
def build_arith(ctx: Ctx, ins):
    op = ins.opcode
    if op == "testp":
        return ops_float.build_testp(ctx, ins)
    if op in ("dp4a", "dp2a"):
        return ops_int.build_dp(ctx, ins)
    if any(m in ops_packed.PACKED for m in ins.mods):
        return ops_packed.build_packed16(ctx, ins, op)
    ts = ctx.types(ins)
    if len(ts) != 1:
        raise ctx.error(f"{op} needs exactly one type")
    t = ts[0]
    if t.name in ops_float.FLOAT_TYPES:
        if op in ("rem", "mul24", "mad24", "sad"):
            raise ctx.error(f"{op}.{t.name} does not exist")
        if op == "mad" and t.name != "f32" and t.name != "f64":
            raise ctx.error(f"mad.{t.name} does not exist (use fma)")
        # Legacy forms without a rounding modifier meant the sm_1x approximations: refuse them.
        if op in ("div", "rcp", "sqrt", "fma", "mad") and t.name in ("f32", "f64") \
                and not any(m in ins.mods for m in ("rn", "rz", "rm", "rp", "approx", "full")):
            raise ctx.error(f"{op}.{t.name} needs a rounding modifier (.rn .rz .rm .rp) or .approx")
        return ops_float.build_float(ctx, ins, op, t)
    if t.name not in ops_int.INT_TYPES:
        raise ctx.error(f"{op}.{t.name} is not supported")
    ctx.check_mods(ins, {"lo", "hi", "wide", "sat", "relu", "cc"})
    if "cc" in ins.mods or op in ("addc", "subc", "madc"):
        return ops_int.build_carry(ctx, ins, t)
    if op in ("add", "sub", "mul", "div", "rem", "min", "max"):
        return ops_int.build_int_binary(ctx, ins, op, t)
    if op == "mad":
        return ops_int.build_mad(ctx, ins, t)
    if op in ("mul24", "mad24"):
        return ops_int.build_24(ctx, ins, t)
    if op in ("abs", "neg"):
        return ops_int.build_int_unary(ctx, ins, op, t)
    if op == "sad":
        return ops_int.build_sad(ctx, ins, t)
    raise ctx.error(f"{op}.{t.name} is not supported")
