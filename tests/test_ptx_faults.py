"""Faults carry what the mock GPU needs for SM error state; unsupported PTX is refused loudly."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.errors import MockFault, ProgramError
from hwdrv.mock import MemoryFault
from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import Gpu, assert_launch_refused, gpu, load_ptx  # noqa: F401

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"


def test_out_of_bounds_store_reports_address_lane_and_line(gpu):
    m = load_ptx("vector_add")
    n = 1000
    a, b = gpu.upload(np.ones(n, np.float32)), gpu.upload(np.ones(n, np.float32))
    # c points so that element 700 is the first one past the end of the mapped memory
    c = 0x20_0000_0000 + gpu.size - 700 * 4
    with pytest.raises(MemoryFault) as ei:
        gpu.run(m, "vector_add", (4,), (256,), [a, b, c, n])
    e = ei.value
    assert e.address == 0x20_0000_0000 + gpu.size and e.access == "write"
    assert e.cta == (2, 0, 0) and e.thread == (700 - 512, 0, 0)
    assert e.warp == (700 - 512) // 32 and e.lane == (700 - 512) % 32
    assert e.line == 49 and e.instruction.startswith("st.global.f32")
    assert isinstance(e.pc, int) and e.entry == "vector_add" and e.vector_lane == 700     # element of the store vector
    assert "PTX line 49" in "\n".join(getattr(e, "__notes__", []))


def test_unmapped_load_is_a_read_fault(gpu):
    m = load_ptx("vector_add")
    with pytest.raises(MemoryFault) as ei:
        gpu.run(m, "vector_add", (1,), (64,), [0x1000, 0x1000, 0x1000, 64])
    assert ei.value.access == "read" and ei.value.address == 0x1000 and ei.value.thread == (0, 0, 0)


def test_misaligned_access(gpu):
    m = ptx.parse(HEAD + """
.visible .entry k(.param .u64 p)
{
    .reg .b64 %rd<3>;
    .reg .b32 %r<3>;
    ld.param.u64 %rd0, [p];
    mov.u32 %r0, %tid.x;
    mul.wide.u32 %rd1, %r0, 2;
    add.u64 %rd2, %rd0, %rd1;
    ld.global.u32 %r1, [%rd2];
    ret;
}
""")
    with pytest.raises(ptx.AddressSpaceFault) as ei:
        gpu.run(m, "k", 1, 8, [gpu.alloc(64)])
    assert ei.value.reason == "misaligned" and ei.value.thread == (1, 0, 0) and isinstance(ei.value, MockFault)


def test_shared_out_of_range(gpu):
    m = ptx.parse(HEAD + """
.visible .entry k()
{
    .reg .b32 %r<3>;
    .shared .align 4 .b8 s[64];
    mov.u32 %r0, %tid.x;
    shl.b32 %r1, %r0, 2;
    st.shared.u32 [%r1], %r0;
    ret;
}
""")
    gpu.run(m, "k", 1, 16, [])
    with pytest.raises(ptx.AddressSpaceFault) as ei:
        gpu.run(m, "k", 1, 32, [])
    assert ei.value.space == "shared" and ei.value.address == 64 and ei.value.lane == 16 and ei.value.line == 11


def test_trap_is_illegal_instruction(gpu):
    m = ptx.parse(HEAD + ".visible .entry k()\n{\n    trap;\n}\n")
    with pytest.raises(ptx.IllegalInstruction) as ei:
        gpu.run(m, "k", 1, 1, [])
    assert ei.value.line == 6 and ei.value.instruction == "trap;"


@pytest.mark.parametrize("line, word", [
    ("tex.2d.v4.f32.f32 {%f0, %f0, %f0, %f0}, [tex0, {%f0, %f0}];", "tex"),
    ("call.uni foo, (%r0);", "foo"),
    ("tensormap.replace.tile.global_address.global.b1024.b64 [%r0], %fd0;", "tensormap"),
    ("add.rn.s32 %r0, %r0, %r0;", ".rn"),
    ("add.f32.xyz %f0, %f0, %f0;", "xyz"),
    ("cvt.f32.f64 %f0, %fd0;", "rounding"),
    ("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%r0,%r0,%r0,%r0}, {%r0,%r0}, {%r0}, {%r0,%r0,%r0,%r0};", "mma"),
    ("ld.global.u32 %r0, [%p0];", "address"),
    ("bra NOWHERE;", "NOWHERE"),
    ("mov.u32 %r0, %envreg3;", "envreg3"),
])
def test_unsupported_fails_the_launch_naming_it(line, word):
    """The module loads; the launch of the kernel holding the instruction faults, naming it; the
    module's other kernels run."""
    text = HEAD + f""".visible .entry k()
{{
    .reg .b32 %r0;
    .reg .f32 %f0;
    .reg .f64 %fd0;
    .reg .pred %p0;
    {line}
    ret;
}}
.visible .entry fine(.param .u64 out)
{{
    .reg .b64 %rd0;
    .reg .b32 %r0;
    ld.param.u64 %rd0, [out];
    mov.u32 %r0, 7;
    st.global.u32 [%rd0], %r0;
    ret;
}}
"""
    m = ptx.parse(text)
    assert_launch_refused(m, "k", 10, word)
    assert not m.entries["fine"].unsupported
    g = Gpu(1 << 20)
    out = g.alloc(4)
    g.run(m, "fine", 1, 1, [out])
    assert g.download(out, np.uint32, 1)[0] == 7
    g.close()


def test_interpreter_exception_is_not_an_illegal_instruction(gpu):
    """A Python error inside an instruction's implementation is a defect of the mock: it must
    never read as the SM refusing the instruction (ESR ILLEGAL_INSTR_ENCODING)."""
    m = ptx.parse(HEAD + ".visible .entry k()\n{\n    .reg .b32 %r0;\n    mov.u32 %r0, 1;\n    ret;\n}\n")
    op = m.entries["k"].ops[0]

    def broken(s, i):
        raise ZeroDivisionError("planted")
    op.run = broken
    with pytest.raises(MockFault) as ei:
        gpu.run(m, "k", 1, 32, [])
    assert type(ei.value) is ptx.InterpreterDefect and not isinstance(ei.value, ptx.IllegalInstruction)
    assert "planted" in str(ei.value) and ei.value.line == 7
    assert isinstance(ei.value.__cause__, ZeroDivisionError)
