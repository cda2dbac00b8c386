"""The primitive operations of the lazy graph. Everything else in the Tensor API (relu,
softmax, tanh, matmul's generic form, ...) is composed from these."""
from __future__ import annotations

from enum import Enum, auto


class Op(Enum):
    """One primitive. Groups: sources, unary / binary / ternary ALU, reductions, and the custom
    matmul kernel. Movement (reshape, permute, expand, pad, shrink) is not an op: it changes a
    view (see ``view.py``) and never copies."""
    # sources
    BUFFER = auto()       # data already in device memory
    CONST = auto()        # a scalar broadcast to a shape; arg = the value
    # unary
    NEG = auto(); EXP2 = auto(); LOG2 = auto(); SQRT = auto(); RECIP = auto(); ABS = auto()  # noqa: E702
    CAST = auto()         # arg = target DType
    # binary
    ADD = auto(); SUB = auto(); MUL = auto(); DIV = auto(); MAX = auto()  # noqa: E702
    CMPLT = auto(); CMPEQ = auto(); CMPNE = auto()  # noqa: E702
    # ternary
    WHERE = auto()
    # reductions: arg = tuple of reduced axes (kept with size 1)
    SUM = auto(); RMAX = auto()  # noqa: E702
    # a tiled matmul kernel over realized 2-D inputs (see matmul.py)
    MATMUL = auto()
    # force a node into its own buffer
    CONTIGUOUS = auto()


UNARY = {Op.NEG, Op.EXP2, Op.LOG2, Op.SQRT, Op.RECIP, Op.ABS, Op.CAST}
BINARY = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.CMPLT, Op.CMPEQ, Op.CMPNE}
COMPARE = {Op.CMPLT, Op.CMPEQ, Op.CMPNE}
ELEMENTWISE = UNARY | BINARY | {Op.WHERE}
REDUCE = {Op.SUM, Op.RMAX}
