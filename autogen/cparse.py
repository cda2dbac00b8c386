"""C declarations -> cffi cdef text.

The preprocessed translation unit is parsed with pycparser. Kept types (plus everything they
contain by value) are re-emitted as cdef text with every array length, bit-field width and enum
size replaced by a number that gcc computed (placeholders ``@@n@@`` resolved by the probe), so
cffi sees no expressions and no attributes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pycparser import c_ast, c_generator, c_parser

# Typedef names cffi already knows; never re-declared in a cdef.
CFFI_BUILTINS = {
    "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t",
    "intptr_t", "uintptr_t", "size_t", "ssize_t", "ptrdiff_t", "wchar_t", "intmax_t", "uintmax_t",
    "int_least8_t", "uint_least8_t", "int_least16_t", "uint_least16_t", "int_least32_t",
    "uint_least32_t", "int_least64_t", "uint_least64_t", "int_fast8_t", "uint_fast8_t",
    "int_fast16_t", "uint_fast16_t", "int_fast32_t", "uint_fast32_t", "int_fast64_t", "uint_fast64_t",
    "bool", "char16_t", "char32_t",
}
_C_WORDS = {"unsigned", "signed", "int", "long", "short", "char", "void", "float", "double", "_Bool"}


@dataclass
class Item:
    """One top-level cdef declaration."""
    key: str                  # typedef name or "struct tag" / "union tag"
    text: str = ""
    deps: set[str] = field(default_factory=set)
    file: str = ""


@dataclass
class Aggregate:
    key: str                  # name used in LAYOUT and ffi.sizeof
    node: c_ast.Node          # Struct / Union with decls


class TypeDB:
    """Typedefs, struct/union/enum definitions of one translation unit."""

    def __init__(self, text: str):
        ast = c_parser.CParser().parse(text)
        self.typedefs: dict[str, c_ast.Typedef] = {}
        self.tags: dict[str, c_ast.Node] = {}          # "struct x" -> Struct with decls
        self.tag_owner: dict[str, str] = {}            # "struct x" -> typedef that defines it inline
        self.enumerators: dict[str, str] = {}          # enumerator name -> file
        self.enum_types: set[str] = set()              # typedef names / "enum tag" of enums
        for ext in ast.ext:
            if isinstance(ext, c_ast.Typedef):
                self.typedefs.setdefault(ext.name, ext)
                if ext.name not in self.typedefs or self.typedefs[ext.name] is ext:
                    self._scan(ext.type, ext.coord.file if ext.coord else "", owner=ext.name)
            elif isinstance(ext, c_ast.Decl):
                self._scan(ext.type, ext.coord.file if ext.coord else "", owner=None)

    def _scan(self, node: c_ast.Node, file: str, owner: str | None) -> None:
        """Register every struct/union/enum definition found under ``node``."""
        if isinstance(node, (c_ast.Struct, c_ast.Union)):
            if node.decls is not None and node.name:
                key = f"{'struct' if isinstance(node, c_ast.Struct) else 'union'} {node.name}"
                if key not in self.tags:
                    self.tags[key] = node
                    if owner:
                        self.tag_owner[key] = owner
            for d in node.decls or ():
                self._scan(d.type, file, owner=None)
        elif isinstance(node, c_ast.Enum):
            if node.values is not None:
                for e in node.values.enumerators:
                    self.enumerators.setdefault(e.name, file)
        elif isinstance(node, (c_ast.TypeDecl, c_ast.PtrDecl, c_ast.ArrayDecl)):
            self._scan(node.type, file, owner if isinstance(node, c_ast.TypeDecl) else None)

    def file_of(self, key: str) -> str:
        node = self.typedefs.get(key) or self.tags.get(key)
        return node.coord.file if node is not None and node.coord else ""

    def resolve(self, name: str) -> c_ast.Node:
        """The innermost type node a typedef name stands for."""
        t = self.typedefs[name].type
        while isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.IdentifierType) \
                and len(t.type.names) == 1 and t.type.names[0] in self.typedefs:
            t = self.typedefs[t.type.names[0]].type
        return t

    def is_aggregate_name(self, name: str) -> bool:
        t = self.resolve(name) if name in self.typedefs else None
        return isinstance(t, c_ast.TypeDecl) and isinstance(t.type, (c_ast.Struct, c_ast.Union))


class Emitter:
    """Builds cdef items; numbers that need gcc are recorded in ``questions`` as C expressions and
    appear in the text as ``@@n@@`` until :func:`resolve` substitutes the answers."""

    def __init__(self, db: TypeDB, roots: set[str]):
        self.db, self.roots = db, roots
        self.gen = c_generator.CGenerator()
        self.questions: list[str] = []
        self.items: dict[str, Item] = {}
        self.aggregates: dict[str, Aggregate] = {}

    def ask(self, c_expr: str) -> str:
        self.questions.append(c_expr)
        return f"@@{len(self.questions) - 1}@@"

    def ask_int_type(self, c_type: str) -> str:
        """Placeholder for an integer type of the same size and signedness as ``c_type`` (enums)."""
        return "@@T" + self.ask(f"sizeof({c_type})")[2:-2] + ":" + self.ask(f"(({c_type})-1) < 0")[2:-2] + "@@"

    # ---- closure -----------------------------------------------------------------------------
    def add(self, key: str) -> None:
        """Emit ``key`` and, transitively, everything it needs."""
        todo = [key]
        while todo:
            k = todo.pop()
            if k in self.items or k in CFFI_BUILTINS:
                continue
            if k.startswith(("struct ", "union ")) and k in self.db.tag_owner:
                todo.append(self.db.tag_owner[k])
                self.items[k] = Item(k)   # provided by its owning typedef
                self.items[k].deps.add(self.db.tag_owner[k])
                continue
            item = self._emit(k)
            self.items[k] = item
            todo.extend(sorted(item.deps))

    def _emit(self, key: str) -> Item:
        item = Item(key, file=self.db.file_of(key))
        if key.startswith(("struct ", "union ")):
            node = self.db.tags.get(key)
            if node is None:
                raise KeyError(f"no definition of {key}")
            item.text = self._aggregate(node, item, 0) + ";"
            self.aggregates[key] = Aggregate(key, node)
            return item
        if key.startswith("enum "):
            raise KeyError(f"{key} is replaced by an integer type and is not emitted")
        td = self.db.typedefs.get(key)
        if td is None:
            raise KeyError(f"no typedef named {key}")
        t = td.type
        if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Enum):
            item.text = f"typedef {self.ask_int_type(key)} {key};"
            return item
        item.text = "typedef " + self._decl(t, key, item, 0, ptr=False) + ";"
        r = self.db.resolve(key)
        if isinstance(r, c_ast.TypeDecl) and isinstance(r.type, (c_ast.Struct, c_ast.Union)):
            s = r.type
            tag = f"{'struct' if isinstance(s, c_ast.Struct) else 'union'} {s.name}" if s.name else None
            node = s if s.decls is not None else self.db.tags.get(tag)
            if node is not None:
                self.aggregates[key] = Aggregate(key, node)
        return item

    # ---- declarations --------------------------------------------------------------------------
    def _base(self, node: c_ast.Node, item: Item, indent: int, ptr: bool) -> str:
        if isinstance(node, c_ast.IdentifierType):
            names = [n for n in node.names]
            if len(names) == 1 and names[0] not in _C_WORDS:
                n = names[0]
                if ptr and n not in self.roots and n in self.db.typedefs and self.db.is_aggregate_name(n):
                    return "void"  # pointer to an aggregate we do not keep: only its address matters
                if n in self.db.typedefs and isinstance(self.db.typedefs[n].type, c_ast.TypeDecl) \
                        and isinstance(self.db.typedefs[n].type.type, c_ast.Enum) and ptr:
                    return self.ask_int_type(n)
                item.deps.add(n)
            return " ".join(names)
        if isinstance(node, (c_ast.Struct, c_ast.Union)):
            kw = "struct" if isinstance(node, c_ast.Struct) else "union"
            key = f"{kw} {node.name}" if node.name else None
            if node.decls is not None and node.name is None:
                return self._aggregate(node, item, indent)
            if ptr and key not in self.roots and item.key != key:
                return "void"
            if node.decls is not None and item.key != key and self.db.tag_owner.get(key) != item.key:
                item.deps.add(key)
                return key
            if node.decls is not None:
                return self._aggregate(node, item, indent)
            if item.key != key:
                item.deps.add(key)
            return key
        if isinstance(node, c_ast.Enum):
            return self.ask_int_type(f"enum {node.name}") if node.name else "int"
        raise TypeError(f"unsupported type node {type(node).__name__}")

    def _aggregate(self, node: c_ast.Node, item: Item, indent: int) -> str:
        kw = "struct" if isinstance(node, c_ast.Struct) else "union"
        head = f"{kw} {node.name} " if node.name else f"{kw} "
        pad = "    " * (indent + 1)
        lines = []
        for d in node.decls:
            if d.name is None:          # anonymous struct/union member
                lines.append(pad + self._base(d.type, item, indent + 1, ptr=False) + ";")
                continue
            text = self._decl(d.type, d.name, item, indent + 1, ptr=False)
            if d.bitsize is not None:
                text += " : " + self.ask(self.gen.visit(d.bitsize))
            lines.append(pad + text + ";")
        return head + "{\n" + "\n".join(lines) + "\n" + "    " * indent + "}"

    def _decl(self, t: c_ast.Node, inner: str, item: Item, indent: int, ptr: bool) -> str:
        if isinstance(t, c_ast.TypeDecl):
            return f"{self._base(t.type, item, indent, ptr)} {inner}".rstrip()
        if isinstance(t, c_ast.PtrDecl):
            if isinstance(t.type, c_ast.FuncDecl):
                return f"void *{inner}"   # function pointers: only the slot matters
            sub = f"(*{inner})" if isinstance(t.type, c_ast.ArrayDecl) else f"*{inner}"
            return self._decl(t.type, sub, item, indent, ptr=True)
        if isinstance(t, c_ast.ArrayDecl):
            dim = "" if t.dim is None else self.ask(self.gen.visit(t.dim))
            return self._decl(t.type, f"{inner}[{dim}]", item, indent, ptr)
        raise TypeError(f"unsupported declarator {type(t).__name__} for {inner}")

    # ---- layout ------------------------------------------------------------------------------
    def fields(self, agg: Aggregate) -> tuple[list[str], list[str]]:
        """(plain field paths, bit-field paths) of an aggregate, members of anonymous members
        flattened, members of anonymous-typed named fields as ``outer.inner``."""
        plain, bits = [], []

        def walk(node: c_ast.Node, prefix: str) -> None:
            for d in node.decls:
                if d.name is None:
                    t = d.type
                    if isinstance(t, (c_ast.Struct, c_ast.Union)):
                        walk(t if t.decls is not None else self.db.tags[self._tagkey(t)], prefix)
                    continue
                path = prefix + d.name
                if d.bitsize is not None:
                    bits.append(path)
                    continue
                plain.append(path)
                t = d.type
                if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, (c_ast.Struct, c_ast.Union)) \
                        and t.type.name is None and t.type.decls is not None:
                    walk(t.type, path + ".")

        walk(agg.node, "")
        return plain, bits

    @staticmethod
    def _tagkey(node: c_ast.Node) -> str:
        return f"{'struct' if isinstance(node, c_ast.Struct) else 'union'} {node.name}"


_PLACE = re.compile(r"@@(T?)(\d+)(?::(\d+))?@@")


def resolve(text: str, answers: list[int]) -> str:
    """Substitute probe answers into placeholder text."""
    def sub(m: re.Match) -> str:
        if m.group(1):
            size, signed = answers[int(m.group(2))], answers[int(m.group(3))]
            return f"{'' if signed else 'u'}int{size * 8}_t"
        return str(answers[int(m.group(2))])
    return _PLACE.sub(sub, text)


def order(items: dict[str, Item]) -> list[Item]:
    """Items with text, dependencies first, otherwise sorted by name."""
    done: set[str] = set()
    out: list[Item] = []

    def visit(k: str, stack: tuple[str, ...]) -> None:
        if k in done or k not in items:
            return
        if k in stack:
            return  # a cycle can only go through pointers; cffi accepts the forward reference
        for d in sorted(items[k].deps):
            visit(d, stack + (k,))
        done.add(k)
        if items[k].text:
            out.append(items[k])

    for k in sorted(items):
        visit(k, ())
    return out
