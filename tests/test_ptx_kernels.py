"""Real nvcc output (tests/data/ptx/*.ptx, compiled from the .cu beside them with
`nvcc -ptx -arch=sm_90`) run on the interpreter and checked against numpy."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from test_ptx_helpers import gpu, load_ptx  # noqa: F401


@pytest.mark.parametrize("n, block", [(1000, 128), (4096, 256), (1, 32), (777, 96)])
def test_vector_add(gpu, n, block):
    m = load_ptx("vector_add")
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    pa, pb, pc = gpu.upload(a), gpu.upload(b), gpu.alloc(4 * n + 64)
    sentinel = np.full(16, 7.0, np.float32)
    gpu.pt.write(pc + 4 * n, sentinel.tobytes())
    r = gpu.run(m, "vector_add", ((n + block - 1) // block,), (block,), [pa, pb, pc, n])
    assert np.array_equal(gpu.download(pc, np.float32, n), a + b)
    assert np.array_equal(gpu.download(pc + 4 * n, np.float32, 16), sentinel)   # no stray stores
    assert r.thread_instructions > 10 * n


def test_block_reduce_static_shared(gpu):
    m = load_ptx("block_reduce")
    n, block = 5000, 256
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    grid = (n + block - 1) // block
    pin, pout = gpu.upload(x), gpu.alloc(4 * grid)
    gpu.run(m, "block_reduce", (grid,), (block,), [pin, pout, n])
    got = gpu.download(pout, np.float32, grid)
    padded = np.concatenate([x, np.zeros(grid * block - n, np.float32)]).reshape(grid, block)
    # the same tree order as the kernel: exact equality
    ref = padded.copy()
    s = block // 2
    while s:
        ref[:, :s] = ref[:, :s] + ref[:, s:2 * s]
        s //= 2
    assert np.array_equal(got, ref[:, 0])
    assert m.entries["block_reduce"].static_shared == 1024


def test_block_reduce_dynamic_shared(gpu):
    m = load_ptx("block_reduce")
    n, block = 3000, 128
    x = np.random.default_rng(2).integers(-1000, 1000, n).astype(np.int32)
    grid = (n + block - 1) // block
    pin, pout = gpu.upload(x), gpu.alloc(4 * grid)
    gpu.run(m, "block_reduce_dyn", (grid,), (block,), [pin, pout, n], dynamic_shared=block * 4)
    ref = np.concatenate([x, np.zeros(grid * block - n, np.int32)]).reshape(grid, block).sum(axis=1)
    assert np.array_equal(gpu.download(pout, np.int32, grid), ref)


def test_block_reduce_dynamic_shared_too_small_faults(gpu):
    from hwdrv.mock.nvidia.ptx import AddressSpaceFault
    m = load_ptx("block_reduce")
    pin, pout = gpu.upload(np.ones(128, np.int32)), gpu.alloc(4)
    with pytest.raises(AddressSpaceFault) as ei:
        gpu.run(m, "block_reduce_dyn", (1,), (128,), [pin, pout, 128], dynamic_shared=256)
    assert ei.value.space == "shared" and ei.value.address == 256
    assert ei.value.thread == (64, 0, 0)


def test_warp_reduce_shuffles_and_votes(gpu):
    m = load_ptx("warp_reduce")
    nthreads = 1024
    rng = np.random.default_rng(3)
    x = rng.integers(-50, 50, nthreads).astype(np.float32)
    x[40:64] = 150.0                                     # warp 1: any(>100) true
    x[64:96] = -200.0                                    # warp 2: all(>-100) false
    nw = nthreads // 32
    pin = gpu.upload(x)
    pout, pb, pv, pm = gpu.alloc(4 * nw), gpu.alloc(4 * nw), gpu.alloc(8 * nw), gpu.alloc(4 * (1024 + nthreads))
    gpu.run(m, "warp_reduce", (4,), (256,), [pin, pout, pb, pv, pm])
    w = x.reshape(nw, 32)
    assert np.allclose(gpu.download(pout, np.float32, nw), w.sum(axis=1), rtol=0, atol=1e-3)
    ballots = gpu.download(pb, np.uint32, nw)
    ref_b = ((w > 0) * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1).astype(np.uint32)
    assert np.array_equal(ballots, ref_b)
    votes = gpu.download(pv, np.int32, 2 * nw).reshape(nw, 2)
    assert np.array_equal(votes[:, 0] != 0, (w > 100).any(axis=1))
    assert np.array_equal(votes[:, 1] != 0, (w > -100).all(axis=1))
    maxes = gpu.download(pm, np.int32, 1024 + nthreads)
    assert np.array_equal(maxes[:nw], w.astype(np.int32).max(axis=1))
    lane = np.arange(nthreads) % 32
    up = np.where(lane == 0, 0, lane - 1)                 # shfl.up: lane 0 keeps its own value
    assert np.array_equal(maxes[1024:], 15 + 1000 * up)


def test_histogram_atomics(gpu):
    m = load_ptx("histogram")
    n, block = 3000, 256
    rng = np.random.default_rng(4)
    data = rng.integers(0, 5000, n).astype(np.uint32)
    grid = (n + block - 1) // block
    pd = gpu.upload(data)
    ph = gpu.alloc(4 * 64)
    mm = np.array([-(1 << 31), (1 << 31) - 1, 0, 0, 0, 0, -1], np.int32)
    pmm = gpu.upload(mm)
    pf, pc, ps = gpu.upload(np.zeros(1, np.float32)), gpu.upload(np.zeros(1, np.uint32)), gpu.alloc(4 * n)
    gpu.run(m, "histogram", (grid,), (block,), [pd, n, ph, pmm, pf, pc, ps])
    assert np.array_equal(gpu.download(ph, np.uint32, 64), np.bincount(data & 63, minlength=64))
    got = gpu.download(pmm, np.int32, 7)
    assert got[0] == data.astype(np.int64).max() - 1000 and got[1] == data.astype(np.int64).min() - 1000
    assert got[2] == 1                                   # lane 0 of CTA 0 wins the CAS (lane order)
    assert got[3] == 7
    assert got[4] == np.bitwise_xor.reduce(data).astype(np.int32)
    assert got[5] == np.bitwise_or.reduce(np.uint32(1) << (data & 31)).astype(np.int32)
    assert got[6] == (~np.bitwise_or.reduce(np.uint32(1) << (data & 31))).astype(np.int32)
    assert gpu.download(pc, np.uint32, 1)[0] == n
    slots = gpu.download(ps, np.uint32, n)
    assert sorted(slots.tolist()) == list(range(n))      # atomicInc gave every thread its own slot
    # float atomicAdd: applied in lane order, each a rounded f32 add
    ref = np.float32(0)
    for v in ((data & 7).astype(np.float32) * np.float32(0.5)):
        ref = np.float32(ref + v)
    assert gpu.download(pf, np.float32, 1)[0] == ref


@pytest.mark.parametrize("grid, block", [((3, 2, 2), (4, 3, 2)), ((1, 1, 1), (8, 8, 8)), ((5, 1, 3), (33, 1, 1))])
def test_grid3d(gpu, grid, block):
    m = load_ptx("grid3d")
    total = int(np.prod(grid) * np.prod(block))
    p = gpu.alloc(8 * total)
    gpu.run(m, "grid3d", grid, block, [p])
    got = gpu.download(p, np.uint64, total)
    ref = []
    for bz in range(grid[2]):
        for by in range(grid[1]):
            for bx in range(grid[0]):
                for tz in range(block[2]):
                    for ty in range(block[1]):
                        for tx in range(block[0]):
                            ref.append(tx | ty << 8 | tz << 16 | bx << 24 | by << 32 | bz << 40)
    assert got.tolist() == ref


def _collatz(x: int) -> int:
    s = 0
    while x not in (0, 1):
        x = 3 * x + 1 if x & 1 else x >> 1
        x &= 0xFFFFFFFF
        s += 1
    return s


def test_collatz_divergent_loops(gpu):
    m = load_ptx("divergence")
    n = 700
    x = np.random.default_rng(5).integers(0, 3000, n).astype(np.uint32)
    pin, pout = gpu.upload(x), gpu.alloc(4 * n)
    gpu.run(m, "collatz", (3,), (256,), [pin, pout, n])
    assert gpu.download(pout, np.uint32, n).tolist() == [_collatz(int(v)) for v in x]


def test_branches_switch_and_local_array(gpu):
    m = load_ptx("divergence")
    n = 1000
    v = np.random.default_rng(6).integers(-(1 << 20), 1 << 20, n).astype(np.int32)
    v[:4] = [0, 1, -7, (1 << 31) - 1]
    pin, pout = gpu.upload(v), gpu.alloc(4 * n)
    gpu.run(m, "branches", (4,), (256,), [pin, pout, n])
    ref = []
    for x in v.tolist():
        c = x & 3
        if c == 0:
            r = x * 7
        elif c == 1:
            r = int(x / 3)
        elif c == 2:
            r = (x - 5 * int(x / 5)) - 9
        else:
            r = -x
        r += ((x & 0xFFFFFFFF) % 16) * x
        ref.append(((r + (1 << 31)) % (1 << 32)) - (1 << 31))
    assert gpu.download(pout, np.int32, n).tolist() == ref
    assert m.entries["branches"].local_size == 64


def test_half_kernels(gpu):
    m = load_ptx("halfprec")
    n = 500
    rng = np.random.default_rng(7)
    a = (rng.standard_normal(n) * 4).astype(np.float16)
    b = (rng.standard_normal(n) * 4).astype(np.float16)
    pa, pb, po, pf = gpu.upload(a), gpu.upload(b), gpu.alloc(2 * n), gpu.alloc(4 * n)
    gpu.run(m, "half_ops", (4,), (128,), [pa, pb, po, pf, n])
    exact = a.astype(np.float64) * b.astype(np.float64) + 1.0       # fma: one rounding
    assert np.array_equal(gpu.download(po, np.float16, n), exact.astype(np.float16))
    ref_f = a.astype(np.float32) * np.float32(2) + np.maximum(a, b).astype(np.float32)
    assert np.array_equal(gpu.download(pf, np.float32, n), ref_f)
    # packed half2: (a*b) rounded to half, then + a rounded to half
    a2 = (rng.standard_normal(2 * n)).astype(np.float16)
    b2 = (rng.standard_normal(2 * n)).astype(np.float16)
    pa2, pb2, po2 = gpu.upload(a2), gpu.upload(b2), gpu.alloc(4 * n)
    gpu.run(m, "half2_ops", (4,), (128,), [pa2, pb2, po2, n])
    ref2 = ((a2 * b2).astype(np.float16) + a2).astype(np.float16)
    assert np.array_equal(gpu.download(po2, np.float16, 2 * n), ref2)


def _bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits, round to nearest even."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _bf16_of_fraction(q) -> int:
    """bf16 bits of the exact rational ``q`` rounded to nearest even: 8 significant bits for
    normals (exponent >= -126), steps of 2**-133 below; finite results only."""
    from fractions import Fraction
    if q == 0:
        return 0
    sign, q = (0x8000, -q) if q < 0 else (0, q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:                   # make 2**e <= q < 2**(e+1)
        e -= 1
    step = Fraction(2) ** max(e - 7, -133)
    n, rem = divmod(q, step)
    if rem * 2 > step or (rem * 2 == step and n % 2):
        n += 1
    value = float(n * step)                   # <= 8 significant bits: exact as float and float32
    return sign | (int(np.array(value, np.float32).view(np.uint32)) >> 16)


def _bf16f(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def test_bf16_kernel(gpu):
    m = load_ptx("halfprec")
    n = 400
    rng = np.random.default_rng(8)
    a, b = _bf16(rng.standard_normal(n) * 3), _bf16(rng.standard_normal(n) * 3)
    pa, pb, po, pf = gpu.upload(a), gpu.upload(b), gpu.alloc(2 * n), gpu.alloc(4 * n)
    gpu.run(m, "bf16_ops", (4,), (128,), [pa, pb, po, pf, n])
    fa, fb = _bf16f(a).astype(np.float64), _bf16f(b).astype(np.float64)
    # fma(a, b, 0.5) rounded once to bf16: the exact value as a Fraction, rounded by hand
    from fractions import Fraction
    ref = np.array([_bf16_of_fraction(Fraction(float(x)) * Fraction(float(y)) + Fraction(1, 2))
                    for x, y in zip(fa, fb)], np.uint16)
    assert np.array_equal(gpu.download(po, np.uint16, n), ref)
    assert np.array_equal(gpu.download(pf, np.float32, n), (_bf16f(a) + _bf16f(b)))


def _mma_ref(A, B, C):
    return (A.astype(np.float64) @ B.astype(np.float64) + C.astype(np.float64))


def test_mma_f16_f32(gpu):
    m = load_ptx("mma")
    rng = np.random.default_rng(9)
    A = rng.standard_normal((16, 16)).astype(np.float16)
    B = rng.standard_normal((16, 8)).astype(np.float16)
    C = rng.standard_normal((16, 8)).astype(np.float32)
    pa, pb, pc, pd = gpu.upload(A), gpu.upload(B), gpu.upload(C), gpu.alloc(16 * 8 * 4)
    gpu.run(m, "mma_f16_f32", (1,), (32,), [pa, pb, pc, pd])
    D = gpu.download(pd, np.float32, 128).reshape(16, 8)
    assert np.allclose(D, _mma_ref(A, B, C), rtol=1e-5, atol=1e-5)


def test_mma_bf16_f32(gpu):
    m = load_ptx("mma")
    rng = np.random.default_rng(10)
    A = _bf16(rng.standard_normal((16, 16)))
    B = _bf16(rng.standard_normal((16, 8)))
    C = rng.standard_normal((16, 8)).astype(np.float32)
    pa, pb, pc, pd = gpu.upload(A), gpu.upload(B), gpu.upload(C), gpu.alloc(16 * 8 * 4)
    gpu.run(m, "mma_bf16_f32", (1,), (64,), [pa, pb, pc, pd])     # two warps, same tile
    D = gpu.download(pd, np.float32, 128).reshape(16, 8)
    assert np.allclose(D, _mma_ref(_bf16f(A), _bf16f(B), C), rtol=1e-5, atol=1e-5)


def test_mma_ldmatrix_f16_accumulator(gpu):
    m = load_ptx("mma")
    rng = np.random.default_rng(11)
    A = rng.standard_normal((16, 16)).astype(np.float16)
    B = rng.standard_normal((16, 8)).astype(np.float16)
    C = rng.standard_normal((16, 8)).astype(np.float16)
    pa, pb, pc, pd = gpu.upload(A), gpu.upload(B), gpu.upload(C), gpu.alloc(16 * 8 * 2)
    gpu.run(m, "mma_ldmatrix_f16", (1,), (32,), [pa, pb, pc, pd])
    D = gpu.download(pd, np.float16, 128).reshape(16, 8)
    assert np.allclose(D.astype(np.float64), _mma_ref(A, B, C), rtol=2e-3, atol=2e-3)


def test_bigparam_struct_by_value(gpu):
    m = load_ptx("bigparam")
    e = m.entries["bigparam"]
    assert [(p.size, p.align, p.offset) for p in e.params] == [(4416, 8, 0), (8, 8, 4416)]
    assert e.param_size > 4096
    n = 3000
    table = np.random.default_rng(12).standard_normal(1100).astype(np.float32)
    s = struct.pack("<if", n, 1.5) + table.tobytes() + struct.pack("<d", -2.25)   # bias at 4408
    assert len(s) == 4416
    po = gpu.alloc(4 * n)
    gpu.run(m, "bigparam", (12,), (256,), [s, po])
    i = np.arange(n)
    ref = (table[(i * 7) % 1100].astype(np.float64) * 1.5 + np.float32(-2.25)).astype(np.float32)
    assert np.array_equal(gpu.download(po, np.float32, n), ref)


def test_mathfuncs(gpu):
    m = load_ptx("mathfuncs")
    n = 256
    rng = np.random.default_rng(13)
    x = (rng.standard_normal(n) * 10).astype(np.float32)
    xd = rng.standard_normal(n) * 100
    u = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    u[:3] = [0, 1, 0xFFFFFFFF]
    px, pxd, pu = gpu.upload(x), gpu.upload(xd), gpu.upload(u)
    pof, pod, pou, pol = gpu.alloc(32 * n), gpu.alloc(32 * n), gpu.alloc(24 * n), gpu.alloc(16 * n)
    gpu.run(m, "mathfuncs", (2,), (128,), [px, pxd, pu, pof, pod, pou, pol, n])
    of = gpu.download(pof, np.float32, 8 * n).reshape(n, 8)
    x64 = x.astype(np.float64)
    assert np.array_equal(of[:, 0], (x64 / 3.0).astype(np.float32))
    assert np.array_equal(of[:, 1], np.sqrt(np.abs(x)))
    assert np.allclose(of[:, 2], 1 / np.sqrt(np.abs(x64) + 1), rtol=1e-6)
    assert np.allclose(of[:, 3], np.exp2(x64 * 0.01), rtol=1e-6)
    assert np.allclose(of[:, 4], np.log2(np.abs(x64) + 1), rtol=1e-6, atol=1e-6)
    assert np.allclose(of[:, 5], np.sin(x64) + np.cos(x64), atol=1e-5)
    # add.rz.f32: the exact sum (two f32 this close in magnitude add exactly in f64), rounded
    # to nearest by numpy, then one ulp toward zero where that rounding went away from zero
    exact = x64 + np.float64(np.float32(0.1))
    rn = exact.astype(np.float32)
    rz = np.where(np.abs(rn.astype(np.float64)) > np.abs(exact), np.nextafter(rn, np.float32(0)), rn)
    assert np.array_equal(of[:, 6], rz)
    assert np.array_equal(of[:, 7], np.minimum(x, np.float32(1.5)) + np.copysign(np.float32(2), x))
    od = gpu.download(pod, np.float64, 4 * n).reshape(n, 4)
    assert np.array_equal(od[:, 0], xd / 7.0)
    assert np.array_equal(od[:, 1], np.sqrt(np.abs(xd)))
    from fractions import Fraction
    assert od[:, 2].tolist() == [float(Fraction(v) * Fraction(v) - 1) for v in xd.tolist()]
    assert np.array_equal(od[:, 3], np.floor(x).astype(np.float64))
    ou = gpu.download(pou, np.uint32, 6 * n).reshape(n, 6)
    ui = [int(v) for v in u]
    assert ou[:, 0].tolist() == [bin(v).count("1") for v in ui]
    assert ou[:, 1].tolist() == [32 - v.bit_length() for v in ui]
    assert ou[:, 2].tolist() == [int(f"{v:032b}"[::-1], 2) for v in ui]
    def perm(a, b, s):
        src = a | (b << 32)
        out = 0
        for k in range(4):
            out |= ((src >> (8 * ((s >> (4 * k)) & 7))) & 0xFF) << (8 * k)
        return out
    assert ou[:, 3].tolist() == [perm(v, 0x01234567, 0x5140) for v in ui]
    assert ou[:, 4].tolist() == [(v * 0x9E3779B9) >> 32 for v in ui]
    def sar(v, k):
        s = v - (1 << 32) if v >> 31 else v
        return (s >> k) & 0xFFFFFFFF
    assert ou[:, 5].tolist() == [((v >> 3) ^ ((v << 5) & 0xFFFFFFFF) ^ sar(v, 7)) for v in ui]
    ol = gpu.download(pol, np.int64, 2 * n).reshape(n, 2)
    def s64(v):
        v &= (1 << 64) - 1
        return v - (1 << 64) if v >> 63 else v
    ref0 = [s64((s64(v * 0x12345678) * s64(-0x7654321 * v)) >> 64) for v in ui]
    assert ol[:, 0].tolist() == ref0
    ref1 = []
    for v, xv in zip(ui, x.tolist()):
        q = (v * 12345) // ((v & 255) + 1)
        t = float(np.float32(np.float32(xv) * np.float32(3)))
        ref1.append(s64(q - int(t)))
    assert ol[:, 1].tolist() == ref1
