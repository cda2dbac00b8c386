"""ir3 virtual instructions and their register allocation.

The ir3 renderer's instruction selection (``ir3_isel.py``) emits :class:`VInst`s over virtual
registers (:class:`VReg`); :func:`allocate` gives every virtual register physical scalars by
liveness (linear scan over the program order, with live ranges stretched over the loops they
cross), and ``ir3_legalize.py`` then inserts the scheduling the hardware needs.

Registers: a full register is one 32-bit scalar ``rN.c`` (scalar ``4 * N + c``). With merged
registers (the renderer's kernels run with SP_CS_CTRL_REG0.MERGEDREGS) half register ``hrM.c`` is
the low (M.c even) or high half of full scalar ``(4 * M + c) >> 1``; a half value here always
gets a scalar of its own and lives in its low half, so halves never share a scalar with a live
full value. ``r0.x`` holds the local invocation id and ``r48.x`` (a high register, outside the
footprint) the workgroup id, as ``hwdrv.qcom.compiler`` loads them."""
from __future__ import annotations

from dataclasses import dataclass, field

from hwdrv.errors import ProgramError

#: scalars below the high registers (r0.x .. r47.w): the allocatable file
FILE_SCALARS = 48 * 4
#: r0.x: the local invocation id (``.localid`` default)
LOCALID_SCALAR = 0
#: r48.x: the workgroup id (``.wgid`` default, a high register)
WGID_SCALAR = 48 * 4
#: the predicate register branches test (p0.x), tracked like a register by the scheduler
PRED = -1


class OutOfRegisters(ProgramError):
    """A kernel needs more live values at once than the ir3 register file holds."""


@dataclass(eq=False)
class VReg:
    """A virtual register: ``width`` consecutive full scalars (2 for an IBO atomic's
    value/operand pair), or one half value. ``phys`` is its first scalar once allocated."""
    n: int
    half: bool = False
    width: int = 1
    phys: int | None = None


@dataclass(frozen=True)
class R:
    """A register operand: component ``comp`` of virtual register ``reg``."""
    reg: VReg
    comp: int = 0
    as_half: bool = False       # read a full register's low half as a half register

    @property
    def half(self) -> bool:
        """Whether the instruction reads / writes it as a half register."""
        return self.reg.half or self.as_half

    def scalar(self) -> int:
        """The full scalar this operand lives in (after allocation)."""
        assert self.reg.phys is not None
        return self.reg.phys + self.comp

    def text(self) -> str:
        s = self.scalar()
        if s == PRED:
            return "p0.x"
        if self.half:
            h = 2 * s
            return f"hr{h >> 2}.{'xyzw'[h & 3]}"
        return f"r{s >> 2}.{'xyzw'[s & 3]}"


@dataclass
class VInst:
    """One instruction: ``text`` with ``{d0}``.. / ``{s0}``.. standing for ``dsts`` / ``srcs``.

    ``cls`` says how the scheduler treats it (ir3.h's instruction classes):
    ``alu`` cat1-3; ``mad`` cat3 mad/madsh (third source read 2 cycles late); ``sfu`` cat4
    ((ss) producer); ``ldss`` local-memory load ((ss) producer); ``ldsy`` global/IBO load or
    atomic ((sy) producer); ``store`` cat6 store; ``bar`` cat7 barrier; ``branch`` cat0 br
    (``target``: a label); ``end``; ``label`` (not an instruction: ``target`` names it)."""
    text: str
    dsts: list[R] = field(default_factory=list)
    srcs: list[R] = field(default_factory=list)
    cls: str = "alu"
    target: str | None = None

    def render(self) -> str:
        return self.text.format(**{f"d{i}": r.text() for i, r in enumerate(self.dsts)},
                                **{f"s{i}": r.text() for i, r in enumerate(self.srcs)})


def _loops(code: list[VInst]) -> list[tuple[int, int]]:
    """(label position, branch position) of every backward branch: the program's loops."""
    where = {v.target: i for i, v in enumerate(code) if v.cls == "label"}
    return [(where[v.target], i) for i, v in enumerate(code)
            if v.cls == "branch" and where[v.target] < i]


def allocate(code: list[VInst], reserved: dict[VReg, int]) -> int:
    """Give every virtual register of ``code`` physical scalars (``reserved``: registers the
    hardware fills, with their scalar). Returns the number of scalars of the file used.

    Liveness: a register is live from its first to its last mention; one live at a loop's
    head (mentioned before it and inside or after it) stays live to the loop's back edge, so
    a loop-carried value (an accumulator, a counter) or a value read by every iteration keeps
    its register. Linear scan, lowest free scalars first."""
    span: dict[VReg, list[int]] = {}
    for i, v in enumerate(code):
        for r in v.dsts + v.srcs:
            s = span.setdefault(r.reg, [i, i])
            s[1] = i
    loops = _loops(code)
    changed = True
    while changed:
        changed = False
        for head, back in loops:
            for s in span.values():
                if s[0] < head <= s[1] and s[1] < back:
                    s[1] = back
                    changed = True
    for reg, scalar in reserved.items():
        reg.phys = scalar
    busy = [False] * FILE_SCALARS
    for reg, scalar in reserved.items():
        if 0 <= scalar < FILE_SCALARS:
            busy[scalar] = True
    ends: list[tuple[int, VReg]] = []
    top = max((s + 1 for s in reserved.values() if 0 <= s < FILE_SCALARS), default=0)
    for reg in sorted((r for r in span if r not in reserved), key=lambda r: span[r][0]):
        start = span[reg][0]
        for end, old in list(ends):
            if end < start:
                ends.remove((end, old))
                for k in range(old.width):
                    busy[old.phys + k] = False
        w = reg.width
        base = next((b for b in range(0, FILE_SCALARS - w + 1) if not any(busy[b:b + w])), None)
        if base is None:
            raise OutOfRegisters(f"the kernel needs more than the {FILE_SCALARS} full registers "
                                 f"r0.x..r47.w live at instruction {start} ({code[start].text}); "
                                 "split the computation into smaller kernels (fewer fused ops)")
        reg.phys = base
        for k in range(w):
            busy[base + k] = True
        ends.append((span[reg][1], reg))
        top = max(top, base + w)
    return top
