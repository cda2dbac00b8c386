"""What every part of the emulator shares: the fault types, latency classes, operands and the
executable ``Op`` (see program.py for how they are built)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hwdrv.errors import MockFault


class ShaderFault(MockFault):
    """The shader did something the hardware cannot: an unsupported or undecodable instruction, a
    scheduling hazard, a bad local/private access, a hang. ``pc`` is the instruction index."""

    def __init__(self, msg: str, pc: int = -1):
        self.pc = pc
        super().__init__(msg)


class HazardFault(ShaderFault):
    """A register read before its producer's result is available (missing (ss)/(sy)/nops)."""


# latency classes (who produced a register): see docs/ir3-emulator.md
ALU, SS, SY = 1, 2, 3


@dataclass
class Src:
    """A source operand. kind: gpr | const | imm | relgpr | relconst. ``n`` is the ir3 register
    number ((reg << 2) | comp) or the const scalar index; ``r`` advances it with (rptN)."""
    kind: str
    n: int = 0
    half: bool = False
    r: bool = False
    absneg: int = 0
    bits: int = 0            # imm: raw bits in the source precision
    flut: bool = False       # imm: a float-table constant (valid in float ops), not an integer

    def reg(self, k: int) -> int:
        return self.n + (k if self.r else 0)


@dataclass
class Op:
    pc: int
    word: int
    name: str
    cat: int
    ss: bool = False
    sy: bool = False
    jp: bool = False
    repeat: int = 0
    nop: int = 0
    # hazard bookkeeping: (register number, half, cycle within the instruction, cat3 late source)
    reads: list[tuple[int, bool, int, bool]] = field(default_factory=list)
    writes: list[tuple[int, bool, int]] = field(default_factory=list)
    produces: int = 0        # ALU / SS / SY / 0
    consumer: str = "mem"    # how long an ALU result takes to reach it: "alu", "mem" or "long" (SFU, flow)
    run: Callable = None     # type: ignore[assignment]

    @property
    def cycles(self) -> int:
        return self.repeat + 1 + self.nop

    def where(self) -> str:
        return f"instruction {self.pc} (byte offset {self.pc * 8:#x}, {self.name}, {self.word:#018x})"


def undecodable_op(pc: int, w: int, why: str) -> Op:
    op = Op(pc, w, "?", -1)

    def run(m, mask):
        raise ShaderFault(f"illegal instruction at {op.where()}: {why}", pc)
    op.run = run
    return op


def unsupported_op(pc: int, w: int, name: str, why: str = "is not supported by the ir3 emulator") -> Op:
    op = Op(pc, w, name, w >> 61)

    def run(m, mask):
        raise ShaderFault(f"unsupported instruction at {op.where()}: {name} {why}", pc)
    op.run = run
    return op


def mk_src(kind: str, half: bool = False, **kw) -> Src:
    return Src(kind, half=half, **kw)
