"""cat6 memory instructions: global (ldg/stg, ldg.a/stg.a, atomic.g.*), IBO (ldib.b/stib.b,
atomic.b.*, per the descriptors CP_LOAD_STATE6 loaded), local/shared (ldl/stl, ldlw/stlw,
atomic.*.l) and private (ldp/stp) memory, and the wave/fiber id queries.

Operand meanings follow Mesa's ISA XML displays (isa/ir3-cat6.xml) and how Mesa's compiler fills
them (ir3_a6xx.c, ir3_compiler_nir.c): a global address is a 64-bit register pair; ldg.a/stg.a add
``src2 << SRC2_BYTE_SHIFT`` and ``OFF << 2``; IBO coordinates count elements of the access type;
an IBO atomic's first source register receives the old value and the next one holds the operand
(cmpxchg: compare, then the new value).
"""
from __future__ import annotations

import numpy as np

from hwdrv.qcom.gen import a6xx as A

from . import alu
from .ops import ALU, SS, SY, ShaderFault, Src, unsupported_op

# element bytes of the IBO formats the emulator models (FMT6_* from the generated a6xx facts)
IBO_FORMATS = {A.FMT6_32_UINT: 4, A.FMT6_32_SINT: 4, A.FMT6_32_FLOAT: 4,
               A.FMT6_16_UINT: 2, A.FMT6_16_SINT: 2, A.FMT6_16_FLOAT: 2,
               A.FMT6_8_UINT: 1, A.FMT6_8_SINT: 1}
_ATOMIC_OPS = ("add", "sub", "xchg", "inc", "dec", "cmpxchg", "min", "max", "and", "or", "xor")


def type_info(t: int) -> tuple[int, bool, np.dtype]:
    """(bytes in memory, lives in a half register, numpy dtype in memory) of a cat6 TYPE."""
    kind, width = alu.TYPES[t]
    if width == 8:
        return 1, True, np.dtype(np.uint8 if kind == "u" else np.int8)
    return width // 8, width == 16, np.dtype({16: np.uint16, 32: np.uint32}[width])


def build(b):
    s, o = b.s, b.op
    name = s.name
    if name in ("ldg", "ldg.a", "ldl", "ldlw", "ldp", "ldib.b", "ldc"):
        o.produces = SS if name in ("ldl", "ldlw") else SY     # ir3.h is_local_mem_load / is_sy_producer
    elif name.startswith("atomic."):
        o.produces = SY                                         # ir3.h is_sy_producer: is_atomic()
    elif name in ("getwid", "getfiberid", "getspid"):
        o.produces = ALU
    if name in ("ldg", "ldg.a", "stg", "stg.a"):
        return _global(b, name)
    if name in ("ldl", "ldlw", "ldp", "stl", "stlw", "stp"):
        return _local_private(b, name)
    if name in ("ldib.b", "stib.b"):
        return _ibo(b, name)
    if name.startswith("atomic."):
        return _atomic(b, name)
    if name == "ldc":
        return _ldc(b)
    if name in ("getwid", "getfiberid", "getspid"):
        dn = s.get("DST").val
        b.write(dn, False, 0)

        def run(m, mask):
            v = {"getwid": m.lane_wave_id, "getfiberid": m.lane_fiber, "getspid": np.uint32(0)}[name]
            m.wr(dn, False, np.asarray(v, np.uint32), mask)
        o.run = run
        return o
    return unsupported_op(b.pc, b.word, name)


def _addr64(m, n: int) -> np.ndarray:
    return m.regs.full(n).astype(np.uint64) | (m.regs.full(n + 1).astype(np.uint64) << np.uint64(32))


def _global(b, name: str):
    s, o = b.s, b.op
    t = s.raw("TYPE")
    esz, half, dt = type_info(t)
    count = s.raw("SIZE")
    if count == 0:
        raise KeyError("SIZE 0 (no components)")
    base = s.get("SRC1").val
    if s.raw("SRC1_CONST"):
        raise KeyError("const-file address")
    b.read(Src("gpr", base), 0)
    b.read(Src("gpr", base + 1), 0)
    src2 = None
    if name.endswith(".a"):
        src2 = s.get("SRC2").val
        shift = s.raw("SRC2_BYTE_SHIFT" if name == "ldg.a" else "DST_BYTE_SHIFT")
        off = s.get("OFF") << 2
        b.read(Src("gpr", src2), 0)
    else:
        shift, off = 0, s.get("OFF")
    if name.startswith("ldg"):
        dn = s.get("DST").val
        for i in range(count):
            b.write(dn + i, half, 0)
    else:
        vn = s.get("SRC3").val
        for i in range(count):
            b.read(Src("gpr", vn + i, half), 0)

    def addr(m):
        a = _addr64(m, base) + np.uint64(off & 0xFFFFFFFFFFFFFFFF)
        if src2 is not None:
            a = a + (m.regs.full(src2).astype(np.uint64) << np.uint64(shift))
        return a

    def run(m, mask):
        act = m.active(mask)
        a = addr(m)
        if name.startswith("ldg"):
            for i in range(count):
                v = m.gload(a + np.uint64(i * esz), dt, act)
                m.wr(dn + i, half, m.widen(v, t), mask)
        else:
            lanes_major(m.gstore, [a + np.uint64(i * esz) for i in range(count)],
                        [m.narrow(m.reg(vn + i, half), dt) for i in range(count)], [act] * count)
    o.run = run
    return o


def _local_private(b, name: str):
    s, o = b.s, b.op
    t = s.raw("TYPE")
    esz, half, dt = type_info(t)
    count = s.raw("SIZE")
    if count == 0:
        raise KeyError("SIZE 0 (no components)")
    off = s.get("OFF")
    space = "private" if name in ("ldp", "stp") else "local"
    if name.startswith("ld"):
        an, dn = s.get("SRC").val, s.get("DST").val
        b.read(Src("gpr", an), 0)
        for i in range(count):
            b.write(dn + i, half, 0)
    else:
        an, vn = s.get("DST").val, s.get("SRC").val
        b.read(Src("gpr", an), 0)
        for i in range(count):
            b.read(Src("gpr", vn + i, half), 0)

    def run(m, mask):
        act = m.active(mask)
        a = m.regs.full(an).astype(np.int64) + off
        if name.startswith("ld"):
            for i in range(count):
                v = m.local_load(space, a + i * esz, dt, act, b.op)
                m.wr(dn + i, half, m.widen(v, t), mask)
        else:
            m.local_store(space, np.stack([a + i * esz for i in range(count)], 1),
                          np.stack([np.broadcast_to(m.narrow(m.reg(vn + i, half), dt), a.shape) for i in range(count)], 1),
                          act, b.op)
    o.run = run
    return o


def _ssbo(s):
    sc = s.get("SSBO")
    if s.raw("SSBO_IM"):
        return ("imm", sc.raw("IMMED"))
    return ("reg", sc.val)


def _ibo(b, name: str):
    s, o = b.s, b.op
    if s.raw("BINDLESS"):
        raise KeyError("bindless IBO access")
    if s.raw("D") != 1:
        raise KeyError(f"{s.raw('D')}d IBO access")
    t = s.raw("TYPE")
    esz, half, dt = type_info(t)
    count = s.raw("TYPE_SIZE")
    typed = bool(s.get("TYPED").raw("TYPED")) if s.has("TYPED") else False
    vn, cn = s.get("SRC1").val, s.get("SRC2").val
    imm_off = s.get("OFFSET") if s.has("OFFSET") else 0
    kind, ssbo = _ssbo(s)
    b.read(Src("gpr", cn), 0)
    if kind == "reg":
        b.read(Src("gpr", ssbo), 0)
    for i in range(count):
        if name == "ldib.b":
            b.write(vn + i, half, 0)
        else:
            b.read(Src("gpr", vn + i, half), 0)

    def fast(m, mask, act, win) -> None:
        buf, limit = win
        view, nelem = buf[: limit - limit % esz].view(dt), limit // esz
        e0 = m.regs.full(cn).astype(np.int64) + imm_off
        es = [e0 + i if i else e0 for i in range(count)]
        oks = [(e >= 0) & (e < nelem) for e in es]
        if name == "ldib.b":
            for i, (e, ok) in enumerate(zip(es, oks)):
                if ok.all():
                    v = view[e]
                else:       # out of bounds reads 0
                    v = np.where(ok, view[np.where(ok, e, 0)], dt.type(0))
                m.wr(vn + i, half, m.widen(v, t), mask)
            return
        vals = [np.broadcast_to(m.narrow(m.reg(vn + i, half), dt), (m.lanes,)) for i in range(count)]
        e = np.stack(es, 1).reshape(-1) if count > 1 else es[0]
        v = np.stack(vals, 1).reshape(-1) if count > 1 else vals[0]
        ok = (np.stack(oks, 1).reshape(-1) if count > 1 else oks[0])
        ok = ok & (np.repeat(act, count) if count > 1 else act)
        if ok.all():
            view[e] = v
        else:               # out of bounds: dropped
            view[e[ok]] = v[ok]

    def run(m, mask):
        act = m.active(mask)
        if kind == "imm" and not typed:
            win = m.ibo_window(ssbo, o)
            if win is not None:
                return fast(m, mask, act, win)
        idx = ssbo if kind == "imm" else m.regs.full(ssbo)
        coord = m.regs.full(cn).astype(np.int64) + imm_off
        places = [m.ibo_addr(idx, (coord + i) * esz, esz, typed, o) for i in range(count)]
        if name == "ldib.b":
            for i, (addr, ok) in enumerate(places):
                v = m.gload(addr, dt, act & ok)
                m.wr(vn + i, half, m.widen(v, t), mask)        # out of bounds reads 0
        else:                                                  # out of bounds: dropped
            lanes_major(m.gstore, [p[0] for p in places], [m.narrow(m.reg(vn + i, half), dt) for i in range(count)],
                        [act & p[1] for p in places])
    o.run = run
    return o


def _ldc(b):
    """ldc.offsetK.N dst, src1, src2: N dwords from UBO src2 at vec4 src1, starting at component K
    (Mesa ir3_compiler_nir.c emit_intrinsic_load_ubo_ldc: srcs = (UBO index, vec4 offset), d = component)."""
    s, o = b.s, b.op
    if s.raw("BINDLESS"):
        raise KeyError("bindless UBO load")
    comp, count, dn = s.get("OFFSET"), s.get("TYPE_SIZE"), s.get("DST").val
    off_imm, off = bool(s.raw("SRC1_IM")), s.get("SRC1").val
    idx_imm, idx = bool(s.raw("SRC2_IM")), s.get("SRC2").val
    if not off_imm:
        b.read(Src("gpr", off), 0)
    if not idx_imm:
        b.read(Src("gpr", idx), 0)
    for i in range(count):
        b.write(dn + i, False, 0)

    def run(m, mask):
        act = m.active(mask)
        vec4 = np.full(m.lanes, off, np.int64) if off_imm else m.regs.full(off).astype(np.int64)
        which = idx if idx_imm else m.regs.full(idx)
        for i in range(count):
            addr, ok = m.ubo_addr(which, 16 * vec4 + 4 * (comp + i), o)
            m.wr(dn + i, False, np.where(ok, m.gload(addr, np.dtype(np.uint32), act & ok), 0).astype(np.uint32), mask)
    o.run = run
    return o


def _atomic(b, name: str):
    s, o = b.s, b.op
    parts = name.split(".")
    space = {"g": "global", "b": "ibo"}.get(parts[1], "local")
    op = parts[-1]
    if op not in _ATOMIC_OPS:
        raise KeyError(name)
    t = s.raw("TYPE")
    if alu.TYPES[t][1] != 32 or t == 6 and space != "local":
        raise KeyError(f"{name} of type {t}")
    signed = alu.TYPES[t][0] == "s"
    if space == "ibo":
        if s.raw("BINDLESS"):
            raise KeyError("bindless IBO atomic")
        vn, cn = s.get("SRC1").val, s.get("SRC2").val
        kind, ssbo = _ssbo(s)
        dn = vn
        operand = [vn + 1, vn + 2] if op == "cmpxchg" else [vn + 1]     # ir3_a6xx.c: src1 = (dst, [compare,] data)
        b.read(Src("gpr", cn), 0)
        if kind == "reg":
            b.read(Src("gpr", ssbo), 0)
    else:
        dn = s.get("DST").val
        s1, s2 = s.get("SRC1"), s.get("SRC2")
        if space == "global":
            an = s1.val
            b.read(Src("gpr", an), 0)
            b.read(Src("gpr", an + 1), 0)
            vn = s2.val
            operand = [vn, vn + 1] if op == "cmpxchg" else [vn]          # ir3_compiler_nir.c: (compare, value)
        else:
            if s.raw("SRC1_IM") or s.raw("SRC2_IM"):
                raise KeyError("immediate local atomic operands")
            an, vn = s1.val, s2.val
            b.read(Src("gpr", an), 0)
            operand = [vn + 1, vn] if op == "cmpxchg" else [vn]          # (data, compare): compare is .y
    for r in operand:
        b.read(Src("gpr", r), 0)
    b.write(dn, False, 0)

    def run(m, mask):
        act = m.active(mask)
        vals = [m.regs.full(r) for r in operand]
        if space == "global":
            addr, ok = _addr64(m, an), act
        elif space == "ibo":
            idx = ssbo if kind == "imm" else m.regs.full(ssbo)
            addr, okb = m.ibo_addr(idx, m.regs.full(cn).astype(np.int64) * 4, 4, False, o)
            ok = act & okb
        else:
            addr, ok = m.regs.full(an).astype(np.int64), act
        old = m.atomic(space, op, signed, addr, vals, ok, o)
        m.wr(dn, False, old, ok)
    o.run = run
    return o


def lanes_major(store, addrs: list, vals: list, masks: list) -> None:
    """Store several components per lane as one access in lane order (lane 0's x, y, ..., then lane
    1's): where lanes overlap, the highest lane's value stays (gpumem: the last lane wins)."""
    if len(addrs) == 1:
        store(addrs[0], vals[0], masks[0])
        return
    lanes = addrs[0].shape[0]
    a = np.stack(addrs, 1).reshape(-1)
    v = np.stack([np.broadcast_to(x, (lanes,)) for x in vals], 1).reshape(-1)
    mk = np.stack([np.broadcast_to(x, (lanes,)) for x in masks], 1).reshape(-1)
    store(a, v, mk)


def check_local(space: str, addr: np.ndarray, size: int, limit: int, act: np.ndarray, op) -> None:
    bad = act & ((addr < 0) | (addr + size > limit))
    if bad.any():
        lane = int(np.flatnonzero(bad)[0])
        raise ShaderFault(f"{space} memory access of {size} bytes at offset {int(addr[lane])} (fiber lane {lane}) "
                          f"outside the {limit} bytes the dispatch declares, at {op.where()}", op.pc)
