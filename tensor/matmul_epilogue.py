"""Elementwise epilogues fused into matmul kernels: what runs on each accumulator between the
multiply and the store (bias, activation, residual add, cast), so ``relu(a @ b + bias)`` is one
kernel instead of a matmul and an elementwise kernel that reads C back.

The scheduler (``schedule.py``) folds into a MATMUL the chain of elementwise nodes that uses its
value only per element (at the element's own position); ``lower.lower_epilogue`` lowers that chain to linear IR (``ir.py``) as a
function of the output element's row and column (SPECIALs ``mrow`` / ``mcol``), the matmul's
value being a load of it: the *accumulator slot*. A generator (``matmul_wgmma.py``,
``matmul_simt.py``) renders that IR per accumulator with the PTX renderer's own instruction
emission (:class:`EpiloguePtx`): instructions that depend on neither row nor column once,
those of the row alone once per row a thread owns, of the column alone once per column, the rest
once per element. The accumulator slot is the f32 accumulator itself, not first rounded to the
matmul's dtype: a fused result rounds once, at the store."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from .dtype import DType, bfloat16, float16, float32
from .ir import Kernel
from .matmul_ptx import Ptx
from .render.ptx import PTXRenderer

ROW, COL = "mrow", "mcol"       # names of the epilogue's row / column SPECIALs
#: the output dtypes a matmul kernel stores (f32 accumulators rounded, or as they are)
OUT_DTYPES = (float16, bfloat16, float32)
TAG_DIGITS = 8                  # hex digits of the IR digest in a fused kernel's name

_ROW, _COL = frozenset((ROW,)), frozenset((COL,))
_ELEM = _ROW | _COL
# the register files PTXRenderer names instructions into (render/ptx.py's module doc)
_FILES = (("pred", "p"), ("pred", "q"), ("b16", "h"), ("b32", "r"), ("b32", "t"), ("f32", "f"),
          ("b64", "rd"))


@dataclass(frozen=True, eq=False)
class Epilogue:
    """A matmul's fused epilogue: linear IR whose last instruction is the output value at
    (``mrow``, ``mcol``); ``acc`` is the LOAD standing for the accumulator there; ``out`` the
    dtype stored; ``inputs`` the parameter numbers of ``kernel.params`` the epilogue reads (the
    matmul kernel takes those buffers as extra parameters named ``p<number>``, after its own)."""
    kernel: Kernel
    acc: int
    out: DType
    inputs: tuple[int, ...]

    @property
    def text(self) -> str:
        """The IR and output dtype: what makes two epilogues the same program."""
        return f"{self.kernel.text()}\nacc=%{self.acc} out={self.out.name}"

    @property
    def tag(self) -> str:
        """A short name suffix telling fused kernels apart (a digest of ``text``)."""
        return "ep" + hashlib.sha1(self.text.encode()).hexdigest()[:TAG_DIGITS]

    @property
    def param_names(self) -> list[str]:
        """The extra kernel parameters, in argument order."""
        return [f"p{k}" for k in self.inputs]


def live(kernel: Kernel, acc: int) -> set[int]:
    """Instructions the output value needs, the accumulator slot a leaf (its index and buffer
    are not computed: the accumulator is in a register)."""
    insts = kernel.insts
    need, stack = set(), [len(insts) - 1]
    while stack:
        i = stack.pop()
        if i in need:
            continue
        need.add(i)
        if i != acc:
            stack.extend(insts[i].src)
    return need


class EpiloguePtx:
    """Emits an :class:`Epilogue` into a matmul kernel (``e``: its line collector). The
    generator keeps ``rows`` rows, ``cols`` columns and ``elems`` elements at once (slots; each
    has its own registers): it binds a slot with :meth:`row` / :meth:`col` and then asks for the
    :meth:`value` of an element. With ``clamp``, rows and columns past the ``m`` x ``n`` output
    (a ragged tile's) are moved onto its last row / column, so the epilogue's loads stay in
    bounds; the generator does not store those elements."""

    def __init__(self, epi: Epilogue, e: Ptx, m: int, n: int, rows: int, cols: int, elems: int,
                 clamp: bool):
        self.epi, self.e, self.m, self.n, self.clamp = epi, e, m, n, clamp
        self.rows, self.cols, self.elems = rows, cols, elems
        insts = self.insts = epi.kernel.insts
        self.need = live(epi.kernel, epi.acc)
        self.deps: list[frozenset[str]] = []
        for i, ins in enumerate(insts):
            if i == epi.acc:
                self.deps.append(_ELEM)
            elif ins.op == "SPECIAL":
                self.deps.append(frozenset((ins.arg[0],)))
            else:
                self.deps.append(frozenset().union(*(self.deps[j] for j in ins.src)))
        self.stride = len(insts)                 # register numbers per slot
        self.renderer = PTXRenderer()
        total = self.stride * (1 + rows + cols + elems)
        for kind, prefix in _FILES:
            e.reg(kind, f"{prefix}<{total}>")

    def _block(self, i: int, row: int, col: int, elem: int) -> int:
        """Which register set instruction ``i`` uses in the slots (row, col, elem)."""
        d = self.deps[i]
        if not d:
            return 0
        if d == _ROW:
            return 1 + row
        if d == _COL:
            return 1 + self.rows + col
        return 1 + self.rows + self.cols + elem

    def _emit(self, group: frozenset[str], row: int = 0, col: int = 0, elem: int = 0,
              bind: dict[int, Callable[[int], list[str]]] | None = None) -> None:
        """The live instructions depending on exactly ``group``, in the given slots; ``bind``:
        for an instruction, the lines defining its register (given its number) instead of its
        rendering."""
        def ren(j: int) -> int:
            return j + self.stride * self._block(j, row, col, elem)
        bind = bind or {}
        for i in sorted(self.need):
            if self.deps[i] == group:
                lines = bind[i](ren(i)) if i in bind else self.renderer.instruction(i, self.insts, ren)
                for line in lines:
                    self.e(line)

    def setup(self) -> None:
        """What depends on neither row nor column (buffer addresses, constants)."""
        self._emit(frozenset())

    def _special(self, name: str, reg: str, offset: int, limit: int) -> dict[int, Callable[[int], list[str]]]:
        """Binds the SPECIAL ``name`` to ``reg`` + ``offset`` (clamped below ``limit``)."""
        def lines(r: int) -> list[str]:
            return [f"add.s32 %r{r}, {reg}, {offset};"] + \
                ([f"min.s32 %r{r}, %r{r}, {limit - 1};"] if self.clamp else [])
        return {i: lines for i in self.need
                if self.insts[i].op == "SPECIAL" and self.insts[i].arg[0] == name}

    def row(self, slot: int, reg: str, offset: int = 0) -> None:
        """Row slot ``slot`` is row ``reg`` + ``offset``: its per-row values."""
        self._emit(_ROW, row=slot, bind=self._special(ROW, reg, offset, self.m))

    def col(self, slot: int, reg: str, offset: int = 0) -> None:
        """Column slot ``slot`` is column ``reg`` + ``offset``: its per-column values."""
        self._emit(_COL, col=slot, bind=self._special(COL, reg, offset, self.n))

    def value(self, row: int, col: int, elem: int, acc: str) -> str:
        """The f32 register holding the output at (row slot, column slot) whose accumulator is
        ``acc``, computed in element slot ``elem``."""
        self._emit(_ELEM, row, col, elem, bind={self.epi.acc: lambda r: [f"mov.f32 %f{r}, {acc};"]})
        last = len(self.insts) - 1
        return f"%f{last + self.stride * self._block(last, row, col, elem)}"


__all__ = ["Epilogue", "EpiloguePtx", "OUT_DTYPES", "ROW", "COL", "live"]
