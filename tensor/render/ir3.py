"""IR -> ir3 assembly for Adreno a6xx (A630), in the syntax ``hwdrv.qcom.compiler`` (Mesa's
disassembly syntax plus hwdrv's ``.kernel``/``.param``/``.ibo`` directives) assembles.

Three passes: instruction selection over virtual registers (``ir3_isel.py``), liveness-based
register allocation over the full / half file (``ir3_regs.py``), and legalisation: the nops,
``(ss)``/``(sy)`` waits and ``(jp)`` reconvergence marks Mesa's ``ir3_legalize.c`` /
``ir3_delay.c`` rules demand (``ir3_legalize.py``).

The launch is the other renderers': BLOCK fibers per workgroup, one fiber per output element
(``vector_width`` is 1: a6xx has no wider IBO access this renderer uses), the workgroup id in
r48.x and the local id in r0.x. Every buffer parameter is an IBO (parameter k is IBO k);
parameters still occupy the const file (c2.x on) as hwdrv's ir3 ABI lays them out. Row
reductions exchange values through local memory with barriers."""
from __future__ import annotations

from ..dtype import DType
from ..ir import IrOp, Kernel, alu, linearize, loop, node, special
from ..matmul_ptx import MatmulKernel
from .ir3_isel import ROW_SHARED, Selector, check_dtypes
from .ir3_legalize import legalize
from .ir3_regs import allocate
from .ptx import BLOCK

#: fibers per wave (Mesa runs compute at the doubled wave size on a6xx when it fits)
THREADSIZE = 128


def vector_width(kernel: Kernel) -> int:
    """Elements per fiber: always 1 (one fiber per output element)."""
    return 1


class IR3Renderer:
    """Renders linear IR kernels as ir3 assembly for an Adreno ``arch`` (e.g. ``"a630"``)."""
    device_kind = "qcom"

    #: elements per fiber step of an elementwise kernel (the runtime sizes launches with it)
    vector_width = staticmethod(vector_width)

    def __init__(self, arch: str = "a630"):
        self.arch = arch

    def render(self, kernel: Kernel) -> str:
        sel = Selector(kernel)
        sel.run()
        allocate(sel.code, sel.reserved)
        body = legalize(sel.code)
        head = [f".kernel {kernel.name}"]
        head += [f".param p{k} 8" for k in range(len(kernel.params))]
        head += [f".ibo p{k}" for k in range(len(kernel.params))]
        head += [f".threadsize {THREADSIZE}",
                 f".branchstack {int(sel.exits) + int(sel.gated)}"]
        if sel.shared:
            head.append(f".shared {sel.shared}")
        return "\n".join(head + body + ["nop", ""])

    def matmul_kernel(self, dtype: DType, m: int, n: int, k: int, config=None) -> MatmulKernel:
        """C[m, n] = A[m, k] @ B[k, n]: a fiber per output element, a loop over k summing in
        f32 (int32 for int32), through the same renderer. ``config`` (NVIDIA tile shapes) does
        not apply."""
        check_dtypes(Kernel("matmul", [], [dtype], 0))
        kernel = matmul_ir(dtype, m, n, k)
        blocks = -(-m * n // BLOCK)
        return MatmulKernel(kernel.name, self.render(kernel), (blocks, 1, 1), (BLOCK, 1, 1), 0)


def matmul_ir(dtype: DType, m: int, n: int, k: int) -> Kernel:
    """The IR of a plain matmul: output element g = (row, col) sums A[row, r] * B[r, col]."""
    c_p, a_p, b_p = (node(IrOp.PARAM, dtype, (), (i, dtype)) for i in range(3))
    g = special("gidx", m * n)
    row, col = g // n, g % n
    r = loop(0, k)
    reg = dtype.register
    prod = alu(IrOp.MUL, node(IrOp.LOAD, reg, (a_p, row * k + r)), node(IrOp.LOAD, reg, (b_p, r * n + col)))
    acc = node(IrOp.REDUCE, reg, (prod, r), "sum")
    store = node(IrOp.STORE, reg, (c_p, g, acc))
    return linearize(f"matmul_{m}_{k}_{n}", [store], [dtype] * 3, m * n, (m, n))


__all__ = ["IR3Renderer", "vector_width", "matmul_ir", "ROW_SHARED", "THREADSIZE"]
