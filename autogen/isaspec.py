"""Mesa isaspec XML (``src/freedreno/isa/ir3*.xml``) -> ``hwdrv/qcom/gen/ir3_isa.py``.

Reads the bitset hierarchy the way Mesa's ``src/compiler/isaspec/isa.py`` does (imports, patterns,
fields, ``<override>`` cases, ``<derived>`` fields, ``<assert>`` bits, enums, expressions, gen
ranges) and writes it out as plain Python data. Expressions are C in the XML; they are translated
here once into Python expressions over ``v('FIELD')`` (a field lookup) and ``gpu_id``.
"""
from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

ALL_GENS = (1 << 32) - 1


class IsaSpecError(RuntimeError):
    """The XML is not what the isaspec rules allow (or the C-to-Python translation failed)."""


# ---- C expression -> Python expression -------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|\{([A-Za-z0-9_]+)\}|(ISA_GPU_ID\(\))|"
                    r"(<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&|^!~?:()]))")
# C binary operators by precedence (low to high) and their Python spelling.
_BINARY = [{"||": "or"}, {"&&": "and"}, {"|": "|"}, {"^": "^"}, {"&": "&"}, {"==": "==", "!=": "!="},
           {"<": "<", "<=": "<=", ">": ">", ">=": ">="}, {"<<": "<<", ">>": ">>"}, {"+": "+", "-": "-"},
           {"*": "*", "/": "//", "%": "%"}]


def c_to_python(text: str) -> tuple[str, list[str]]:
    """Translate one isaspec C expression; returns (python source, field names it reads)."""
    src = re.sub(r"/\*.*?\*/", " ", text, flags=re.S).strip()
    toks: list[tuple[str, str]] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            if src[pos:].strip() == "":
                break
            raise IsaSpecError(f"cannot tokenize expression {text!r} at {src[pos:]!r}")
        num, field, gpu, op = m.groups()
        toks.append(("num", str(int(num, 0))) if num else ("field", field) if field else
                    ("gpu", "gpu_id") if gpu else ("op", op))
        pos = m.end()
    fields: list[str] = []
    i = 0

    def peek() -> tuple[str, str] | None:
        return toks[i] if i < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(toks):
            raise IsaSpecError(f"expression {text!r} ends too early")
        i += 1
        return toks[i - 1]

    def unary() -> str:
        t = take()
        if t == ("op", "("):
            e = ternary()
            if take() != ("op", ")"):
                raise IsaSpecError(f"unbalanced parentheses in {text!r}")
            return e
        if t == ("op", "!"):
            return f"(not {unary()})"
        if t == ("op", "-"):
            return f"(-{unary()})"
        if t == ("op", "~"):
            return f"(~{unary()})"
        if t[0] == "field":
            if t[1] not in fields:
                fields.append(t[1])
            return f"v({t[1]!r})"
        if t[0] in ("num", "gpu"):
            return t[1]
        raise IsaSpecError(f"unexpected {t[1]!r} in {text!r}")

    def binary(level: int) -> str:
        if level == len(_BINARY):
            return unary()
        left = binary(level + 1)
        while (t := peek()) and t[0] == "op" and t[1] in _BINARY[level]:
            take()
            left = f"({left} {_BINARY[level][t[1]]} {binary(level + 1)})"
        return left

    def ternary() -> str:
        cond = binary(0)
        if peek() == ("op", "?"):
            take()
            a = ternary()
            if take() != ("op", ":"):
                raise IsaSpecError(f"bad ?: in {text!r}")
            b = ternary()
            return f"({a} if {cond} else {b})"
        return cond

    out = ternary()
    if i != len(toks):
        raise IsaSpecError(f"trailing tokens in expression {text!r}")
    if out.startswith("(") and out.endswith(")") and _balanced(out[1:-1]):
        out = out[1:-1]
    return out, fields


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


# ---- XML -> bitsets ----------------------------------------------------------------------------

def _bitrange(el: ET.Element) -> tuple[int, int]:
    if "pos" in el.attrib:
        return int(el.attrib["pos"]), int(el.attrib["pos"])
    return int(el.attrib["low"]), int(el.attrib["high"])


def _pattern(el: ET.Element, where: str) -> tuple[int, int, int]:
    low, high = _bitrange(el)
    bits = (el.text or "").strip()
    if len(bits) != high - low + 1 or set(bits) - set("01x"):
        raise IsaSpecError(f"bad pattern {bits!r} [{low}:{high}] in {where}")
    match = int(bits.replace("x", "0"), 2) << low
    dontcare = int(bits.replace("1", "0").replace("x", "1"), 2) << low
    return match, dontcare, ((1 << (high - low + 1)) - 1) << low


class _Parser:
    def __init__(self, xmlpath: str):
        self.base = os.path.dirname(xmlpath)
        self.files: list[str] = []
        self.exprs: dict[str, tuple[str, list[str]]] = {}
        self.enums: dict[str, dict[int, str]] = {}
        self.templates: dict[str, str] = {}
        self.bitsets: list[dict] = []
        self._file(os.path.basename(xmlpath))

    def _expr(self, name: str, text: str) -> str:
        self.exprs[name] = c_to_python(text)
        return name

    def _file(self, rel: str) -> None:
        self.files.append(rel)
        root = ET.parse(os.path.join(self.base, rel)).getroot()
        for imp in root.findall("import"):
            self._file(imp.attrib["file"])
        for e in root.findall("expr"):
            self._expr(e.attrib["name"], e.text or "")
        for t in root.findall("template"):
            self.templates[t.attrib["name"]] = (t.text or "").strip()
        for en in root.findall("enum"):
            self.enums[en.attrib["name"]] = {int(v.attrib["val"], 0): v.attrib["display"] for v in en.findall("value")}
        for b in root.findall("bitset"):
            self._bitset(b)

    def _case(self, bname: str, el: ET.Element, expr: str | None) -> dict:
        fields = []
        for d in el.findall("derived"):
            f = {"name": d.attrib["name"], "low": 0, "high": int(d.attrib.get("width", "1")) - 1,
                 "type": d.attrib["type"]}
            if "expr" in d.attrib:
                f["expr"] = d.attrib["expr"]
            else:
                (e,) = d.findall("expr")
                f["expr"] = self._expr(f"{bname}.{f['name']}", e.text or "")
            if "display" in d.attrib:
                f["display"] = d.attrib["display"].strip()
            fields.append(f)
        for n, a in enumerate(el.findall("assert")):
            low, high = _bitrange(a)
            match, dontcare, _ = _pattern(a, bname)
            if dontcare:
                raise IsaSpecError(f"'x' in an assert of {bname}")
            fields.append({"name": f"{bname}#assert{n}", "low": low, "high": high, "type": "assert",
                           "assert": match >> low})
        for fe in el.findall("field"):
            low, high = _bitrange(fe)
            f = {"name": fe.attrib["name"], "low": low, "high": high, "type": fe.attrib["type"]}
            if "display" in fe.attrib:
                f["display"] = fe.attrib["display"].strip()
            if fe.attrib.get("call") == "true":
                f["call"] = True
            params = [(p.attrib["name"], p.attrib.get("as", p.attrib["name"])) for p in fe.findall("param")]
            if params:
                f["params"] = params
            fields.append(f)
        display = None
        for d in el.findall("display"):
            display = (d.text or "").strip()
        if display is not None:
            for m in re.findall(r"\{([^}]+)\}", display):
                if m in self.templates:
                    display = display.replace("{" + m + "}", self.templates[m])
        return {"expr": expr, "display": display, "fields": fields}

    def _bitset(self, el: ET.Element) -> None:
        name = el.attrib["name"]
        gmin, gmax = 0, ALL_GENS
        for g in el.findall("gen"):
            gmin = int(g.attrib.get("min", gmin))
            gmax = int(g.attrib.get("max", gmax))
        cases = []
        for n, ov in enumerate(el.findall("override")):
            if "expr" in ov.attrib:
                expr = ov.attrib["expr"]
            else:
                (e,) = ov.findall("expr")
                expr = self._expr(f"{name}#override{n}", e.text or "")
            cases.append(self._case(name, ov, expr))
        cases.append(self._case(name, el, None))
        # <encode><map force="true"> with a constant: the value Mesa's encoder always writes
        force = {}
        for enc in el.findall("encode"):
            for mp in enc.findall("map"):
                if mp.attrib.get("force") == "true" and re.fullmatch(r"\d+", (mp.text or "").strip()):
                    force[mp.attrib["name"]] = int(mp.text.strip())
        match = dontcare = mask = 0
        for p in el.findall("pattern"):
            m, d, k = _pattern(p, name)
            match, dontcare, mask = match | m, dontcare | d, mask | k
        self.bitsets.append({"name": name, "extends": el.attrib.get("extends"),
                             "size": int(el.attrib["size"]) if "size" in el.attrib else None,
                             "gen": (gmin, gmax), "own": (match, dontcare, mask), "cases": cases,
                             "force": force})


def build(xmlpath: str, gen_lo: int, gen_hi: int) -> dict:
    """Parse the ISA and keep the bitsets that exist somewhere in [gen_lo, gen_hi]."""
    p = _Parser(xmlpath)
    by_name: dict[str, list[dict]] = {}
    for b in p.bitsets:
        by_name.setdefault(b["name"], []).append(b)
    parents = {b["extends"] for b in p.bitsets if b["extends"]}
    for name, bs in by_name.items():
        if len(bs) > 1 and name in parents:
            raise IsaSpecError(f"{name}: a bitset that others extend is defined twice")

    def parent(b: dict) -> dict | None:
        return by_name[b["extends"]][0] if b["extends"] else None

    for b in p.bitsets:   # effective gen range, root and merged pattern (isa.py get_gen_*/get_pattern)
        chain = [b]
        while (q := parent(chain[-1])) is not None:
            chain.append(q)
        b["root"] = chain[-1]["name"]
        b["gen_eff"] = (max(c["gen"][0] for c in chain), min(c["gen"][1] for c in chain))
        match = dontcare = mask = fmask = 0
        for c in chain:
            for case in c["cases"][-1:]:
                for f in case["fields"]:
                    if "expr" not in f:
                        fmask |= ((1 << (f["high"] - f["low"] + 1)) - 1) << f["low"]
            m, d, k = c["own"]
            if (match | dontcare | mask) & (m | d | k):
                raise IsaSpecError(f"bitset conflict in {b['name']}")
            match, dontcare, mask = match | m, dontcare | d, mask | k
        b["pattern"] = (match, dontcare, mask)
        b["leaf"] = b["name"] not in parents
        size = chain[-1]["size"]
        if b["leaf"] and (mask | fmask) != (1 << size) - 1:
            raise IsaSpecError(f"leaf bitset {b['name']} has undefined bits {~(mask | fmask) & ((1 << size) - 1):#x}")
    kept = [b for b in p.bitsets if b["gen_eff"][0] <= gen_hi and b["gen_eff"][1] >= gen_lo]
    # Unique ids: Mesa names a bitset defined twice (for different gens) bitset_<name>_gen_<min>.
    for b in kept:
        b["id"] = b["name"] if len(by_name[b["name"]]) == 1 else f"{b['name']}@{b['gen'][0]}"
    roots = {}
    for b in kept:
        if b["leaf"]:
            roots.setdefault(b["root"], []).append(b["id"])
    used_exprs = set()
    for b in kept:
        for c in b["cases"]:
            if c["expr"]:
                used_exprs.add(c["expr"])
            used_exprs.update(f["expr"] for f in c["fields"] if "expr" in f)
    missing = used_exprs - set(p.exprs)
    if missing:
        raise IsaSpecError(f"expressions referenced but not defined: {sorted(missing)}")
    used_types = {f["type"] for b in kept for c in b["cases"] for f in c["fields"]}
    return {"files": p.files, "bitsets": kept, "roots": roots,
            "exprs": {k: v for k, v in p.exprs.items() if k in used_exprs},
            "enums": {k: v for k, v in p.enums.items() if k in used_types}}


# ---- rendering -------------------------------------------------------------------------------

_DOC = '''"""ir3 (Adreno a6xx/a7xx shader ISA) instruction encodings from Mesa's isaspec XML.

Generated by `python -m autogen generate qcom` from the files in SOURCES; do not edit.
Only bitsets that exist for some GPU generation in GENS are kept ("gen" = Mesa's gpu_id, e.g. 630).

Data shape (stable; the ir3 assembler/disassembler and the mock's ir3 emulator read it):
- BITSETS: {id: bitset}, in XML order. A bitset is a dict:
    name     instruction / encoding name (the `{NAME}` of display templates); ids are the name,
             or "name@GENMIN" where Mesa defines a name once per gen range
    extends  id of the parent bitset or None (then `size` is its width in bits)
    root     id of the root of its hierarchy (e.g. "#instruction", "#multisrc", "#reg-gpr")
    gen      (min, max) gpu_id where it exists, parents' ranges included
    leaf     True if nothing extends it (only leaves are matched when decoding)
    pattern  (match, dontcare, mask) merged with all ancestors: a value v is this bitset when
             (v & mask & ~dontcare) == match
    cases    list of {expr, display, fields}: the <override>s in order (expr = an EXPRS key), then
             the default case (expr None). display is Mesa's template ("{FIELD}" substitutions,
             "{NAME}" = name) or None (inherit). A field is a dict: name, low, high (bit range in
             this bitset's value), type ("uint", "int", "hex", "float", "bool", "bool_inv",
             "offset", "uoffset", "branch", "absbranch", "custom", "assert", an ENUMS key or a
             root bitset id), and optionally display (bools: text shown when set), params
             ([(name in parent, name in child)] passed down to a bitset-typed field), expr (a
             derived field: value = EXPRS[expr], width high+1), assert (the value the bits must
             hold), call (a branch to a function).
    force    (only where the XML has one) {field: value} Mesa's encoder always writes, for fields
             no display shows (<encode><map force="true"> with a constant)
- ROOTS: {root id: [leaf ids]}: the candidates when decoding a value of that root type.
- EXPRS: {name: (python_expression, [field names read])}; evaluate with v(name) -> the raw
  (unsigned) field value and gpu_id -> the generation; C truthiness.
- ENUMS: {name: {value: display}}.
"""'''


def _fmt_field(f: dict) -> str:
    keys = ["name", "low", "high", "type", "display", "params", "expr", "assert", "call"]
    return "{" + ", ".join(f"{k!r}: {f[k]!r}" for k in keys if k in f) + "}"


def render(data: dict, srcs: list[tuple[dict, str, str]], gens: tuple[int, int]) -> str:
    o = [_DOC, "# fmt: off", "# flake8: noqa", ""]
    o.append("SOURCES = [")
    for repo, path, sha in srcs:
        o.append(f"    {{'repo': {repo['repo']!r}, 'tag': {repo['tag']!r}, 'path': {path!r}, 'sha256': {sha!r}}},")
    o += ["]", "", f"GENS = {gens!r}", "", "ENUMS = {"]
    for k, vals in data["enums"].items():
        o.append(f"    {k!r}: {vals!r},")
    o += ["}", "", "EXPRS = {"]
    for k, (py, fields) in data["exprs"].items():
        o.append(f"    {k!r}: ({py!r}, {fields!r}),")
    o += ["}", "", "BITSETS = {"]
    for b in data["bitsets"]:
        m, d, k = b["pattern"]
        o.append(f"    {b['id']!r}: {{")
        o.append(f"        'name': {b['name']!r}, 'extends': {b['extends']!r}, 'size': {b['size']!r}, "
                 f"'root': {b['root']!r}, 'gen': {b['gen_eff']!r}, 'leaf': {b['leaf']!r},")
        o.append(f"        'pattern': ({m:#x}, {d:#x}, {k:#x}),")
        if b["force"]:
            o.append(f"        'force': {b['force']!r},")
        o.append("        'cases': [")
        for c in b["cases"]:
            o.append(f"            {{'expr': {c['expr']!r}, 'display': {c['display']!r}, 'fields': [")
            for f in c["fields"]:
                o.append(f"                {_fmt_field(f)},")
            o.append("            ]},")
        o.append("        ],")
        o.append("    },")
    o += ["}", "", "ROOTS = {"]
    for k, ids in data["roots"].items():
        o.append(f"    {k!r}: {ids!r},")
    o += ["}", ""]
    return "\n".join(o)


@dataclass
class IsaTarget:
    """A manifest target made from isaspec XML."""
    name: str
    group: str
    output: str
    repo: str                      # key into manifest.REPOS
    root_xml: str                  # the file with <isa> that imports the others
    sha256: dict[str, str]         # every file the XML imports (root included) -> its pinned sha256
    gens: tuple[int, int]          # gpu_id range whose bitsets are kept

    # What autogen.generate looks at on any target: the files (for sources_present) and the builder.
    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(self.repo, p) for p in self.sha256]

    @property
    def builder(self):
        return lambda t, src: t.generate(src)

    def _path(self, src: str, rel: str) -> str:
        from .manifest import REPOS
        return os.path.join(src, REPOS[self.repo].dir, rel)

    def generate(self, src: str) -> str:
        """Verify each pinned file's sha256, parse the ISA, render the module."""
        from .generate import GenError
        from .manifest import REPOS
        r = REPOS[self.repo]
        srcs = []
        for path, want in self.sha256.items():
            full = self._path(src, path)
            if not os.path.exists(full):
                raise GenError(f"{self.name}: missing source {full}")
            sha = hashlib.sha256(open(full, "rb").read()).hexdigest()
            if sha != want:
                raise GenError(f"{self.name}: {path} has sha256 {sha}, the manifest pins {want}")
            srcs.append(({"repo": r.repo, "tag": r.tag}, path, sha))
        try:
            data = build(self._path(src, self.root_xml), *self.gens)
        except (IsaSpecError, ET.ParseError) as e:
            raise GenError(f"{self.name}: {e}") from e
        imported = {os.path.join(os.path.dirname(self.root_xml), f) for f in data["files"]}
        if imported != set(self.sha256):
            raise GenError(f"{self.name}: the XML reads {sorted(imported)}, the manifest pins {sorted(self.sha256)}")
        return render(data, srcs, self.gens)
