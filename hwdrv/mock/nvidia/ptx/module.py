"""Module and Entry: parsed PTX plus the layouts a launch needs (parameters, shared, local and
constant memory) and the decoded instruction list of every kernel."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ast import Function, Param, Variable
from .decode import Ctx, Op, decode
from .errors import PTXError
from .operands import Symbols
from .parser import ParsedModule, parse_text
from .types import storage_dtype

# Make every instruction family register its builders.
from . import ops_arith, ops_atom, ops_bits, ops_cmp, ops_mem, ops_mma, ops_mov, ops_warp  # noqa: F401,E402

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


def _layout(vars_: list[Variable], start: int = 0) -> tuple[dict[str, int], int]:
    out, off = {}, start
    for v in vars_:
        off = _align(off, max(v.align, 1))
        out[v.name] = off
        off += v.size
    return out, off


def build_entry(fn: Function, pm: ParsedModule, const_layout: dict[str, int]) -> Entry:
    syms = Symbols()
    for p in fn.params:
        syms.add(p.name, "param", p.offset)
    mod_vars = list(pm.variables.values())
    for v in mod_vars:
        if v.space == "const":
            syms.add(v.name, "const", const_layout[v.name])
        elif v.space == "global":
            syms.add(v.name, "global", 0)
    fvars = list(fn.variables.values())
    shared_static = [v for v in mod_vars + fvars if v.space == "shared" and not v.extern]
    shared_extern = [v for v in mod_vars + fvars if v.space == "shared" and v.extern]
    s_layout, s_end = _layout(shared_static)
    dyn_off = None
    if shared_extern:
        dyn_off = _align(s_end, max([16] + [v.align for v in shared_extern]))
        for v in shared_extern:
            s_layout[v.name] = dyn_off
    l_layout, l_end = _layout([v for v in mod_vars + fvars if v.space == "local"])
    for name, off in s_layout.items():
        syms.add(name, "shared", off)
    for name, off in l_layout.items():
        syms.add(name, "local", off)
    for v in fvars:
        if v.space == "global":
            raise PTXError(v.line, f".global variable {v.name} inside a function is not supported")
        if v.space == "const":
            raise PTXError(v.line, f".const variable {v.name} inside a function is not supported")
    for lab, idx in fn.labels.items():
        syms.add(lab, "label", idx)
    ctx = Ctx(syms, fn.labels, fn.name)
    ops = [decode(ins, ctx) for ins in fn.instrs]
    # Falling off the end of a kernel body ends the thread, as ret would.
    ops.append(Op(None, "exit", fn.instrs[-1].line if fn.instrs else fn.line, "(end of kernel)", None, -1, "exit"))
    psize = max((p.offset + p.size for p in fn.params), default=0)
    return Entry(fn.name, fn.params, psize, ops, [storage_dtype(r.type) for r in fn.registers], s_end, dyn_off,
                 l_end, s_layout, l_layout, fn.directives.get(".reqntid"), fn.directives.get(".maxntid"), fn)


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
