"""ir3 assembler: parses Mesa's disassembly syntax by matching each line against the display
templates of the generated isaspec tables, and encodes the fields it finds.

An instruction line is matched against every instruction bitset's display templates (overrides
included); a template's ``{FIELD}`` consumes text according to the field's type (enum and bool
displays, integers, floats, nested operand bitsets, labels for branch targets). Fields that no
template shows but that decide what is shown (derived fields such as the ``h`` of half registers,
``(nopN)``, offsets split over two bit ranges) are solved for by evaluating the XML's own
expressions. Every candidate encoding is then decoded again and kept only if it prints back as the
input (modulo whitespace and number spelling), so the assembler can never emit bits that mean
something other than what was written.
"""
from __future__ import annotations

import itertools
import math
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

from ...errors import ProgramError
from . import tables as T
from .disasm import DEFAULT_GPU_ID, decode_one

_INT = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|\d+)")
_UINT = re.compile(r"(?:0[xX][0-9a-fA-F]+|\d+)")
_HEX = re.compile(r"[0-9a-fA-F]+")
_FLOAT = re.compile(r"-?(?:nan|inf|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_LABEL = re.compile(r"[A-Za-z_.$][\w.$]*")
_SOLVE_LIMIT = 1 << 16   # most value combinations tried for the hidden fields behind the derived ones
_MAX_CANDIDATES = 64     # encodings of one line compared before picking one


@dataclass(frozen=True)
class _Frame:
    """One bitset scope of the instruction being built (the instruction itself or a nested operand)."""
    path: str                 # "" for the instruction, ".SRC1", ".SRC1.SRC", ...
    bitset: T.Bitset
    case: T.Case
    params: tuple[tuple[str, str], ...]
    parent: "_Frame | None"


@dataclass(frozen=True)
class _Target:
    """An expression that must come out as ``want``: a derived field the text showed, or the
    condition of an <override> (true for the case whose template or field definition was used,
    false for the templated or field-defining cases the decoder would try before it)."""
    frame: _Frame
    expr: T.Expr
    want: int
    truthy: bool              # only the truth value matters
    width: int = 64           # bits of the value that are shown
    asserts: tuple[T.Field, ...] = ()   # an override without a template: if it holds, these bits must match
    name: str | None = None   # a derived field: evaluated through the definition the decoder picks


class _Ctx:
    """What a line is assembled for: the generation, the program's labels, the line's index."""

    def __init__(self, gpu_id: int, labels: dict[str, int], index: int):
        self.gpu_id, self.labels, self.index = gpu_id, labels, index


def _templates(bitset: T.Bitset) -> Iterator[T.Case]:
    """The cases of a bitset's chain that carry a display template, in decoder priority order."""
    for b in bitset.chain():
        for c in b.cases:
            if c.display is not None:
                yield c


@lru_cache(maxsize=None)
def _split(template: str) -> tuple[tuple[str, str], ...]:
    """Template -> [("lit", text) | ("field", name)], whitespace removed from literals."""
    out = []
    for i, part in enumerate(re.split(r"\{([^}]*)\}", template)):
        if i % 2:
            out.append(("field", part.partition(":align=")[0]))
        else:
            lit = "".join(part.split())
            if lit:
                out.append(("lit", lit))
    return tuple(out)


def _find_all(frame: _Frame, name: str) -> Iterator[tuple[_Frame, T.Field, T.Case]]:
    """Every definition of field ``name`` visible from ``frame``'s scope (with the case holding it),
    the decoder's likeliest first (which one it uses depends on which <override> conditions hold)."""
    chain = frame.bitset.chain()
    seen = set()
    for b in chain:     # the decoder's order: a bitset's cases, then its parent's
        for c in ((frame.case, b.cases[-1]) if frame.case in b.cases else (b.cases[-1],)):
            if name in c.fields:
                seen.add(id(c.fields[name]))
                yield frame, c.fields[name], c
    for b in chain:
        for c in b.cases:
            if name in c.fields and id(c.fields[name]) not in seen:
                seen.add(id(c.fields[name]))
                yield frame, c.fields[name], c
    if not seen:
        for pname, as_ in frame.params:
            if as_ == name and frame.parent is not None:
                yield from _find_all(frame.parent, pname)
                return


def _find(frame: _Frame, name: str) -> tuple[_Frame, T.Field] | None:
    """The likeliest definition of field ``name`` from ``frame``'s scope."""
    found = next(_find_all(frame, name), None)
    return found[:2] if found else None


def _fmt_number(f: T.Field, raw: int) -> str:
    """How the decoder prints raw value ``raw`` of a numeric field."""
    if f.type in ("int", "branch", "absbranch"):
        return str(T.sign_extend(raw, _shown_width(f)))
    if f.type == "uint":
        return str(raw)
    if f.type == "hex":
        return f"{raw:x}"
    if f.type == "offset":
        return f"{T.sign_extend(raw, _shown_width(f)):+d}" if raw else ""
    if f.type == "uoffset":
        return f"+{raw}" if raw else ""
    raise AssertionError(f.type)


def _int(text: str) -> int:
    """A decimal or 0x-prefixed integer (leading zeros are decimal, not C octal)."""
    neg = text.startswith("-")
    body = text.lstrip("+-")
    v = int(body, 16) if body[:2].lower() == "0x" else int(body, 10)
    return -v if neg else v


def _shown_width(f: T.Field) -> int:
    """Bits of a field the decoder shows: a derived field's width only matters where it sign-extends."""
    if f.expr is not None and f.type not in ("int", "offset", "branch", "absbranch"):
        return 32
    return f.width


def _float_bits(text: str, width: int) -> int | None:
    x = float(text)
    try:
        if width == 16:
            return struct.unpack("<H", struct.pack("<e", x))[0]
        return struct.unpack("<I", struct.pack("<f", x))[0]
    except (OverflowError, struct.error):
        return None


class _Matcher:
    """Backtracking match of display templates against one instruction's text (no whitespace)."""

    def __init__(self, text: str, ctx: _Ctx):
        self.text, self.ctx = text, ctx

    # A state is (store, targets, canon): store maps (frame path, field name) -> raw value,
    # targets lists derived fields to solve, canon is the canonical spelling of what was consumed.

    def bitset(self, frame: _Frame, pos: int, state) -> Iterator[tuple[int, tuple]]:
        yield from self._tokens(frame, _split(frame.case.display), 0, pos, state)

    def _tokens(self, frame: _Frame, toks, i: int, pos: int, state) -> Iterator[tuple[int, tuple]]:
        if i == len(toks):
            yield pos, state
            return
        kind, val = toks[i]
        if kind == "lit":
            if self.text.startswith(val, pos):
                store, targets, canon = state
                yield from self._tokens(frame, toks, i + 1, pos + len(val), (store, targets, canon + val))
            return
        for pos2, st2 in self._field(frame, val, pos, state):
            yield from self._tokens(frame, toks, i + 1, pos2, st2)

    def _field(self, frame: _Frame, name: str, pos: int, state) -> Iterator[tuple[int, tuple]]:
        store, targets, canon = state
        text = self.text
        if name == "NAME":
            n = frame.bitset.name
            if text.startswith(n, pos):
                yield pos + len(n), (store, targets, canon + n)
            return
        # Alternatives only where they read different bits or print differently; a derived field
        # is taken from its likeliest definition (the override conditions are checked later).
        seen = set()
        for fr, f, case in _find_all(frame, name):
            sig = (fr.path, f.low, f.high, f.type, f.display) if f.expr is None else (fr.path, "derived")
            if sig in seen:
                continue
            seen.add(sig)
            # the decoder takes the first definition whose case holds: that case must hold (if an
            # override) and every earlier override defining the field must not
            # (derived fields are only checked by the final decode: which of their definitions
            # applies follows from the real fields)
            extra: tuple[_Target, ...] = ()
            if f.expr is None:
                order = [c for b in fr.bitset.chain() for c in b.cases]
                extra = tuple(_Target(fr, c.expr, 0, True) for c in order[:order.index(case)]
                              if c.expr is not None and name in c.fields and c is not fr.case)
                if case.expr is not None and case is not fr.case:
                    extra += (_Target(fr, case.expr, 1, True),)
            store, targets, canon = state
            yield from self._field_def(fr, f, pos, (store, targets + extra, canon), frame)

    def _field_def(self, fr: _Frame, f: T.Field, pos: int, state, frame: _Frame) -> Iterator[tuple[int, tuple]]:
        store, targets, canon = state
        text = self.text
        key = (fr.path, f.name)

        def put(raw: int, shown: str, end: int):
            if f.expr is not None:
                target = _Target(fr, f.expr, raw, f.type in ("bool", "bool_inv"), _shown_width(f), name=f.name)
                return end, (store, targets + (target,), canon + shown)
            if key in store and store[key] != raw:
                return None
            return end, ({**store, key: raw}, targets, canon + shown)

        t = f.type
        if t in ("bool", "bool_inv"):
            shown_on = "".join(f.display.split()) if f.display is not None else "1"
            shown_off = "" if f.display is not None else "0"
            on, off = (1, 0) if t == "bool" else (0, 1)
            if shown_on and text.startswith(shown_on, pos):
                r = put(on, shown_on, pos + len(shown_on))
                if r:
                    yield r
            if text.startswith(shown_off, pos):
                r = put(off, shown_off, pos + len(shown_off))
                if r:
                    yield r
            return
        if f.is_enum:
            values = T.enum(t)
            for v, disp in sorted(values.items(), key=lambda kv: -len(kv[1])):
                d = "".join(disp.split())
                if text.startswith(d, pos):
                    r = put(v, d, pos + len(d))
                    if r:
                        yield r
            m = _UINT.match(text, pos)   # a value the enum does not name prints as a number
            if m:
                v = _int(m.group())
                if v not in values and v < (1 << _shown_width(f)):
                    r = put(v, str(v), m.end())
                    if r:
                        yield r
            return
        if f.is_bitset:
            yield from self._nested(frame, fr, f, pos, state)
            return
        if t == "float":
            m = _FLOAT.match(text, pos)
            if m:
                raw = _float_bits(m.group(), f.width)
                if raw is not None:
                    x = struct.unpack("<e" if f.width == 16 else "<f",
                                      struct.pack("<H" if f.width == 16 else "<I", raw))[0]
                    shown = ("-nan" if math.copysign(1, x) < 0 else "nan") if math.isnan(x) else "%f" % x
                    r = put(raw, shown, m.end())
                    if r:
                        yield r
            return
        if t in ("branch", "absbranch"):
            m = _LABEL.match(text, pos)
            if m and m.group() in self.ctx.labels:
                target = self.ctx.labels[m.group()]
                value = target - self.ctx.index if t == "branch" else target
                raw = value & ((1 << f.width) - 1)
                r = put(raw, _fmt_number(f, raw), m.end())
                if r:
                    yield r
                return
        if t in ("int", "branch", "absbranch", "uint", "hex", "offset", "uoffset"):
            yield from self._number(f, put, pos)
            return
        # "custom" fields print nothing without a callback; ir3 has none

    def _number(self, f: T.Field, put, pos: int):
        text, t, w = self.text, f.type, _shown_width(f)
        if t in ("offset", "uoffset"):
            r = put(0, "", pos)          # a zero offset is not shown
            if r:
                yield r
            m = re.compile(r"[-+](?:0[xX][0-9a-fA-F]+|\d+)").match(text, pos)
            if not m or (t == "uoffset" and m.group()[0] == "-"):
                return
            v = _int(m.group())
            if v == 0:              # an explicit "+0" is the offset that is not shown
                r = put(0, "", m.end())
                if r:
                    yield r
                return
            lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if t == "offset" else (0, (1 << w) - 1)
        elif t == "hex":
            m = _HEX.match(text, pos)
            if not m:
                return
            v, lo, hi = int(m.group(), 16), 0, (1 << w) - 1
        else:
            m = (_UINT if t == "uint" else _INT).match(text, pos)
            if not m:
                return
            v = _int(m.group())
            if t == "uint":
                lo, hi = 0, (1 << w) - 1
            else:   # int-like fields print sign-extended; accept the unsigned spelling of the bits too
                lo, hi = -(1 << (w - 1)), (1 << w) - 1
        if not lo <= v <= hi:
            return
        raw = v & ((1 << w) - 1)
        r = put(raw, _fmt_number(f, raw), m.end())
        if r:
            yield r

    def _nested(self, frame: _Frame, fr: _Frame, f: T.Field, pos: int, state):
        if fr is not frame:     # a bitset-typed field reached through params: not in ir3
            return
        path = f"{frame.path}.{f.name}"
        for leaf in T.leaves(f.type):
            if not (leaf.gen[0] <= self.ctx.gpu_id <= leaf.gen[1]):
                continue
            for k, case in enumerate(_templates(leaf)):
                child = _Frame(path, leaf, case, f.params, frame)
                store, targets, canon = state
                st = ({**store, (path, "#leaf"): leaf.id, (path, "#case"): k}, targets, canon)
                yield from self.bitset(child, pos, st)


class _Encoder:
    """Builds the instruction word from a finished match; solves the derived fields."""

    def __init__(self, frames: dict[str, _Frame], store: dict, ctx: _Ctx):
        self.frames, self.store, self.ctx = frames, dict(store), ctx
        self.covered: dict[str, int] = {}
        self._cache: dict[tuple[str, str], int] = {}
        self._picking: set[tuple[str, str]] = set()
        self._found: dict[tuple[str, str], tuple[_Frame, T.Field] | None] = {}
        self._values: dict[str, int] = {}
        for path, fr in frames.items():     # values Mesa's encoder always writes for hidden fields
            for b in fr.bitset.chain():
                for name, val in b.force.items():
                    self.store.setdefault((path, name), val)

    def value(self, path: str, trial: dict | None = None) -> int:
        """The frame's encoded value (and, in ``self.covered[path]``, the bits the text decided)."""
        if not trial and path in self._values:
            return self._values[path]
        fr = self.frames[path]
        v, covered = fr.bitset.match, fr.bitset.mask & ~fr.bitset.dontcare
        chain = fr.bitset.chain()
        # the default cases' fields, then the chosen case's (an override wins), then any other case's
        # field the text or the solver set, where its bits are still free
        order = [b.cases[-1] for b in reversed(chain)] + [fr.case] + \
            [c for b in chain for c in b.cases[:-1] if c is not fr.case]
        for c in order:
            late = c is not fr.case and c.expr is not None
            for f in c.fields.values():
                if f.expr is not None:
                    continue
                m = ((1 << f.width) - 1) << f.low
                if f.assert_val is not None:
                    if c is fr.case:
                        v, covered = (v & ~m) | (f.assert_val << f.low), covered | m
                    continue
                key = (path, f.name)
                if trial and key in trial:
                    raw = trial[key]
                elif key in self.store:
                    raw = self.store[key]
                elif f.is_bitset and f"{path}.{f.name}" in self.frames:
                    raw = self.value(f"{path}.{f.name}", trial)
                else:
                    continue
                if late and covered & m:
                    continue
                v, covered = (v & ~m) | ((raw << f.low) & m), covered | m
        self.covered[path] = covered
        if not trial:
            self._values[path] = v
        return v

    def _nested_bits(self, path: str) -> int:
        """Bits of frame ``path`` that hold nested operands."""
        m = 0
        for b in self.frames[path].bitset.chain():
            for c in b.cases:
                for f in c.fields.values():
                    if f.is_bitset and f.expr is None and f"{path}.{f.name}" in self.frames:
                        m |= ((1 << f.width) - 1) << f.low
        return m

    def _find(self, fr: _Frame, name: str) -> tuple[_Frame, T.Field] | None:
        key = (fr.path, name)
        if key not in self._found:
            self._found[key] = _find(fr, name)
        return self._found[key]

    def lookup(self, fr: _Frame, name: str, trial: dict) -> int:
        """A field's value as the decoder would read it from the bits built so far (+ ``trial``)."""
        found = self._find(fr, name)
        if found is None:
            return 0
        fr2, f = found
        if f.expr is not None:
            f = self._decoder_def(fr2, name, trial) or f
        if f.expr is not None:
            return f.expr({n: self.lookup(fr2, n, trial) for n in f.expr.fields}, self.ctx.gpu_id)
        key = (fr2.path, f.name)
        if key in trial:
            return trial[key]
        if key not in self._cache:
            self._cache[key] = (self.value(fr2.path) >> f.low) & ((1 << f.width) - 1)
        return self._cache[key]

    def _changed(self) -> None:
        self._cache.clear()
        self._values.clear()

    def _decoder_def(self, fr: _Frame, name: str, trial: dict) -> T.Field | None:
        """The definition of ``name`` the decoder's find_field picks: the first case in chain order
        whose condition holds (conditions evaluated on the bits built so far)."""
        if (fr.path, name) in self._picking:      # a condition that reads the field it selects
            return None
        self._picking.add((fr.path, name))
        try:
            for b in fr.bitset.chain():
                for c in b.cases:
                    if name not in c.fields:
                        continue
                    if c.expr is None or c.expr({n: self.lookup(fr, n, trial) for n in c.expr.fields},
                                                self.ctx.gpu_id):
                        return c.fields[name]
            return None
        finally:
            self._picking.discard((fr.path, name))

    def free_fields(self, fr: _Frame, e: T.Expr, seen: set) -> list[tuple[str, T.Field]]:
        """Real fields behind expression ``e`` whose bits nothing has decided yet."""
        out = []
        for n in e.fields:
            found = _find(fr, n)
            if found is None:
                continue
            fr2, f = found
            key = (fr2.path, f.name)
            if key in seen:
                continue
            seen.add(key)
            if f.expr is not None:
                out += self.free_fields(fr2, f.expr, seen)
                continue
            self.value(fr2.path)
            m = ((1 << f.width) - 1) << f.low
            if f.assert_val is not None or key in self.store:
                continue
            if f.is_bitset:
                # an operand whose own template decided no bits (e.g. an empty display) is free too
                sub = f"{fr2.path}.{f.name}"
                if sub in self.frames:
                    self.value(sub)
                    nb = self.frames[sub].bitset
                    if self.covered[sub] & ~(nb.mask & ~nb.dontcare):
                        continue
                m_parent = self.covered[fr2.path] & ~self._nested_bits(fr2.path)
                if m_parent & m:
                    continue
                out.append((fr2.path, f))
            elif not self.covered[fr2.path] & m:
                out.append((fr2.path, f))
        return out

    def _ok(self, t: _Target, trial: dict) -> bool:
        if t.name is not None:
            got = self.lookup(t.frame, t.name, trial)
        else:
            got = t.expr({n: self.lookup(t.frame, n, trial) for n in t.expr.fields}, self.ctx.gpu_id)
        if t.asserts:
            if not got:
                return True
            v = self.value(t.frame.path, trial)
            return all((v >> f.low) & ((1 << f.width) - 1) == f.assert_val for f in t.asserts)
        if t.truthy:
            return bool(got) == bool(t.want)
        mask = (1 << t.width) - 1
        return (got & mask) == (t.want & mask)

    def _free(self, t: _Target) -> list[tuple[str, T.Field]]:
        if t.name is None:
            return self.free_fields(t.frame, t.expr, set())
        seen: set = set()
        out = []
        for fr, f, case in _find_all(t.frame, t.name):   # every definition and what selects it
            if f.expr is not None:
                out += self.free_fields(fr, f.expr, seen)
            if case.expr is not None:
                out += self.free_fields(fr, case.expr, seen)
        return out

    def solve(self, targets: tuple[_Target, ...]) -> bool:
        """Give the hidden fields behind the derived fields values that make each show as written:
        the most constrained first; all together if that greedy order fails."""
        saved = dict(self.store)
        size = {id(t): math.prod(1 << f.width for _, f in self._free(t)) for t in targets}
        todo, done = sorted(targets, key=lambda t: size[id(t)]), []
        while todo:
            t = todo.pop(0)
            done.append(t)
            if not self._search(done, self._free(t)):
                break
        else:
            return True
        self.store = saved
        self._changed()
        free: dict[tuple[str, str], tuple[str, T.Field]] = {}
        for t in targets:
            for p, f in self._free(t):
                free[(p, f.name)] = (p, f)
        return self._search(list(targets), list(free.values()))

    def _search(self, targets: list[_Target], free: list[tuple[str, T.Field]]) -> bool:
        keys = {(p, f.name) for p, f in free}
        # targets none of whose hidden fields are being tried are decided already
        moving = [t for t in targets if t.asserts or {(p, f.name) for p, f in self._free(t)} & keys]
        if not all(self._ok(t, {}) for t in targets if t not in moving):
            return False
        ranges = [range(1 << f.width) for _, f in free]
        if math.prod(len(r) for r in ranges) > _SOLVE_LIMIT:
            return False
        for combo in itertools.product(*ranges):
            trial = {(p, f.name): v for (p, f), v in zip(free, combo)}
            if all(self._ok(t, trial) for t in moving):
                self.store.update(trial)
                self._changed()
                return True
        return False


@lru_cache(maxsize=None)
def _needed_literals(name: str, display: str) -> tuple[str, ...]:
    """Text a line must contain for a template to match (a cheap filter before backtracking)."""
    return tuple(name if (k == "field" and v == "NAME") else v
                 for k, v in _split(display) if k == "lit" or v == "NAME")


def _candidates(compact: str, ctx: _Ctx) -> Iterator[int]:
    """Every encoding whose decoding prints as ``compact`` (whitespace-free, canonical numbers)."""
    for leaf in T.leaves("#instruction"):
        if not (leaf.gen[0] <= ctx.gpu_id <= leaf.gen[1]):
            continue
        for case in _templates(leaf):
            if not all(lit in compact for lit in _needed_literals(leaf.name, case.display)):
                continue
            root = _Frame("", leaf, case, (), None)
            for end, (store, targets, canon) in _Matcher(compact, ctx).bitset(root, 0, ({}, (), "")):
                if end != len(compact):
                    continue
                frames = {"": root}
                _collect_frames(root, store, frames)
                enc = _Encoder(frames, store, ctx)
                if not enc.solve(targets + _case_targets(frames)):
                    continue
                word = enc.value("")
                got, errors = decode_one(word, ctx.gpu_id)
                if not errors and "".join(got.split()) == canon:
                    yield word


@lru_cache(maxsize=4096)
def _assemble_plain(text: str, gpu_id: int) -> int:
    return _assemble_line(text, _Ctx(gpu_id, {}, 0))


_FLAG = re.compile(r"\((sy|ss|eq|jp|sat|rpt\d|nop\d|ul)\)")
_FLAG_ORDER = ["sy", "ss", "eq", "jp", "sat", "rpt", "nop", "ul"]   # the order Mesa prints them in
_RAW = re.compile(r"raw\s+(0[xX][0-9a-fA-F]{1,16})")


def _canonical_flags(text: str) -> str | None:
    """Mesa's parser takes the (sy)/(ss)/(jp)/... flags in any order and also right after the
    mnemonic ("nop(sy)"); move them to the front in the order the disassembler prints them."""
    head, sep, rest = text.strip().partition(" ")
    flags = _FLAG.findall(head)
    if not flags:
        return None
    flags.sort(key=lambda f: _FLAG_ORDER.index(f.rstrip("0123456789")))
    out = "".join(f"({f})" for f in flags) + _FLAG.sub("", head) + sep + rest
    return out if out != text.strip() else None


def _assemble_line(text: str, ctx: _Ctx) -> int:
    """The encoding of one instruction: of all that print back as ``text``, the one with the fewest
    bits set (hidden options off), as Mesa's encoder leaves them. ``raw 0x<64-bit hex>`` is taken as
    the instruction word itself (Mesa's assembler has the same escape)."""
    m = _RAW.fullmatch(text.strip())
    if m:
        return int(m.group(1), 16)
    for variant in (text, _canonical_flags(text)):
        if variant is None:
            continue
        words = set(itertools.islice(_candidates("".join(variant.split()), ctx), _MAX_CANDIDATES))
        if words:
            return min(words, key=lambda w: (bin(w).count("1"), w))
    raise _NoMatch()


def _case_targets(frames: dict[str, _Frame]) -> tuple[_Target, ...]:
    """The decoder picks the first case (in chain order) whose condition holds and that has a
    template: the matched case's condition must hold and no earlier templated case's may."""
    out = []
    for fr in frames.values():
        for c in (c for b in fr.bitset.chain() for c in b.cases):
            if c is fr.case:
                if c.expr is not None:
                    out.append(_Target(fr, c.expr, 1, True))
                break
            if c.expr is None:
                continue
            if c.display is not None:
                out.append(_Target(fr, c.expr, 0, True))
            else:
                asserts = tuple(f for f in c.fields.values() if f.assert_val is not None)
                if asserts:
                    out.append(_Target(fr, c.expr, 0, True, asserts=asserts))
    return tuple(out)


def _collect_frames(root: _Frame, store: dict, frames: dict) -> None:
    """Rebuild the nested frames a match used from the (path, "#leaf"/"#case") entries in store."""
    by_id = T.bitsets()
    pending = sorted((p for (p, k) in store if k == "#leaf"), key=len)
    for path in pending:
        parent_path, _, fname = path.rpartition(".")
        parent = frames[parent_path]
        leaf = by_id[store[(path, "#leaf")]]
        case = list(_templates(leaf))[store[(path, "#case")]]
        f = _find(parent, fname)[1]
        frames[path] = _Frame(path, leaf, case, f.params, parent)


class _NoMatch(Exception):
    """No encoding prints back as the line (turned into a ProgramError with a diagnosis)."""


_LABEL_DEF = re.compile(r"^\s*([A-Za-z_.$][\w.$]*)\s*:\s*$")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(text.splitlines(), 1):
        code = re.split(r";|//", line, maxsplit=1)[0]
        if code.strip():
            yield n, code


def assemble(text: str, gpu_id: int = DEFAULT_GPU_ID) -> bytes:
    """Assemble ir3 source in Mesa's disassembly syntax into machine code (8 little-endian bytes per
    instruction).

    One instruction per line; ``;`` or ``//`` start a comment; ``name:`` on its own line defines a
    label that branch targets (``br p0.x, #name``) may use instead of a relative offset. ``gpu_id`` is
    Mesa's generation number (600 for a6xx, 700 for a7xx). Raises :class:`~hwdrv.errors.ProgramError`
    naming the line and column where the text stops matching any instruction.
    """
    labels: dict[str, int] = {}
    instrs: list[tuple[int, str]] = []
    for n, code in _lines(text):
        m = _LABEL_DEF.match(code)
        if m:
            if m.group(1) in labels:
                raise ProgramError(f"line {n}: label {m.group(1)!r} defined twice")
            labels[m.group(1)] = len(instrs)
        elif code.lstrip().startswith("@"):
            raise ProgramError(f"line {n}: {code.strip()!r} is a computerator header directive, not an "
                               "instruction; take the directives off before assembling")
        else:
            instrs.append((n, code))
    out = bytearray()
    for index, (n, code) in enumerate(instrs):
        ctx = _Ctx(gpu_id, labels, index)
        try:
            if any(name in code for name in labels):
                word = _assemble_line(code, ctx)
            else:   # no label in the line: its encoding depends on the text alone
                word = _assemble_plain(" ".join(code.split()), gpu_id)
        except _NoMatch:
            raise ProgramError(_diagnose(n, code, ctx)) from None
        out += struct.pack("<Q", word)
    return bytes(out)


def _diagnose(n: int, code: str, ctx: _Ctx) -> str:
    """Say where the line stopped matching: the longest prefix any template accepted, and what
    those templates expected next."""
    compact = "".join(code.split())
    best, expected, complete = 0, set(), False
    for leaf in T.leaves("#instruction"):
        if not (leaf.gen[0] <= ctx.gpu_id <= leaf.gen[1]):
            continue
        for case in _templates(leaf):
            pos, exp, whole = _furthest(compact, leaf, case, ctx)
            complete |= whole
            if pos > best:
                best, expected = pos, set(exp)
            elif pos == best:
                expected |= set(exp)
    # map the position in the whitespace-free text back to a column of the line
    col, seen = 0, 0
    for col, ch in enumerate(code):
        if seen == best:
            break
        if not ch.isspace():
            seen += 1
    else:
        col = len(code)
    while col < len(code) and code[col].isspace():
        col += 1
    what = ", ".join(sorted(expected)[:8]) or "the end of the instruction"
    if best == 0:
        mnemonic = re.sub(r"^(\([a-z0-9]+\))*", "", code.strip()).split(" ")[0].split(".")[0]
        gens = sorted({b.gen for b in T.leaves("#instruction") if b.name.split(".")[0] == mnemonic})
        if gens:
            return (f"line {n}, column {col + 1}: {mnemonic!r} is not an instruction of gpu_id {ctx.gpu_id}; "
                    f"it exists for gpu_id {', '.join(f'{lo}..{hi}' for lo, hi in gens)}")
        what = "an instruction name (" + what + ", ...)"
    if complete:
        return (f"line {n}, column 1: {code.strip()!r} has the syntax of an instruction, but no encoding of "
                f"gpu_id {ctx.gpu_id} prints back as written (a combination of operands or modifiers the "
                "instruction cannot encode)")
    return f"line {n}, column {col + 1}: cannot assemble {code.strip()!r}: expected {what} at {code[col:].strip()[:20]!r}"


def _furthest(text: str, leaf: T.Bitset, case: T.Case, ctx: _Ctx) -> tuple[int, list[str], bool]:
    """Longest prefix of ``text`` one template's leading tokens accept, the token wanted there, and
    whether the whole template matched the whole text."""
    root = _Frame("", leaf, case, (), None)
    m = _Matcher(text, ctx)
    frontier = [(0, ({}, (), ""))]
    for kind, val in _split(case.display):
        nxt = []
        for pos, st in frontier:
            if kind == "lit":
                if text.startswith(val, pos):
                    nxt.append((pos + len(val), st))
            else:
                nxt.extend(itertools.islice(m._field(root, val, pos, st), 64))
        if not nxt:
            return max(p for p, _ in frontier), [repr(val) if kind == "lit" else _describe(root, val)], False
        frontier = nxt[:64]
    end = max(p for p, _ in frontier)
    return end, ["the end of the instruction"], end == len(text)


def _describe(frame: _Frame, name: str) -> str:
    if name == "NAME":
        return repr(frame.bitset.name)
    found = _find(frame, name)
    if found is None:
        return name
    f = found[1]
    if f.type in ("branch", "absbranch"):
        return "a branch target (an instruction offset or a label defined in this program)"
    if f.is_bitset:
        return f"an operand ({f.type.lstrip('#')})"
    if f.is_enum:
        return f"one of {sorted(set(T.enum(f.type).values()))}"
    return f"{f.name} ({f.type})"
