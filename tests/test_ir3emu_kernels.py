"""ir3 kernels written for this project (Mesa computerator's conventions: @localsize, @buf, ...),
assembled with hwdrv.qcom.ir3.assemble and run on the mock's ir3 emulator; every result is checked
against numpy. Each kernel keeps ir3's scheduling rules (nops / (ss) / (sy)), which the emulator
enforces."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.mock.physmem import PhysBlock
from hwdrv.mock.qcom.ir3emu import harness, run_cs
from hwdrv.qcom import ir3
from hwdrv.qcom.gen import a6xx as A

RNG = np.random.default_rng(7)


def run(src: str, groups=(1, 1, 1), threadsize=64, buffers=None) -> list[np.ndarray]:
    d, body = harness.parse(src)
    return harness.launch(ir3.assemble(body), d, groups=groups, threadsize=threadsize, buffers=buffers)


VECADD = """
@localsize 64, 1, 1
@buf 256
@buf 256
@buf 256
@invocationid(r0.x)
@wgid(r48.x)
shl.b r0.y, r48.x, 6
(rpt2)nop
add.u r0.y, r0.y, r0.x
(rpt2)nop
ldib.b.untyped.1d.u32.1.imm r1.x, r0.y, 0
ldib.b.untyped.1d.u32.1.imm r1.y, r0.y, 1
(sy)add.u r1.z, r1.x, r1.y
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.z, r0.y, 2
end
nop
"""


@pytest.mark.parametrize("threadsize", [64, 128])
def test_vector_add_u32_wraps(threadsize):
    a = RNG.integers(0, 2**32, 256, dtype=np.uint64).astype(np.uint32)
    b = RNG.integers(0, 2**32, 256, dtype=np.uint64).astype(np.uint32)
    out = run(VECADD, groups=(4, 1, 1), threadsize=threadsize, buffers=[a, b, None])
    np.testing.assert_array_equal(out[2], a + b)


SAXPY_GLOBAL = """
@localsize 32, 1, 1
@buf 128 (c0.x)
@buf 128 (c1.x)
@const(c2.x) -1.5, 0.0, 0.0, 0.0
@invocationid(r0.x)
@wgid(r48.x)
mov.u32u32 r1.x, c0.x
mov.u32u32 r1.y, c0.y
mov.u32u32 r1.z, c1.x
mov.u32u32 r1.w, c1.y
shl.b r0.y, r48.x, 5
(rpt2)nop
add.u r0.y, r0.y, r0.x
(rpt2)nop
ldg.a.u32 r2.x, g[r1.x+(r0.y)<<2], 1
ldg.a.u32 r2.y, g[r1.z+(r0.y)<<2], 1
(sy)mul.f r2.z, r2.x, c2.x
(rpt2)nop
add.f r2.w, r2.z, r2.y
(rpt2)nop
stg.a.u32 g[r1.z+(r0.y)<<2], r2.w, 1
end
nop
"""


def test_saxpy_through_global_memory_addresses_in_consts():
    x = RNG.standard_normal(128).astype(np.float32)
    y = RNG.standard_normal(128).astype(np.float32)
    out = run(SAXPY_GLOBAL, groups=(4, 1, 1), buffers=[x, y])
    np.testing.assert_array_equal(out[1].view(np.float32), np.float32(-1.5) * x + y)
    np.testing.assert_array_equal(out[0].view(np.float32), x)


REDUCE_SHARED = """
@localsize {local}, 1, 1
@buf 1024
@buf 16
@invocationid(r0.x)
@wgid(r48.x)
@localmem {lmem}
@branchstack 2
shl.b r0.y, r48.x, {shift}
shl.b r0.z, r0.x, 2
(rpt1)nop
add.u r0.w, r0.y, r0.x
(rpt2)nop
ldib.b.untyped.1d.u32.1.imm r1.x, r0.w, 0
(sy)nop
stl.u32 l[r0.z], r1.x, 1
mov.u32u32 r2.x, {half}
(rpt2)nop
loop:
(jp)bar
cmps.u.lt p0.x, r0.x, r2.x
(rpt5)nop
br !p0.x, #skip
shl.b r2.y, r2.x, 2
(rpt2)nop
add.u r2.z, r0.z, r2.y
(rpt2)nop
ldl.u32 r1.y, l[r2.z], 1
ldl.u32 r1.z, l[r0.z], 1
(ss)add.u r1.w, r1.y, r1.z
(rpt2)nop
stl.u32 l[r0.z], r1.w, 1
skip:
(jp)shr.b r2.x, r2.x, 1
(rpt2)nop
cmps.u.gt p0.x, r2.x, 0
(rpt5)nop
br p0.x, #loop
bar
mov.u32u32 r3.y, 0
(rpt2)nop
ldl.u32 r3.x, l[r3.y], 1
(ss)nop
stib.b.untyped.1d.u32.1.imm r3.x, r48.x, 1
end
nop
"""


@pytest.mark.parametrize("local,threadsize", [(64, 64), (64, 128), (256, 64), (256, 128), (128, 64)])
def test_tree_reduction_in_shared_memory_with_barriers(local, threadsize):
    # several waves per workgroup when local > threadsize: the barriers order their shared-memory traffic
    a = RNG.integers(0, 2**32, 1024, dtype=np.uint64).astype(np.uint32)
    src = REDUCE_SHARED.format(local=local, lmem=4 * local, shift=local.bit_length() - 1, half=local // 2)
    groups = 1024 // local
    out = run(src, groups=(groups, 1, 1), threadsize=threadsize, buffers=[a, None])
    want = a.reshape(groups, local).sum(1, dtype=np.uint64).astype(np.uint32)
    np.testing.assert_array_equal(out[1][:groups], want)


DIVERGENT_LOOP = """
@localsize 64, 1, 1
@buf 128
@invocationid(r0.x)
@wgid(r48.x)
@branchstack 2
shl.b r0.y, r48.x, 6
mov.u32u32 r1.x, 0
mov.u32u32 r1.y, 0
(rpt1)nop
add.u r0.y, r0.y, r0.x
(rpt2)nop
loop:
(jp)cmps.u.lt p0.x, r1.y, r0.y
(rpt5)nop
br !p0.x, #done
add.u r1.y, r1.y, 1
(rpt2)nop
add.u r1.x, r1.x, r1.y
jump #loop
done:
(jp)(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.x, r0.y, 0
end
nop
"""


def test_divergent_loop_trip_count_per_fiber():
    out = run(DIVERGENT_LOOP, groups=(2, 1, 1))
    n = np.arange(128, dtype=np.uint32)
    np.testing.assert_array_equal(out[0], n * (n + 1) // 2)


ATOMICS = """
@localsize 64, 1, 1
@buf 8 (c0.x)
@buf 1
@buf 128
@buf 2
@invocationid(r0.x)
@wgid(r48.x)
@localmem 64
@branchstack 1
mov.u32u32 r1.x, c0.x
mov.u32u32 r1.y, c0.y
shl.b r0.y, r48.x, 6
and.b r2.x, r0.x, 7
mov.u32u32 r2.y, 1
mov.u32u32 r4.y, 0
(rpt1)nop
add.u r0.y, r0.y, r0.x
shl.b r2.z, r2.x, 2
(rpt2)nop
add.u r3.x, r1.x, r2.z
(rpt2)nop
mov.u32u32 r3.y, r1.y
(rpt2)nop
atomic.g.add.untyped.1d.u32.1.g r3.z, r3.x, r2.y
mov.u32u32 r5.y, 1
(rpt2)nop
atomic.b.add.untyped.1d.u32.1.imm r5.x, r4.y, 1
(sy)nop
stib.b.untyped.1d.u32.1.imm r5.x, r0.y, 2
mul.u24 r6.x, r0.x, 37
(rpt2)nop
and.b r6.x, r6.x, 63
(rpt2)nop
atomic.max.untyped.1d.u32.1.l r6.y, l[r4.y], r6.x
(sy)bar
ldl.u32 r6.z, l[r4.y], 1
(ss)nop
stib.b.untyped.1d.u32.1.imm r6.z, r48.x, 3
end
nop
"""


def test_atomics_global_ibo_and_local():
    out = run(ATOMICS, groups=(2, 1, 1))
    np.testing.assert_array_equal(out[0], np.full(8, 16, np.uint32))          # histogram of id % 8, 2 x 64 fibers
    assert out[1][0] == 128                                                   # IBO counter
    np.testing.assert_array_equal(np.sort(out[2]), np.arange(128))            # every ticket handed out once
    lid = np.arange(64)
    np.testing.assert_array_equal(out[3], np.full(2, (lid * 37 % 64).max(), np.uint32))


HALF = """
@localsize 64, 1, 1
@buf 64
@buf 64
@invocationid(r0.x)
ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0
(sy)cov.f32f16 hr4.x, r1.x
(rpt2)nop
mul.f hr4.y, hr4.x, hr4.x
(rpt2)nop
add.f hr4.z, hr4.y, h(0.5)
(rpt2)nop
mad.f16 hr4.w, hr4.z, hr4.x, hr4.y
(rpt2)nop
cov.f16f32 r2.x, hr4.w
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r2.x, r0.x, 1
end
nop
"""


def test_half_precision_math_rounds_each_step_to_f16():
    x = (RNG.standard_normal(64) * 4).astype(np.float32)
    out = run(HALF, buffers=[x, None])
    h = x.astype(np.float16)
    sq = h * h
    z = sq + np.float16(0.5)
    w = z * h + sq
    np.testing.assert_array_equal(out[1].view(np.float32), w.astype(np.float32))


SFU = """
@localsize 64, 1, 1
@buf 64
@buf 448
@invocationid(r0.x)
ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0
(sy)rcp r2.x, r1.x
rsq r2.y, r1.x
sqrt r2.z, r1.x
log2 r2.w, r1.x
exp2 r3.x, r1.x
sin r3.y, r1.x
cos r3.z, r1.x
shl.b r0.y, r0.x, 3
(rpt2)nop
(ss)stib.b.untyped.1d.u32.4.imm r2.x, r0.y, 1
"""


def test_sfu_functions_need_ss_and_match_numpy():
    x = RNG.uniform(0.1, 8.0, 64).astype(np.float32)
    body = SFU.replace("(ss)stib", "(ss)nop\nstib") + "add.u r0.z, r0.y, 4\n(rpt2)nop\n" \
        "stib.b.untyped.1d.u32.4.imm r3.x, r0.z, 1\nend\nnop\n"
    body = body.replace("@buf 448", "@buf 512")
    out = run(body, buffers=[x, None])[1].view(np.float32).reshape(64, 8)
    want = np.stack([1 / x, 1 / np.sqrt(x), np.sqrt(x), np.log2(x), np.exp2(x), np.sin(x), np.cos(x)], 1)
    np.testing.assert_allclose(out[:, :7], want, rtol=2e-6, atol=1e-6)


MUL32 = """
@localsize 64, 1, 1
@buf 64
@buf 64
@buf 64
@invocationid(r0.x)
ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0
ldib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1
(sy)mull.u r2.x, r1.x, r1.y
(rpt2)nop
madsh.m16 r2.y, r1.x, r1.y, r2.x
(rpt2)nop
madsh.m16 r2.z, r1.y, r1.x, r2.y
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r2.z, r0.x, 2
end
nop
"""


def test_32bit_multiply_from_mull_and_madsh_as_mesa_lowers_imul():
    a = RNG.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    b = RNG.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    out = run(MUL32, buffers=[a, b, None])
    np.testing.assert_array_equal(out[2], a * b)


IDS_2D = """
@localsize 8, 4, 1
@buf 192
@invocationid(r0.x)
@wgid(r48.x)
shl.b r1.x, r48.x, 24
shl.b r1.y, r48.y, 16
shl.b r1.z, r0.y, 8
(rpt1)nop
or.b r1.w, r1.x, r1.y
(rpt2)nop
or.b r1.w, r1.w, r1.z
(rpt2)nop
or.b r1.w, r1.w, r0.x
shl.b r2.x, r48.y, 2
shl.b r2.y, r48.x, 3
(rpt1)nop
add.u r2.x, r2.x, r0.y
(rpt2)nop
mul.u24 r2.x, r2.x, 16
(rpt2)nop
add.u r2.x, r2.x, r2.y
(rpt2)nop
add.u r2.x, r2.x, r0.x
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.w, r2.x, 0
end
nop
"""


def test_two_dimensional_workgroups_and_ids():
    out = run(IDS_2D, groups=(2, 3, 1))
    gy, ly, gx, lx = np.meshgrid(np.arange(3), np.arange(4), np.arange(2), np.arange(8), indexing="ij")
    want = np.zeros(192, np.uint32)
    want[((gy * 4 + ly) * 16 + gx * 8 + lx).ravel()] = ((gx << 24) | (gy << 16) | (ly << 8) | lx).ravel()
    np.testing.assert_array_equal(out[0], want)


PRIVATE = """
@localsize 16, 1, 1
@buf 16
@invocationid(r0.x)
@pvtmem 16
mov.u32u32 r1.x, 0
add.u r2.x, r0.x, 1
add.u r2.y, r0.x, 10
add.u r2.z, r0.x, 100
add.u r2.w, r0.x, 1000
(rpt2)nop
stp.u32 p[r1.x], r2.x, 4
and.b r1.y, r0.x, 3
(rpt2)nop
shl.b r1.y, r1.y, 2
(rpt2)nop
ldp.u32 r3.x, p[r1.y], 1
(sy)nop
stib.b.untyped.1d.u32.1.imm r3.x, r0.x, 0
end
nop
"""


def test_private_memory_per_fiber():
    out = run(PRIVATE)
    lid = np.arange(16)
    np.testing.assert_array_equal(out[0], lid + np.array([1, 10, 100, 1000])[lid & 3])


RPT_VEC4 = """
@localsize 32, 1, 1
@buf 128
@buf 128
@invocationid(r0.x)
shl.b r0.y, r0.x, 2
(rpt2)nop
ldib.b.untyped.1d.u32.4.imm r1.x, r0.y, 0
(sy)(rpt3)mul.f r2.x, (r)r1.x, (r)r1.x
(rpt2)nop
(rpt3)add.f r3.x, (r)r2.x, (1.0)
(rpt2)nop
stib.b.untyped.1d.u32.4.imm r3.x, r0.y, 1
end
nop
"""


def test_repeat_with_r_operands_and_vec4_ibo_access():
    x = RNG.standard_normal(128).astype(np.float32)
    out = run(RPT_VEC4, buffers=[x, None])
    np.testing.assert_array_equal(out[1].view(np.float32), x * x + np.float32(1.0))


RELATIVE = """
@localsize 32, 1, 1
@buf 32
@invocationid(r0.x)
mov.u32u32 r4.x, 10
mov.u32u32 r4.y, 20
mov.u32u32 r4.z, 30
mov.u32u32 r4.w, 40
and.b r1.x, r0.x, 3
(rpt2)nop
cov.u32s16 hr4.x, r1.x
(rpt2)nop
mova a0.x, hr4.x
(rpt5)nop
(ul)mov.u32u32 r2.x, r<a0.x + 16>
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r2.x, r0.x, 0
end
nop
"""


def test_relative_register_addressing_through_a0():
    # hr4.x is the low half of r2.x (merged registers); r4.x..w are read relative to a0.x = id & 3
    out = run(RELATIVE)
    np.testing.assert_array_equal(out[0], 10 * ((np.arange(32) & 3) + 1))


GETONE_KILL = """
@localsize 64, 1, 1
@buf 64
@buf 1
@invocationid(r0.x)
@localmem 4
@branchstack 1
mov.u32u32 r1.x, 0
mov.u32u32 r1.y, 7
and.b r1.z, r0.x, 1
(rpt2)nop
cmps.u.ne p0.x, r1.z, 0
getone #all
stl.u32 l[r1.x], r1.y, 1
all:
(jp)ldl.u32 r1.w, l[r1.x], 1
(ss)add.u r1.w, r1.w, r0.x
(rpt2)nop
kill p0.x
stib.b.untyped.1d.u32.1.imm r1.w, r0.x, 0
bany p0.x, #end
stib.b.untyped.1d.u32.1.imm r1.y, r1.x, 1
end:
(jp)end
nop
"""


def test_getone_kill_and_bany():
    out = run(GETONE_KILL)
    lid = np.arange(64)
    want = np.where(lid % 2 == 0, lid + 7, 0)
    np.testing.assert_array_equal(out[0], want)
    assert out[1][0] == 7          # after kill only even fibers run: p0 is 0 for all of them, bany falls through


INT_MIX = """
@localsize 64, 1, 1
@buf 64
@buf 64
@buf 384
@invocationid(r0.x)
ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0
ldib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1
(sy)min.s r2.x, r1.x, r1.y
max.u r2.y, r1.x, r1.y
ashr.b r2.z, r1.x, 5
xor.b r2.w, r1.x, r1.y
cmps.s.lt r3.x, r1.x, r1.y
sub.u r3.y, r1.x, r1.y
(rpt1)nop
sel.b32 r3.z, r2.x, r3.x, r2.y
clz.b r3.w, r1.y
mov.u32u32 r4.x, 6
(rpt2)nop
mul.u24 r4.y, r0.x, r4.x
(rpt2)nop
stib.b.untyped.1d.u32.4.imm r2.x, r4.y, 2
add.u r4.z, r4.y, 4
(rpt2)nop
stib.b.untyped.1d.u32.2.imm r3.z, r4.z, 2
end
nop
"""


def test_integer_alu_mix():
    a = RNG.integers(-2**31, 2**31, 64).astype(np.int32)
    b = RNG.integers(-2**31, 2**31, 64).astype(np.int32)
    b[:4] = [0, 1, -1, a[3]]
    out = run(INT_MIX, buffers=[a.view(np.uint32), b.view(np.uint32), None])[2].reshape(64, 6)
    ua, ub = a.view(np.uint32), b.view(np.uint32)
    lt = a < b
    clz = np.array([32 - int(v).bit_length() for v in ub], np.uint32)
    want = np.stack([np.minimum(a, b).view(np.uint32), np.maximum(ua, ub), (a >> 5).view(np.uint32), ua ^ ub,
                     np.where(lt, np.minimum(a, b).view(np.uint32), np.maximum(ua, ub)), clz], 1)
    np.testing.assert_array_equal(out, want)


CONVERSIONS = """
@localsize 64, 1, 1
@buf 64
@buf 64
@buf 384
@invocationid(r0.x)
ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0
ldib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1
(sy)(sat)add.f r2.x, r1.x, (0.5)
cov.f32s32 r2.y, r1.x
cov.f32u32 r2.z, r1.x
cov.u32u16 hr6.x, r1.y
cov.f32f16 hr6.y, r1.x
(rpt2)nop
add.u hr6.z, hr6.x, hr6.x
mul.f hr6.w, hr6.y, h(2.0)
(rpt2)nop
cov.u16u32 r2.w, hr6.z
cov.f16f32 r3.x, hr6.w
cov.s16s32 r3.y, hr6.z
mov.u32u32 r4.x, 6
(rpt2)nop
mul.u24 r4.y, r0.x, r4.x
(rpt2)nop
stib.b.untyped.1d.u32.4.imm r2.x, r4.y, 2
add.u r4.z, r4.y, 4
(rpt2)nop
stib.b.untyped.1d.u32.2.imm r3.x, r4.z, 2
end
nop
"""


def test_saturation_conversions_and_half_integer_wrap():
    x = np.concatenate([np.array([1e10, -1e10, np.nan, -2.7, 2.7, 0.3, -0.3, 65504.0, 7e4, 0.0], np.float32),
                        RNG.standard_normal(54).astype(np.float32) * 100])
    u = RNG.integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    out = run(CONVERSIONS, buffers=[x, u, None])[2].reshape(64, 6)
    with np.errstate(invalid="ignore", over="ignore"):
        sat = np.clip(x + np.float32(0.5), 0, 1)
        f2i = np.where(np.isnan(x), 0, np.clip(np.trunc(x.astype(np.float64)), -2**31, 2**31 - 1)).astype(np.int64)
        f2u = np.where(np.isnan(x), 0, np.clip(np.trunc(x.astype(np.float64)), 0, 2**32 - 1)).astype(np.uint64)
        h = x.astype(np.float16)
    u16 = (u & 0xFFFF).astype(np.uint16)
    wrap = (u16 + u16).astype(np.uint16)
    np.testing.assert_array_equal(out[:, 0].view(np.float32), np.where(np.isnan(x), np.float32(np.nan), sat))
    np.testing.assert_array_equal(out[:, 1], f2i.astype(np.int32).view(np.uint32))
    np.testing.assert_array_equal(out[:, 2], f2u.astype(np.uint32))
    np.testing.assert_array_equal(out[:, 3], wrap.astype(np.uint32))
    with np.errstate(over="ignore"):
        h2 = (h * np.float16(2)).astype(np.float32)
    np.testing.assert_array_equal(out[:, 4].view(np.float32), h2)
    np.testing.assert_array_equal(out[:, 5], wrap.view(np.int16).astype(np.int32).view(np.uint32))


SEPARATE_HALVES = """
@localsize 64, 1, 1
@buf 64
@invocationid(r0.x)
mov.u32u32 r1.x, 0x11112222
cov.u32u16 hr2.x, r0.x
(rpt2)nop
add.u hr2.x, hr2.x, h(1)
(rpt5)nop
cov.u16u32 r1.y, hr2.x
(rpt2)nop
add.u r1.z, r1.x, r1.y
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.z, r0.x, 0
end
nop
"""


@pytest.mark.parametrize("merged", [True, False])
def test_half_registers_alias_full_ones_only_when_merged(merged):
    # hr2.x is the low half of r1.x when merged; a separate register otherwise
    d, text = harness.parse(SEPARATE_HALVES)
    state, results = harness.prepare(ir3.assemble(text), d)
    state.mergedregs, state.half_regs = merged, 3
    run_cs(state)
    lid = np.arange(64, dtype=np.uint32)
    base = (0x11110000 + lid + 1) if merged else np.uint32(0x11112222)
    np.testing.assert_array_equal(results()[0], base + lid + 1)


ATOMIC_OPS = """
@localsize 64, 1, 1
@buf 16 (c0.x)
@buf 64
@buf 64
@buf 64
@invocationid(r0.x)
@localmem 16
mov.u32u32 r1.x, c0.x
mov.u32u32 r1.y, c0.y
add.u r6.x, r0.x, 1
mov.u32u32 r7.x, 0
mov.u32u32 r7.y, 4
(rpt1)nop
add.u r2.x, r1.x, 4
add.u r2.z, r1.x, 8
mov.u32u32 r2.y, r1.y
mov.u32u32 r2.w, r1.y
sub.u r6.y, r7.x, r6.x
(rpt2)nop
atomic.g.xchg.untyped.1d.u32.1.g r3.x, r1.x, r6.x
atomic.g.max.untyped.1d.s32.1.g r3.y, r2.x, r6.y
atomic.g.or.untyped.1d.u32.1.g r3.z, r2.z, r6.x
add.u r4.x, r1.x, 12
mov.u32u32 r4.y, r1.y
mov.u32u32 r5.x, r0.x
add.u r5.y, r0.x, 1
(rpt2)nop
atomic.g.cmpxchg.untyped.1d.u32.1.g r3.w, r4.x, r5.x
mov.u32u32 r8.x, 1000
(rpt2)nop
atomic.inc.untyped.1d.u32.1.l r8.y, l[r7.x], r8.x
atomic.xor.untyped.1d.u32.1.l r8.z, l[r7.y], r6.x
(sy)stib.b.untyped.1d.u32.1.imm r3.x, r0.x, 1
stib.b.untyped.1d.u32.1.imm r3.w, r0.x, 2
stib.b.untyped.1d.u32.1.imm r8.y, r0.x, 3
end
nop
"""


def test_atomic_operations_serialise():
    out = run(ATOMIC_OPS)
    g, xchg_old, cmp_old, inc_old = out
    ids = np.arange(64, dtype=np.uint32)
    vals = ids + 1
    # xchg: the old values and the final value are the initial 0 and every operand, once each
    np.testing.assert_array_equal(np.sort(np.append(xchg_old, g[0])), np.arange(65))
    assert g[1] == np.uint32(0) and g[2] == np.bitwise_or.reduce(vals)   # max.s of 0 and negatives; or of all
    # cmpxchg(compare = id, new = id + 1) from 0: the fibers that saw their own id form a chain 0..k-1
    won = cmp_old == ids
    assert won.sum() == g[3] and set(ids[won]) == set(range(int(g[3]))) and g[3] >= 1
    np.testing.assert_array_equal(np.sort(inc_old), ids)                 # inc below its limit counts


MISC = """
@localsize 64, 1, 1
@buf 64
@buf 64
@buf 64
@buf 256
@const(c4.x) 100, 200, 300, 400
@invocationid(r0.x)
@branchstack 2
and.b r1.x, r0.x, 3
(rpt2)nop
cov.u32s16 hr6.x, r1.x
(rpt5)nop
mova a0.x, hr6.x
(rpt5)nop
mov.u32u32 r2.y, c<a0.x + 16>
and.b r1.y, r0.x, 1
(rpt2)nop
add.u r1.z, r1.y, 1
(rpt5)nop
stib.b.untyped.1d.u32.1.nonuniform r2.y, r0.x, r1.z
getwid.u32 r4.x
getfiberid.u32 r4.y
cmps.u.lt p0.x, r0.x, 16
cmps.u.ge p0.y, r0.x, 48
mov.u32u32 r4.z, 0
mov.u32u32 r4.w, 0
(rpt5)nop
brao p0.x, p0.y, #edge
mov.u32u32 r4.z, 1
edge:
(jp)braa !p0.x, !p0.y, #mid
jump #st
mid:
(jp)mov.u32u32 r4.w, r0.x
st:
(jp)shl.b r5.x, r0.x, 2
(rpt2)nop
stib.b.untyped.1d.u32.4.imm r4.x, r5.x, 3
end
nop
"""


@pytest.mark.parametrize("threadsize", [64, 128])
def test_relative_consts_nonuniform_ibo_index_wave_ids_and_two_predicate_branches(threadsize):
    out = run(MISC, threadsize=threadsize)
    lid = np.arange(64)
    val = np.array([100, 200, 300, 400])[lid & 3]
    np.testing.assert_array_equal(out[1], np.where(lid % 2 == 0, val, 0))
    np.testing.assert_array_equal(out[2], np.where(lid % 2 == 1, val, 0))
    middle = (lid >= 16) & (lid < 48)
    want = np.stack([lid // threadsize, lid % threadsize, middle.astype(int), np.where(middle, lid, 0)], 1)
    np.testing.assert_array_equal(out[3].reshape(64, 4), want)


UBO = """
@localsize 64, 1, 1
@buf 256
@invocationid(r0.x)
and.b r1.x, r0.x, 7
(rpt2)nop
ldc.offset1.2.imm r2.x, r1.x, 0
ldc.offset0.1.imm r2.z, 9, 0
(sy)shl.b r3.x, r0.x, 2
(rpt2)nop
stib.b.untyped.1d.u32.3.imm r2.x, r3.x, 0
end
nop
"""


def test_ubo_loads_with_ldc_and_out_of_range_reads_zero():
    d, text = harness.parse(UBO)
    state, results = harness.prepare(ir3.assemble(text), d)
    ubo = np.arange(1000, 1032, dtype=np.uint32)            # 8 vec4, declared as 6: vec4 6 and 7 read as 0
    va = harness.BASE_VA + 0x100000
    blk = PhysBlock(4096, "ubo")
    blk.view(np.uint32)[:32] = ubo
    state.memory.map(va, blk.host_addr, 4096)
    state.ubos[0] = np.array([A.A6XX_UBO_0_BASE_LO.encode(va & 0xFFFFFFFF),
                              A.A6XX_UBO_1_BASE_HI.encode(va >> 32) | A.A6XX_UBO_1_SIZE.encode(6)], np.uint32)
    run_cs(state)
    out = results()[0].reshape(64, 4)
    v = np.arange(64) & 7
    inb = v < 6
    np.testing.assert_array_equal(out[:, 0], np.where(inb, 1000 + 4 * v + 1, 0))
    np.testing.assert_array_equal(out[:, 1], np.where(inb, 1000 + 4 * v + 2, 0))
    np.testing.assert_array_equal(out[:, 2], np.zeros(64))                 # vec4 9 is past the 6 declared


MULTI_MOV = """
@localsize 64, 1, 1
@buf 768
@invocationid(r0.x)
add.u r1.x, r0.x, 100
add.u r1.y, r0.x, 200
add.u r1.z, r0.x, 300
add.u r1.w, r0.x, 400
(rpt2)nop
swz.u32u32 r1.x, r1.y, r1.y, r1.x
(rpt2)nop
gat.u32u32 r2.x, r1.w, r1.z, r1.y, r1.x
sct.u32u16 hr6.x, hr6.y, hr6.z, hr6.w, r1.x
(rpt5)nop
cov.u16u32 r4.x, hr6.x
cov.u16u32 r4.y, hr6.y
cov.u16u32 r4.z, hr6.z
cov.u16u32 r4.w, hr6.w
mov.u32u32 r5.z, 12
(rpt2)nop
mul.u24 r5.x, r0.x, r5.z
(rpt2)nop
stib.b.untyped.1d.u32.4.imm r2.x, r5.x, 0
add.u r5.y, r5.x, 4
add.u r5.w, r5.x, 8
(rpt2)nop
stib.b.untyped.1d.u32.4.imm r1.x, r5.y, 0
stib.b.untyped.1d.u32.4.imm r4.x, r5.w, 0
end
nop
"""


def test_swz_gat_sct_read_every_source_before_writing():
    out = run(MULTI_MOV)[0].reshape(64, 12)
    lid = np.arange(64, dtype=np.uint32)
    a, b, c, d = lid + 100, lid + 200, lid + 300, lid + 400
    # swz swaps r1.x and r1.y; gat packs (w, z, y, x) into r2; sct spreads r1.x..w over hr6.x..w
    np.testing.assert_array_equal(out[:, :4], np.stack([d, c, a, b], 1))
    np.testing.assert_array_equal(out[:, 4:8], np.stack([b, a, c, d], 1))
    np.testing.assert_array_equal(out[:, 8:], np.stack([b, a, c, d], 1))
