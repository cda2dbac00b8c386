"""wgmma on the mock against numpy: one warpgroup multiplies a 64 x K tile of A by an N x K tile of
B (m64nNk16 f16/bf16, k8 tf32, k32 fp8), A from a shared-memory descriptor or from registers, B
K-major or N-major, every descriptor swizzle mode, scale-d accumulate and imm-scale; and the
faults of wrong programs (a missing wait_group or fence, bad descriptors, partial warpgroups).

The kernels are generated PTX that ``ptxas -arch=sm_90a`` (13.0) accepts
(test_generated_ptx_assembles runs it where ptxas is installed). Shared-memory images are built
here from the layouts of the PTX ISA (9.7.15.5.1.2: K-major core matrices of 8 rows x 16 bytes,
swizzled rows as TMA writes them, see test_ptx_tma_copy.swizzled_image), descriptors from the
bit table of nvidia-perf.md 1.1, and the accumulator fragment layout from the PTX ISA's wgmma D
fragment figure (row 16 * warp + lane / 4 + 8 * (i % 4 / 2), column 8 * (i / 4) + 2 * (lane % 4) + i % 2)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu  # noqa: F401
from test_ptx_tma_copy import swizzled_image

DESC_SWIZZLE = {0: 0, 128: 1, 64: 2, 32: 3}       # wgmma descriptor numbering
ELEM = {"f16": (np.float16, 16), "bf16": (None, 16), "tf32": (np.float32, 8), "e4m3": (None, 32), "e5m2": (None, 32)}


def desc(start: int = 0, lbo: int = 0, sbo: int = 0, swizzle: int = 0, base_offset: int = 0) -> int:
    enc = lambda x: (x & 0x3FFFF) >> 4                                   # noqa: E731
    return enc(start) | enc(lbo) << 16 | enc(sbo) << 32 | base_offset << 49 | DESC_SWIZZLE[swizzle] << 62


def kernel(n: int, atype: str, btype: str, ksteps: int, step_a: int, step_b: int, *, a_regs=False,
           trans_a=0, trans_b=0, scale_a=1, scale_b=1, wait=True, fence=True, a_bytes=8192, b_bytes=32768) -> str:
    """One warpgroup: copy the A and B images to shared memory, load C, D = A*B (+ C), store D
    as fragments (thread t's register i at out[t * N/2 + i])."""
    nd = n // 2
    k = ELEM[atype][1]
    dregs = ", ".join(f"%f{i}" for i in range(nd))
    lines = [".version 8.5", ".target sm_90a", ".address_size 64", "",
             ".visible .entry wg_gemm(.param .u64 a_img, .param .u64 b_img, .param .u64 out, .param .u64 desc_a,",
             "    .param .u64 desc_b, .param .u32 acc)", "{",
             "    .reg .pred %p<4>;", "    .reg .b32 %r<32>;", "    .reg .b64 %rd<32>;", f"    .reg .f32 %f<{nd}>;",
             f"    .shared .align 1024 .b8 sa[{a_bytes}];", f"    .shared .align 1024 .b8 sb[{b_bytes}];",
             "    mov.u32 %r1, %tid.x;", "    shl.b32 %r2, %r1, 4;"]
    for src, dst, size in (("a_img", "sa", a_bytes), ("b_img", "sb", b_bytes)):
        if src == "a_img" and a_regs:
            continue
        lines += [f"    ld.param.u64 %rd1, [{src}];", "    cvta.to.global.u64 %rd1, %rd1;", f"    mov.u32 %r3, {dst};",
                  "    mov.u32 %r4, %r2;", f"CP_{dst}:", f"    setp.ge.u32 %p1, %r4, {size};",
                  f"    @%p1 bra END_{dst};",
                  "    cvt.u64.u32 %rd2, %r4;", "    add.s64 %rd3, %rd1, %rd2;",
                  "    ld.global.v4.u32 {%r5, %r6, %r7, %r8}, [%rd3];", "    add.u32 %r9, %r3, %r4;",
                  "    st.shared.v4.u32 [%r9], {%r5, %r6, %r7, %r8};", "    add.u32 %r4, %r4, 2048;",
                  f"    bra CP_{dst};", f"END_{dst}:"]
    lines += ["    fence.proxy.async.shared::cta;", "    bar.sync 0;",
              "    ld.param.u64 %rd4, [out];", "    cvta.to.global.u64 %rd4, %rd4;",
              f"    mul.wide.u32 %rd5, %r1, {nd * 4};", "    add.s64 %rd6, %rd4, %rd5;"]
    lines += [f"    ld.global.f32 %f{i}, [%rd6+{4 * i}];" for i in range(nd)]
    if a_regs:
        lines += ["    ld.param.u64 %rd1, [a_img];", "    cvta.to.global.u64 %rd1, %rd1;",
                  "    mul.wide.u32 %rd2, %r1, 16;", "    add.s64 %rd3, %rd1, %rd2;",
                  "    ld.global.v4.u32 {%r10, %r11, %r12, %r13}, [%rd3];"]
    lines += ["    ld.param.u64 %rd10, [desc_a];", "    ld.param.u64 %rd11, [desc_b];",
              "    mov.u32 %r14, sa;", "    shr.u32 %r14, %r14, 4;", "    cvt.u64.u32 %rd12, %r14;",
              "    add.s64 %rd10, %rd10, %rd12;",
              "    mov.u32 %r15, sb;", "    shr.u32 %r15, %r15, 4;", "    cvt.u64.u32 %rd13, %r15;",
              "    add.s64 %rd11, %rd11, %rd13;",
              "    ld.param.u32 %r16, [acc];", "    setp.ne.u32 %p2, %r16, 0;", "    setp.eq.u32 %p3, %r16, %r16;"]
    if fence:
        lines.append("    wgmma.fence.sync.aligned;")
    trans = atype in ("f16", "bf16")
    for s in range(ksteps):
        lines += [f"    add.s64 %rd14, %rd10, {s * step_a >> 4};", f"    add.s64 %rd15, %rd11, {s * step_b >> 4};"]
        a = "{%r10, %r11, %r12, %r13}" if a_regs else "%rd14"
        imms = f"{scale_a}, {scale_b}" + ((f", {trans_b}" if a_regs else f", {trans_a}, {trans_b}") if trans else "")
        lines.append(f"    wgmma.mma_async.sync.aligned.m64n{n}k{k}.f32.{atype}.{btype} {{{dregs}}}, {a}, %rd15, "
                     f"{'%p2' if s == 0 else '%p3'}, {imms};")
    lines.append("    wgmma.commit_group.sync.aligned;")
    if wait:
        lines.append("    wgmma.wait_group.sync.aligned 0;")
    lines += [f"    st.global.f32 [%rd6+{4 * i}], %f{i};" for i in range(nd)]
    lines += ["    ret;", "}", ""]
    return "\n".join(lines)


def frag_to_matrix(frag: np.ndarray, n: int) -> np.ndarray:
    """(128 threads, N/2) accumulator fragments -> the 64 x N matrix."""
    t = np.arange(128)[:, None]
    i = np.arange(n // 2)[None, :]
    row = 16 * (t // 32) + (t % 32) // 4 + 8 * ((i % 4) // 2)
    col = 8 * (i // 4) + 2 * (t % 4) + i % 2
    out = np.full((64, n), np.nan, np.float32)
    out[row, col] = frag
    return out


def kmajor_plain(m: np.ndarray, lbo: int, sbo: int, size: int) -> np.ndarray:
    """Bytes of ``m`` (rows x K, 16-bit) in K-major core matrices: 8 rows x 16 bytes each, the
    core matrices of one 8-row group ``lbo`` apart along K, groups ``sbo`` apart."""
    img = np.zeros(size, np.uint8)
    raw = m.view(np.uint8).reshape(m.shape[0], -1)
    for r in range(m.shape[0]):
        for c in range(raw.shape[1] // 16):
            o = (r // 8) * sbo + c * lbo + (r % 8) * 16
            img[o:o + 16] = raw[r, 16 * c:16 * c + 16]
    return img


def _random(shape, atype, rng):
    x = rng.integers(-8, 9, shape) / 8.0              # exact in every element type here
    if atype == "f16":
        return x.astype(np.float16), x
    if atype == "bf16":
        return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16), x
    if atype == "tf32":
        return x.astype(np.float32), x
    from hwdrv.mock.nvidia.ptx.fp8 import encode
    return encode(x, atype, False).astype(np.uint8), x


def _run(gpu, src, a_img, b_img, da, dbd, n, c=None, acc=0):
    module = ptx.parse(src)
    out = gpu.upload(np.zeros((128, n // 2), np.float32) if c is None else c)
    gpu.run(module, "wg_gemm", 1, 128, [gpu.upload(a_img), gpu.upload(b_img), out, da, dbd, acc])
    return gpu.download(out, np.float32, 64 * n).reshape(128, n // 2)


@pytest.mark.parametrize("atype", ["f16", "bf16"])
@pytest.mark.parametrize("n", [8, 64, 128])
@pytest.mark.parametrize("swizzle", [0, 32, 64, 128])
def test_gemm_kmajor_descriptors(gpu, atype, n, swizzle):
    rng = np.random.default_rng(n + swizzle)
    k = swizzle // 2 if swizzle else 32                       # K of one swizzle row (none: 2 steps)
    a_raw, a = _random((64, k), atype, rng)
    b_raw, b = _random((n, k), atype, rng)
    if swizzle:
        a_img, b_img = swizzled_image(a_raw, swizzle), swizzled_image(b_raw, swizzle)
        da, dbd = desc(sbo=8 * swizzle, swizzle=swizzle), desc(sbo=8 * swizzle, swizzle=swizzle)
        step = 32                                             # the next 16 elements of K: 32 bytes on
    else:
        a_img = kmajor_plain(a_raw, 128, k // 8 * 128, 64 * k * 2)
        b_img = kmajor_plain(b_raw, 128, k // 8 * 128, n * k * 2)
        da, dbd = desc(lbo=128, sbo=k // 8 * 128), desc(lbo=128, sbo=k // 8 * 128)
        step = 256                                            # two core matrices along K
    src = kernel(n, atype, atype, k // 16, step, step)
    got = frag_to_matrix(_run(gpu, src, a_img, b_img, da, dbd, n), n)
    np.testing.assert_allclose(got, a @ b.T, rtol=1e-6, atol=1e-6)


def test_gemm_accumulates_and_scales(gpu):
    rng = np.random.default_rng(3)
    a_raw, a = _random((64, 64), "f16", rng)
    b_raw, b = _random((64, 64), "f16", rng)
    c = rng.standard_normal((64, 64)).astype(np.float32)
    t = np.arange(128)[:, None]
    i = np.arange(32)[None, :]
    c_frag = c[16 * (t // 32) + (t % 32) // 4 + 8 * ((i % 4) // 2), 8 * (i // 4) + 2 * (t % 4) + i % 2]
    src = kernel(64, "f16", "f16", 4, 32, 32, scale_a=-1)
    d = desc(sbo=1024, swizzle=128)
    got = frag_to_matrix(_run(gpu, src, swizzled_image(a_raw, 128), swizzled_image(b_raw, 128), d, d, 64,
                              c=c_frag, acc=1), 64)
    np.testing.assert_allclose(got, c - a @ b.T, rtol=1e-5, atol=1e-5)


def test_gemm_b_n_major_128b(gpu):
    """B stored N-contiguous (imm-trans-b 1), as a TMA load of a K x N tile of a row-major B
    lays it out: 128-byte rows of 64 N-elements, one row per k, swizzled."""
    rng = np.random.default_rng(4)
    a_raw, a = _random((64, 64), "bf16", rng)
    b_raw, b = _random((64, 64), "bf16", rng)              # b: N x K
    bt = np.ascontiguousarray(b_raw.T)                     # K x N in memory
    src = kernel(64, "bf16", "bf16", 4, 32, 16 * 128, trans_b=1)
    got = frag_to_matrix(_run(gpu, src, swizzled_image(a_raw, 128), swizzled_image(bt, 128),
                              desc(sbo=1024, swizzle=128), desc(sbo=1024, swizzle=128), 64), 64)
    np.testing.assert_allclose(got, a @ b.T, rtol=1e-6, atol=1e-6)


def test_gemm_a_m_major_128b(gpu):
    """A stored M-contiguous (imm-trans-a 1): one 128-byte swizzled row of 64 M-elements per k."""
    rng = np.random.default_rng(14)
    a_raw, a = _random((64, 32), "f16", rng)
    b_raw, b = _random((64, 64), "f16", rng)
    b = b[:, :32]
    b_raw = np.ascontiguousarray(b_raw[:, :32])
    at = np.ascontiguousarray(a_raw.T)                     # K x M in memory
    src = kernel(64, "f16", "f16", 2, 16 * 128, 32, trans_a=1)
    got = frag_to_matrix(_run(gpu, src, swizzled_image(at, 128), swizzled_image(b_raw, 64),
                              desc(sbo=1024, swizzle=128), desc(sbo=512, swizzle=64), 64), 64)
    np.testing.assert_allclose(got, a @ b.T, rtol=1e-6, atol=1e-6)


def test_gemm_a_from_registers(gpu):
    rng = np.random.default_rng(5)
    a_raw, a = _random((64, 16), "f16", rng)
    b_raw, b = _random((128, 64), "f16", rng)
    b = b[:, :16]
    t = np.arange(128)[:, None]
    j = np.arange(4)[None, :]
    row = 16 * (t // 32) + (t % 32) // 4 + 8 * (j % 2)        # mma.m16n8k16 A fragment per warp
    col = 8 * (j // 2) + 2 * (t % 4)
    bits = a_raw.view(np.uint16).astype(np.uint32)
    frags = (bits[row, col] | bits[row, col + 1] << 16).astype(np.uint32)
    src = kernel(128, "f16", "f16", 1, 32, 32, a_regs=True)
    got = frag_to_matrix(_run(gpu, src, frags, swizzled_image(b_raw, 128), 0, desc(sbo=1024, swizzle=128), 128), 128)
    np.testing.assert_allclose(got, a @ b.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("atype,btype", [("tf32", "tf32"), ("e4m3", "e5m2")])
def test_gemm_tf32_and_fp8(gpu, atype, btype):
    rng = np.random.default_rng(6)
    a_raw, a = _random((64, 32 if atype == "tf32" else 128), atype, rng)
    b_raw, b = _random((64, a.shape[1]), btype, rng)
    k = ELEM[atype][1]
    src = kernel(64, atype, btype, a.shape[1] // k, 32, 32)
    d = desc(sbo=1024, swizzle=128)
    got = frag_to_matrix(_run(gpu, src, swizzled_image(a_raw, 128), swizzled_image(b_raw, 128), d, d, 64), 64)
    np.testing.assert_allclose(got, a @ b.T, rtol=1e-6, atol=1e-6)


# ---- wrong programs ---------------------------------------------------------------------------------
def _fault(gpu, src, match, block=128, da=None, dbd=None):
    a = np.zeros(8192, np.uint8)
    b = np.zeros(32768, np.uint8)
    d = desc(sbo=1024, swizzle=128)
    module = ptx.parse(src)
    out = gpu.upload(np.zeros((128, 32), np.float32))
    with pytest.raises(ptx.IllegalInstruction, match=match) as exc:
        gpu.run(module, "wg_gemm", 1, block, [gpu.upload(a), gpu.upload(b), out, d if da is None else da,
                                              d if dbd is None else dbd, 0])
    return exc.value


def test_reading_accumulators_before_wait_group_faults(gpu):
    exc = _fault(gpu, kernel(64, "f16", "f16", 1, 32, 32, wait=False), r"register %f0 accessed while a wgmma")
    assert "st.global.f32" in exc.instruction


def test_mma_without_fence_faults(gpu):
    _fault(gpu, kernel(64, "f16", "f16", 1, 32, 32, fence=False), "without a wgmma.fence")


def test_bad_descriptors_fault(gpu):
    _fault(gpu, kernel(64, "f16", "f16", 1, 32, 32), "reserved bits", dbd=desc(sbo=1024, swizzle=128) | 1 << 46)
    _fault(gpu, kernel(64, "f16", "f16", 1, 32, 32), "base offset 3 without a swizzle", da=desc(base_offset=3))
    with pytest.raises(ptx.AddressSpaceFault):                 # a matrix beyond the CTA's shared memory
        _fault(gpu, kernel(64, "f16", "f16", 1, 32, 32), None, da=desc(start=0x30000, sbo=1024, swizzle=128))


def test_partial_warpgroup_faults(gpu):
    _fault(gpu, kernel(64, "f16", "f16", 1, 32, 32), "all 128 threads of each warpgroup", block=96)


def test_invalid_shapes_are_refused_at_load():
    bad = kernel(64, "f16", "f16", 1, 32, 32).replace("m64n64k16", "m64n60k16")
    entry = ptx.parse(bad).entries["wg_gemm"]
    assert entry.unsupported and "m64n60k16" in entry.unsupported[0].message


SETMAXNREG = """.version 8.5
.target sm_90a
.address_size 64
.visible .entry regs(.param .u64 out)
{
    .reg .b32 %r<4>;
    .reg .b64 %rd<4>;
    .reg .pred %p<2>;
    mov.u32 %r1, %tid.x;
    setp.lt.u32 %p1, %r1, 128;
    @%p1 bra PRODUCER;
    setmaxnreg.inc.sync.aligned.u32 232;
    bra DONE;
PRODUCER:
    setmaxnreg.dec.sync.aligned.u32 40;
DONE:
    ld.param.u64 %rd1, [out];
    cvta.to.global.u64 %rd1, %rd1;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r1;
    ret;
}
"""


def test_setmaxnreg(gpu):
    module = ptx.parse(SETMAXNREG)
    out = gpu.alloc(4 * 256)
    gpu.run(module, "regs", 1, 256, [out])
    assert gpu.download(out, np.uint32, 256).tolist() == list(range(256))
    with pytest.raises(ptx.IllegalInstruction, match="warpgroup"):
        gpu.run(module, "regs", 1, 192, [out])                 # the second warpgroup is half there
    for bad in ("232", "20", "260"):
        src = SETMAXNREG.replace("u32 232", "u32 " + ("233" if bad == "232" else bad))
        assert ptx.parse(src).entries["regs"].unsupported


def _ptxas(src: str, tmp_path) -> subprocess.CompletedProcess:
    p = tmp_path / "k.ptx"
    p.write_text(src)
    return subprocess.run(["ptxas", "-arch=sm_90a", str(p), "-o", str(tmp_path / "k.cubin")],
                          capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) not installed")
def test_generated_ptx_assembles(tmp_path):
    for src in (kernel(64, "f16", "f16", 4, 32, 32), kernel(128, "bf16", "bf16", 1, 32, 32, a_regs=True, trans_b=1),
                kernel(64, "f16", "f16", 2, 2048, 32, trans_a=1),
                kernel(64, "tf32", "tf32", 4, 32, 32), kernel(64, "e4m3", "e5m2", 4, 32, 32, scale_a=-1),
                SETMAXNREG):
        r = _ptxas(src, tmp_path)
        assert r.returncode == 0, r.stderr


_FIELDS = st.tuples(st.integers(0, 2**14 - 1), st.integers(0, 2**14 - 1), st.integers(0, 2**14 - 1),
                    st.integers(0, 7), st.integers(0, 3))


@given(st.one_of(st.integers(0, 2**64 - 1),
                 _FIELDS.map(lambda f: f[0] | f[1] << 16 | f[2] << 32 | f[3] << 49 | f[4] << 62)))
def test_descriptor_decode_fuzz(value):
    """Any 64-bit value either is refused or decodes to fields that encode back to it."""
    from hwdrv.mock.nvidia.ptx.ops_wgmma import decode_descriptor
    try:
        d = decode_descriptor(value)
    except ptx.IllegalInstruction:
        return
    assert desc(d["start"], d["lbo"], d["sbo"], d["swizzle"], d["base_offset"]) == value
