"""Operand access compiled at decode time into closures ``read(state, idx)`` and
``write(state, idx, value)``. ``idx`` is None (every lane of the chunk) or an index array of lanes.

Registers hold raw bits (uint8/16/32/64, or bool for predicates); a read views them as the
instruction's type, truncating or sign/zero-extending where PTX lets sizes differ."""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import clusterregs
from .ast import Addr, Imm, Not, Reg, Sink, Special, Sym
from .errors import IllegalInstruction, PTXError
from .memory import WINDOWS
from .types import SIGNED, UNSIGNED, PType, storage_dtype

Reader = Callable[[object, object], object]
Writer = Callable[[object, object, object], None]


class Symbols:
    """Where each symbol of a function lives: (space, offset-or-None, kind)."""

    def __init__(self):
        self.where: dict[str, tuple[str, int]] = {}

    def add(self, name: str, space: str, offset: int) -> None:
        self.where[name] = (space, offset)

    def is_call_slot(self, op) -> bool:
        """``[x]`` names a .param slot of a call sequence or a .func's own parameter: these live
        in the thread's frame (local memory), not in the kernel's parameter bank."""
        return (isinstance(op, Addr) and isinstance(op.base, Sym) and
                self.where.get(op.base.name, ("", 0))[0] in ("frame", "local"))

    def lookup(self, name: str, line: int) -> tuple[str, int]:
        try:
            return self.where[name]
        except KeyError:
            raise PTXError(line, f"unknown symbol {name}") from None


def imm_value(imm: Imm, t: PType, line: int):
    """An immediate as a numpy scalar of type ``t`` (bits for b/u/s types)."""
    if t.kind == "p":
        return np.bool_(bool(imm.value))
    if t.kind == "f":
        if imm.kind == "int":
            v = float(imm.value)
        elif imm.kind == "f64" and t.name == "f64":
            return np.array(imm.bits, np.uint64).view(np.float64)[()]
        elif imm.kind == "f32" and t.name == "f32":
            return np.array(imm.bits, np.uint32).view(np.float32)[()]
        else:
            v = float(imm.value)
        if t.name == "bf16":
            from .fpround import round_f64
            return round_f64(np.array([v]), "bf16", "rn")[0]
        return np.array(v, np.float64).astype(t.dtype)[()]
    # integer / bit types
    if imm.kind in ("f32", "f64"):
        bits = imm.bits
    elif imm.kind == "dec":
        raise PTXError(line, f"floating-point literal {imm.value} for a .{t.name} operand")
    else:
        bits = imm.value
    return np.array(bits & ((1 << t.bits) - 1), UNSIGNED[t.size]).view(t.dtype)[()]


def _convert_from_reg(reg: Reg, t: PType, line: int):
    """Function mapping a register's storage array to the instruction type's view."""
    st = storage_dtype(reg.type)
    S, Z = st.itemsize, t.size
    if reg.type.kind == "p" or t.kind == "p":
        if reg.type.kind != t.kind:
            raise PTXError(line, f"register {reg.name} (.{reg.type.name}) used as .{t.name}")
        return None
    if S == Z:
        dt = t.dtype
        return lambda a: a.view(dt)
    if S > Z:
        mid, dt = UNSIGNED[Z], t.dtype
        return lambda a: a.astype(mid).view(dt)
    if t.kind == "f":
        raise PTXError(line, f"{S * 8}-bit register {reg.name} read as .{t.name}")
    src = SIGNED[S] if t.kind == "s" else UNSIGNED[S]
    dt = t.dtype
    return lambda a: a.view(src).astype(dt)


def reader(op, t: PType, syms: Symbols | None, line: int) -> Reader:
    """Compile a source operand read as type ``t``."""
    if isinstance(op, Reg):
        k = op.slot
        conv = _convert_from_reg(op, t, line)
        if conv is None:
            return lambda s, i: s.regs[k] if i is None else s.regs[k][i]
        return lambda s, i: conv(s.regs[k] if i is None else s.regs[k][i])
    if isinstance(op, Not):
        inner = reader(op.operand, t, syms, line)
        if t.kind != "p":
            raise PTXError(line, "'!' applies to predicates only")
        return lambda s, i: ~inner(s, i)
    if isinstance(op, Imm):
        c = imm_value(op, t, line)
        return lambda s, i: c
    if isinstance(op, Special):
        return special_reader(op.name, t, line)
    if isinstance(op, Sym):
        return symbol_address_reader(op, t, syms, line)
    raise PTXError(line, f"operand {op!r} cannot be read as .{t.name}")


def writer(op, t: PType, line: int) -> Writer:
    """Compile a destination operand written with type ``t``."""
    if isinstance(op, Sink):
        return lambda s, i, v: None
    if not isinstance(op, Reg):
        raise PTXError(line, f"destination must be a register, not {op!r}")
    k = op.slot
    st = storage_dtype(op.type)
    if (op.type.kind == "p") != (t.kind == "p"):
        raise PTXError(line, f"register {op.name} (.{op.type.name}) written as .{t.name}")
    tdt = t.dtype
    if t.kind == "p":
        def conv(v):
            return v
    else:
        S, Z = st.itemsize, t.size
        if S == Z:
            def conv(v):
                v = np.asarray(v)
                if v.dtype != tdt:
                    v = v.astype(tdt)
                return v.view(st)
        elif S > Z:
            mid = SIGNED[Z] if t.kind == "s" else UNSIGNED[Z]
            wide = SIGNED[S] if t.kind == "s" else UNSIGNED[S]

            def conv(v):
                v = np.asarray(v)
                if v.dtype != tdt:
                    v = v.astype(tdt)
                return v.view(mid).astype(wide).view(st)
        else:
            mid = UNSIGNED[Z]

            def conv(v):
                v = np.asarray(v)
                if v.dtype != tdt:
                    v = v.astype(tdt)
                return v.view(mid).astype(st)

    def write(s, i, v):
        if i is None:
            s.regs[k][...] = conv(v)
        else:
            s.regs[k][i] = conv(v)
    return write


def special_reader(name: str, t: PType, line: int) -> Reader:
    """Special registers: geometry arrays, launch constants, clocks."""
    if t.kind in ("p",) or t.kind == "f":
        raise PTXError(line, f"special register {name} read as .{t.name}")
    dt = t.dtype
    base, _, comp = name.rpartition(".")
    axis = "xyz".index(comp) if comp in ("x", "y", "z") and base else None

    def cast(v):
        return np.asarray(v).astype(dt) if np.asarray(v).dtype != dt else v

    if base in ("%tid", "%ctaid"):
        g = f"{base[1:]}_{comp}"
        return lambda s, i: cast(s.geo(g) if i is None else s.geo(g)[i])
    if base == "%ntid":
        return lambda s, i: dt.type(s.block[axis])
    if base == "%nctaid":
        return lambda s, i: dt.type(s.grid[axis])
    if base in ("%clusterid", "%cluster_ctaid"):
        g = f"{'clusterid' if base == '%clusterid' else 'cluster_ctaid'}_{comp}"
        return lambda s, i: cast(s.geo(g) if i is None else s.geo(g)[i])
    if base in ("%nclusterid", "%cluster_nctaid") or name == "%cluster_nctarank":
        key = base if axis is not None else name
        own = {"%nclusterid": lambda s: s.grid[axis] // s.cluster[axis],
               "%cluster_nctaid": lambda s: s.cluster[axis], "%cluster_nctarank": lambda s: s.cluster_size}[key]
        return lambda s, i: dt.type(own(s) if s.cluster_bank is None
                                    else clusterregs.scalar(s.cluster_bank_bytes(), key, axis))
    if name == "%cluster_ctarank":
        return lambda s, i: cast(s.geo("cluster_ctarank") if i is None else s.geo("cluster_ctarank")[i])
    if name == "%is_explicit_cluster":
        return lambda s, i: dt.type(int(s.explicit_cluster))
    if name in ("%laneid", "%warpid", "%smid") or name.startswith("%lanemask_"):
        g = name[1:]
        return lambda s, i: cast(s.geo(g) if i is None else s.geo(g)[i])
    consts = {"%nwarpid": 64, "%nsmid": 132, "%gridid": 1}
    if name in consts:
        v = consts[name]
        return lambda s, i: dt.type(v)
    if name in ("%dynamic_smem_size",):
        return lambda s, i: dt.type(s.dynamic_shared)
    if name in ("%total_smem_size", "%aggr_smem_size"):
        return lambda s, i: dt.type(s.shared_size)
    if name in ("%clock", "%clock64", "%clock_hi"):
        # A deterministic cycle counter: 4 cycles per issued instruction of this chunk.
        shift = 32 if name == "%clock_hi" else 0
        return lambda s, i: np.array(((s.steps * 4) >> shift) & ((1 << t.bits) - 1), UNSIGNED[t.size]).view(dt)[()]
    if name in ("%globaltimer", "%globaltimer_lo", "%globaltimer_hi"):
        import time
        shift = 32 if name.endswith("_hi") else 0
        return lambda s, i: np.array((time.time_ns() >> shift) & ((1 << t.bits) - 1), UNSIGNED[t.size]).view(dt)[()]
    raise PTXError(line, f"unsupported special register {name}")


def symbol_address_reader(op: Sym, t: PType, syms: Symbols | None, line: int) -> Reader:
    """``mov r, var``: the variable's address in its own state space."""
    if syms is None:
        raise PTXError(line, f"symbol {op.name} not allowed here")
    space, off = syms.lookup(op.name, line)
    if t.kind not in ("b", "u", "s"):
        raise PTXError(line, f"address of {op.name} read as .{t.name}")
    dt, mask = t.dtype, (1 << t.bits) - 1
    if space == "global":
        name = op.name

        def rd(s, i):
            try:
                base = s.global_addresses[name]
            except KeyError:
                raise IllegalInstruction(f"module variable {name} has no device address; pass "
                                         f"launch(..., global_addresses={{{name!r}: va}})") from None
            return np.array((base + op.offset) & mask, UNSIGNED[t.size]).view(dt)[()]
        return rd
    if space == "label":
        raise PTXError(line, f"label {op.name} used as a value")
    if space == "func":              # a function's address: what the loader made it for this launch
        name, default = op.name, off

        def rd(s, i):
            return np.array((s.function_address(name, default) + op.offset) & mask, UNSIGNED[t.size]).view(dt)[()]
        return rd
    if space == "frame":             # a .func's local variable: its frame moves with each call
        o, ut = np.int64(off + op.offset), UNSIGNED[t.size]
        return lambda s, i: ((s.fp if i is None else s.fp[i]) + o).astype(ut).view(dt)
    c = np.array((off + op.offset) & mask, UNSIGNED[t.size]).view(dt)[()]
    return lambda s, i: c


def address(op, space: str, syms: Symbols, line: int) -> Reader:
    """Compile ``[base+off]`` into a uint64 address (scalar when constant) in ``space``."""
    if not isinstance(op, Addr):
        raise PTXError(line, f"expected a memory operand [..], found {op!r}")
    off = op.offset & (2**64 - 1)
    u64 = np.uint64
    if op.base is None:
        c = u64(off)
        return lambda s, i: c
    if isinstance(op.base, Reg):
        if op.base.type.kind == "p" or op.base.type.kind == "f" and op.base.type.size < 4:
            raise PTXError(line, f"register {op.base.name} cannot hold an address")
        k = op.base.slot
        if op.base.type.size == 8:
            if off == 0:
                return lambda s, i: (s.regs[k] if i is None else s.regs[k][i])
            o = u64(off)
            return lambda s, i: (s.regs[k] if i is None else s.regs[k][i]) + o
        if op.base.type.size != 4:
            raise PTXError(line, f"{op.base.type.size * 8}-bit register {op.base.name} cannot hold an address")
        o = u64(off)
        return lambda s, i: (s.regs[k] if i is None else s.regs[k][i]).astype(u64) + o
    if isinstance(op.base, Sym):
        sp, base = syms.lookup(op.base.name, line)
        total = op.base.offset + op.offset
        if sp == "global":
            name = op.base.name

            def rd(s, i):
                try:
                    return u64((s.global_addresses[name] + total) & (2**64 - 1))
                except KeyError:
                    raise IllegalInstruction(f"module variable {name} has no device address") from None
            return rd
        if sp == "label":
            raise PTXError(line, f"label {op.base.name} used as an address")
        if sp == "frame":
            if space not in ("local", "param", "generic"):
                raise PTXError(line, f"{op.base.name} is in .local, accessed as .{space}")
            o = u64(base + total)
            if space == "generic":           # generic = the launch's local cvta base + the local address
                return lambda s, i: (s.fp if i is None else s.fp[i]).astype(u64) + o + u64(s.cvta_base("local"))
            return lambda s, i: (s.fp if i is None else s.fp[i]).astype(u64) + o
        if space == "generic" and sp in WINDOWS:
            rel = base + total              # generic = the launch's cvta base + the space address
            return lambda s, i: u64((s.cvta_base(sp) + rel) & (2**64 - 1))
        if space != sp and space != "generic":
            raise PTXError(line, f"{op.base.name} is in .{sp}, accessed as .{space}")
        c = u64((base + total) & (2**64 - 1))
        return lambda s, i: c
    raise PTXError(line, f"bad address base {op.base!r}")
