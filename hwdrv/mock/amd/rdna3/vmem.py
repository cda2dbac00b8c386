"""Compile vector memory instructions: DS (LDS), FLAT/GLOBAL/SCRATCH and MUBUF (buffer, V#).

Global memory goes through the dispatch's ``GpuPageTable`` (vectorised load/store; an unmapped
lane raises its ``MemoryFault``). LDS is one byte array per workgroup; out-of-range LDS reads
return 0 and writes are dropped (ISA guide 11.2, gfx11 LDS bounds). Scratch is per-lane private
memory carved from the dispatch's scratch buffer. Atomics are applied in lane order, so a
returning atomic gives each lane the value it would see when lanes update one after another.
"""
from __future__ import annotations

import numpy as np

from .decode import Inst
from .faults import Unsupported
from .numeric import U32, U64
from ...gpumem import MemoryFault
from .state import APERTURE_SIZE, LANES, OP, PRIVATE_APERTURE, SHARED_APERTURE

_LOADS = {"u8": (1, np.uint8, False), "i8": (1, np.int8, False), "u16": (2, np.uint16, False),
          "i16": (2, np.int16, False), "b16": (2, np.uint16, False), "b32": (4, np.uint32, False), "b64": (4, np.uint32, False),
          "b96": (4, np.uint32, False), "b128": (4, np.uint32, False)}
_NDW = {"b64": 2, "b96": 3, "b128": 4}


# ---- atomics -----------------------------------------------------------------------------------
def _atomic_fn(op: str, dt):
    sig = {np.uint32: np.int32, np.uint64: np.int64}[dt]
    fl = {np.uint32: np.float32, np.uint64: np.float64}[dt]
    return {
        "add": lambda o, d, c: o + d, "sub": lambda o, d, c: o - d, "rsub": lambda o, d, c: d - o,
        "min_u": lambda o, d, c: np.minimum(o, d), "max_u": lambda o, d, c: np.maximum(o, d),
        "min_i": lambda o, d, c: np.minimum(o.view(sig), d.view(sig)).view(dt),
        "max_i": lambda o, d, c: np.maximum(o.view(sig), d.view(sig)).view(dt),
        "and": lambda o, d, c: o & d, "or": lambda o, d, c: o | d, "xor": lambda o, d, c: o ^ d,
        "inc": lambda o, d, c: np.where(o >= d, dt(0), o + dt(1)),
        "dec": lambda o, d, c: np.where((o == 0) | (o > d), d, o - dt(1)),
        "swap": lambda o, d, c: d, "cmpswap": lambda o, d, c: np.where(o == c, d, o),
        "add_f": lambda o, d, c: (o.view(fl) + d.view(fl)).view(dt),
        "min_f": lambda o, d, c: np.fmin(o.view(fl), d.view(fl)).view(dt),
        "max_f": lambda o, d, c: np.fmax(o.view(fl), d.view(fl)).view(dt),
        "cmpswap_f": lambda o, d, c: np.where(o.view(fl) == c.view(fl), d, o),
        "csub": lambda o, d, c: np.where(o > d, o - d, dt(0)),
    }[op]


def _atomic_kind(name: str) -> str:
    """Atomic operation of an instruction name (global_atomic_min_i32, ds_max_rtn_u64, ...)."""
    core = name.split("atomic_", 1)[1] if "atomic_" in name else name[3:]
    core = core.replace("_rtn", "")
    op, _, ty = core.rpartition("_")
    if op in ("min", "max"):
        return f"{op}_{'f' if ty.startswith('f') else ty[0]}" if ty[0] != "b" else op
    if op == "add" and ty.startswith("f"):
        return "add_f"
    if op == "cmpswap" and ty.startswith("f"):
        return "cmpswap_f"
    if op in ("storexchg",):
        return "swap"
    if op in ("cmpstore",):
        return "cmpswap_f" if ty.startswith("f") else "cmpswap"
    return op


_SCAN_UFUNC = {"min_u": np.minimum, "max_u": np.maximum, "and": np.bitwise_and, "or": np.bitwise_or,
               "xor": np.bitwise_xor}


def _scan(op: str, fn, dt, v0, d: np.ndarray, c: np.ndarray | None):
    """Old values seen by lanes d[0], d[1], ... applying ``op`` one after another to v0; returns
    (old values, final value)."""
    n = d.size
    if op in _SCAN_UFUNC or op in ("min_i", "max_i", "add_f", "min_f", "max_f"):
        sig = {np.uint32: np.int32, np.uint64: np.int64}[dt]
        fl = {np.uint32: np.float32, np.uint64: np.float64}[dt]
        view, uf = {"min_i": (sig, np.minimum), "max_i": (sig, np.maximum), "add_f": (fl, np.add),
                    "min_f": (fl, np.fmin), "max_f": (fl, np.fmax)}.get(op, (dt, _SCAN_UFUNC.get(op)))
        seq = np.concatenate([np.array([v0], dt), d.astype(dt)]).view(view)
        r = uf.accumulate(seq).view(dt)     # accumulate runs strictly left to right
        return r[:-1], r[-1]
    if op == "swap":
        seq = np.concatenate([np.array([v0], dt), d.astype(dt)])
        return seq[:-1], seq[-1]
    if op == "cmpswap":
        old = np.empty(n, dt)
        k, v = 0, dt(v0)
        while k < n:                          # jump from one successful compare to the next
            hit = np.flatnonzero(c[k:] == v)
            j = n if hit.size == 0 else k + int(hit[0])
            old[k:j + 1 if j < n else n] = v
            if j < n:
                v = d[j]
            k = j + 1
        return old, v
    old = np.empty(n, dt)
    v = np.array([v0], dt)
    for k in range(n):
        old[k] = v[0]
        v = fn(v, d[k:k + 1], None if c is None else c[k:k + 1]).astype(dt)
    return old, v[0]


def atomic_rmw(read, write, addrs: np.ndarray, data: np.ndarray, cmp: np.ndarray | None, op: str, dt):
    """Apply ``op`` for lanes in order (addrs/data 1-D in lane order); returns the old values."""
    n = addrs.size
    old = np.empty(n, dt)
    if n == 0:
        return old
    if op in ("add", "sub"):
        order = np.argsort(addrs, kind="stable")
        a, d = addrs[order], data[order]
        start = np.empty(n, bool)
        start[0] = True
        start[1:] = a[1:] != a[:-1]
        grp = np.cumsum(start) - 1
        cs = np.cumsum(d, dtype=dt)
        excl = cs - d
        excl = excl - excl[start][grp]
        uniq = a[start]
        base = read(uniq)
        total = np.add.reduceat(d, np.flatnonzero(start)).astype(dt)
        if op == "add":
            old[order] = base[grp] + excl
            write(uniq, base + total)
        else:
            old[order] = base[grp] - excl
            write(uniq, base - total)
        return old
    fn = _atomic_fn(op, dt)
    uniq, inv, counts = np.unique(addrs, return_inverse=True, return_counts=True)
    if counts.max() > 8:
        # heavy contention: per address, scan its lanes in order (vectorised where the operation
        # allows), on one gathered copy of the value, then scatter the final values once
        cur = read(uniq)
        order = np.argsort(inv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for u in range(uniq.size):
            lanes = order[bounds[u]:bounds[u + 1]]
            old[lanes], cur[u] = _scan(op, fn, dt, cur[u], data[lanes], None if cmp is None else cmp[lanes])
        write(uniq, cur)
        return old
    pending = np.arange(n)
    while pending.size:
        u, first = np.unique(addrs[pending], return_index=True)
        idx = pending[first]
        cur = read(addrs[idx])
        write(addrs[idx], fn(cur, data[idx], None if cmp is None else cmp[idx]).astype(dt))
        old[idx] = cur
        pending = np.delete(pending, first)
    return old


# ---- DS ------------------------------------------------------------------------------------------
def compile_ds(inst: Inst, ctx):
    n, f = inst.name, inst.f
    if f["gds"]:
        raise Unsupported(f"{n} with gds")
    addr_r, d0, d1, vdst = f["addr"], f["data0"], f["data1"], f["vdst"]
    off16 = f["offset0"] | (f["offset1"] << 8)

    def lane_addr(st, extra=0):
        a = st.v[addr_r].astype(np.int64) + extra
        return a

    def rd_dw(st, a, m):
        """Read one dword per lane at byte address a (W,32) of each wave's LDS."""
        ok = m & (a >= 0) & (a + 4 <= st.lds_bytes)
        g = st.wg[:, None].astype(np.int64) * st.lds_bytes + np.where(ok, a, 0)
        flat = st.lds.reshape(-1)
        if not (g % 4).any():
            v = flat.view(np.uint32)[g // 4]
        else:
            v = flat[g[..., None] + np.arange(4)].copy().view(np.uint32)[..., 0]
        return np.where(ok, v, U32(0))

    def wr_bytes(st, a, m, val, nbytes):
        ok = m & (a >= 0) & (a + nbytes <= st.lds_bytes)
        g = st.wg[:, None].astype(np.int64) * st.lds_bytes + a
        flat = st.lds.reshape(-1)
        g, v = g[ok], np.asarray(np.broadcast_to(val, ok.shape))[ok]
        if nbytes == 4 and not (g % 4).any():
            flat.view(np.uint32)[g // 4] = v.astype(np.uint32)
        else:
            b = v.astype({1: np.uint8, 2: np.uint16, 4: np.uint32}[nbytes]).view(np.uint8).reshape(-1, nbytes)
            flat[g[:, None] + np.arange(nbytes)] = b

    def rd_small(st, a, m, nbytes, dt):
        ok = m & (a >= 0) & (a + nbytes <= st.lds_bytes)
        g = st.wg[:, None].astype(np.int64) * st.lds_bytes + np.where(ok, a, 0)
        flat = st.lds.reshape(-1)
        v = flat[g[..., None] + np.arange(nbytes)].copy().view(dt)[..., 0]
        return np.where(ok, v.astype(np.int64), 0)

    # ---- loads / stores ---------------------------------------------------------------------------
    if n.startswith("ds_load_2addr") or n.startswith("ds_store_2addr"):
        w = 2 if n.endswith("b64") else 1
        stride = (64 if "stride64" in n else 1) * 4 * w
        o0, o1 = f["offset0"] * stride, f["offset1"] * stride
        if n.startswith("ds_load"):
            def ld2(st):
                m = st.emask()
                for j, o in enumerate((o0, o1)):
                    for k in range(w):
                        st.set_v(vdst + j * w + k, rd_dw(st, lane_addr(st, o + 4 * k), m), m)
            return ld2

        def st2(st):
            m = st.emask()
            for dreg, o in ((d0, o0), (d1, o1)):
                for k in range(w):
                    wr_bytes(st, lane_addr(st, o + 4 * k), m, st.v[dreg + k], 4)
        return st2
    if n.startswith("ds_load_") and "addtid" not in n:
        ty = n[len("ds_load_"):]
        if ty in ("b32", "b64", "b96", "b128"):
            nd = _NDW.get(ty, 1)

            def ld(st):
                m = st.emask()
                vals = [rd_dw(st, lane_addr(st, off16 + 4 * k), m) for k in range(nd)]
                for k in range(nd):
                    st.set_v(vdst + k, vals[k], m)
            return ld
        d16 = "d16" in ty
        hi = ty.endswith("_hi")
        base = ty.replace("_d16", "").replace("_hi", "")
        nbytes, dt = {"u8": (1, np.uint8), "i8": (1, np.int8), "u16": (2, np.uint16), "i16": (2, np.int16)}[base]

        def lds_small(st):
            m = st.emask()
            v = rd_small(st, lane_addr(st, off16), m, nbytes, dt).astype(np.int64)
            bits = (v & 0xFFFFFFFF).astype(U32)
            if d16:
                old = st.v[vdst]
                bits = (old & U32(0xFFFF)) | (bits << U32(16)) if hi else (old & U32(0xFFFF0000)) | (bits & U32(0xFFFF))
            st.set_v(vdst, bits, m)
        return lds_small
    if n.startswith("ds_store_") and "addtid" not in n:
        ty = n[len("ds_store_"):]
        if ty in ("b32", "b64", "b96", "b128"):
            nd = _NDW.get(ty, 1)

            def stw(st):
                m = st.emask()
                for k in range(nd):
                    wr_bytes(st, lane_addr(st, off16 + 4 * k), m, st.v[d0 + k], 4)
            return stw
        hi = ty.endswith("_hi")
        nbytes = 1 if ty.startswith("b8") else 2

        def stsmall(st):
            m = st.emask()
            v = st.v[d0] >> U32(16) if hi else st.v[d0]
            wr_bytes(st, lane_addr(st, off16), m, v & U32((1 << (8 * nbytes)) - 1), nbytes)
        return stsmall
    # ---- cross-lane -------------------------------------------------------------------------------
    if n == "ds_swizzle_b32":
        lane = np.arange(LANES)
        if off16 & 0x8000:
            idx = (lane & ~3) | ((off16 >> (2 * (lane & 3))) & 3)
        else:
            and_m, or_m, xor_m = off16 & 0x1F, (off16 >> 5) & 0x1F, (off16 >> 10) & 0x1F
            idx = ((lane & and_m) | or_m) ^ xor_m

        def swz(st):
            m = st.emask()
            src = st.v[addr_r][:, idx]       # ds_swizzle's data operand is in the ADDR field
            st.set_v(vdst, np.where(m[:, idx], src, U32(0)), m)
        return swz
    if n in ("ds_bpermute_b32", "ds_permute_b32"):
        back = n == "ds_bpermute_b32"

        def perm(st):
            m = st.emask()
            sel = ((st.v[addr_r].astype(np.int64) + off16) >> 2) & 31
            if back:
                src = np.take_along_axis(st.v[d0], sel, axis=1)
                on = np.take_along_axis(m, sel, axis=1)
                st.set_v(vdst, np.where(on, src, U32(0)), m)
            else:
                out = np.zeros((st.W, LANES), U32)
                rows = np.broadcast_to(np.arange(st.W)[:, None], sel.shape)
                out[rows[m], sel[m]] = st.v[d0][m]
                st.set_v(vdst, out, m)
        return perm
    # ---- atomics -----------------------------------------------------------------------------------
    if n in ("ds_nop",):
        return lambda st: None
    if "gs_reg" not in n and any(n.startswith(f"ds_{o}_") for o in (
            "add", "sub", "rsub", "inc", "dec", "min", "max", "and", "or", "xor", "storexchg", "cmpstore")):
        if "2addr" in n:
            raise Unsupported(f"{n} is not implemented by the emulator")
        rtn = "_rtn" in n
        w64 = n.endswith(("64",))
        dt = np.uint64 if w64 else np.uint32
        op = _atomic_kind(n)
        nb = 8 if w64 else 4

        def dsat(st):
            m = st.emask()
            a = lane_addr(st, off16)
            ok = m & (a >= 0) & (a + nb <= st.lds_bytes)
            g = (st.wg[:, None].astype(np.int64) * st.lds_bytes + a)[ok]
            view = st.lds.reshape(-1).view(dt)
            if (g % nb).any():
                raise Unsupported(f"{n}: misaligned LDS atomic")
            data = (st.v64(d0) if w64 else st.v[d0])[ok].astype(dt)
            cmpv = None
            if op.startswith("cmpswap"):
                cmpv = (st.v64(d1) if w64 else st.v[d1])[ok].astype(dt)

            def read(idx):
                return view[idx // nb].copy()

            def write(idx, v):
                view[idx // nb] = v
            old = atomic_rmw(read, write, g, data, cmpv, op, dt)
            if rtn:
                full = np.zeros((st.W, LANES), dt)
                full[ok] = old
                if w64:
                    st.set_v64(vdst, full, m)
                else:
                    st.set_v(vdst, full, m)
        return dsat
    raise Unsupported(f"{n} is not implemented by the emulator")


# ---- FLAT / GLOBAL / SCRATCH / MUBUF ----------------------------------------------------------------
def _mem_kind(name: str):
    """(kind 'load'|'store'|'atomic', type token, d16, hi) of a memory instruction name."""
    rest = name.split("_", 1)[1]
    if rest.startswith("atomic_"):
        return "atomic", rest.rsplit("_", 1)[1], False, False
    kind, _, ty = rest.partition("_")
    d16 = ty.startswith("d16_")
    hi = ty.startswith("d16_hi_")
    ty = ty.replace("d16_hi_", "").replace("d16_", "")
    return kind, ty, d16, hi


def compile_flat(inst: Inst, ctx):
    n, f = inst.name, inst.f
    fmt = inst.fmt
    off = f["offset"]
    if fmt != "FLAT" and off & 0x1000:
        off -= 0x2000
    kind, ty, d16, hi = _mem_kind(n)
    if ty == "addtid_b32":
        raise Unsupported(f"{n} is not implemented by the emulator")
    vaddr, vdata, vdst, saddr = f["addr"], f["data"], f["vdst"], f["saddr"]
    saddr_off = saddr in (OP["NULL"], 0x7F)
    mem = ctx.mem

    def addresses(st):
        if fmt == "SCRATCH":
            p = np.zeros((st.W, LANES), np.int64)
            if f["sve"]:
                p = p + st.v[vaddr].astype(np.int64)
            if not saddr_off:
                p = p + st.s[saddr].astype(np.int64)[:, None]
            return p + off
        if fmt == "GLOBAL" and not saddr_off:
            return (st.s64(saddr).astype(np.int64)[:, None] + st.v[vaddr].astype(np.int64)) + off
        return st.v64(vaddr).astype(np.int64) + off

    scratch = fmt == "SCRATCH"

    def split(st, a, m):
        """(global mask, lds mask, scratch mask, translated addresses)"""
        if scratch:
            return None, None, m, a
        if fmt == "GLOBAL":
            return m, None, None, a
        au = a.astype(np.uint64)
        lds = m & (au >= U64(SHARED_APERTURE)) & (au < U64(SHARED_APERTURE + APERTURE_SIZE))
        prv = m & (au >= U64(PRIVATE_APERTURE)) & (au < U64(PRIVATE_APERTURE + APERTURE_SIZE))
        glob = m & ~lds & ~prv
        return glob, (lds if lds.any() else None), (prv if prv.any() else None), a

    def scratch_addr(st, p, m, nbytes=4, access="read"):
        """GPU VA of private byte p of each lane (swizzled per dword across the wave's lanes)."""
        if not scratch:
            p = p - PRIVATE_APERTURE
        bad = m & ((p < 0) | (p + nbytes > st.scratch_lane_size))
        if st.scratch_wave_base is None or bad.any():
            w, lane = np.argwhere(bad if bad.any() else m)[0]
            raise MemoryFault(int(p[w, lane]), access, "unmapped" if st.scratch_wave_base is None else "out-of-range",
                              nbytes, int(w) * LANES + int(lane),
                              f"private (scratch) address; {st.scratch_lane_size} bytes per lane")
        p = np.where(m, p, 0).astype(np.uint64)
        return (st.scratch_wave_base[:, None] + (p // U64(4)) * U64(4 * LANES)
                + np.arange(LANES, dtype=np.uint64) * U64(4) + p % U64(4))

    def load_dw(st, a, m, k, dtype=np.uint32, nbytes=4):
        """Load one element per lane from byte address a + 4k (all three apertures)."""
        g, lds, prv, a = split(st, a, m)
        out = np.zeros((st.W, LANES), np.int64 if dtype in (np.int8, np.int16) else np.uint64)
        if g is not None and g.any():
            out = np.where(g, mem.load(np.where(g, a + 4 * k, 0).astype(np.uint64), dtype, g).astype(out.dtype), out)
        if prv is not None and prv.any():
            pa = scratch_addr(st, a + 4 * k, prv, nbytes)
            out = np.where(prv, mem.load(np.where(prv, pa, 0), dtype, prv).astype(out.dtype), out)
        if lds is not None:
            la = (a + 4 * k - SHARED_APERTURE).astype(np.int64)
            ok = lds & (la >= 0) & (la + nbytes <= st.lds_bytes)
            gi = st.wg[:, None].astype(np.int64) * st.lds_bytes + np.where(ok, la, 0)
            v = st.lds.reshape(-1)[gi[..., None] + np.arange(nbytes)].copy().view(dtype)[..., 0]
            out = np.where(ok, v.astype(out.dtype), out)
        return out

    def store_dw(st, a, m, k, vals, dtype=np.uint32):
        g, lds, prv, a = split(st, a, m)
        vals = np.asarray(vals).astype(dtype)
        if g is not None and g.any():
            mem.store(np.where(g, a + 4 * k, 0).astype(np.uint64), vals, g)
        if prv is not None and prv.any():
            mem.store(np.where(prv, scratch_addr(st, a + 4 * k, prv, vals.dtype.itemsize, "write"), 0), vals, prv)
        if lds is not None:
            nb = np.dtype(dtype).itemsize
            la = (a + 4 * k - SHARED_APERTURE).astype(np.int64)
            ok = lds & (la >= 0) & (la + nb <= st.lds_bytes)
            gi = (st.wg[:, None].astype(np.int64) * st.lds_bytes + la)[ok]
            st.lds.reshape(-1)[gi[:, None] + np.arange(nb)] = vals[ok].view(np.uint8).reshape(-1, nb)

    return _mem_ops(inst, kind, ty, d16, hi, vdst, vdata, addresses, load_dw, store_dw,
                    lambda st, a, m: (split(st, a, m), scratch_addr), ctx)


def _mem_ops(inst, kind, ty, d16, hi, vdst, vdata, addresses, load_dw, store_dw, atomic_space, ctx):
    n, f = inst.name, inst.f
    if kind == "load":
        if ty in ("b32", "b64", "b96", "b128"):
            nd = _NDW.get(ty, 1)

            def ld(st):
                m = st.emask()
                a = addresses(st)
                vals = [load_dw(st, a, m, k) for k in range(nd)]
                for k in range(nd):
                    st.set_v(vdst + k, vals[k].astype(U32), m)
            return ld
        nbytes, dt, _ = _LOADS[ty]

        def lds_(st):
            m = st.emask()
            v = load_dw(st, addresses(st), m, 0, dt, nbytes)
            bits = (v.astype(np.int64) & 0xFFFFFFFF).astype(U32)
            if d16:
                old = st.v[vdst]
                bits = (old & U32(0xFFFF)) | (bits << U32(16)) if hi else (old & U32(0xFFFF0000)) | (bits & U32(0xFFFF))
            st.set_v(vdst, bits, m)
        return lds_
    if kind == "store":
        if ty in ("b32", "b64", "b96", "b128"):
            nd = _NDW.get(ty, 1)

            def sw(st):
                m = st.emask()
                a = addresses(st)
                for k in range(nd):
                    store_dw(st, a, m, k, st.v[vdata + k])
            return sw
        dt = {"b8": np.uint8, "b16": np.uint16}[ty]

        def ss(st):
            m = st.emask()
            v = st.v[vdata] >> U32(16) if hi else st.v[vdata]
            store_dw(st, addresses(st), m, 0, v, dt)
        return ss
    # atomics through the page table (global / flat-global / buffer)
    w64 = ty.endswith("64")
    dt = np.uint64 if w64 else np.uint32
    op = _atomic_kind(n)
    rtn = bool(f.get("glc"))
    mem = ctx.mem

    def at(st):
        m = st.emask()
        a = addresses(st)
        (g, lds, prv, a), _ = atomic_space(st, a, m)
        if (lds is not None and lds.any()) or (prv is not None and prv.any()) or g is None:
            raise Unsupported(f"{n} on LDS or scratch through a flat address")
        addrs = a[g].astype(np.uint64)
        data = (st.v64(vdata) if w64 else st.v[vdata])[g].astype(dt)
        cmpv = None
        if op.startswith("cmpswap"):
            cmpv = (st.v64(vdata + 2) if w64 else st.v[vdata + 1])[g].astype(dt)

        def read(idx):
            return mem.load(idx, dt, access="atomic")

        def write(idx, v):
            mem.store(idx, np.asarray(v, dt), access="atomic")
        old = atomic_rmw(read, write, addrs, data, cmpv, op, dt)
        if rtn:
            full = np.zeros((st.W, LANES), dt)
            full[g] = old
            if w64:
                st.set_v64(vdst, full, m)
            else:
                st.set_v(vdst, full, m)
    return at


def compile_mubuf(inst: Inst, ctx):
    n, f = inst.name, inst.f
    if n in ("buffer_gl0_inv", "buffer_gl1_inv"):
        return lambda st: None          # no caches in the mock
    if f["tfe"] or f["lds"]:
        raise Unsupported(f"{n} with tfe/lds")
    kind, ty, d16, hi = _mem_kind(n)
    if ty.startswith("format") or "format" in n or "_lds_" in n:
        raise Unsupported(f"{n}: formatted / LDS-direct buffer access")
    rs = f["srsrc"] * 4
    from .operands import reader
    soff = reader(f["soffset"], "u32", None, False)
    idxen, offen, ioff = f["idxen"], f["offen"], f["offset"]
    vaddr, vdata = f["vaddr"], f["vdata"]
    mem = ctx.mem

    def addresses(st):
        """Byte address per lane and the in-range test of the V# (ISA guide 9.1.8: raw buffers
        (stride 0) check offset < num_records; structured ones check index < num_records)."""
        base = (st.s[rs].astype(np.int64) | ((st.s[rs + 1] & U32(0xFFFF)).astype(np.int64) << 32))[:, None]
        stride = ((st.s[rs + 1] >> U32(16)) & U32(0x3FFF)).astype(np.int64)[:, None]
        nrec = st.s[rs + 2].astype(np.int64)[:, None]
        index = st.v[vaddr].astype(np.int64) if idxen else np.zeros((st.W, LANES), np.int64)
        voff = st.v[vaddr + (1 if idxen else 0)].astype(np.int64) if offen else 0
        offset = voff + ioff
        so = np.broadcast_to(soff(st), (st.W,)).astype(np.int64)[:, None]
        addr = base + so + offset + index * stride
        return addr, offset, index, stride, nrec

    def in_range(offset, index, stride, nrec, nbytes):
        return np.where(stride == 0, offset + nbytes <= nrec, index < nrec)

    def load_dw(st, a, m, k, dtype=np.uint32, nbytes=4):
        addr, offset, index, stride, nrec = a
        ok = m & in_range(offset + 4 * k, index, stride, nrec, nbytes)
        v = mem.load(np.where(ok, addr + 4 * k, 0).astype(np.uint64), dtype, ok)
        return np.where(ok, v, 0)

    def store_dw(st, a, m, k, vals, dtype=np.uint32):
        addr, offset, index, stride, nrec = a
        ok = m & in_range(offset + 4 * k, index, stride, nrec, np.dtype(dtype).itemsize)
        mem.store(np.where(ok, addr + 4 * k, 0).astype(np.uint64), np.asarray(vals).astype(dtype), ok)

    def space(st, a, m):
        addr, offset, index, stride, nrec = a
        ok = m & in_range(offset, index, stride, nrec, 8 if ty.endswith("64") else 4)
        return (ok, None, None, addr), None

    return _mem_ops(inst, kind, ty, d16, hi, vdata, vdata, addresses, load_dw, store_dw, space, ctx)
