"""Decoder: parsed instructions -> executable ops (closures over pre-resolved operands).

All string work happens here, once per instruction; the executor only calls ``op.run(state,
idx)``. Instruction families register builders with :func:`family`; an opcode without a
builder, or a form a builder rejects, is a PTXError naming the instruction and line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .ast import Instr
from .errors import PTXError
from .operands import Symbols, address, reader, writer
from .types import PType, ptype

BUILDERS: dict[str, Callable[["Ctx", Instr], Callable]] = {}

# Modifiers that only carry scheduling, caching, ordering or scope information: no effect on
# results in an interpreter that executes memory operations in program order.
IGNORED_MODS = {"uni", "sync", "aligned", "volatile", "relaxed", "acquire", "release", "acq_rel", "weak",
                "sc", "cta", "gpu", "sys", "cluster", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "nc",
                "L1::evict_normal", "L1::evict_unchanged", "L1::evict_first", "L1::evict_last",
                "L1::no_allocate", "L2::evict_normal", "L2::evict_first", "L2::evict_last",
                "L2::64B", "L2::128B", "L2::256B", "L2::cache_hint", "mmio", "shared::cta"}


@dataclass
class Op:
    """An executable instruction. kind: 'op' (straight-line), 'bra', 'exit', 'bar'."""
    run: Callable | None
    kind: str
    line: int
    text: str
    guard: tuple | None
    target: int = -1
    opcode: str = ""


def family(*opcodes: str):
    """Register a builder ``f(ctx, ins) -> run`` for the given opcodes."""
    def deco(f):
        for o in opcodes:
            BUILDERS[o] = f
        return f
    return deco


class Ctx:
    """What builders need while decoding one function."""

    def __init__(self, syms: Symbols, labels: dict[str, int], fn_name: str):
        self.syms, self.labels, self.fn_name = syms, labels, fn_name
        self.line = 0
        self.ins: Instr | None = None

    def error(self, msg: str) -> PTXError:
        text = self.ins.text if self.ins else ""
        return PTXError(self.line, f"{msg} (in `{text}`)")

    def rd(self, op, t: PType):
        return reader(op, t, self.syms, self.line)

    def wr(self, op, t: PType):
        return writer(op, t, self.line)

    def addr(self, op, space: str):
        return address(op, space, self.syms, self.line)

    def types(self, ins: Instr) -> list[PType]:
        return [ptype(m) for m in ins.mods if ptype(m) is not None]

    def one_type(self, ins: Instr, allowed: set[str] | None = None) -> PType:
        ts = self.types(ins)
        if len(ts) != 1:
            raise self.error(f"{ins.opcode} needs exactly one type, got {[t.name for t in ts] or 'none'}")
        if allowed is not None and ts[0].name not in allowed:
            raise self.error(f"{ins.opcode}.{ts[0].name} is not supported")
        return ts[0]

    def nops(self, ins: Instr, *counts: int) -> None:
        if len(ins.operands) not in counts:
            raise self.error(f"{ins.opcode} takes {' or '.join(map(str, counts))} operands, got {len(ins.operands)}")

    def check_mods(self, ins: Instr, allowed: set[str]) -> None:
        """Reject modifiers the builder does not implement: never a silently ignored semantic."""
        for m in ins.mods:
            if m not in allowed and m not in IGNORED_MODS and ptype(m) is None:
                raise self.error(f"modifier .{m} of {ins.opcode} is not supported")


def decode(ins: Instr, ctx: Ctx) -> Op:
    """Decode one instruction into an Op (PTXError if unsupported)."""
    ctx.line, ctx.ins = ins.line, ins
    guard = None
    if ins.guard is not None:
        reg, neg = ins.guard
        guard = (reg.slot, neg)
    if ins.opcode in ("bra", "brx"):
        if ins.opcode == "brx":
            raise ctx.error("brx.idx is not supported")
        ctx.check_mods(ins, set())
        if len(ins.operands) != 1:
            raise ctx.error("bra takes one label")
        from .ast import Sym
        tgt = ins.operands[0]
        if not isinstance(tgt, Sym) or tgt.name not in ctx.labels or tgt.offset:
            raise ctx.error(f"branch target {tgt!r} is not a label of {ctx.fn_name}")
        return Op(None, "bra", ins.line, ins.text, guard, ctx.labels[tgt.name], "bra")
    if ins.opcode in ("ret", "exit", "trap"):
        ctx.check_mods(ins, set())
        if ins.operands:
            raise ctx.error(f"{ins.opcode} takes no operands")
        if ins.opcode == "trap":
            from .errors import IllegalInstruction
            line, text = ins.line, ins.text

            def run(s, i):
                raise IllegalInstruction(f"trap executed (PTX line {line})", text, line)
            return Op(run, "op", ins.line, ins.text, guard, -1, "trap")
        return Op(None, "exit", ins.line, ins.text, guard, -1, ins.opcode)
    b = BUILDERS.get(ins.opcode)
    if b is None:
        raise ctx.error(f"instruction {ins.opcode} is not supported")
    run = b(ctx, ins)
    kind = "bar" if ins.opcode in ("bar", "barrier") else "op"
    return Op(run, kind, ins.line, ins.text, guard, -1, ins.opcode)


def rounding(ins: Instr, default: str = "rn") -> str:
    for m in ins.mods:
        if m in ("rn", "rz", "rm", "rp"):
            return m
    return default
