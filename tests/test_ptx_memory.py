"""ld/st in every state space (vectors, generic addressing, module variables, kernel
parameters) and atomics/reductions with per-lane sequential semantics."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu  # noqa: F401

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"


def kernel(body: str, params: str = ".param .u64 out", decls: str = "", pre: str = "") -> ptx.Module:
    return ptx.parse(HEAD + pre + f"""
.visible .entry k({params})
{{
    .reg .b32 %r<20>;
    .reg .b64 %rd<20>;
    .reg .f32 %f<10>;
    .reg .pred %p<4>;
    {decls}
    mov.u32 %r0, %tid.x;
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mad.lo.u32 %r3, %r1, %r2, %r0;
    ld.param.u64 %rd0, [out];
    cvta.to.global.u64 %rd0, %rd0;
    mul.wide.u32 %rd1, %r3, 4;
    add.u64 %rd2, %rd0, %rd1;
{body}
    ret;
}}
""")


def test_shared_generic_round_trip_and_per_cta_isolation(gpu):
    m = kernel("""
    mov.u32 %r4, sbuf;
    shl.b32 %r5, %r0, 2;
    add.u32 %r6, %r4, %r5;
    add.u32 %r7, %r3, 1000;
    st.shared.u32 [%r6], %r7;
    bar.sync 0;
    cvta.shared.u64 %rd3, sbuf;            // generic pointer to this CTA's buffer
    xor.b32 %r8, %r0, 1;                   // read the neighbour's slot through the generic window
    mul.wide.u32 %rd4, %r8, 4;
    add.u64 %rd5, %rd3, %rd4;
    ld.u32 %r9, [%rd5];
    cvta.to.shared.u64 %rd6, %rd5;         // and back to a shared address
    cvt.u32.u64 %r10, %rd6;
    ld.shared.u32 %r11, [%r10];
    sub.u32 %r12, %r9, %r11;
    add.u32 %r13, %r9, %r12;
    st.global.u32 [%rd2], %r13;""", decls=".shared .align 4 .b8 sbuf[256];")
    out = gpu.alloc(4 * 128)
    gpu.run(m, "k", (2,), (64,), [out])
    got = gpu.download(out, np.uint32, 128)
    g = np.arange(128)
    assert got.tolist() == ((g ^ 1) + 1000).tolist()


def test_local_memory_and_generic_local(gpu):
    m = kernel("""
    mov.u64 %rd3, depot;
    st.local.u32 [%rd3+4], %r3;
    cvta.local.u64 %rd4, %rd3;
    ld.u32 %r4, [%rd4+4];
    st.u32 [%rd4+8], %r4;
    ld.local.u32 %r5, [depot+8];
    add.u32 %r6, %r5, %r4;
    st.global.u32 [%rd2], %r6;""", decls=".local .align 8 .b8 depot[16];")
    out = gpu.alloc(4 * 96)
    gpu.run(m, "k", (3,), (32,), [out])
    assert gpu.download(out, np.uint32, 96).tolist() == [2 * i for i in range(96)]


def test_vectors_and_nc_loads(gpu):
    m = kernel("""
    ld.param.u64 %rd5, [inp];
    cvta.to.global.u64 %rd5, %rd5;
    mul.wide.u32 %rd6, %r3, 16;
    add.u64 %rd7, %rd5, %rd6;
    ld.global.nc.v4.f32 {%f0, %f1, %f2, %f3}, [%rd7];
    add.f32 %f4, %f0, %f1;
    add.f32 %f5, %f2, %f3;
    mul.wide.u32 %rd8, %r3, 8;
    add.u64 %rd9, %rd0, %rd8;
    st.global.v2.f32 [%rd9], {%f4, %f5};
    ld.global.v2.u32 {%r4, _}, [%rd7];""", params=".param .u64 out, .param .u64 inp")
    x = np.arange(64 * 4, dtype=np.float32)
    out, inp = gpu.alloc(8 * 64), gpu.upload(x)
    gpu.run(m, "k", (1,), (64,), [out, inp])
    r = gpu.download(out, np.float32, 128).reshape(64, 2)
    x4 = x.reshape(64, 4)
    assert np.array_equal(r, np.stack([x4[:, 0] + x4[:, 1], x4[:, 2] + x4[:, 3]], axis=1))


def test_param_space_addressing(gpu):
    m = ptx.parse(HEAD + """
.visible .entry k(.param .u64 out, .param .u8 c, .param .align 8 .b8 s[24], .param .f64 d)
{
    .reg .b16 %h;
    .reg .b32 %r<4>;
    .reg .b64 %rd<6>;
    .reg .f64 %fd;
    ld.param.u64 %rd0, [out];
    ld.param.u8 %h, [c];
    mov.b64 %rd1, s;
    ld.param.u32 %r0, [%rd1+8];
    ld.param.v2.u32 {%r1, %r2}, [s];
    ld.param.f64 %fd, [d];
    cvta.param.u64 %rd2, %rd1;           // generic pointer to a kernel parameter
    ld.u32 %r3, [%rd2+12];
    st.global.u32 [%rd0+4], %r3;
    cvt.u32.u16 %r3, %h;
    st.global.u32 [%rd0], %r3;
    st.global.v2.u32 [%rd0+8], {%r1, %r2};
    st.global.u32 [%rd0+16], %r0;
    st.global.f64 [%rd0+24], %fd;
    ret;
}
""")
    e = m.entries["k"]
    assert [(p.name, p.size, p.align, p.offset) for p in e.params] == [
        ("out", 8, 8, 0), ("c", 1, 1, 8), ("s", 24, 8, 16), ("d", 8, 8, 40)]
    out = gpu.alloc(32)
    s = struct.pack("<IIIIQ", 11, 22, 33, 44, 0)
    gpu.run(m, "k", 1, 1, [out, 200, s, -1.25])
    r = gpu.download(out, np.uint32, 6)
    assert r[0] == 200 and r[1] == 44 and r[2:5].tolist() == [11, 22, 33]
    assert gpu.download(out + 24, np.float64, 1)[0] == -1.25


def test_const_module_variable(gpu):
    m = kernel("""
    shl.b32 %r4, %r0, 2;
    mov.u32 %r5, table;
    add.u32 %r6, %r5, %r4;
    ld.const.u32 %r7, [%r6];
    ld.const.f32 %f0, [scale];
    cvt.rn.f32.u32 %f1, %r7;
    mul.f32 %f2, %f1, %f0;
    st.global.f32 [%rd2], %f2;""", pre=".const .align 4 .u32 table[4] = {1, 2, 3, 4};\n.const .f32 scale = 0f40000000;\n")
    assert m.variables["table"].size == 16 and m.const_layout == {"table": 0, "scale": 16}
    out = gpu.alloc(16)
    gpu.run(m, "k", 1, 4, [out])
    assert gpu.download(out, np.float32, 4).tolist() == [2.0, 4.0, 6.0, 8.0]
    # the loader may supply its own bank 3
    bank = np.array([10, 20, 30, 40], np.uint32).tobytes() + np.float32(0.5).tobytes()
    gpu.run(m, "k", 1, 4, [out], const_banks={3: bank})
    assert gpu.download(out, np.float32, 4).tolist() == [5.0, 10.0, 15.0, 20.0]


def test_global_module_variable_needs_an_address(gpu):
    m = kernel("""
    ld.global.u32 %r4, [counter];
    add.u32 %r4, %r4, %r3;
    st.global.u32 [%rd2], %r4;""", pre=".visible .global .align 4 .u32 counter;\n")
    assert m.global_variables["counter"].size == 4
    out = gpu.alloc(16)
    with pytest.raises(ptx.IllegalInstruction, match="counter"):
        gpu.run(m, "k", 1, 4, [out])
    va = gpu.upload(np.array([100], np.uint32))
    gpu.run(m, "k", 1, 4, [out], global_addresses={"counter": va})
    assert gpu.download(out, np.uint32, 4).tolist() == [100, 101, 102, 103]


def test_atomics_per_lane_sequential(gpu):
    """Every lane of one atom.add on one address gets a distinct old value, in lane order."""
    m = kernel("""
    ld.param.u64 %rd5, [ctr];
    atom.global.add.u32 %r4, [%rd5], 1;
    st.global.u32 [%rd2], %r4;
    atom.global.exch.b32 %r5, [%rd5+4], %r3;
    atom.global.cas.b32 %r6, [%rd5+8], %r3, 77;
    atom.global.max.s32 %r7, [%rd5+12], %r3;
    atom.global.inc.u32 %r8, [%rd5+16], 4;
    atom.global.dec.u32 %r9, [%rd5+20], 3;
    red.global.add.u64 [%rd5+24], %rd1;
    atom.global.add.f64 %fd0, [%rd5+32], 0d3FF8000000000000;
    mul.wide.u32 %rd9, %r3, 4;
    ld.param.u64 %rd10, [aux];
    add.u64 %rd11, %rd10, %rd9;
    st.global.u32 [%rd11], %r8;
    """, params=".param .u64 out, .param .u64 ctr, .param .u64 aux", decls=".reg .f64 %fd0;")
    n = 200
    out, ctr, aux = gpu.alloc(4 * n), gpu.upload(np.zeros(10, np.uint32)), gpu.alloc(4 * n)
    gpu.pt.write(ctr + 8, struct.pack("<I", 5))
    gpu.run(m, "k", (2,), (100,), [out, ctr, aux])
    assert gpu.download(out, np.uint32, n).tolist() == list(range(n))
    c = gpu.download(ctr, np.uint32, 6)
    assert c[0] == n and c[1] == n - 1                   # last exchange in lane order wins
    assert c[2] == 77                                    # CAS(5 -> 77) succeeds for thread 5 only
    assert c[3] == n - 1
    inc = gpu.download(aux, np.uint32, n)
    assert inc.tolist() == [i % 5 for i in range(n)]     # inc wraps at 4: 0,1,2,3,4,0,...
    assert c[4] == n % 5
    v = 0
    for _ in range(n):
        v = 3 if v == 0 or v > 3 else v - 1
    assert c[5] == v
    assert gpu.download(ctr + 24, np.uint64, 1)[0] == sum(4 * i for i in range(n))
    assert gpu.download(ctr + 32, np.float64, 1)[0] == 1.5 * n


def test_atomic_dec_semantics(gpu):
    m = kernel("""
    ld.param.u64 %rd5, [ctr];
    atom.global.dec.u32 %r4, [%rd5], 3;
    st.global.u32 [%rd2], %r4;""", params=".param .u64 out, .param .u64 ctr")
    out, ctr = gpu.alloc(40), gpu.upload(np.array([1], np.uint32))
    gpu.run(m, "k", 1, 10, [out, ctr])
    # old: 1 -> 0 -> 3 (wrap at 0 to b) -> 2 -> 1 -> 0 -> 3 ...
    assert gpu.download(out, np.uint32, 10).tolist() == [1, 0, 3, 2, 1, 0, 3, 2, 1, 0]


@pytest.mark.parametrize("op, ref", [("min", min), ("max", max), ("and", lambda a, b: a & b),
                                     ("or", lambda a, b: a | b), ("xor", lambda a, b: a ^ b)])
def test_shared_atomics_many_lanes_one_address(gpu, op, ref):
    t = "u32" if op in ("min", "max") else "b32"
    m = kernel(f"""
    mov.u32 %r4, sh;
    setp.eq.u32 %p0, %r0, 0;
    @%p0 st.shared.u32 [%r4], %r10;
    bar.sync 0;
    ld.param.u64 %rd5, [vals];
    add.u64 %rd6, %rd5, %rd1;
    ld.global.u32 %r5, [%rd6];
    atom.shared.{op}.{t} %r6, [%r4], %r5;
    st.global.u32 [%rd2], %r6;""", params=".param .u64 out, .param .u64 vals",
               decls=".shared .align 4 .b8 sh[4];\n    mov.u32 %r10, 0x5A5A5A5A;")
    vals = np.random.default_rng(1).integers(0, 1 << 32, 1024, dtype=np.uint64).astype(np.uint32)
    out, pv = gpu.alloc(4 * 1024), gpu.upload(vals)
    gpu.run(m, "k", (1,), (1024,), [out, pv])
    got = gpu.download(out, np.uint32, 1024).tolist()
    cur, exp = 0x5A5A5A5A, []
    for v in vals.tolist():
        exp.append(cur)
        cur = ref(cur, v)
    assert got == exp


def test_generic_atomics_and_f16x2_add(gpu):
    m = kernel("""
    cvta.shared.u64 %rd3, sh;
    setp.eq.u32 %p0, %r0, 0;
    @%p0 st.shared.u32 [sh], 0;
    bar.sync 0;
    atom.add.u32 %r4, [%rd3], 2;
    mov.b32 %r5, 0x3C003C00;           // (1.0, 1.0) in f16x2
    ld.param.u64 %rd5, [h];
    atom.global.add.noftz.f16x2 %r6, [%rd5], %r5;
    bar.sync 0;
    ld.shared.u32 %r7, [sh];
    st.global.u32 [%rd2], %r7;""", params=".param .u64 out, .param .u64 h", decls=".shared .align 4 .b8 sh[4];")
    out, h = gpu.alloc(4 * 64), gpu.upload(np.zeros(2, np.float16))
    gpu.run(m, "k", (1,), (64,), [out, h])
    assert gpu.download(out, np.uint32, 64).tolist() == [128] * 64
    assert gpu.download(h, np.float16, 2).tolist() == [64.0, 64.0]


def test_unsupported_memory_forms_refuse_the_launch():
    from test_ptx_helpers import assert_launch_refused
    for bad, word in (("st.param.u32 [out], %r0;", "read-only"), ("st.const.u32 [%rd0], %r0;", "read-only"),
                      ("ld.global.v8.u32 {%r0,%r1,%r2,%r3,%r4,%r5,%r6,%r7}, [%rd0];", ".v8"),
                      ("atom.global.add.s64 %rd1, [%rd0], %rd1;", "s64")):
        m = kernel(bad)
        line = next(i.line for i in m.entries["k"].function.instrs if i.text.startswith(bad.split()[0]))
        assert_launch_refused(m, "k", line, word)


@pytest.mark.parametrize("op, tname", [("add", "u32"), ("add", "f32"), ("add", "f64"), ("inc", "u32"), ("dec", "u32"),
                                       ("min", "s32"), ("max", "u64"), ("and", "b32"), ("or", "b64"), ("xor", "b32"),
                                       ("exch", "b32"), ("cas", "b32"), ("add", "f16x2")])
@pytest.mark.parametrize("nloc", [1, 3, 40])
def test_serial_rmw_matches_lane_by_lane_model(op, tname, nloc):
    """Every strategy (closed forms, accumulate, rounds) equals applying the lanes one by one."""
    from hwdrv.mock.nvidia.ptx.ops_atom import _apply_fn, serial_rmw
    from hwdrv.mock.nvidia.ptx.types import TYPES
    t = TYPES[tname]
    rng = np.random.default_rng(zlib.crc32(op.encode()) + nloc)
    n = 300
    keys = rng.integers(0, nloc, n).astype(np.uint64)
    if tname == "f32":
        b = (rng.standard_normal(n) * 10.0 ** rng.integers(-40, 3, n)).astype(np.float32)   # incl. subnormals
    elif tname == "f64":
        b = rng.standard_normal(n)
    elif tname == "f16x2":
        b = rng.standard_normal(2 * n).astype(np.float16).view(np.uint32)
    elif op in ("inc", "dec"):
        b = rng.integers(0, 6, n).astype(np.uint32) if nloc == 40 else np.full(n, rng.integers(0, 9), np.uint32)
    elif op == "cas":
        b = rng.integers(0, 3, n).astype(np.uint32)
    else:
        b = rng.integers(0, 1 << 62, n, dtype=np.uint64).astype(t.dtype) if t.size == 8 else \
            rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(t.dtype)
    c = rng.integers(0, 3, n).astype(np.uint32) if op == "cas" else None
    init = {k: (np.zeros(1, t.dtype)[0] if op != "dec" else t.dtype.type(2)) for k in range(nloc)}
    mem = dict(init)
    fn = _apply_fn(op, t)
    store_log = {}

    def load(pos):
        return np.array([mem[int(keys[p])] for p in pos], t.dtype)

    def store(pos, vals):
        for p, v in zip(pos, vals):
            store_log[int(keys[p])] = v
    old = serial_rmw(keys, load, store, b, c, fn, op, t, True)
    model = dict(init)
    ref_old = []
    for k in range(n):
        cur = np.array([model[int(keys[k])]], t.dtype)
        ref_old.append(cur[0])
        cc = c[k:k + 1] if c is not None else b[k:k + 1]
        model[int(keys[k])] = np.asarray(fn(cur, b[k:k + 1], cc), t.dtype)[0]
    raw = f"u{t.size}"
    assert np.array_equal(np.asarray(old, t.dtype).view(raw), np.array(ref_old, t.dtype).view(raw))
    for key, v in model.items():
        if key in store_log:
            assert np.array([store_log[key]], t.dtype).view(raw)[0] == np.array([v], t.dtype).view(raw)[0]
