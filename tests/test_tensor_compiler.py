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


# ---- the ir3 renderer (Adreno a6xx) -----------------------------------------------------

@pytest.mark.parametrize("name", sorted(graphs()))
def test_ir3_kernels_assemble_and_print_back(name):
    """Every kernel shape renders to ir3 that hwdrv's assembler takes and that disassembles (as
    Mesa's disassembler prints it) to the same instructions, scheduling flags included."""
    from hwdrv.qcom import binary as B
    from hwdrv.qcom.compiler import Ir3Compiler
    from hwdrv.qcom.ir3 import disassemble
    from tensor.render.ir3 import IR3Renderer
    out = graphs()[name].node
    items = schedule([out])
    planned = {id(n) for n in items}
    for node in items:
        kernel, _ = lower(node, planned)
        src = IR3Renderer("a630").render(kernel)
        _, metas, code = B.unpack(Ir3Compiler("a630").compile(src))
        meta = metas[kernel.name]
        lines = [ln for ln in src.splitlines() if ln and not ln.startswith(".")]
        text = disassemble(code[meta.code_offset:meta.code_offset + meta.code_size])[:len(lines)]
        assert [" ".join(t.split()) for t in text] == [" ".join(ln.split()) for ln in lines]
        assert meta.ibos == list(range(len(kernel.params)))      # every buffer is an IBO


def test_ir3_refuses_64_bit_dtypes():
    """a6xx has no 64-bit float or integer instructions: a kernel using them is refused by name
    (a HwdrvError), never miscompiled."""
    import numpy as np

    from hwdrv.errors import HwdrvError
    from tensor.dtype import DType
    from tensor.ir import Inst, Kernel
    from tensor.render.ir3 import IR3Renderer
    for dt in (DType("float64", 8, "float", np.float64, "f64"), DType("int64", 8, "int", np.int64, "s64")):
        kernel = Kernel("k", [Inst("PARAM", dt, (), (0, dt)), Inst("SPECIAL", dtypes.int32, (), ("gidx", 4)),
                              Inst("LOAD", dt, (0, 1))], [dt], 4)
        with pytest.raises(HwdrvError, match=f"dtype {dt.name} is not supported on Adreno"):
            IR3Renderer().render(kernel)
        with pytest.raises(HwdrvError, match=dt.name):
            IR3Renderer().matmul_kernel(dt, 4, 4, 4)


def test_ir3_register_file_exhaustion_is_a_clear_error():
    from hwdrv.errors import HwdrvError
    from tensor.render.ir3_regs import R, VInst, VReg, allocate
    regs = [R(VReg(i)) for i in range(200)]
    code = [VInst("mov.u32u32 {d0}, 0x1", [r]) for r in regs]
    code.append(VInst("nop", [], regs))
    with pytest.raises(HwdrvError, match="more than the 192 full registers"):
        allocate(code, {})


def _legal(*insts):
    """Legalise VInsts over fixed registers (r1.x = scalar 4, ...): the scheduled lines."""
    from tensor.render.ir3_legalize import legalize
    return legalize(list(insts))


def _r(scalar, half=False, as_half=False):
    from tensor.render.ir3_regs import R, VReg
    return R(VReg(scalar, half, phys=scalar), as_half=as_half)


def test_ir3_delays_follow_mesa_a6xx_numbers():
    """ir3_compiler.c (gen 6): alu_to_alu = 3, non_alu = 6, cat3_src2_read = 2; ir3_delay.c: a
    full register read as a half (or the reverse) costs 3 more."""
    from tensor.render.ir3_regs import VInst
    a, b, c = _r(4), _r(5), _r(6)
    w = VInst("add.u {d0}, {s0}, {s0}", [a], [b])
    assert _legal(w, VInst("add.u {d0}, {s0}, 1", [c], [a]))[:3] == ["add.u r1.x, r1.y, r1.y", "(rpt2)nop",
                                                                    "add.u r1.z, r1.x, 1"]
    assert _legal(w, VInst("rcp {d0}, {s0}", [c], [a], "sfu"))[1] == "(rpt5)nop"
    assert _legal(w, VInst("stib.b.untyped.1d.u32.1.imm {s0}, {s1}, 0", [], [a, b], "store"))[1] == "(rpt5)nop"
    mad = VInst("madsh.m16 {d0}, {s0}, {s1}, {s2}", [c], [b, b, a], "mad")
    assert _legal(w, mad)[1] == "nop"                      # third source: 3 - 2
    half = VInst("cov.f16f32 {d0}, {s0}", [c], [_r(4, as_half=True)])
    assert _legal(w, half)[1:3] == ["(rpt5)nop", "cov.f16f32 r1.z, hr2.x"]


def test_ir3_sync_flags_follow_mesa_legalize():
    """ir3_legalize.c: SFU results / local loads -> (ss), global/IBO loads -> (sy) on the reader;
    a register a pending store still reads is overwritten only after (ss); the instruction after
    a barrier takes (ss)(sy), and cat6 cannot carry (ss) (a (ss)nop goes first)."""
    from tensor.render.ir3_regs import VInst
    a, b, c = _r(4), _r(5), _r(6)
    lines = _legal(VInst("rcp {d0}, {s0}", [a], [b], "sfu"), VInst("add.f {d0}, {s0}, {s0}", [c], [a]))
    assert lines[1] == "(ss)add.f r1.z, r1.x, r1.x"
    lines = _legal(VInst("ldib.b.untyped.1d.u32.1.imm {d0}, {s0}, 0", [a], [b], "ldsy"),
                   VInst("add.f {d0}, {s0}, {s0}", [c], [a]))
    assert lines[1] == "(sy)add.f r1.z, r1.x, r1.x"
    lines = _legal(VInst("stib.b.untyped.1d.u32.1.imm {s0}, {s1}, 0", [], [a, b], "store"),
                   VInst("mov.u32u32 {d0}, 0x0", [a], []))
    assert lines[1] == "(ss)mov.u32u32 r1.x, 0x0"
    lines = _legal(VInst("bar", [], [], "bar"), VInst("ldl.u32 {d0}, l[{s0}], 1", [a], [b], "ldss"))
    assert lines[1:3] == ["(ss)nop", "(sy)ldl.u32 r1.x, l[r1.y], 1"]


def _shift_branch(line: str, at: int, cut: int) -> str:
    """A branch at ``at`` whose target lies past instruction ``cut``, one closer (``cut`` is
    taken out)."""
    m = re.search(r"#(-?\d+)$", line)
    if m and line.lstrip("(jp)").startswith("br") and at + int(m.group(1)) > cut:
        return line[:m.start()] + f"#{int(m.group(1)) - 1}"
    return line


def test_ir3_legalized_code_is_what_the_mock_demands():
    """The emulator (written from the same Mesa rules) runs a legalised kernel, and faults with a
    hazard when any one of the delay nops is taken out: the scheduler inserts no spare waits."""
    import numpy as np

    from hwdrv.mock.qcom.ir3emu import HazardFault, harness
    from hwdrv.qcom.ir3 import assemble
    from tensor.dtype import float32
    from tensor.ir import IrOp, alu, linearize, node
    from tensor.render.ir3_isel import Selector
    from tensor.render.ir3_legalize import legalize
    from tensor.render.ir3_regs import allocate
    out_p, in_p = node(IrOp.PARAM, float32, (), (0, float32)), node(IrOp.PARAM, float32, (), (1, float32))
    g = special("gidx", 64)
    x = node(IrOp.LOAD, float32, (in_p, g))
    y = alu(IrOp.SQRT, alu(IrOp.ADD, alu(IrOp.MUL, x, x), const(1.0, float32)))
    kernel = linearize("k", [node(IrOp.STORE, float32, (out_p, g, y))], [float32, float32], 64, (64,))
    sel = Selector(kernel)
    sel.run()
    allocate(sel.code, sel.reserved)
    lines = legalize(sel.code) + ["nop"]
    d = harness.Directives(local_size=(64, 1, 1), bufs=[(64, None, None), (64, None, None)], localid_regid=0,
                           wgid_regid=48 * 4, branchstack=1)
    xs = np.random.default_rng(0).random(64).astype(np.float32)
    got = harness.launch(assemble("\n".join(lines)), d, threadsize=64, buffers=[None, xs.view(np.uint32)])[0]
    np.testing.assert_allclose(got.view(np.float32), np.sqrt(xs * xs + 1), rtol=2e-6)
    delays = [k for k, ln in enumerate(lines) if ln.endswith("nop") and "(" not in ln.replace("(rpt", "")
              and not ln.startswith("(jp)") and k + 1 < len(lines) and "end" not in lines[k + 1]]
    assert len(delays) >= 3
    for k in delays:
        short = [_shift_branch(ln, b, k) for b, ln in enumerate(lines[:k])] + lines[k + 1:]
        with pytest.raises(HazardFault):
            harness.launch(assemble("\n".join(short)), d, threadsize=64, buffers=[None, xs.view(np.uint32)])


def test_ir3_more_constants_than_hoisted_stay_correct():
    """A fused kernel with more distinct constants than MAX_HOISTED: the rest are loaded where
    they are used, and the result still matches numpy."""
    import numpy as np

    import tensor
    from tensor import Tensor
    from tensor.render.ir3_isel import MAX_HOISTED
    x = np.random.default_rng(5).standard_normal(300).astype(np.float32)
    t = Tensor(x, device="mock:qcom")
    got, want = t * 0, x * np.float32(0)
    for k in range(MAX_HOISTED + 12):
        c = np.float32(1.0 + k / 64)
        got, want = got + (t > 0.1 * k - 1).where(t * float(c), t - float(c)), \
            want + np.where(x > np.float32(0.1 * k - 1), x * c, x - c)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert tensor.runtime("mock:qcom").stats.history[-1].name.startswith("e_")
