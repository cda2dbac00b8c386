"""The compiler without a device: the index simplifier, the scheduler's fusion decisions, and
that every kernel shape we emit assembles with ptxas for sm_90 and compiles with LLVM (llvmlite)
for gfx1100 into the instructions it is meant to use."""
from __future__ import annotations

import re

import pytest

from tensor import dtypes
from tensor.ir import IrOp, const, special
from tensor.lazy import LazyNode, LazyView, const_view
from tensor.lower import lower
from tensor.matmul import matmul_kernel
from tensor.matmul_amdgpu import amdgpu_matmul
from tensor.ops import Op
from tensor.render.llvm_amdgpu import LLVMAMDGPURenderer
from tensor.render.ptx import PTXRenderer
from tensor.schedule import schedule
from tensor.view import ShapeTracker, unravel
from test_tensor_helpers import amdgpu_asm, ptxas_check


def buffer(shape, dt=dtypes.float32) -> LazyView:
    """A graph input that counts as realized (lowering only needs its dtype and shape)."""
    node = LazyNode(None, Op.BUFFER, dt, shape)
    node.buffer = object()
    return LazyView(node)


def test_simplifier_folds_reshape_chains():
    g = special("gidx", 24)
    i0, i1, i2 = unravel(g, (2, 3, 4))
    assert (i0 * 12 + i1 * 4 + i2) is g
    assert (i0 * 3 + i1) is g // 4
    assert (g * 5 + const(3)) // 5 is g
    assert ((g * 5 + const(3)) % 5).arg == 3
    assert (g % 24) is g and (g // 24).op == IrOp.CONST


def test_permute_reshape_index_is_simplified():
    st = ShapeTracker.contiguous_of((4, 6)).permute((1, 0)).reshape((24,))
    g = special("gidx", 24)
    flat, valid = st.index([g])
    assert valid.op == IrOp.CONST and valid.arg is True
    assert "idiv" in repr(flat) and repr(flat).count("mod") <= 1


def graphs():
    a, b = buffer((8, 16)), buffer((16,), dtypes.float16)
    bb = b.alu(Op.CAST, arg=dtypes.float32).reshape((1, 16)).expand((8, 16))
    ew = a.alu(Op.ADD, bb).alu(Op.EXP2).alu(Op.MAX, const_view(None, 0.0, dtypes.float32, (8, 16)))
    red = ew.reduce(Op.SUM, (1,))
    epi = red.alu(Op.SQRT).alu(Op.CAST, arg=dtypes.bfloat16)
    mx = a.permute((1, 0)).reduce(Op.RMAX, (0,))
    cmp = a.alu(Op.CMPLT, bb).alu(Op.WHERE, a, bb)
    padded = a.pad(((1, 1), (0, 2))).shrink(((0, 9), (1, 18))).alu(Op.CAST, arg=dtypes.int32)
    bools = a.alu(Op.CMPNE, bb).alu(Op.CAST, arg=dtypes.bool)
    return {"elementwise": ew, "reduce_epilogue": epi, "permuted_max": mx, "where": cmp,
            "pad_int": padded, "bool": bools}


@pytest.mark.parametrize("name", sorted(graphs()))
def test_generated_ptx_assembles(name):
    out = graphs()[name].node
    items = schedule([out])
    planned = {id(n) for n in items}
    for node in items:
        kernel, _ = lower(node, planned)
        ptxas_check(PTXRenderer("sm_90").render(kernel))


def test_reduce_epilogue_fuses_into_one_kernel():
    out = graphs()["reduce_epilogue"].node
    assert schedule([out]) == [out]


def test_row_broadcast_reduce_fuses_into_its_row_kernel():
    a = buffer((4, 8))
    m = a.reduce(Op.RMAX, (1,))
    out = a.alu(Op.SUB, m.expand((4, 8))).node
    assert schedule([out]) == [out]


def test_other_broadcast_reduces_are_realized():
    a = buffer((4, 8))
    col = a.reduce(Op.SUM, (0,))                                  # not the last axis
    out = a.alu(Op.SUB, col.expand((4, 8))).node
    assert schedule([out]) == [col.node, out]
    m = a.reduce(Op.RMAX, (1,))
    kept = m.alu(Op.NEG)                                          # a per-row value asked for too
    out2 = a.alu(Op.SUB, m.expand((4, 8)))
    order = schedule([out2.node, kept.node])
    assert len(order) == 3 and order[0] is m.node and {id(n) for n in order[1:]} == {id(out2.node), id(kept.node)}


@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("mnk", [(128, 128, 64), (100, 40, 24), (4096, 4096, 4096)])
def test_matmul_ptx_assembles(dt, mnk):
    m, n, k = mnk
    # sm_80: the mma.sync path (sm_90 gets the wgmma kernel: tests/test_tensor_matmul_wgmma.py
    # assembles it for sm_90a)
    kern = matmul_kernel("sm_80", dt, m, n, k)
    assert ("mma.sync" in kern.ptx) == (dt != dtypes.float32)
    ptxas_check(kern.ptx)


# ---- the gfx11 renderer (LLVM IR, compiled by llvmlite) --------------------------------------------
@pytest.mark.parametrize("name", sorted(graphs()))
def test_generated_llvm_ir_compiles_for_gfx1100(name):
    """Every kernel shape compiles; 16-bit values stay in whole VGPRs (no true16 halves, which
    the mock RDNA3 core does not execute)."""
    out = graphs()[name].node
    items = schedule([out])
    planned = {id(n) for n in items}
    for node in items:
        kernel, _ = lower(node, planned)
        asm = amdgpu_asm(LLVMAMDGPURenderer("gfx1100").render(kernel))
        assert "s_endpgm" in asm and not re.search(r"\bv\d+\.[lh]\b", asm)


def test_amd_elementwise_moves_vectors():
    a = buffer((4099,))
    kernel, _ = lower(a.alu(Op.ADD, a).node, set())
    asm = amdgpu_asm(LLVMAMDGPURenderer("gfx1100").render(kernel))
    assert "global_load_b128" in asm and "global_store_b128" in asm


@pytest.mark.parametrize("length", [300, 4100])
def test_amd_row_reduce_uses_dpp_and_ds_swizzle(length):
    """Rows combine across the wave with an xor butterfly: ds_swizzle across the two rows of 16
    lanes, DPP row_xmask 8..1 within them; block-wide rows also through LDS behind a barrier."""
    red = buffer((5, length)).reduce(Op.SUM, (1,))
    kernel, _ = lower(red.node, set())
    asm = amdgpu_asm(LLVMAMDGPURenderer("gfx1100").render(kernel))
    swaps = re.findall(r"ds_swizzle_b32 \S+, \S+ offset:swizzle\(SWAP,(\d+)\)", asm)
    assert swaps == ["16"]                               # LLVM's name for the xor bitmask mode
    assert re.findall(r"_dpp .*row_xmask:(\d+)", asm) == ["8", "4", "2", "1"]
    assert ("s_barrier" in asm) == (length > 2048)


@pytest.mark.parametrize("dt, inst", [(dtypes.float16, "v_wmma_f32_16x16x16_f16"),
                                      (dtypes.bfloat16, "v_wmma_f32_16x16x16_bf16"),
                                      (dtypes.float32, "v_fma")], ids=["f16", "bf16", "f32"])
def test_amd_matmul_instructions(dt, inst):
    """f16/bf16 run on WMMA with fragments read from LDS as 128-bit loads; f32 on FMAs."""
    kern = amdgpu_matmul("gfx1100", dt, 72, 136, 200)
    asm = amdgpu_asm(kern.ptx)
    assert inst in asm and "s_barrier" in asm
    if dt != dtypes.float32:
        assert "ds_load_b128" in asm
