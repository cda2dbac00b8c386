"""Device-function calls: .func bodies, call/ret, parameters and return values through .param
slots, per-activation frames (recursion), the stack limit, and lanes that call divergently
reconverging before a barrier and a shuffle."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu  # noqa: F401

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"

# depth(n): a recursive function with a dynamically indexed local array in every activation:
# it writes n, n+1, n+2, n+3 into its own array, recurses, and afterwards reads its own array
# back; so it returns sum over k=1..n of (4k + 6) if and only if each activation has a frame of
# its own. Its registers (%r) must also survive the recursive call.
RECURSIVE = HEAD + """
.func (.param .b32 ret) depth(.param .b32 n)
{
    .local .align 4 .b8 __local_depot0[16];
    .reg .b64 %SPL;
    .reg .b32 %r<12>;
    .reg .b64 %rd<4>;
    .reg .pred %p<2>;
    mov.u64 %SPL, __local_depot0;
    ld.param.u32 %r1, [n];
    setp.eq.s32 %p1, %r1, 0;
    @%p1 bra DONE;
    mov.u32 %r2, 0;
FILL:
    add.s32 %r3, %r1, %r2;
    mul.wide.u32 %rd1, %r2, 4;
    add.s64 %rd2, %SPL, %rd1;
    st.local.u32 [%rd2], %r3;
    add.s32 %r2, %r2, 1;
    setp.lt.u32 %p1, %r2, 4;
    @%p1 bra FILL;
    sub.s32 %r4, %r1, 1;
    {
    .param .b32 param0;
    st.param.b32 [param0+0], %r4;
    .param .b32 retval0;
    call.uni (retval0), depth, (param0);
    ld.param.b32 %r5, [retval0+0];
    }
    ld.local.u32 %r6, [%SPL];
    ld.local.u32 %r7, [%SPL+4];
    ld.local.u32 %r8, [%SPL+8];
    ld.local.u32 %r9, [%SPL+12];
    add.s32 %r5, %r5, %r6;
    add.s32 %r5, %r5, %r7;
    add.s32 %r5, %r5, %r8;
    add.s32 %r5, %r5, %r9;
    sub.s32 %r5, %r5, %r1;
    add.s32 %r5, %r5, %r1;
    st.param.b32 [ret+0], %r5;
    ret;
DONE:
    mov.u32 %r10, 0;
    st.param.b32 [ret+0], %r10;
    ret;
}

.visible .entry k(.param .u64 out, .param .u64 ns)
{
    .reg .b32 %r<6>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [out];
    ld.param.u64 %rd2, [ns];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd2, %rd3;
    ld.global.u32 %r2, [%rd4];
    {
    .param .b32 param0;
    st.param.b32 [param0+0], %r2;
    .param .b32 retval0;
    call.uni (retval0), depth, (param0);
    ld.param.b32 %r3, [retval0+0];
    }
    add.s64 %rd5, %rd1, %rd3;
    st.global.u32 [%rd5], %r3;
    ret;
}
"""


def _depth_ref(n: int) -> int:
    return sum(4 * k + 6 for k in range(1, n + 1))


def test_recursion_gives_each_activation_its_own_frame(gpu):
    m = ptx.parse(RECURSIVE)
    assert m.entries["k"].has_calls and not m.entries["k"].unsupported
    ns = np.array([0, 1, 2, 5, 9, 3, 17, 1] * 4, np.uint32)        # divergent depths in one warp
    out = gpu.alloc(4 * 32)
    gpu.run(m, "k", 1, 32, [out, gpu.upload(ns)])
    assert gpu.download(out, np.uint32, 32).tolist() == [_depth_ref(int(n)) for n in ns]


def test_stack_overflow_is_a_local_memory_fault(gpu):
    m = ptx.parse(RECURSIVE)
    ns = np.full(32, 200, np.uint32)
    with pytest.raises(ptx.AddressSpaceFault) as ei:
        gpu.run(m, "k", 1, 32, [gpu.alloc(128), gpu.upload(ns)], stack_size=4096)
    e = ei.value
    assert e.space == "local" and "stack overflow" in str(e) and "depth" in str(e)
    assert e.instruction.startswith("call.uni") and e.entry == "k"
    # the same depth fits in a bigger stack
    out = gpu.alloc(128)
    gpu.run(m, "k", 1, 32, [out, gpu.upload(ns)], stack_size=64 * 1024)
    assert set(gpu.download(out, np.uint32, 32).tolist()) == {_depth_ref(200)}


DIVERGENT = HEAD + """
.func (.param .b32 ret) triple_plus(.param .b32 a, .param .b32 b)
{
    .reg .b32 %r<4>;
    ld.param.u32 %r1, [a];
    ld.param.u32 %r2, [b];
    mad.lo.s32 %r3, %r1, 3, %r2;
    st.param.b32 [ret+0], %r3;
    ret;
}

.visible .entry k(.param .u64 out)
{
    .reg .b32 %r<8>;
    .reg .b64 %rd<4>;
    .reg .pred %p<2>;
    .shared .align 4 .b8 sh[256];
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    and.b32 %r2, %r1, 1;
    setp.eq.u32 %p1, %r2, 1;
    mul.lo.s32 %r3, %r1, 10;
    @!%p1 bra JOIN;
    {
    .param .b32 param0;
    st.param.b32 [param0+0], %r1;
    .param .b32 param1;
    st.param.b32 [param1+0], 1000;
    .param .b32 retval0;
    call.uni (retval0), triple_plus, (param0, param1);
    ld.param.b32 %r3, [retval0+0];
    }
JOIN:
    shl.b32 %r4, %r1, 2;
    st.shared.u32 [%r4], %r3;
    bar.sync 0;
    xor.b32 %r5, %r1, 63;
    shl.b32 %r5, %r5, 2;
    ld.shared.u32 %r6, [%r5];
    shfl.sync.down.b32 %r7, %r6, 1, 0x1f, 0xffffffff;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r7;
    ret;
}
"""


def test_divergent_call_reconverges_before_barrier_and_shuffle(gpu):
    """Odd threads call, even ones do not; every thread then meets at bar.sync, reads another
    thread's value from shared memory (only right if all wrote first) and shuffles it down."""
    m = ptx.parse(DIVERGENT)
    out = gpu.alloc(4 * 64)
    gpu.run(m, "k", 1, 64, [out])
    val = [3 * t + 1000 if t & 1 else 10 * t for t in range(64)]
    mirrored = [val[t ^ 63] for t in range(64)]
    want = [mirrored[t + 1] if t % 32 != 31 else mirrored[t] for t in range(64)]
    assert gpu.download(out, np.uint32, 64).tolist() == want


def test_guarded_call_runs_for_guarded_lanes_only(gpu):
    text = DIVERGENT.replace("@!%p1 bra JOIN;\n", "").replace("call.uni (retval0)", "@%p1 call.uni (retval0)")
    text = text.replace("ld.param.b32 %r3, [retval0+0];", "@%p1 ld.param.b32 %r3, [retval0+0];")
    m = ptx.parse(text)
    out = gpu.alloc(4 * 64)
    gpu.run(m, "k", 1, 64, [out])
    val = [3 * t + 1000 if t & 1 else 10 * t for t in range(64)]
    mirrored = [val[t ^ 63] for t in range(64)]
    assert gpu.download(out, np.uint32, 64).tolist() == [mirrored[t + 1] if t % 32 != 31 else mirrored[t]
                                                         for t in range(64)]


def test_call_argument_count_mismatch_refuses_the_launch():
    from test_ptx_helpers import assert_launch_refused
    text = DIVERGENT.replace("call.uni (retval0), triple_plus, (param0, param1);",
                             "call.uni (retval0), triple_plus, (param0);")
    line = text.splitlines().index("    call.uni (retval0), triple_plus, (param0);") + 1
    assert_launch_refused(ptx.parse(text), "k", line, "takes 2")


def test_alloca_stacksave_stackrestore(gpu):
    """alloca hands out stack below the frame, growing down as on the GPU; stackrestore gives it
    back, so the next alloca of the same size returns the same address; an allocation past the
    stack faults."""
    m = ptx.parse(HEAD + """
.visible .entry k(.param .u64 out, .param .u64 big)
{
    .reg .b64 %rd<12>;
    .reg .b32 %r<4>;
    ld.param.u64 %rd1, [out];
    ld.param.u64 %rd9, [big];
    mov.u32 %r1, %tid.x;
    stacksave.u64 %rd2;
    alloca.u64 %rd3, 24, 16;
    st.local.u32 [%rd3], %r1;
    alloca.u64 %rd4, 8;
    stackrestore.u64 %rd2;
    alloca.u64 %rd5, 24, 16;
    ld.local.u32 %r2, [%rd5];
    alloca.u64 %rd10, %rd9, 8;
    sub.s64 %rd6, %rd4, %rd3;
    sub.s64 %rd7, %rd5, %rd3;
    mul.wide.u32 %rd8, %r1, 24;
    add.s64 %rd8, %rd1, %rd8;
    st.global.u64 [%rd8], %rd6;
    st.global.u64 [%rd8+8], %rd7;
    cvt.u64.u32 %rd11, %r2;
    st.global.u64 [%rd8+16], %rd11;
    ret;
}
""")
    assert m.entries["k"].has_calls
    out = gpu.alloc(24 * 32)
    gpu.run(m, "k", 1, 32, [out, 0])
    got = gpu.download(out, np.uint64, 3 * 32).reshape(32, 3)
    assert got[:, 0].view(np.int64).tolist() == [-8] * 32   # the second block lies 8 bytes below the first
    assert got[:, 1].tolist() == [0] * 32           # after stackrestore the first address again
    assert got[:, 2].tolist() == list(range(32))    # ... holding what was stored there
    with pytest.raises(ptx.AddressSpaceFault, match="stack overflow: alloca"):
        gpu.run(m, "k", 1, 32, [out, 1 << 20], stack_size=4096)


TWO_SITES = HEAD + """
.func (.param .b32 ret) scale(.param .b32 a, .param .b32 k)
{
    .reg .b32 %r<4>;
    .reg .pred %p<2>;
    ld.param.u32 %r1, [a];
    ld.param.u32 %r2, [k];
    setp.eq.u32 %p1, %r2, 0;
    @%p1 exit;
    mul.lo.s32 %r3, %r1, %r2;
    st.param.b32 [ret+0], %r3;
    ret;
}

.visible .entry k(.param .u64 out)
{
    .reg .b32 %r<8>;
    .reg .b64 %rd<4>;
    .reg .pred %p<3>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    and.b32 %r2, %r1, 3;
    setp.eq.u32 %p1, %r2, 0;
    setp.eq.u32 %p2, %r2, 1;
    mov.u32 %r5, 1;
    @%p1 bra SITE_A;
    @%p2 bra DONE;
    {
    .param .b32 param0;
    st.param.b32 [param0+0], %r1;
    .param .b32 param1;
    st.param.b32 [param1+0], %r2;
    .param .b32 retval0;
    call.uni (retval0), scale, (param0, param1);
    ld.param.b32 %r5, [retval0+0];
    }
    bra.uni DONE;
SITE_A:
    {
    .param .b32 param0;
    st.param.b32 [param0+0], %r1;
    .param .b32 param1;
    st.param.b32 [param1+0], 0;
    .param .b32 retval0;
    call.uni (retval0), scale, (param0, param1);
    ld.param.b32 %r5, [retval0+0];
    }
DONE:
    st.global.u32 [%rd3], %r5;
    ret;
}
"""


def test_one_function_from_two_call_sites_and_exit_inside_it(gpu):
    """Lanes t%4 == 2, 3 call scale(t, t%4) at one site; lanes t%4 == 0 call scale(t, 0) at
    another, which exits the thread inside the function (its output stays untouched); the
    others skip. Each return goes back to its own call site."""
    m = ptx.parse(TWO_SITES)
    out = gpu.upload(np.full(64, 0xDEAD, np.uint32))
    gpu.run(m, "k", 1, 64, [out])
    want = [0xDEAD if t % 4 == 0 else 1 if t % 4 == 1 else t * (t % 4) for t in range(64)]
    assert gpu.download(out, np.uint32, 64).tolist() == want
