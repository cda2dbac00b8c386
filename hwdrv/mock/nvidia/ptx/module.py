"""Module and Entry: parsed PTX plus the layouts a launch needs (parameters, shared, local and
constant memory) and the decoded instruction list of every kernel."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import builtins
from .ast import Function, Param, Reg, Sym, Variable
from .calls import (CallSite, Frame, build_call, build_indirect_call, build_ret, callees, frame_of, function_address,
                    live_after_calls, rebase)
from .decode import Ctx, Op, decode
from .errors import IllegalInstruction, PTXError
from .operands import Symbols
from .parser import ParsedModule, parse_text
from .types import TYPES, storage_dtype

# Make every instruction family register its builders.
from . import (ops_arith, ops_atom, ops_bits, ops_cmp, ops_mbarrier, ops_mem, ops_mma, ops_mov,  # noqa: F401,E402
               ops_packed, ops_warp, ops_wmma, ops_wgmma)

USER_CONST_BANK = 3      # ptxas places module .const variables in c[0x3]


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


@dataclass
class Entry:
    """A kernel ready to launch."""
    name: str
    params: list[Param]
    param_size: int
    ops: list[Op]
    reg_dtypes: list[np.dtype]
    static_shared: int                 # bytes of static .shared
    dynamic_shared_offset: int | None  # where `.extern .shared` arrays start (None: none declared)
    local_size: int                    # bytes of .local per thread
    shared_layout: dict[str, int] = field(default_factory=dict)
    local_layout: dict[str, int] = field(default_factory=dict)
    reqntid: tuple | None = None
    maxntid: tuple | None = None
    function: Function | None = None
    has_calls: bool = False            # calls .func bodies or allocas: runs with a per-thread stack
    cluster_dims: tuple | None = None  # .reqnctapercluster: launched as thread block clusters
    frame_size: int = 0                # the kernel's own frame (locals and call slots) on that stack
    unsupported: list[PTXError] = field(default_factory=list)   # instructions it cannot run

    def shared_bytes(self, dynamic_shared: int) -> int:
        """Shared memory one CTA needs for a launch with ``dynamic_shared`` dynamic bytes."""
        if self.dynamic_shared_offset is None:
            return self.static_shared + dynamic_shared
        return max(self.static_shared, self.dynamic_shared_offset + dynamic_shared)


@dataclass
class Module:
    """A parsed and decoded PTX module. ``variables`` holds module-scope .global/.const/.shared
    variables with their sizes (a loader allocates .global ones and passes their addresses to
    :func:`launch`); ``const_image`` is constant bank 3 as ``ld.const`` sees it by default."""
    version: str
    target: str
    entries: dict[str, Entry]
    variables: dict[str, Variable]
    const_layout: dict[str, int]
    const_image: bytes
    parsed: ParsedModule

    @property
    def global_variables(self) -> dict[str, Variable]:
        return {k: v for k, v in self.variables.items() if v.space == "global"}

    def global_image(self, name: str, addresses: dict[str, int]) -> bytes:
        """The initial bytes of .global variable ``name`` with its address initialisers
        resolved (what a loader writes after placing the variables at ``addresses``): a
        variable's device address, or a function's code address (``calls.function_address``)."""
        v = self.variables[name]
        image = bytearray(v.init or bytes(v.size))
        funcs = {f: k for k, f in enumerate(self.parsed.functions)}
        for off, sym, addend, _generic in v.address_inits:
            if sym in funcs:
                value = function_address(funcs[sym])
            elif sym in addresses:
                value = addresses[sym]               # generic(x) of a .global x is its address
            else:
                raise PTXError(v.line, f"initializer of {name} needs the address of {sym}, which was not given")
            size = v.type.size
            image[off:off + size] = ((value + addend) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return bytes(image)


def _layout(vars_: list[Variable], start: int = 0) -> tuple[dict[str, int], int]:
    out, off = {}, start
    for v in vars_:
        off = _align(off, max(v.align, 1))
        out[v.name] = off
        off += v.size
    return out, off


def _symbols(fn: Function, pm: ParsedModule, const_layout: dict[str, int], shared: dict[str, int],
             frame: Frame, labels: dict[str, int]) -> Symbols:
    syms = Symbols()
    if fn.is_entry:
        for p in fn.params:
            syms.add(p.name, "param", p.offset)
    for v in pm.variables.values():
        if v.space == "const":
            syms.add(v.name, "const", const_layout[v.name])
        elif v.space == "global":
            syms.add(v.name, "global", 0)
    for name, off in shared.items():
        syms.add(name, "shared", off)
    for v in fn.variables.values():
        if v.space == "global":
            raise PTXError(v.line, f".global variable {v.name} inside a function is not supported")
        if v.space == "const":
            raise PTXError(v.line, f".const variable {v.name} inside a function is not supported")
    # a kernel's frame is at local offset 0; a .func's moves with the frame pointer
    for name, off in frame.offsets.items():
        syms.add(name, "local" if fn.is_entry else "frame", off)
    for k, name in enumerate(pm.functions):
        if name not in syms.where:
            syms.add(name, "func", function_address(k))
    for lab, idx in labels.items():
        syms.add(lab, "label", idx)
    return syms


def _reachable(fn: Function, pm: ParsedModule) -> list[Function]:
    """``fn`` and every function with a body it can call, in breadth-first order; with an
    indirect call among them, every function of the module (any may be the target)."""
    out, seen = [fn], {fn.name}
    k = 0
    while k < len(out):
        names = callees(out[k])
        if any(i.opcode == "call" and len(i.operands) > 1 and isinstance(i.operands[1], Reg) for i in out[k].instrs):
            names += list(pm.functions)
        for name in names:
            f = pm.functions.get(name)
            if f is not None and f.has_body and not f.is_entry and name not in seen:
                seen.add(name)
                out.append(f)
        k += 1
    return out


def _reentrant(fn: Function, pm: ParsedModule) -> bool:
    """Whether ``fn`` may be called while an activation of it is live (it can reach itself)."""
    return not fn.is_entry and fn.name in _reach_names(fn, pm)


def _reach_names(fn: Function, pm: ParsedModule) -> set[str]:
    """Functions ``fn``'s calls lead to (not ``fn`` itself unless a call leads back to it)."""
    out: set[str] = set()
    for f in _reachable(fn, pm):
        names = callees(f)
        if any(i.opcode == "call" and len(i.operands) > 1 and isinstance(i.operands[1], Reg) for i in f.instrs):
            names = list(pm.functions)
        out.update(names)
    return out


def _decode_or_fault(ins, ctx: Ctx, unsupported: list[PTXError]) -> Op:
    """Decode one instruction; one that cannot be decoded becomes an op that faults and is
    listed in ``unsupported`` (a launch of its kernel refuses to run; the module still loads)."""
    try:
        return decode(ins, ctx)
    except PTXError as err:
        return _fault_op(ins, err, ctx, unsupported)


def _fault_op(ins, err: PTXError, ctx: Ctx, unsupported: list[PTXError]) -> Op:
    err.function = ctx.fn_name
    unsupported.append(err)
    msg, line, text = err.message, ins.line, ins.text

    def run(s, i):
        raise IllegalInstruction(f"PTX line {line}: {msg}", text, line)
    return Op(run, "op", ins.line, ins.text, None, -1, ins.opcode)


def build_entry(fn: Function, pm: ParsedModule, const_layout: dict[str, int]) -> Entry:
    funcs = _reachable(fn, pm)
    fvars = [v for f in funcs for v in f.variables.values()]
    mod_vars = list(pm.variables.values())
    shared_static = [v for v in mod_vars + fvars if v.space == "shared" and not v.extern]
    shared_extern = [v for v in mod_vars + fvars if v.space == "shared" and v.extern]
    s_layout, s_end = _layout(shared_static)
    dyn_off = None
    if shared_extern:
        dyn_off = _align(s_end, max([16] + [v.align for v in shared_extern]))
        for v in shared_extern:
            s_layout[v.name] = dyn_off
    _, l_end = _layout([v for v in mod_vars + list(fn.variables.values()) if v.space == "local"])
    # code: the kernel body, its end, then each reachable function's body and its implicit ret
    reg_base, pc_base = {}, {}
    nregs, npc = 0, 0
    for f in funcs:
        reg_base[f.name], pc_base[f.name] = nregs, npc
        nregs += len(f.registers)
        npc += len(f.instrs) + 1
    frames = {f.name: frame_of(f, reg_base[f.name], live_after_calls(f) if _reentrant(f, pm) else frozenset())
              for f in funcs}
    sites: dict[int, CallSite] = {}
    unsupported: list[PTXError] = []
    ops: list[Op] = []
    decoded = []                      # (index in ops, instruction): for ops_wgmma's register guard
    for f in funcs:
        labels = {k: v + pc_base[f.name] for k, v in f.labels.items()}
        ctx = Ctx(_symbols(f, pm, const_layout, s_layout, frames[f.name], labels), labels, f.name)
        for ins in f.instrs:
            ins = rebase(ins, reg_base[f.name])
            if ins.opcode == "call":
                op = _decode_call(ins, ctx, f, frames, pm, pc_base, sites, len(ops), unsupported)
            else:
                op = _decode_or_fault(ins, ctx, unsupported)
                if op.kind == "exit" and op.opcode == "ret" and not f.is_entry:
                    op = Op(build_ret(frames[f.name], sites), "fret", op.line, op.text, op.guard, -1, "ret")
            decoded.append((len(ops), ins))
            ops.append(op)
        end_line = f.instrs[-1].line if f.instrs else f.line
        if f.is_entry:
            # Falling off the end of a kernel body ends the thread, as ret would.
            ops.append(Op(None, "exit", end_line, "(end of kernel)", None, -1, "exit"))
        else:
            ops.append(Op(build_ret(frames[f.name], sites), "fret", end_line, f"(end of {f.name})", None, -1, "ret"))
    ops_wgmma.guard_async_registers(ops, decoded)
    reg_dtypes = [storage_dtype(r.type) for f in funcs for r in f.registers]
    entry = Entry(fn.name, fn.params, max((p.offset + p.size for p in fn.params), default=0), ops, reg_dtypes,
                  s_end, dyn_off, l_end, s_layout, dict(frames[fn.name].offsets), fn.directives.get(".reqntid"),
                  fn.directives.get(".maxntid"), fn)
    # a kernel that calls (device-runtime functions included) or allocas runs with a
    # per-thread stack and frame pointers (calls.py)
    entry.has_calls = bool(sites) or any(i.opcode in ("alloca", "call") for f in funcs for i in f.instrs)
    entry.frame_size = frames[fn.name].size
    req = fn.directives.get(".reqnctapercluster")
    if req:
        entry.cluster_dims = tuple(int(x) for x in req) + (1,) * (3 - len(req))
    entry.unsupported = unsupported
    return entry


def _builtin_call(ins, ctx: Ctx, caller: Frame, name: str) -> Op | None:
    """A call of a device-runtime function the interpreter provides (builtins.py), or None."""
    want = {"vprintf": (2, 1), "__assertfail": (5, 0), "malloc": (1, 1), "free": (1, 0)}.get(name)
    if want is None:
        return None
    rets, args = ins.operands[0].items, ins.operands[2].items
    if len(args) != want[0] or len(rets) > want[1]:
        raise PTXError(ins.line, f"call of {name} with {len(args)} arguments and {len(rets)} return slots")
    for x in list(args) + list(rets):
        if not isinstance(x, Sym) or x.name not in caller.offsets:
            raise PTXError(ins.line, f"call slot {x!r} is not a .param variable of the caller")
    offs = [caller.offsets[x.name] for x in args]
    ret = caller.offsets[rets[0].name] if rets else None
    if name == "vprintf":
        run = builtins.build_vprintf(offs, ret)
    elif name == "malloc":
        run = builtins.build_malloc(offs, ret)
    elif name == "free":
        run = builtins.build_free(offs)
    else:
        run = builtins.build_assertfail(offs)
    guard = None if ins.guard is None else (ins.guard[0].slot, ins.guard[1])
    return Op(lambda s, i: run(s, np.arange(s.L) if i is None else i), "op", ins.line, ins.text, guard, -1, name)


def _decode_call(ins, ctx: Ctx, f: Function, frames: dict[str, Frame], pm: ParsedModule, pc_base: dict[str, int],
                 sites: dict[int, CallSite], pc: int, unsupported: list[PTXError]) -> Op:
    ctx.line, ctx.ins = ins.line, ins
    try:
        if len(ins.operands) > 1 and isinstance(ins.operands[1], Reg):
            ctx.check_mods(ins, set())
            index = {name: k for k, name in enumerate(pm.functions)}
            targets = {function_address(index[g]): (g, frames[g], pc_base[g]) for g in frames
                       if not pm.functions[g].is_entry}
            run, site = build_indirect_call(ins, frames[f.name], ctx.rd(ins.operands[1], TYPES["u64"]), targets, ins.line)
            sites[pc] = site
            guard = None if ins.guard is None else (ins.guard[0].slot, ins.guard[1])
            return Op(run, "icall", ins.line, ins.text, guard, -1, "call")
        if len(ins.operands) < 2 or not isinstance(ins.operands[1], Sym):
            raise PTXError(ins.line, "call needs a function name or a register holding a function's address")
        name = ins.operands[1].name
        callee = pm.functions.get(name)
        if callee is None or callee.is_entry:
            raise PTXError(ins.line, f"call of {name}: no such .func in the module")
        if not callee.has_body:
            builtin = _builtin_call(ins, ctx, frames[f.name], name)
            if builtin is not None:
                return builtin
            raise PTXError(ins.line, f"call of external function {name} (no body in this module, and the "
                                     f"mock's device runtime has only vprintf, __assertfail, malloc and free)")
        ctx.check_mods(ins, set())
        run, site = build_call(ins, frames[f.name], frames[name], name, ins.line)
    except PTXError as err:
        if not err.message.endswith("`)"):
            err = PTXError(err.line, f"{err.message} (in `{ins.text}`)")
        return _fault_op(ins, err, ctx, unsupported)
    sites[pc] = site
    guard = None if ins.guard is None else (ins.guard[0].slot, ins.guard[1])
    return Op(run, "call", ins.line, ins.text, guard, pc_base[name], "call")


def parse(text: str) -> Module:
    """Parse and decode a PTX module. Raises PTXError (a ProgramError) naming the line on
    anything malformed or unsupported."""
    if not isinstance(text, str):
        raise PTXError(0, f"PTX text must be str, not {type(text).__name__}")
    pm = parse_text(text)
    consts = [v for v in pm.variables.values() if v.space == "const"]
    const_layout, cend = _layout(consts)
    image = bytearray(cend)
    for v in consts:
        if v.init is not None:
            image[const_layout[v.name]:const_layout[v.name] + len(v.init)] = v.init
    for v in pm.variables.values():
        if v.space == "local":
            raise PTXError(v.line, "module-scope .local variables are not supported")
    entries = {}
    for fn in pm.functions.values():
        if fn.is_entry:
            if not fn.has_body:
                continue
            entries[fn.name] = build_entry(fn, pm, const_layout)
    return Module(pm.version, pm.target, entries, dict(pm.variables), const_layout, bytes(image), pm)
