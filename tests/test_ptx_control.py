"""Control flow: divergence and reconvergence, loops, predication, early exit, barriers after
divergence, step counting, and stopping runaway kernels (max_steps, deadline, cancel)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu  # noqa: F401

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"


def mod(body: str, decls: str = "") -> ptx.Module:
    return ptx.parse(HEAD + f"""
.visible .entry k(.param .u64 out)
{{
    .reg .b32 %r<20>;
    .reg .b64 %rd<8>;
    .reg .pred %p<6>;
    {decls}
    ld.param.u64 %rd0, [out];
    mov.u32 %r0, %tid.x;
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mad.lo.u32 %r3, %r1, %r2, %r0;
    mul.wide.u32 %rd1, %r3, 4;
    add.u64 %rd2, %rd0, %rd1;
{body}
}}
""")


def test_nested_divergence_loops_and_reconvergence(gpu):
    m = mod("""
    mov.u32 %r4, 0;                 // acc
    mov.u32 %r5, 0;                 // i
    and.b32 %r6, %r0, 7;            // trip count 0..7
LOOP:
    setp.ge.u32 %p0, %r5, %r6;
    @%p0 bra.uni DONE;
    and.b32 %r7, %r5, 1;
    setp.eq.u32 %p1, %r7, 0;
    @%p1 bra EVEN;
    add.u32 %r4, %r4, 100;
    bra.uni NEXT;
EVEN:
    add.u32 %r4, %r4, 1;
NEXT:
    add.u32 %r5, %r5, 1;
    bra.uni LOOP;
DONE:
    activemask.b32 %r8;             // everyone reconverged here
    @!%p1 add.u32 %r4, %r4, 0;
    shl.b32 %r9, %r8, 0;
    setp.ne.u32 %p2, %r9, -1;
    @%p2 mov.u32 %r4, 999999;
    st.global.u32 [%rd2], %r4;
    ret;""")
    out = gpu.alloc(4 * 128)
    gpu.run(m, "k", (2,), (64,), [out])
    got = gpu.download(out, np.uint32, 128)
    ref = [sum(1 if i % 2 == 0 else 100 for i in range(t % 8)) for t in range(64)] * 2
    assert got.tolist() == ref


def test_early_exit_then_barrier(gpu):
    m = mod("""
    mov.u32 %r10, sh;
    setp.ge.u32 %p0, %r0, 40;
    @%p0 exit;                      // threads 40.. leave early
    shl.b32 %r4, %r0, 2;
    add.u32 %r5, %r10, %r4;
    st.shared.u32 [%r5], %r0;
    bar.sync 0;
    xor.b32 %r6, %r0, 1;
    shl.b32 %r7, %r6, 2;
    add.u32 %r8, %r10, %r7;
    ld.shared.u32 %r9, [%r8];
    st.global.u32 [%rd2], %r9;
    ret;""", decls=".shared .align 4 .b8 sh[512];")
    out = gpu.upload(np.full(128, 7, np.uint32))
    gpu.run(m, "k", (1,), (128,), [out])
    got = gpu.download(out, np.uint32, 128)
    assert got[:40].tolist() == [t ^ 1 for t in range(40)] and (got[40:] == 7).all()


def test_falling_off_the_end_and_thread_instruction_count(gpu):
    m = mod("""
    st.global.u32 [%rd2], %r3;""")
    out = gpu.alloc(4 * 64)
    r = gpu.run(m, "k", (2,), (32,), [out])
    assert gpu.download(out, np.uint32, 64).tolist() == list(range(64))
    # 8 instructions (ld.param .. st) for each of 64 threads, plus the implicit exit
    assert r.thread_instructions == 64 * 9 and r.threads == 64 and r.ctas == 2


def test_predicated_exit_partial_count(gpu):
    m = mod("""
    setp.lt.u32 %p0, %r0, 10;
    @%p0 ret;
    st.global.u32 [%rd2], %r0;
    ret;""")
    out = gpu.upload(np.zeros(32, np.uint32))
    r = gpu.run(m, "k", 1, 32, [out])
    assert gpu.download(out, np.uint32, 32).tolist() == [0] * 10 + list(range(10, 32))
    assert r.thread_instructions == 32 * 9 + 22 * 2


ENDLESS = """
LOOP:
    add.u32 %r4, %r4, 1;
    bra LOOP;"""


def test_endless_loop_max_steps(gpu):
    m = mod(ENDLESS)
    with pytest.raises(ptx.LaunchTimeout) as ei:
        gpu.run(m, "k", 1, 32, [gpu.alloc(128)], max_steps=10_000)
    e = ei.value
    assert e.reason == "max_steps" and e.steps == 10_001 and e.line in (20, 21) and e.entry == "k"


def test_endless_loop_deadline_and_cancel(gpu):
    m = mod(ENDLESS)
    t0 = time.monotonic()
    with pytest.raises(ptx.LaunchTimeout) as ei:
        gpu.run(m, "k", 1, 32, [gpu.alloc(128)], deadline=time.monotonic() + 0.2)
    assert ei.value.reason == "deadline" and time.monotonic() - t0 < 5
    ev = threading.Event()
    errors = []

    def worker():
        try:
            gpu.run(m, "k", 1, 32, [gpu.alloc(128)], cancel=ev)
        except ptx.LaunchTimeout as exc:
            errors.append(exc)
    th = threading.Thread(target=worker)
    th.start()
    time.sleep(0.1)
    ev.set()
    th.join(5)
    assert not th.is_alive() and errors and errors[0].reason == "cancelled"


def test_divergent_endless_loop_some_lanes(gpu):
    m = mod("""
    setp.lt.u32 %p0, %r0, 3;
    @%p0 bra SPIN;
    st.global.u32 [%rd2], %r0;
    ret;
SPIN:
    bra SPIN;""")
    with pytest.raises(ptx.LaunchTimeout) as ei:
        gpu.run(m, "k", 1, 32, [gpu.alloc(128)], max_steps=5000)
    assert ei.value.thread[0] < 3


def test_chunking_does_not_change_results(gpu):
    m = mod("""
    mul.lo.u32 %r4, %r3, 3;
    st.global.u32 [%rd2], %r4;
    ret;""")
    out = gpu.alloc(4 * 4096)
    for chunk in (32, 100, 1 << 16):
        gpu.pt.write(out, bytes(4 * 4096))
        gpu.run(m, "k", (64,), (64,), [out], chunk_threads=chunk)
        assert gpu.download(out, np.uint32, 4096).tolist() == [3 * i for i in range(4096)]


def test_launch_argument_errors(gpu):
    from hwdrv.errors import ProgramError
    m = mod("    ret;")
    with pytest.raises(ProgramError, match="threads"):
        gpu.run(m, "k", 1, 2048, [0])
    with pytest.raises(ProgramError, match="not in module"):
        ptx.launch(m, "nope", 1, 1, b"", gpu.pt)
    with pytest.raises(ProgramError, match="8 bytes"):
        ptx.launch(m, "k", 1, 1, b"\0", gpu.pt)
