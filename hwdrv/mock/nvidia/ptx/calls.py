"""Device-function calls: ``.func`` bodies, ``call`` and ``ret``, frames on the per-thread stack.

A kernel's code is its own body followed by the body of every ``.func`` it can reach, each
decoded once with its registers moved to their own slots of the register file. A call runs as a
branch that also sets up a frame in the calling thread's local memory (the stack):

    frame of f = [ return slots | parameters | .local variables (__local_depot) |
                   .param slots of f's own call sequences | saved registers of f |
                   the caller's frame pointer and stack top ]

The kernel's frame starts at local offset 0 and holds its .local variables and call slots; the
stack grows down from it, as on the GPU (the kernel's frame sits just below the stack pointer the
driver programmed, and the per-thread local memory ends ``-s.local.bias`` bytes below the frame).
Per lane, ``fp`` is the current frame and ``sp`` the lowest local address in use (the frame and
what ``alloca`` added below it); a call places the callee's frame below ``sp``. Registers of other
functions live in other slots, so only a function that can be re-entered while it is active
(recursion) saves registers: on entry, those it may read after one of its call sites (the
values a suspended activation still needs), restored on return -- as the GPU's callee-saved
registers go to the stack.
A frame or allocation that does not fit in the per-thread local memory faults as a stack
overflow (an out-of-range local access), as the GPU faults past its local memory.

A function's address is a code address (``function_address``); an indirect call sends each
lane to the function its register names, setting up that function's frame.

``cstack`` keeps, per lane, the PC of every call site on its way down; the scheduler orders
lanes by that path so that lanes still outside a call catch up with the lanes inside it before
anyone moves past the call (see executor)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .ast import Addr, Function, Group, Imm, Instr, Not, Pair, Reg, Sym, Vec
from .decode import family
from .errors import AddressSpaceFault, IllegalInstruction, PTXError
from .types import SIGNED, storage_dtype

#: bytes of local memory per thread (frame included) an interpreter-only launch gives a kernel that
#: calls; on the mock GPU the driver's programmed local memory decides
DEFAULT_STACK_SIZE = 16 * 1024
# Code addresses of functions (`mov.u64 %rd, f`, function-pointer tables): above the generic
# windows of shared, local and param memory and outside any user address; a load from one
# faults as unmapped global memory, as reading the GPU's code segment would.
FUNCTION_ADDRESS_BASE = 0x0001_0003_0000_0000
FUNCTION_ADDRESS_STRIDE = 16


def function_address(index: int) -> int:
    """The code address of the module's ``index``-th function."""
    return FUNCTION_ADDRESS_BASE + FUNCTION_ADDRESS_STRIDE * index


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


@dataclass
class Frame:
    """Where a function's slots live relative to its frame pointer."""
    size: int
    offsets: dict[str, int]                 # return slots, parameters, .local and .param variables
    sizes: dict[str, int]                   # their sizes
    params: list[tuple[int, int]]           # (offset, size) of each formal parameter, in order
    returns: list[tuple[int, int]]          # (offset, size) of each return slot
    save: int = 0                           # where saved registers start (8 bytes each)
    regs: list[tuple[int, np.dtype]] = field(default_factory=list)   # (slot, storage dtype)
    link: int = 0                           # the caller's fp and top (8 bytes each)


def _reg_slots(o, out: set) -> None:
    if isinstance(o, Reg):
        out.add(o.slot)
    elif isinstance(o, Addr):
        _reg_slots(o.base, out)
    elif isinstance(o, (Vec, Group)):
        for x in o.items:
            _reg_slots(x, out)
    elif isinstance(o, Pair):
        _reg_slots(o.first, out)
        _reg_slots(o.second, out)
    elif isinstance(o, Not):
        _reg_slots(o.operand, out)


# instructions whose first operand is read, not written (stores, reductions, control, waits)
_NO_DEST = {"st", "red", "sust", "sured", "nanosleep", "stackrestore", "bar", "barrier", "bra", "brx", "call",
            "ret", "exit", "trap", "prefetch", "prefetchu", "membar", "fence", "cp", "pmevent", "griddepcontrol",
            "setmaxnreg", "stmatrix", "wmma"}


def _uses_defs(ins: Instr) -> tuple[set[int], set[int]]:
    """Register slots ``ins`` reads and those it surely writes (an unguarded destination)."""
    uses: set[int] = set()
    defs: set[int] = set()
    ops = ins.operands
    first_is_dest = ops and ins.opcode not in _NO_DEST and isinstance(ops[0], (Reg, Vec, Pair))
    for k, o in enumerate(ops):
        _reg_slots(o, defs if k == 0 and first_is_dest else uses)
    if ins.guard is not None:
        uses.add(ins.guard[0].slot)
        defs = set()                  # a guarded write may not happen
    return uses, defs


def live_after_calls(fn: Function) -> set[int]:
    """Register slots of ``fn`` live when one of its calls returns (backward liveness over its
    branches): what a suspended activation still needs."""
    n = len(fn.instrs)
    succ: list[list[int]] = []
    for k, ins in enumerate(fn.instrs):
        nxt = [] if k + 1 >= n else [k + 1]
        if ins.opcode in ("ret", "exit", "trap") and ins.guard is None:
            nxt = []
        elif ins.opcode == "bra" and ins.operands and isinstance(ins.operands[0], Sym):
            tgt = [fn.labels[ins.operands[0].name]] if ins.operands[0].name in fn.labels else []
            nxt = tgt if ins.guard is None else tgt + nxt
        elif ins.opcode == "brx":                  # brx.idx: any label of the function
            nxt = list(fn.labels.values())
        succ.append([j for j in nxt if j < n])
    ud = [_uses_defs(ins) for ins in fn.instrs]
    live_in: list[set[int]] = [set() for _ in range(n)]
    changed = True
    while changed:
        changed = False
        for k in range(n - 1, -1, -1):
            out: set[int] = set()
            for j in succ[k]:
                out |= live_in[j]
            new = ud[k][0] | (out - ud[k][1])
            if new != live_in[k]:
                live_in[k], changed = new, True
    live: set[int] = set()
    for k, ins in enumerate(fn.instrs):
        if ins.opcode == "call" and k + 1 < n:
            live |= live_in[k + 1]
    return live


def frame_of(fn: Function, reg_base: int, saved: set[int] = frozenset()) -> Frame:
    """The frame layout of ``fn`` (a kernel's frame has no return slots, parameters or saves);
    ``saved``: the slots of the registers it saves on entry (see live_after_calls)."""
    offsets: dict[str, int] = {}
    sizes: dict[str, int] = {}
    off = 0
    rets, params = [], []
    if not fn.is_entry:
        for p in fn.returns:
            off = _align(off, p.align)
            offsets[p.name], sizes[p.name] = off, p.size
            rets.append((off, p.size))
            off += p.size
        for p in fn.params:
            off = _align(off, p.align)
            offsets[p.name], sizes[p.name] = off, p.size
            params.append((off, p.size))
            off += p.size
    for v in fn.variables.values():
        if v.space in ("local", "param"):
            off = _align(off, max(v.align, 1))
            offsets[v.name], sizes[v.name] = off, v.size
            off += v.size
    off = _align(off, 8)
    save = off
    regs = []
    if not fn.is_entry:
        regs = [(reg_base + r.slot, storage_dtype(r.type)) for r in fn.registers if r.slot in saved]
        off += 8 * len(regs)
    link = off
    if not fn.is_entry:
        off += 16
    return Frame(_align(max(off, 1), 16), offsets, sizes, params, rets, save, regs, link)


def rebase(ins: Instr, base: int) -> Instr:
    """``ins`` with every register moved ``base`` slots up (a callee's registers follow its caller's)."""
    if base == 0:
        return ins

    def mv(o):
        if isinstance(o, Reg):
            return replace(o, slot=o.slot + base)
        if isinstance(o, Addr):
            return replace(o, base=mv(o.base))
        if isinstance(o, Vec):
            return Vec(tuple(mv(x) for x in o.items))
        if isinstance(o, Group):
            return Group(tuple(mv(x) for x in o.items))
        if isinstance(o, Pair):
            return Pair(mv(o.first), mv(o.second))
        if isinstance(o, Not):
            return Not(mv(o.operand))
        return o
    guard = None if ins.guard is None else (mv(ins.guard[0]), ins.guard[1])
    return replace(ins, operands=[mv(o) for o in ins.operands], guard=guard)


def callees(fn: Function) -> list[str]:
    """Names of the functions ``fn`` calls directly (in order of first call)."""
    out: list[str] = []
    for ins in fn.instrs:
        if ins.opcode == "call" and len(ins.operands) >= 2 and isinstance(ins.operands[1], Sym):
            if ins.operands[1].name not in out:
                out.append(ins.operands[1].name)
    return out


@dataclass
class CallSite:
    """What a return needs to know about the call it returns from."""
    ret_slots: list[tuple[int, int]]   # (offset in the caller's frame, size) receiving return values


def _slot_names(group, what: str, line: int) -> list[str]:
    if not isinstance(group, Group):
        raise PTXError(line, f"call: expected a ({what}) list")
    names = []
    for x in group.items:
        if not isinstance(x, Sym) or x.offset:
            raise PTXError(line, f"call {what} must be .param variables, found {x!r}")
        names.append(x.name)
    return names


def _copy_bytes(data: np.ndarray, dst: np.ndarray, src: np.ndarray, size: int) -> None:
    k = np.arange(size, dtype=np.int64)
    data[(dst[:, None] + k).ravel()] = data[(src[:, None] + k).ravel()]


def frame_index(s, lanes) -> np.ndarray:
    """Index in ``s.local.data`` of each lane's local address 0 (frames are relative to it)."""
    return s.local.lane_base[lanes] + s.local.bias


def _setup(caller: Frame, callee: Frame, callee_name: str, args: list[str]):
    """run(s, lanes): the callee's frame below the stack pointer, arguments copied in, its
    registers saved, the caller's fp and sp linked."""
    copies = [(caller.offsets[a], dst, size) for a, (dst, size) in zip(args, callee.params)]
    csize, save, regs, link = callee.size, callee.save, callee.regs, callee.link

    def run(s, lanes):
        fp = s.fp[lanes]
        top = s.sp[lanes]
        new = (top - csize) // 16 * 16
        over = new < -s.local.bias
        if over.any():
            raise _stack_fault(s, lanes, over, new, f"calling {callee_name}")
        base = frame_index(s, lanes)
        data = s.local.data
        for src, dst, size in copies:
            _copy_bytes(data, base + new + dst, base + fp + src, size)
        words = data.view(np.uint64)
        at = (base + new + save) // 8
        for n, (slot, _) in enumerate(regs):
            words[at + n] = s.regs[slot][lanes].astype(np.uint64)
        at = (base + new + link) // 8
        words[at] = fp.astype(np.uint64)
        words[at + 1] = top.astype(np.uint64)
        s.fp[lanes] = new
        s.sp[lanes] = new
    return run


def _call_slots(ins: Instr, caller: Frame, line: int) -> tuple[list[str], list[str]]:
    rets = _slot_names(ins.operands[0], "return", line)
    args = _slot_names(ins.operands[2], "argument", line)
    for n in rets + args:
        if n not in caller.offsets:
            raise PTXError(line, f"call slot {n} is not a .param variable of the caller")
    return rets, args


def _mismatch(caller: Frame, callee: Frame, rets: list[str], args: list[str]) -> str | None:
    if len(args) != len(callee.params) or len(rets) != len(callee.returns):
        return (f"passes {len(args)} arguments and {len(rets)} return slots; it takes {len(callee.params)} "
                f"and {len(callee.returns)}")
    for a, (_, size) in zip(args, callee.params):
        if caller.sizes[a] < size:
            return f"passes {caller.sizes[a]} bytes in {a} for a {size}-byte parameter"
    return None


def build_call(ins: Instr, caller: Frame, callee: Frame, callee_name: str, line: int):
    """The run function of ``call`` (frame setup; the executor does the jump) and its CallSite."""
    rets, args = _call_slots(ins, caller, line)
    bad = _mismatch(caller, callee, rets, args)
    if bad:
        raise PTXError(line, f"call of {callee_name} {bad}")
    site = CallSite([(caller.offsets[r], size) for r, (_, size) in zip(rets, callee.returns)])
    return _setup(caller, callee, callee_name, args), site


def build_indirect_call(ins: Instr, caller: Frame, target, callees_by_address: dict[int, tuple[str, Frame, int]],
                        line: int):
    """``call (rets), %r, (args), prototype``: run(s, lanes) sets up each lane's callee frame and
    returns each lane's target PC. ``callees_by_address``: code address -> (name, frame, pc)."""
    rets, args = _call_slots(ins, caller, line)
    site = CallSite([(caller.offsets[r], caller.sizes[r]) for r in rets])
    setups, default_of = {}, {}
    for addr, (name, frame, pc) in callees_by_address.items():
        bad = _mismatch(caller, frame, rets, args)
        setups[addr] = (name, pc, bad, None if bad else _setup(caller, frame, name, args))
        default_of[name] = addr
    text = ins.text

    def run(s, lanes):
        addrs = np.asarray(target(s, lanes)).astype(np.uint64)
        addrs = np.broadcast_to(addrs, (len(lanes),))
        pcs = np.empty(len(lanes), np.int32)
        for a in np.unique(addrs).tolist():
            sel = addrs == a
            placed = s.function_at(int(a))          # an address the loader gave a function
            hit = setups.get(default_of.get(placed, -1) if placed is not None else int(a))
            if hit is None or hit[2]:
                why = f"{hit[0]} {hit[2]}" if hit else "not the address of a function of this module"
                exc = IllegalInstruction(f"indirect call to {int(a):#x}: {why}", text, line)
                exc.chunk_lane = int(lanes[int(np.argmax(sel))])
                raise exc
            hit[3](s, lanes[sel])
            pcs[sel] = hit[1]
        return pcs
    return run, site


def build_ret(callee: Frame, sites: dict[int, CallSite]):
    """The run function of a ``ret`` in a .func: copies return values to the caller, restores
    the callee's saved registers and the caller's frame; returns each lane's return PC."""
    save, regs, returns, link = callee.save, callee.regs, callee.returns, callee.link

    def run(s, lanes):
        d = s.depth[lanes] - 1
        at_site = s.cstack[d, lanes]
        data = s.local.data
        words = data.view(np.uint64)
        for pc in np.unique(at_site):
            site = sites[int(pc)]
            ls = lanes if len(at_site) == 1 or (at_site == pc).all() else lanes[at_site == pc]
            fp = s.fp[ls]
            base = frame_index(s, ls)
            at = (base + fp + link) // 8
            caller_fp, caller_top = words[at].astype(np.int64), words[at + 1].astype(np.int64)
            for (src, size), (dst, _) in zip(returns, site.ret_slots):
                _copy_bytes(data, base + caller_fp + dst, base + fp + src, size)
            at = (base + fp + save) // 8
            for n, (slot, dt) in enumerate(regs):
                s.regs[slot][ls] = words[at + n].astype(dt)
            s.fp[ls] = caller_fp
            s.sp[ls] = caller_top
        s.depth[lanes] = d
        return at_site + 1
    return run


def _stack_fault(s, lanes, over, at, what: str) -> AddressSpaceFault:
    k = int(np.argmax(over))
    exc = AddressSpaceFault(int(at[k]) % (1 << 64), "write",
                            f"stack overflow: {what} (local memory of {s.local.limit} bytes per thread, "
                            f"{s.local.bias} below the kernel's frame)", "local")
    exc.chunk_lane = int(lanes[k])
    return exc


@family("alloca")
def build_alloca(ctx, ins):
    """alloca.{u32,u64} ptr, size{, align}: ``size`` bytes of the thread's stack (below the stack
    pointer, which moves down), freed when the function returns; ``ptr`` is a .local address
    (aligned to ``align``, default 8)."""
    t = ctx.one_type(ins, {"u32", "u64"})
    ctx.nops(ins, 2, 3)
    w = ctx.wr(ins.operands[0], t)
    size = ctx.rd(ins.operands[1], t)
    align = 8
    if len(ins.operands) == 3:
        if not isinstance(ins.operands[2], Imm) or ins.operands[2].value & (ins.operands[2].value - 1):
            raise ctx.error("alloca alignment must be an immediate power of two")
        align = max(int(ins.operands[2].value), 1)

    def run(s, i):
        lanes = np.arange(s.L) if i is None else i
        n = np.broadcast_to(np.asarray(size(s, i)).astype(np.int64), (len(lanes),))
        ptr = (s.sp[lanes] - n) // align * align
        over = ptr < -s.local.bias
        if over.any():
            raise _stack_fault(s, lanes, over, ptr, f"alloca of {int(n[int(np.argmax(over))])} bytes")
        s.sp[lanes] = ptr
        w(s, i, ptr.astype(t.dtype))
    return run


@family("stacksave", "stackrestore")
def build_stack_save_restore(ctx, ins):
    """stacksave.{u32,u64} d: the stack pointer (alloca hands out memory below it); stackrestore
    a: set it back (frees everything alloca'd since)."""
    t = ctx.one_type(ins, {"u32", "u64"})
    ctx.nops(ins, 1)
    if ins.opcode == "stacksave":
        w = ctx.wr(ins.operands[0], t)
        return lambda s, i: w(s, i, (s.sp if i is None else s.sp[i]).astype(t.dtype))
    r = ctx.rd(ins.operands[0], t)

    def run(s, i):
        v = np.asarray(r(s, i)).astype(t.dtype).astype(SIGNED[t.size])   # local addresses below the frame are negative
        if i is None:
            s.sp[...] = v
        else:
            s.sp[i] = v
    return run
