"""Parser: tokens -> functions, variables and instructions (no semantics beyond declarations).

Registers are resolved here (with ``{ }`` block scoping, as inline asm relies on), labels are
mapped to instruction indices, parameters are laid out. What an instruction *means* is the
decoder's job."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ast import Addr, Function, Group, Imm, Instr, Not, Pair, Param, Reg, Sink, Special, Sym, Variable, Vec
from .errors import PTXError
from .lexer import Token, tokenize
from .types import PType, ptype

SPACES = ("global", "const", "shared", "local", "param")
_VISIBILITY = (".visible", ".extern", ".weak", ".common")
_PERF_DIRECTIVES = {".maxntid", ".reqntid", ".minnctapersm", ".maxnctapersm", ".maxnreg", ".noreturn",
                    ".explicitcluster", ".reqnctapercluster", ".maxclusterrank", ".pragma",
                    ".blocksareclusters", ".abi_preserve", ".abi_preserve_control"}
# Special registers (without a .x/.y/.z suffix where they have one).
SPECIAL_VECTOR = {"%tid", "%ntid", "%ctaid", "%nctaid", "%clusterid", "%nclusterid",
                  "%cluster_ctaid", "%cluster_nctaid"}
SPECIAL_SCALAR = {"%laneid", "%warpid", "%nwarpid", "%smid", "%nsmid", "%gridid", "%clock", "%clock64",
                  "%clock_hi", "%globaltimer", "%globaltimer_lo", "%globaltimer_hi", "%lanemask_eq",
                  "%lanemask_le", "%lanemask_lt", "%lanemask_ge", "%lanemask_gt",
                  "%dynamic_smem_size", "%total_smem_size", "%aggr_smem_size", "%cluster_ctarank",
                  "%cluster_nctarank", "%is_explicit_cluster"}


# Special registers the interpreter does not model (a launch of a kernel reading one is refused).
SPECIAL_NUMBERED = (("%envreg", 32), ("%pm", 8))
SPECIAL_OTHER = {"%reserved_smem_offset_begin", "%reserved_smem_offset_end", "%reserved_smem_offset_cap",
                 "%reserved_smem_offset_0", "%reserved_smem_offset_1", "%current_graph_exec",
                 "%pm0_64", "%pm1_64", "%pm2_64", "%pm3_64", "%pm4_64", "%pm5_64", "%pm6_64", "%pm7_64"}


def is_special(name: str) -> bool:
    if name in SPECIAL_SCALAR or name in SPECIAL_OTHER:
        return True
    for prefix, n in SPECIAL_NUMBERED:
        if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) < n:
            return True
    base, _, comp = name.rpartition(".")
    return base in SPECIAL_VECTOR and comp in ("x", "y", "z")


@dataclass
class ParsedModule:
    version: str = ""
    target: str = ""
    address_size: int = 64
    variables: dict[str, Variable] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str):
        self.text_lines = text.splitlines()
        self.toks = tokenize(text)
        self.i = 0
        self.mod = ParsedModule()

    # ---- token helpers ----------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def error(self, msg: str, tok: Token | None = None) -> PTXError:
        return PTXError((tok or self.tok).line, msg)

    def accept(self, text: str) -> bool:
        if self.tok.text == text and self.tok.kind in ("op", "id"):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind not in ("op", "id"):
            raise self.error(f"expected {text!r}, found {self.tok.text or 'end of input'!r}")
        return self.next()

    def expect_id(self, what: str = "identifier") -> Token:
        if self.tok.kind != "id":
            raise self.error(f"expected {what}, found {self.tok.text or 'end of input'!r}")
        return self.next()

    def expect_int(self) -> int:
        v = self.const_expr()
        if not isinstance(v, int):
            raise self.error("expected an integer")
        return v

    # ---- constant expressions (array sizes, offsets, immediates) ---------------------------
    def const_expr(self) -> int:
        return self._binary(0)

    _PREC = [("|",), ("^",), ("&",), ("<<", ">>"), ("+", "-"), ("*", "/", "%")]

    def _binary(self, level: int) -> int:
        if level == len(self._PREC):
            return self._unary()
        v = self._binary(level + 1)
        while self.tok.kind == "op" and self.tok.text in self._PREC[level]:
            op = self.next().text
            w = self._binary(level + 1)
            if op in ("/", "%") and w == 0:
                raise self.error("division by zero in constant expression")
            v = {"|": lambda: v | w, "^": lambda: v ^ w, "&": lambda: v & w, "<<": lambda: v << min(w, 128),
                 ">>": lambda: v >> min(w, 128), "+": lambda: v + w, "-": lambda: v - w, "*": lambda: v * w,
                 "/": lambda: int(v / w) if abs(v) < 2**52 else v // w,
                 "%": lambda: v - w * int(v / w)}[op]()
            if abs(v) > 2**128:
                raise self.error("constant expression out of range")
        return v

    def _unary(self) -> int:
        t = self.tok
        if t.kind == "op" and t.text in ("-", "+", "~", "!"):
            self.next()
            v = self._unary()
            return {"-": -v, "+": v, "~": ~v, "!": int(not v)}[t.text]
        if t.kind == "op" and t.text == "(":
            self.next()
            v = self.const_expr()
            self.expect(")")
            return v
        if t.kind == "int":
            self.next()
            return t.value
        raise self.error(f"expected a constant, found {t.text or 'end of input'!r}")

    # ---- module level -------------------------------------------------------------------------
    def parse(self) -> ParsedModule:
        while self.tok.kind != "eof":
            t = self.tok
            if t.text == ".version":
                self.next()
                self.mod.version = self.next().text
            elif t.text == ".target":
                self.next()
                self.mod.target = self.expect_id("target").text
                while self.accept(","):
                    self.expect_id("target option")
            elif t.text == ".address_size":
                self.next()
                self.mod.address_size = self.expect_int()
                if self.mod.address_size != 64:
                    raise self.error(".address_size 32 is not supported (sm_90 is 64-bit)", t)
            elif t.text == ".file":
                self.next()
                self.expect_int()
                if self.tok.kind != "str":
                    raise self.error(".file needs a file name string")
                self.next()
                while self.accept(","):
                    self.expect_int()
            elif t.text == ".section":
                self._skip_section()
            elif t.text in (".entry", ".func") or t.text in _VISIBILITY or t.text in (".global", ".const", ".shared", ".local"):
                self._top_decl()
            elif t.text == ".alias":
                raise self.error(".alias is not supported")
            else:
                raise self.error(f"unexpected {t.text or t.kind!r} at module level")
        return self.mod

    def _skip_section(self) -> None:
        self.next()
        self.expect_id("section name")
        self.expect("{")
        depth = 1
        while depth:
            t = self.next()
            if t.kind == "eof":
                raise self.error("unterminated .section")
            if t.text == "{":
                depth += 1
            elif t.text == "}":
                depth -= 1

    def _top_decl(self) -> None:
        vis = ""
        while self.tok.text in _VISIBILITY:
            vis = self.next().text
        t = self.tok
        if t.text in (".entry", ".func"):
            self._function(vis)
        elif t.text in (".global", ".const", ".shared", ".local"):
            var = self._variable(self.next().text[1:], vis)
            self.expect(";")
            if var.name in self.mod.variables:
                raise self.error(f"variable {var.name} declared twice", t)
            self.mod.variables[var.name] = var
        else:
            raise self.error(f"unexpected {t.text!r} after {vis}")

    # ---- variables ------------------------------------------------------------------------
    def _variable(self, space: str, vis: str = "") -> Variable:
        line = self.tok.line
        align, vec, typ, ptr, managed = 0, 1, None, False, False
        while self.tok.kind == "id" and self.tok.text.startswith("."):
            d = self.next().text
            if d == ".align":
                a = self.expect_int()
                if a <= 0 or a & (a - 1):
                    raise self.error(f".align {a} is not a power of two")
                if not ptr:                 # after .ptr, .align describes the pointee
                    align = a
            elif d in (".v2", ".v4", ".v8"):
                vec = int(d[2:])
            elif d == ".ptr" and space == "param":
                ptr = True
            elif ptr and d in (".global", ".const", ".shared", ".local"):
                pass
            elif d == ".attribute":
                self.expect("(")
                attrs = [self.expect_id("attribute").text]
                while self.accept(","):
                    attrs.append(self.expect_id("attribute").text)
                self.expect(")")
                bad = [a for a in attrs if a not in (".managed", ".unified")]
                if bad:
                    raise self.error(f"unknown variable attribute {bad[0]}")
                managed = ".managed" in attrs
            elif ptype(d[1:]) is not None:
                typ = ptype(d[1:])
            else:
                raise self.error(f"unsupported variable qualifier {d}")
        if typ is None:
            raise self.error("variable needs a type")
        name = self.expect_id("variable name").text
        count, unsized = 1, False
        while self.accept("["):
            if self.accept("]"):
                unsized = True
                continue
            dim = self.expect_int()
            if dim < 0 or dim > 1 << 32:
                raise self.error(f"array size {dim} out of range")
            count *= dim
            self.expect("]")
        elem = typ.size * vec
        var = Variable(name, space, typ, 0 if unsized else elem * count, align or elem, line,
                       extern=(vis == ".extern"), visibility=vis, managed=managed)
        if self.accept("="):
            values = self._initializer()
            if unsized:
                var.size = elem * len(values)
            for k, v in enumerate(values):
                if isinstance(v, _AddressInit):
                    if typ.size not in (4, 8) or typ.kind == "f":
                        raise PTXError(line, f"address initializer {v.symbol} in a .{typ.name} variable")
                    var.address_inits.append((k * typ.size, v.symbol, v.addend, v.generic))
                    values[k] = 0
            var.init = self._init_bytes(values, typ, var.size, line)
        return var

    def _initializer(self) -> list:
        out: list = []
        if self.accept("{"):
            if not self.accept("}"):
                while True:
                    out.extend(self._initializer())
                    if self.accept("}"):
                        break
                    self.expect(",")
            return out
        t = self.tok
        if t.kind == "float":
            self.next()
            return [t.value]
        if t.kind == "op" and t.text == "-" and self.peek().kind == "float":
            self.next()
            v = self.next().value
            return [("dec", -v[1], None)]
        if t.kind == "id":
            # `f`, `var`, `var+8`, `generic(var)`, `generic(var)+8`: an address (a relocation)
            self.next()
            generic = t.text == "generic" and self.accept("(")
            name = self.expect_id("symbol").text if generic else t.text
            if generic:
                self.expect(")")
            addend = self.const_expr() if self.tok.text in ("+", "-") and self.tok.kind == "op" else 0
            return [_AddressInit(name, addend, bool(generic))]
        return [self.const_expr()]

    def _init_bytes(self, values: list, typ: PType, size: int, line: int) -> bytes:
        out = bytearray()
        for v in values:
            if isinstance(v, tuple):
                if typ.kind != "f":
                    raise PTXError(line, "float initializer for an integer variable")
                out += _float_bytes(typ, v[1], v[2] if v[0] == typ.name else None)
            elif typ.kind == "f":
                out += _float_bytes(typ, float(v), None)
            else:
                out += (v & ((1 << (8 * typ.size)) - 1)).to_bytes(typ.size, "little")
        if len(out) > size:
            raise PTXError(line, f"initializer has {len(out)} bytes for a {size}-byte variable")
        return bytes(out) + bytes(size - len(out))

    # ---- functions ------------------------------------------------------------------------
    def _function(self, vis: str) -> None:
        kw = self.next()
        is_entry = kw.text == ".entry"
        returns = Function("", False, kw.line)
        if not is_entry and self.tok.text == "(":
            self._param_list(returns)          # return parameters of a .func
        name_tok = self.expect_id("function name")
        fn = Function(name_tok.text, is_entry, kw.line)
        fn.returns = returns.params
        if self.tok.text == "(":
            self._param_list(fn)
        while self.tok.kind == "id" and self.tok.text in _PERF_DIRECTIVES:
            d = self.next().text
            vals = []
            if d == ".pragma":
                while self.tok.kind == "str":
                    vals.append(self.next().text)
                    if not self.accept(","):
                        break
                self.accept(";")
            else:
                while self.tok.kind == "int":
                    vals.append(self.next().value)
                    if not self.accept(","):
                        break
            fn.directives[d] = tuple(vals)
        if self.accept(";"):
            pass                      # a prototype
        else:
            self.expect("{")
            fn.has_body = True
            self._body(fn)
        old = self.mod.functions.get(fn.name)
        if old is not None and old.has_body and fn.has_body:
            raise PTXError(kw.line, f"function {fn.name} defined twice")
        if old is None or fn.has_body:
            self.mod.functions[fn.name] = fn

    def _param_list(self, fn: Function) -> None:
        self.expect("(")
        offset = 0
        if self.accept(")"):
            return
        while True:
            line = self.tok.line
            if not (self.accept(".param") or (not fn.is_entry and self.accept(".reg"))):
                raise self.error("expected .param")
            var = self._variable("param")
            if var.size == 0:
                raise PTXError(line, f"parameter {var.name} has no size")
            align = max(var.align, 1)
            offset = (offset + align - 1) // align * align
            fn.params.append(Param(var.name, var.type.name, var.size, align, offset))
            offset += var.size
            if self.accept(")"):
                return
            self.expect(",")

    def _body(self, fn: Function) -> None:
        scopes: list[dict[str, Reg]] = [{}]
        last_label = None
        while True:
            t = self.tok
            if t.kind == "eof":
                raise self.error(f"unterminated body of {fn.name}")
            if t.text == "}" and t.kind == "op":
                self.next()
                scopes.pop()
                if not scopes:
                    break
                continue
            if t.text == "{" and t.kind == "op":
                self.next()
                scopes.append({})
                continue
            if t.kind == "id" and self.peek().text == ":" and self.peek().kind == "op" and not t.text.startswith("."):
                self.next()
                self.next()
                if t.text in fn.labels:
                    raise self.error(f"label {t.text} defined twice", t)
                fn.labels[t.text] = len(fn.instrs)
                last_label = t.text
                continue
            if t.text == ".reg":
                self.next()
                self._reg_decl(fn, scopes[-1])
                continue
            if t.text in (".local", ".shared", ".global", ".const"):
                self.next()
                var = self._variable(t.text[1:])
                self.expect(";")
                if var.name in fn.variables:
                    raise self.error(f"variable {var.name} declared twice", t)
                fn.variables[var.name] = var
                continue
            if t.text == ".param":
                # the argument/return slots of a call sequence; each `{ // callseq }` block
                # declares its own, so a name may recur: keep one slot big enough for all
                self.next()
                var = self._variable("param")
                self.expect(";")
                old = fn.variables.get(var.name)
                if old is not None and old.space != "param":
                    raise self.error(f"variable {var.name} declared twice", t)
                if old is None or var.size > old.size or var.align > old.align:
                    if old is not None:
                        var.size, var.align = max(var.size, old.size), max(var.align, old.align)
                    fn.variables[var.name] = var
                continue
            if t.text == ".callprototype":
                # `label: .callprototype (...) _ (...);` types an indirect call; the label was
                # recorded as a code label just above
                self.next()
                if last_label is None or fn.labels.get(last_label) != len(fn.instrs):
                    raise self.error(".callprototype needs a label", t)
                fn.prototypes.add(last_label)
                del fn.labels[last_label]
                while not self.accept(";"):
                    if self.next().kind == "eof":
                        raise self.error("unterminated .callprototype")
                continue
            if t.text == ".pragma":
                self.next()
                while self.tok.kind == "str":
                    self.next()
                    if not self.accept(","):
                        break
                self.expect(";")
                continue
            if t.text == ".loc":
                self.next()
                while self.tok.kind in ("int", "id") or self.tok.text == ",":
                    self.next()
                continue
            if t.kind == "id" and t.text.startswith("."):
                raise self.error(f"unsupported directive {t.text} in a function body")
            fn.instrs.append(self._instruction(scopes))

    def _reg_decl(self, fn: Function, scope: dict[str, Reg]) -> None:
        typ = None
        while self.tok.kind == "id" and self.tok.text.startswith("."):
            d = self.next().text
            if d in (".v2", ".v4"):
                raise self.error("vector registers are not supported")
            typ = ptype(d[1:])
            if typ is None:
                raise self.error(f"unsupported register type {d}")
        if typ is None:
            raise self.error(".reg needs a type")
        while True:
            name = self.expect_id("register name").text
            if self.accept("<"):
                n = self.expect_int()
                self.expect(">")
                if not 0 <= n <= 1 << 20:
                    raise self.error(f"register range %{name}<{n}> out of range")
                names = [f"{name}{k}" for k in range(n)]
            else:
                names = [name]
            for nm in names:
                reg = Reg(nm, len(fn.registers), typ)
                fn.registers.append(reg)
                scope[nm] = reg
            if self.accept(";"):
                return
            self.expect(",")

    # ---- instructions -----------------------------------------------------------------------
    def _instruction(self, scopes: list[dict[str, Reg]]) -> Instr:
        first = self.tok
        start = self.i
        guard = None
        if self.accept("@"):
            neg = self.accept("!")
            g = self._resolve(self.expect_id("guard predicate"), scopes)
            if not isinstance(g, Reg) or g.type.kind != "p":
                raise self.error("guard must be a predicate register", first)
            guard = (g, neg)
        self._op_index = self.i
        op = self.expect_id("instruction")
        parts = op.text.split(".")
        if not parts[0] or not parts[0][0].isalpha():
            raise self.error(f"unexpected {op.text!r}", op)
        operands: list = []
        try:
            if parts[0] == "call":
                operands = self._call_operands(scopes)
            elif not self.accept(";"):
                while True:
                    operands.append(self._operand(scopes))
                    if self.accept(";"):
                        break
                    self.expect(",")
        except PTXError as exc:
            # name the instruction: its operand syntax is what we could not read
            raise PTXError(exc.line, f"{op.text}: {exc.message}") from None
        return Instr(parts[0], tuple(parts[1:]), operands, guard, op.line, self._text(start, self.i))

    def _call_operands(self, scopes: list[dict[str, Reg]]) -> list:
        """``call (ret), f, (args);``, ``call f, (args);``, ``call f;``, ``call (ret), %r, (args), proto;``
        -> [Group(rets), target, Group(args), prototype?]: both lists always present."""
        ops: list = []
        if self.tok.text == "(":
            ops.append(self._group(scopes))
            self.expect(",")
        else:
            ops.append(Group(()))
        ops.append(self._operand(scopes))
        ops.append(Group(()))
        if self.accept(","):
            ops[2] = self._group(scopes)
            if self.accept(","):
                ops.append(self._operand(scopes))
        self.expect(";")
        return ops

    def _group(self, scopes: list[dict[str, Reg]]) -> Group:
        self.expect("(")
        items = []
        if not self.accept(")"):
            while True:
                items.append(self._operand(scopes))
                if self.accept(")"):
                    break
                self.expect(",")
        return Group(tuple(items))

    def _text(self, a: int, b: int) -> str:
        """Canonical text of the instruction in tokens [a, b): '@%p bra L;', 'add.s32 %r1, %r2, 4;'."""
        out = []
        for k in range(a, b):
            t = self.toks[k].text
            prev = self.toks[k - 1] if k > a else None
            if prev is not None and t != ";" and (prev.text == "," or k == self._op_index or
                                     (prev.kind == "id" and k - 1 == self._op_index)):
                out.append(" ")
            out.append(t)
        return "".join(out)

    def _resolve(self, tok: Token, scopes: list[dict[str, Reg]]):
        name = tok.text
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        if name.startswith("%"):
            if is_special(name):
                return Special(name)
            raise PTXError(tok.line, f"undeclared register {name}")
        if name == "_":
            return Sink()
        return Sym(name)

    def _operand(self, scopes: list[dict[str, Reg]]):
        t = self.tok
        if t.kind == "op" and t.text == "[":
            self.next()
            return self._address(scopes)
        if t.kind == "op" and t.text == "{":
            self.next()
            items = []
            while True:
                items.append(self._operand(scopes))
                if self.accept("}"):
                    break
                self.expect(",")
            return Vec(tuple(items))
        if t.kind == "op" and t.text == "!":
            self.next()
            return Not(self._operand(scopes))
        if t.kind == "float":
            self.next()
            kind, val, bits = t.value
            return Imm(val, kind, bits)
        if t.kind == "op" and t.text == "-" and self.peek().kind == "float":
            self.next()
            kind, val, bits = self.next().value
            if kind != "dec":
                raise self.error("negated hex float literal")
            return Imm(-val, "dec")
        if t.kind == "id":
            self.next()
            r = self._resolve(t, scopes)
            if self.tok.text == "|" and self.tok.kind == "op":
                self.next()
                return Pair(r, self._resolve(self.expect_id("second destination"), scopes))
            if isinstance(r, Sym) and self.tok.text in ("+", "-") and self.tok.kind == "op":
                return Sym(r.name, self.const_expr())
            return r
        return Imm(self.const_expr())

    def _address(self, scopes: list[dict[str, Reg]]) -> Addr | Group:
        base = None
        off = 0
        if self.tok.kind == "id":
            base = self._resolve(self.next(), scopes)
            if isinstance(base, (Special, Sink)):
                raise self.error("special register as an address base")
            if self.tok.text in ("+", "-"):
                off = self.const_expr()       # "[%r1+-4]", "[%r1+4+8]": a signed sum after the base
            if self.accept(","):
                # texture/surface operand: [tex, {coords}] or [tex, sampler, {coords}]
                items = [base]
                while True:
                    items.append(self._operand(scopes))
                    if not self.accept(","):
                        break
                self.expect("]")
                return Group(tuple(items))
        else:
            off = self.const_expr()
        self.expect("]")
        return Addr(base, off)


@dataclass(frozen=True)
class _AddressInit:
    symbol: str
    addend: int
    generic: bool


def _float_bytes(typ: PType, value: float, bits: int | None) -> bytes:
    if bits is not None:                       # a hex literal of this very type: keep its bits
        return bits.to_bytes(typ.size, "little")
    if typ.name == "bf16":
        from .fpround import f32_to_bf16_bits
        return int(f32_to_bf16_bits(np.array([value], np.float32))[0]).to_bytes(2, "little")
    return np.array([value], np.float64).astype(typ.dtype).tobytes()


def parse_text(text: str) -> ParsedModule:
    """Parse PTX ``text`` into declarations and instruction lists; PTXError if malformed."""
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise PTXError(0, "expression nesting too deep") from None
