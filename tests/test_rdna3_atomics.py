"""Lane-ordered atomics of the RDNA3 emulator (hwdrv.mock.amd.rdna3.vmem.atomic_rmw) against a
plain Python loop that applies each lane's operation one after another (ISA: atomics of one
instruction are applied per lane; a returning atomic gives each lane the value before its own
update). Hypothesis draws operations, address collisions (light and heavy contention) and data."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwdrv.mock.amd.rdna3.vmem import atomic_rmw

M32 = 0xFFFFFFFF


def _s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def _f(v):
    return float(np.array(v, np.uint32).view(np.float32))


def _fbits(x):
    return int(np.array(x, np.float32).view(np.uint32))


REF = {
    "add": lambda o, d, c: (o + d) & M32, "sub": lambda o, d, c: (o - d) & M32,
    "min_u": lambda o, d, c: min(o, d), "max_u": lambda o, d, c: max(o, d),
    "min_i": lambda o, d, c: o if _s32(o) <= _s32(d) else d, "max_i": lambda o, d, c: o if _s32(o) >= _s32(d) else d,
    "and": lambda o, d, c: o & d, "or": lambda o, d, c: o | d, "xor": lambda o, d, c: o ^ d,
    "inc": lambda o, d, c: 0 if o >= d else o + 1, "dec": lambda o, d, c: d if (o == 0 or o > d) else o - 1,
    "swap": lambda o, d, c: d, "cmpswap": lambda o, d, c: d if o == c else o,
    "add_f": lambda o, d, c: _fbits(np.float32(_f(o)) + np.float32(_f(d))),
}


@settings(max_examples=150, deadline=None)
@given(op=st.sampled_from(sorted(REF)), n=st.integers(1, 80), naddr=st.integers(1, 12),
       seed=st.integers(0, 2 ** 32 - 1))
def test_atomic_rmw_matches_sequential_reference(op, n, naddr, seed):
    rng = np.random.default_rng(seed)
    addrs = rng.integers(0, naddr, n).astype(np.uint64) * 4
    small = op in ("inc", "dec", "cmpswap", "swap")
    data = rng.integers(0, 8 if small else 2 ** 32, n, dtype=np.uint64).astype(np.uint32)
    if op == "add_f":
        data = rng.integers(-40, 40, n).astype(np.float32).view(np.uint32)
    cmp = rng.integers(0, 8, n, dtype=np.uint64).astype(np.uint32) if op == "cmpswap" else None
    init = rng.integers(0, 8, naddr, dtype=np.uint64).astype(np.uint32)
    mem = init.copy()

    def read(a):
        return mem[(a // 4).astype(np.int64)].copy()

    def write(a, v):
        mem[(a // 4).astype(np.int64)] = v

    old = atomic_rmw(read, write, addrs, data, cmp, op, np.uint32)
    ref_mem = [int(v) for v in init]
    ref_old = []
    for k in range(n):
        a = int(addrs[k]) // 4
        ref_old.append(ref_mem[a])
        ref_mem[a] = REF[op](ref_mem[a], int(data[k]), None if cmp is None else int(cmp[k]))
    np.testing.assert_array_equal(old, np.array(ref_old, np.uint32))
    np.testing.assert_array_equal(mem, np.array(ref_mem, np.uint32))
