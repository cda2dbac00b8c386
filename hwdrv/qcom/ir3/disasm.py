"""ir3 disassembler: Mesa's isaspec decoder (``src/compiler/isaspec/isaspec_decode_impl.c``) run over
the generated tables, printing what ``ir3_isa_disasm`` prints (no branch labels, errors shown)."""
from __future__ import annotations

import math
import struct

from . import tables as T

DEFAULT_GPU_ID = 600   # Mesa's gpu_id for an a6xx (chip 6 * 100); a7xx is 700
_MAX_ERRORS = 4        # Mesa keeps at most four decode errors per instruction


def _bits(val: int) -> str:
    """Mesa's BITSET_FORMAT for a 64-bit ISA: both words, high first, zero padded."""
    return f"{(val >> 32) & 0xFFFFFFFF:08x}{val & 0xFFFFFFFF:08x}"


def _fmt_float(x: float) -> str:
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return "%f" % x


class _Scope:
    __slots__ = ("parent", "val", "bitset", "params", "state", "cache")

    def __init__(self, state: "_State", bitset: T.Bitset, val: int, params=()):
        self.parent, self.state, self.bitset, self.val, self.params = state.scope, state, bitset, val, params
        self.cache: dict[str, int] = {}


class _State:
    def __init__(self, gpu_id: int):
        self.gpu_id = gpu_id
        self.scope: _Scope | None = None
        self.expr_stack: list[str] = []
        self.errors: list[str] = []
        self.out: list[str] = []

    def error(self, msg: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(msg)

    # -- expressions and fields (find_field / resolve_field / evaluate_expr) --

    def evaluate(self, scope: _Scope, e: T.Expr) -> int:
        if e.name in scope.cache:
            return scope.cache[e.name]
        # Mesa's recursion guard skips the bottom of the stack (its loop stops at index 1).
        if e.name in self.expr_stack[1:]:
            return 0
        self.expr_stack.append(e.name)
        values = {f: self.decode_field(scope, f) for f in e.fields}
        ret = e(values, self.gpu_id)
        self.expr_stack.pop()
        scope.cache[e.name] = ret
        return ret

    def find_field(self, scope: _Scope, bitset: T.Bitset, name: str) -> T.Field | None:
        for b in bitset.chain():
            for c in b.cases:
                if c.expr is not None:
                    cur = self.expr_stack[-1] if self.expr_stack else None
                    if cur != c.expr.name and not self.evaluate(scope, c.expr):
                        continue
                f = c.fields.get(name)
                if f is not None:
                    return f
        return None

    def resolve(self, scope: _Scope | None, name: str) -> tuple[T.Field | None, int]:
        if scope is None:
            return None, 0
        f = self.find_field(scope, scope.bitset, name)
        if f is None:
            for pname, as_ in scope.params:
                if as_ == name:
                    return self.resolve(scope.parent, pname)
            return None, 0
        if f.expr is not None:
            return f, self.evaluate(scope, f.expr)
        return f, (scope.val >> f.low) & ((1 << f.width) - 1)

    def decode_field(self, scope: _Scope, name: str) -> int:
        f, val = self.resolve(scope, name)
        if f is None:
            self.error(f"no field '{name}'")
            return 0
        return val

    # -- bitsets and display --

    def find_bitset(self, candidates: tuple[T.Bitset, ...], val: int) -> T.Bitset | None:
        match = None
        for b in candidates:
            if not b.matches(val, self.gpu_id):
                continue
            if match is not None:
                self.error(f"bitset conflict: {match.name} vs {b.name}")
                return None
            match = b
        if match is not None and match.dontcare & val:
            self.error(f"dontcare bits in {match.name}: {_bits(match.dontcare & val)}")
        return match

    def find_display(self, scope: _Scope) -> str | None:
        for b in scope.bitset.chain():
            for c in b.cases:
                if c.expr is not None and not self.evaluate(scope, c.expr):
                    continue
                for f in c.fields.values():
                    if f.assert_val is not None:
                        got = (scope.val >> f.low) & ((1 << f.width) - 1)
                        if got != f.assert_val:
                            self.error(f"WARNING: unexpected bits[{f.low}:{f.high}] in {b.name}: "
                                       f"{_bits(got)} vs {_bits(f.assert_val)}")
                if c.display is None:
                    continue
                return c.display
        return None

    def display(self, scope: _Scope) -> None:
        template = self.find_display(scope)
        if template is None:
            self.error(f"{scope.bitset.name}: no display template")
            return
        i = 0
        while i < len(template):
            if template[i] == "{":
                j = template.index("}", i)
                self.display_field(scope, template[i + 1:j])
                i = j + 1
            else:
                self.out.append(template[i])
                i += 1

    def column(self) -> int:
        text = "".join(self.out)
        return len(text) - (text.rfind("\n") + 1)

    def display_field(self, scope: _Scope, spec: str) -> None:
        name, _, align = spec.partition(":align=")
        pad = int(align) if align else 0
        if name == "":
            self.out.append(" " * max(0, pad - self.column()))
            return
        if name == "NAME":
            self.out.append(" " * max(0, pad - self.column()) + scope.bitset.name)
            return
        f, val = self.resolve(scope, name)
        if f is None:
            self.error(f"no field '{name}'")
            return
        self.out.append(" " * max(0, pad - self.column()))
        self.out.append(self.format(scope, f, val))

    def format(self, scope: _Scope, f: T.Field, val: int) -> str:
        t, width = f.type, f.width
        if t in ("branch", "absbranch", "int"):
            return str(T.sign_extend(val, width))
        if t == "uint":
            return str(val)
        if t == "hex":
            return f"{val:x}"
        if t == "offset":
            return f"{T.sign_extend(val, width):+d}" if val else ""
        if t == "uoffset":
            return f"+{val}" if val else ""
        if t == "float":
            x = struct.unpack("<e", struct.pack("<H", val))[0] if width == 16 else \
                struct.unpack("<f", struct.pack("<I", val))[0]
            return _fmt_float(x)
        if t in ("bool", "bool_inv"):
            on = bool(val) if t == "bool" else not val
            if f.display is not None:
                return f.display if on else ""
            return str(int(on))
        if t == "custom":   # ir3 defines none; Mesa prints nothing without a field_print_cb
            return ""
        if f.is_enum:
            return T.enum(t).get(val, str(val))
        if f.is_bitset:
            b = self.find_bitset(T.leaves(t), val)
            if b is None:
                self.error(f"no match: FIELD: '{scope.bitset.name}.{f.name}': {_bits(val)}")
                return ""
            saved = self.out
            self.out = []
            nested = _Scope(self, b, val, f.params)
            self.scope = nested
            self.display(nested)
            self.scope = nested.parent
            text, self.out = "".join(self.out), saved
            return text
        self.error(f"Bad field type: {t} ({f.name})")
        return ""


def decode_one(word: int, gpu_id: int = DEFAULT_GPU_ID) -> tuple[str, list[str]]:
    """Decode one 64-bit instruction: (text, decode errors). The text is "raw 0x..." when no
    instruction matches (as Mesa's ``print_raw`` writes it)."""
    st = _State(gpu_id)
    b = st.find_bitset(T.leaves("#instruction"), word)
    if b is None:
        return f"raw 0x{word & 0xFFFFFFFF:X}{word >> 32:X}", st.errors
    scope = _Scope(st, b, word)
    st.scope = scope
    st.display(scope)
    return "".join(st.out), st.errors


def disassemble(data: bytes, gpu_id: int = DEFAULT_GPU_ID, show_errors: bool = True) -> list[str]:
    """Disassemble ir3 machine code (8 little-endian bytes per instruction) into one line each, in
    Mesa's syntax. With ``show_errors`` a line that decoded with complaints (dontcare bits set,
    asserted bits wrong) ends in "\\t; " and the complaints, as Mesa's disassembler prints them."""
    from ...errors import ProgramError
    if len(data) % 8:
        raise ProgramError(f"ir3 code is {len(data)} bytes, not a multiple of 8 (one instruction is 8 bytes)")
    lines = []
    for (word,) in struct.iter_unpack("<Q", bytes(data)):
        text, errors = decode_one(word, gpu_id)
        if errors and show_errors:
            text += "\t; " + ", ".join(errors)
        lines.append(text)
    return lines
