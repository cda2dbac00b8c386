"""The parsed form of a PTX module: variables, parameters, functions, instructions, operands."""
from __future__ import annotations

from dataclasses import dataclass, field

from .types import PType


# ---- operands -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reg:
    """A declared register, resolved to its slot in the function's register file."""
    name: str
    slot: int
    type: PType


@dataclass(frozen=True)
class Special:
    """A special register such as ``%tid.x`` or ``%laneid``."""
    name: str


@dataclass(frozen=True)
class Imm:
    """An immediate. ``kind``: 'int'; 'f32'/'f64' (hex float literal, ``bits`` exact); 'dec'
    (decimal float literal)."""
    value: int | float
    kind: str = "int"
    bits: int | None = None


@dataclass(frozen=True)
class Sym:
    """A reference to a variable, parameter, label or function, plus a constant byte offset."""
    name: str
    offset: int = 0


@dataclass(frozen=True)
class Addr:
    """A memory operand ``[base+offset]``; base is a Reg, a Sym or None (absolute address)."""
    base: "Reg | Sym | None"
    offset: int = 0


@dataclass(frozen=True)
class Vec:
    """A vector operand ``{a, b, ...}``."""
    items: tuple


@dataclass(frozen=True)
class Group:
    """``(a, b, ...)``: the return and argument lists of ``call``."""
    items: tuple


@dataclass(frozen=True)
class Pair:
    """``p|q``: the two predicate destinations of setp and friends."""
    first: object
    second: object


@dataclass(frozen=True)
class Not:
    """``!p``: a negated predicate source."""
    operand: object


@dataclass(frozen=True)
class Sink:
    """``_``: a discarded destination."""


# ---- declarations ---------------------------------------------------------------------------
@dataclass
class Variable:
    """A ``.global/.const/.shared/.local`` variable. ``size`` in bytes (0 for an unsized extern);
    ``init`` the initializer bytes (None: zero-filled / uninitialised). ``address_inits`` lists
    the elements initialised with an address, ``(byte offset, symbol, addend, generic)``: their
    bytes in ``init`` are 0 until a loader writes the symbol's address there (a relocation).
    ``managed``: declared ``.attribute(.managed)`` (CUDA __managed__)."""
    name: str
    space: str
    type: PType
    size: int
    align: int
    line: int
    init: bytes | None = None
    extern: bool = False
    visibility: str = ""
    address_inits: list = field(default_factory=list)
    managed: bool = False


@dataclass(frozen=True)
class Param:
    """A kernel parameter as the kernel-parameter ABI lays it out (offset at natural alignment)."""
    name: str
    type: str
    size: int
    align: int
    offset: int


@dataclass
class Instr:
    """One parsed instruction: ``opcode`` is the first word of the mnemonic, ``mods`` the rest
    (``ld.global.nc.v4.f32`` -> 'ld', ('global','nc','v4','f32'))."""
    opcode: str
    mods: tuple[str, ...]
    operands: list
    guard: "tuple[Reg, bool] | None"
    line: int
    text: str

    def has(self, *mods: str) -> bool:
        return any(m in self.mods for m in mods)


@dataclass
class Function:
    """A ``.entry`` or ``.func`` with its body."""
    name: str
    is_entry: bool
    line: int
    params: list[Param] = field(default_factory=list)
    registers: list[Reg] = field(default_factory=list)
    instrs: list[Instr] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    directives: dict[str, tuple] = field(default_factory=dict)
    has_body: bool = False
    returns: list[Param] = field(default_factory=list)     # a .func's return parameters
    prototypes: set[str] = field(default_factory=set)      # labels of .callprototype declarations
