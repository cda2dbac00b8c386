"""rules-ng-ng register databases (Mesa freedreno ``registers/adreno/*.xml``) -> small Python modules.

The XML describes register *domains* (``<domain>``): the A6XX MMIO register file, and one domain per
PM4 packet whose ``reg32`` offsets are payload dword indices. Registers hold ``<bitfield>`` ranges
(``low``/``high`` or ``pos``, optional ``shr``) either inline or through a named ``<bitset>`` type;
``<enum>`` lists name values. Chip-specific definitions carry ``variants="A6XX"``, ``"A7XX-"``,
``"A2XX-A6XX"`` (on the element or on an enclosing ``<stripe>``/``<domain>``).

A :class:`RnnTarget` names the files, the domains (with the prefix their names get), the first chip
variant (its values become plain names) and further variants (a value that differs there, or exists
only there, gets a ``A7XX_`` style prefix), and regular expressions selecting the registers and enums
kept. Output names: ``REG = offset``, ``REG_FIELD = Field(hi, lo, "REG_FIELD")``, ``REG_FIELD_SHR = n``
where the XML stores a value shifted, arrays as ``NAME = base``, ``NAME_STRIDE``, ``NAME_LENGTH`` and
``def NAME_REG(i) -> offset``; enum values as ``VALUE = n`` plus ``ENUMS[enum] = {n: name}``.
``REGISTERS = {offset: name}`` lists every kept register (64-bit ones also in ``REG64``).

Packet header layouts are C code in ``common/freedreno_pm4.h`` (not XML); ``header_macros`` reads the
``#define name(pkt) (((pkt) >> S) & M)`` accessors and the parity-bit positions of ``pkt_is_typeN``
from it, so even those come from Mesa's text rather than being typed here.
"""
from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

CHIPS = ["A2XX", "A3XX", "A4XX", "A5XX", "A6XX", "A7XX", "A8XX"]
NS = "{http://nouveau.freedesktop.org/}"


class RnnError(RuntimeError):
    """The XML lacks something the target asks for, or two kept names collide."""


@dataclass
class RnnTarget:
    name: str
    group: str
    output: str
    doc: str
    repo: str                          # key into manifest.REPOS
    files: list[str]                   # paths under the repo; imports are resolved from registers/
    domains: dict[str, str]            # domain name -> prefix for its register names ("" = none)
    variant: str = "A6XX"
    extra_variants: list[str] = field(default_factory=list)
    regs: list[str] = field(default_factory=list)      # regexes over (prefixed) register / array names
    enums: list[str] = field(default_factory=list)     # regexes over enum names
    header_file: str | None = None     # freedreno_pm4.h: packet header accessors

    # What autogen.generate looks at on any target: the files (for sources_present) and the builder.
    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(self.repo, p) for p in self.files + ([self.header_file] if self.header_file else [])]

    @property
    def builder(self):
        return generate


def _variants_match(spec: str | None, chip: str) -> bool:
    if not spec:
        return True
    if not re.search(r"A\dXX", spec):  # a non-chip varset (e.g. set_marker_mode): names differ, keep all
        return True
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, _, hi = part.partition("-")
            i = CHIPS.index(chip)
            if CHIPS.index(lo) <= i and (not hi or i <= CHIPS.index(hi)):
                return True
        elif part == chip:
            return True
    return False


def _int(s: str) -> int:
    return int(s, 0)


@dataclass
class _Bitfield:
    name: str
    hi: int
    lo: int
    shr: int
    variants: str | None


@dataclass
class _Reg:
    name: str
    offset: int
    width: int              # 32 or 64
    fields: list[_Bitfield]
    variants: list[str | None]
    array: tuple[str, int, int, int] | None = None   # (array name, base, stride, length)


class _Db:
    """Everything parsed from the files (imports followed), before selection."""

    def __init__(self, root: str, files: list[str]) -> None:
        self.enums: dict[str, list[tuple[str, int, list[str | None]]]] = {}
        self.bitsets: dict[str, list[_Bitfield]] = {}
        self.domains: dict[str, list[ET.Element]] = {}
        self.read: list[str] = []
        self._regroot = None
        for f in files:
            self._load(root, f)

    def _load(self, root: str, rel: str) -> None:
        if rel in self.read:
            return
        self.read.append(rel)
        path = os.path.join(root, rel)
        if self._regroot is None:
            self._regroot = os.path.dirname(os.path.dirname(rel))  # .../registers
        tree = ET.parse(path).getroot()
        for imp in tree.iter(NS + "import"):
            name = imp.get("file")
            if name.endswith("copyright.xml"):
                continue
            self._load(root, os.path.join(self._regroot, name))
        self._collect(tree, [])

    def _collect(self, el: ET.Element, variants: list[str | None]) -> None:
        for ch in el:
            tag = ch.tag.replace(NS, "")
            v = variants + [ch.get("variants")]
            if tag == "enum":
                vals = self.enums.setdefault(ch.get("name"), [])
                for val in ch.iter(NS + "value"):
                    if val.get("value") is not None:
                        vals.append((val.get("name"), _int(val.get("value")), v + [val.get("variants")]))
            elif tag == "bitset":
                self.bitsets[ch.get("name")] = [b for b in (self._bitfield(x) for x in ch) if b]
            elif tag == "domain":
                self.domains.setdefault(ch.get("name"), []).append(ch)
                self._collect(ch, v)
            elif tag in ("stripe", "array"):
                self._collect(ch, v)

    @staticmethod
    def _bitfield(x: ET.Element) -> _Bitfield | None:
        if x.tag != NS + "bitfield":
            return None
        if x.get("pos") is not None:
            hi = lo = _int(x.get("pos"))
        else:
            lo, hi = _int(x.get("low")), _int(x.get("high"))
        return _Bitfield(x.get("name"), hi, lo, _int(x.get("shr") or "0"), x.get("variants"))

    def regs(self, domain: str) -> list[_Reg]:
        out: list[_Reg] = []
        for d in self.domains.get(domain, []):
            self._walk(d, 0, [d.get("variants")], None, out)
        return out

    def _walk(self, el, base, variants, array, out) -> None:
        for ch in el:
            tag = ch.tag.replace(NS, "")
            v = variants + [ch.get("variants")]
            if tag in ("reg32", "reg64"):
                fields = []
                if ch.get("type") in self.bitsets:
                    fields += self.bitsets[ch.get("type")]
                fields += [b for b in (self._bitfield(x) for x in ch) if b]
                if ch.get("low") is not None or ch.get("pos") is not None:
                    f = self._bitfield(ET.Element(NS + "bitfield", {**ch.attrib, "name": "VALUE"}))
                    fields.append(f)
                out.append(_Reg(ch.get("name"), base + _int(ch.get("offset")), 64 if tag == "reg64" else 32,
                                fields, v, array))
            elif tag == "stripe":
                self._walk(ch, base + _int(ch.get("offset") or "0"), v, array, out)
            elif tag == "array":
                a = (ch.get("name"), base + _int(ch.get("offset")), _int(ch.get("stride")), _int(ch.get("length")))
                before = len(out)
                self._walk(ch, 0, v, a, out)
                if len(out) == before:  # an array of plain dwords: one register per element
                    out.append(_Reg("", 0, 32, [], v, a))


def _ok(variants: list[str | None], chip: str) -> bool:
    return all(_variants_match(s, chip) for s in variants)


def header_macros(path: str) -> dict[str, tuple[int, int]]:
    """``{macro: (hi, lo)}`` for freedreno_pm4.h's ``name(pkt) (((pkt) >> S) & M)`` / ``((pkt)&M)``
    accessors, plus ``{name}_PARITY`` bit positions read from ``pkt_is_typeN``."""
    text = open(path).read().replace("\\\n", " ")
    out: dict[str, tuple[int, int]] = {}
    for m in re.finditer(r"#define (\w+)\(pkt\)\s+\(+\(pkt\)\s*>>\s*(\d+)\)\s*&\s*(0[xX][0-9a-fA-F]+)\)", text):
        name, shift, mask = m.group(1), int(m.group(2)), int(m.group(3), 16)
        out[name] = (shift + mask.bit_length() - 1, shift)
    for m in re.finditer(r"#define (\w+)\(pkt\)\s+\(\(pkt\)\s*&\s*(0[xX][0-9a-fA-F]+)\)", text):
        out[m.group(1)] = (int(m.group(2), 16).bit_length() - 1, 0)
    for m in re.finditer(r"\(\(pkt\) >> (\d+)\) & 0x1\) ==\s*pm4_calc_odd_parity_bit\((\w+)\(pkt\)\)", text):
        bit = int(m.group(1))
        out[m.group(2) + "_PARITY"] = (bit, bit)
    return out


def _header_consts(path: str) -> dict[str, int]:
    text = open(path).read()
    return {m.group(1): int(m.group(2), 16)
            for m in re.finditer(r"#define (CP_TYPE\d_PKT)\s+(0x[0-9a-fA-F]+)", text)}


def generate(t: RnnTarget, src: str) -> str:
    from .manifest import REPOS
    repo = REPOS[t.repo]
    root = os.path.join(src, repo.dir)
    db = _Db(root, t.files)
    consts: dict[str, str] = {}
    values: dict[str, int] = {}
    registers: dict[int, str] = {}
    reg64: list[str] = []
    defs: list[str] = []
    enum_tables: dict[str, dict[int, str]] = {}
    reg_rx = [re.compile(r) for r in t.regs]
    enum_rx = [re.compile(r) for r in t.enums]
    used_reg = [False] * len(reg_rx)

    def put(name: str, text: str, value) -> None:
        if name in consts and values.get(name) != value:
            raise RnnError(f"{t.name}: {name} defined twice with different values ({values.get(name)} vs {value})")
        consts[name], values[name] = text, value

    def keep(name: str) -> bool:
        hit = False
        for i, r in enumerate(reg_rx):
            if r.fullmatch(name):
                used_reg[i] = hit = True
        return hit

    for chip_i, chip in enumerate([t.variant] + t.extra_variants):
        pre = "" if chip_i == 0 else chip + "_"
        for domain, dpre in t.domains.items():
            if domain not in db.domains:
                raise RnnError(f"{t.name}: domain {domain} not in {db.read}")
            for r in db.regs(domain):
                if not _ok(r.variants, chip):
                    continue
                if r.array:
                    aname, abase, stride, length = r.array
                    full = dpre + aname
                    if not keep(full):
                        continue
                    if chip_i and values.get(full) == abase:
                        continue
                    put(pre + full, f"{pre + full} = 0x{abase:X}", abase)
                    put(pre + full + "_STRIDE", f"{pre + full}_STRIDE = {stride}", stride)
                    put(pre + full + "_LENGTH", f"{pre + full}_LENGTH = {length}", length)
                    fn = pre + full + ("_" + r.name if r.name else "_REG")
                    if fn not in consts:
                        defs.append(f"def {fn}(i: int) -> int:\n"
                                    f"    if not 0 <= i < {length}:\n"
                                    f"        raise IndexError(f\"{full}[{{i}}]: index out of range 0..{length - 1}\")\n"
                                    f"    return 0x{abase:X} + {stride} * i + {r.offset}\n")
                        consts[fn] = ""
                    regname = full + ("_" + r.name if r.name else "")
                else:
                    regname = dpre + r.name if dpre or not r.name.isdigit() else r.name
                    if not keep(regname):
                        continue
                    if chip_i and values.get(regname) == r.offset:
                        continue
                    put(pre + regname, f"{pre + regname} = 0x{r.offset:X}", r.offset)
                    if not dpre:
                        registers.setdefault(r.offset, pre + regname)
                        if r.width == 64:
                            reg64.append(pre + regname)
                            registers.setdefault(r.offset + 1, pre + regname + "_HI")
                for b in r.fields:
                    if not _variants_match(b.variants, chip):
                        continue
                    fname = regname + "_" + b.name
                    if chip_i and fname in values and values[fname] == (b.hi, b.lo):
                        continue
                    put(pre + fname, f'{pre + fname} = Field({b.hi}, {b.lo}, "{pre + fname}")', (b.hi, b.lo))
                    if b.shr:
                        put(pre + fname + "_SHR", f"{pre + fname}_SHR = {b.shr}", b.shr)
        for ename, vals in db.enums.items():
            if not any(r.fullmatch(ename) for r in enum_rx):
                continue
            table = enum_tables.setdefault(pre + ename, {})
            for vname, v, variants in vals:
                if not _ok(variants, chip):
                    continue
                if chip_i and values.get(vname) == v:
                    continue
                put(pre + vname, f"{pre + vname} = {v}" if v < 16 else f"{pre + vname} = 0x{v:X}", v)
                table.setdefault(v, vname)
    missing = [t.regs[i] for i, u in enumerate(used_reg) if not u]
    if missing:
        raise RnnError(f"{t.name}: register patterns matched nothing: {missing}")
    missing = [r.pattern for r in enum_rx if not any(r.fullmatch(e) for e in db.enums)]
    if missing:
        raise RnnError(f"{t.name}: enum patterns matched nothing: {missing}")

    header_lines: list[str] = []
    if t.header_file:
        hp = os.path.join(root, t.header_file)
        for n, v in sorted(_header_consts(hp).items()):
            put(n, f"{n} = 0x{v:08X}", v)
        for n, (hi, lo) in sorted(header_macros(hp).items()):
            header_lines.append(f'PKT_{n.upper()} = Field({hi}, {lo}, "PKT_{n.upper()}")')

    srcs = list(db.read) + ([t.header_file] if t.header_file else [])
    o = [f'"""{t.doc}\n\nGenerated by `python -m autogen generate {t.group}` from the sources in SOURCES;'
         ' do not edit."""',
         "# fmt: off", "# flake8: noqa", "from hwdrv.ioctl.bindings import Field", "",
         f"_MESA = {{'repo': {repo.repo!r}, 'tag': {repo.tag!r}, 'commit': {repo.commit!r}}}",
         "SOURCES = ["]
    for p in srcs:
        digest = hashlib.sha256(open(os.path.join(root, p), "rb").read()).hexdigest()
        o.append(f"    {{**_MESA, 'path': {p!r}, 'sha256': {digest!r}}},")
    o += ["]", f"VARIANT = {t.variant!r}", ""]
    o += [consts[n] for n in sorted(consts) if consts[n]]
    if header_lines:
        o += ["", "# packet header accessors of common/freedreno_pm4.h (Field = the bits the macro extracts)"]
        o += header_lines
    if registers:
        o += ["", "REGISTERS = {"] + [f"    0x{k:X}: {v!r}," for k, v in sorted(registers.items())] + ["}"]
        o += ["REG64 = frozenset({" + ", ".join(repr(n) for n in sorted(reg64)) + "})"]
    o += ["", "ENUMS = {"]
    for en in sorted(enum_tables):
        body = ", ".join(f"{k}: {v!r}" for k, v in sorted(enum_tables[en].items()))
        o.append(f"    {en!r}: {{{body}}},")
    o.append("}")
    for d in defs:
        o += ["", "", d.rstrip()]
    return "\n".join(o).rstrip() + "\n"
