"""The generation pipeline: headers -> (gcc, pycparser, probe) -> one Python module per target."""
from __future__ import annotations

import itertools
import importlib
import os
import re
import tempfile
from dataclasses import dataclass, field

from . import cc, cexpr, cparse
from .manifest import REPOS, Target

_REGEX_CHARS = set(".*+?[](){}|^$\\")
SAMPLES_1 = [0, 1, 2, 3, 5, 7]
SAMPLES_2 = [0, 1, 3]


class GenError(RuntimeError):
    """The manifest asks for something the headers do not give (or gcc disagrees with us)."""


@dataclass
class Pattern:
    text: str
    exact: bool
    rx: re.Pattern
    used: bool = False

    @classmethod
    def of(cls, text: str) -> "Pattern":
        exact = not (set(text) & _REGEX_CHARS)
        return cls(text, exact, re.compile(re.escape(text) if exact else text))

    def match(self, name: str) -> bool:
        if self.rx.fullmatch(name):
            self.used = True
            return True
        return False


def _matcher(pats: list[str]) -> tuple[list[Pattern], "callable"]:
    ps = [Pattern.of(p) for p in pats]
    return ps, lambda name: any([p.match(name) for p in ps])


@dataclass
class Probe:
    """Builds the probe program: each request becomes one line of C whose output line is tagged."""
    lines: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)   # symbol that each line belongs to

    def add(self, owner: str, c: str) -> None:
        self.lines.append(c)
        self.owners.append(owner)


_PROBE_HEAD = r"""
#include <stdio.h>
#include <stddef.h>
#include <string.h>
%(includes)s
#ifndef MW
#define MW(x) x
#endif
static void pv(const char *k, int cls, int neg, long long s, unsigned long long u, int size) {
    if (cls < 1 || cls > 4) { printf("X\t%%s\n", k); return; }
    if (neg) printf("V\t%%s\t%%lld\t%%d\n", k, s, size); else printf("V\t%%s\t%%llu\t%%d\n", k, u, size);
}
#define PV(k, x) pv(k, __builtin_classify_type(x), (x) < 0, (long long)(x), (unsigned long long)(x), (int)sizeof(x))
#define PF(k, x) printf("F\t%%s\t%%llu\t%%llu\n", k, (unsigned long long)(1 ? x), (unsigned long long)(0 ? x))
static void pb(const char *k, const unsigned char *p, size_t n) {
    printf("B\t%%s\t", k);
    for (size_t i = 0; i < n; i++) printf("%%02x", p[i]);
    printf("\n");
}
int main(void) {
"""


def _root(src: str, repo: str) -> str:
    return os.path.realpath(os.path.join(src, REPOS[repo].dir))


def _flags(t: Target, src: str) -> list[str]:
    fl = []
    for repo, path in t.forced_includes:
        fl += ["-include", os.path.join(_root(src, repo), path)]
    for repo, path in t.include_dirs:
        fl += ["-I", os.path.join(_root(src, repo), path)]
    return fl + list(t.defines)


def _tu(t: Target, src: str) -> str:
    return "".join(f'#include "{os.path.join(_root(src, r), p)}"\n' for r, p in t.headers)


def input_files(t: Target, src: str) -> list[tuple[str, str, str]]:
    """The files a target reads directly, as (repo dir, path, absolute path)."""
    from .manifest import REPOS
    return [(REPOS[r].dir, p, os.path.join(_root(src, r), p)) for r, p in list(t.headers) + list(t.table_files)]


def sources_present(t: Target, src: str) -> bool:
    if hasattr(t, "module"):  # PyTarget: a Python generator module
        return all(os.path.exists(p) for p in importlib.import_module(t.module).source_paths(src))
    return all(os.path.exists(os.path.join(_root(src, r), p)) for r, p in t.headers)


def _fmt_int(v: int, hexish: bool) -> str:
    if v < 0 or not hexish:
        return str(v)
    return f"0x{v:X}"


def generate(t: Target, src: str, verify_pins: bool = True) -> str:
    """Generate target ``t`` from the source trees under ``src``; returns the module text.
    ``verify_pins``: refuse input files whose SHA-256 differs from autogen/pins.json (C-header
    targets; Python-module targets and targets with their own ``builder`` check the sha256s
    their own module or manifest entry records)."""
    if hasattr(t, "module"):  # PyTarget
        return importlib.import_module(t.module).generate(src)
    builder = getattr(t, "builder", None)  # targets that are not C headers bring their own generator
    if builder is not None:
        return builder(t, src)
    with tempfile.TemporaryDirectory() as stubdir:
        for rel, text in t.stubs.items():
            os.makedirs(os.path.dirname(os.path.join(stubdir, rel)), exist_ok=True)
            with open(os.path.join(stubdir, rel), "w") as f:
                f.write(text)
        return _generate(t, src, ["-I", stubdir] if t.stubs else [], verify_pins)


def _generate(t: Target, src: str, extra_flags: list[str], verify_pins: bool) -> str:
    roots = {r: _root(src, r) for r in t.repos}
    missing = [os.path.join(roots[r], p) for r, p in t.headers if not os.path.exists(os.path.join(roots[r], p))]
    if missing:
        raise GenError(f"target {t.name}: sources missing: {missing}")
    from . import pins
    bad = pins.mismatches(input_files(t, src)) if verify_pins else []
    if bad:
        raise GenError(f"target {t.name}: sources differ from the pinned ones:\n  " + "\n  ".join(bad))
    flags, tu = _flags(t, src) + extra_flags, _tu(t, src)

    def repo_of(path: str) -> str | None:
        rp = os.path.realpath(path) if path else ""
        for r, root in roots.items():
            if rp.startswith(root + os.sep):
                return r
        return None

    # ---- types -----------------------------------------------------------------------------
    db = cparse.TypeDB(cc.preprocess(tu, flags, cc.PARSE_DEFINES))
    tpats, tmatch = _matcher(t.types)
    type_roots = sorted(n for n in itertools.chain(db.typedefs, db.tags)
                        if repo_of(db.file_of(n)) and tmatch(n))
    em = cparse.Emitter(db, set(type_roots))
    for k in type_roots:
        em.add(k)

    # ---- macros and enumerators ----------------------------------------------------------------
    allm = cc.macros(tu, flags)
    mpats, mmatch = _matcher(t.macros)
    xpats, xmatch = _matcher(t.exclude)
    macros = {n: m for n, m in allm.items() if repo_of(m.file) and mmatch(n) and not xmatch(n)}
    enums = {n: f for n, f in db.enumerators.items() if repo_of(f) and mmatch(n) and not xmatch(n)}
    for n in enums:
        macros.pop(n, None)
    exact = {p.text for p in mpats if p.exact} | {p.text for p in tpats if p.exact}

    # Expand every kept macro once (parameters as unique identifiers) to see what it really is.
    exp_src = [tu]
    keys = sorted(macros)
    for k, n in enumerate(keys):
        m = macros[n]
        call = n if m.params is None else f"{n}({', '.join(f'__hwdrv_p{j}' for j in range(len(m.params)))})"
        exp_src.append(f"__hwdrv_exp_{k} = {call} ;")
    expanded: dict[str, str] = {}
    for line in cc.preprocess("\n".join(exp_src) + "\n", flags, ["-P"]).splitlines():
        mm = re.match(r"^__hwdrv_exp_(\d+) = (.*) ;$", line)
        if mm:
            expanded[keys[int(mm.group(1))]] = mm.group(2)

    probe = Probe()
    kinds: dict[str, str] = {}          # name -> "value" | "field" | "ifield" | "ifunc"
    pyexpr: dict[str, tuple] = {}       # indexed macros: python translation
    for n in keys:
        m, body = macros[n], expanded.get(macros[n].name, "")
        if not body or body.startswith('"'):
            continue
        rng = cexpr.split_bitrange(body)
        if m.params is None:
            if rng:
                kinds[n] = "field"
                probe.add(n, f'PF("{n}", {n});')
            else:
                kinds[n] = "value"
                probe.add(n, f'PV("{n}", {n});')
            continue
        params = [f"__hwdrv_p{j}" for j in range(len(m.params))]
        try:
            if rng:
                py = (cexpr.to_python(rng[0], params, set(db.typedefs)),
                      cexpr.to_python(rng[1], params, set(db.typedefs)))
            else:
                py = (cexpr.to_python(body, params, set(db.typedefs)),)
        except cexpr.Untranslatable as e:
            if n in exact:
                raise GenError(f"{n}: cannot translate {body!r}: {e}")
            continue
        kinds[n] = "ifield" if rng else "ifunc"
        pyexpr[n] = (params, py)
        samples = [(s,) for s in SAMPLES_1] if len(params) == 1 else \
            list(itertools.product(SAMPLES_2, repeat=len(params)))
        for s in samples:
            key = f"{n}{list(s)}"
            args = ", ".join(map(str, s))
            probe.add(n, f'PF("{key}", {n}({args}));' if rng else f'PV("{key}", {n}({args}));')
    for n in sorted(enums):
        kinds[n] = "value"
        probe.add(n, f'PV("{n}", {n});')

    # Placeholders of the cdef (array lengths, bit widths, enum sizes).
    for i, q in enumerate(em.questions):
        probe.add(f"?{i}", f'PV("?{i}", ({q}));')

    # Layouts.
    layout_keys = sorted(em.aggregates)
    for key in layout_keys:
        plain, bits = em.fields(em.aggregates[key])
        probe.add(key, f'PV("S\t{key}", sizeof({key}));')
        for f in plain:
            probe.add(key, f'PV("O\t{key}\t{f}", offsetof({key}, {f}));')
        for f in bits:
            probe.add(key, f'{{ {key} v; memset(&v, 0, sizeof v); v.{f} = -1; pb("{key}\t{f}", (const unsigned char *)&v, sizeof v); }}')

    # Drop probe lines gcc rejects (macros that are not integer constants); named symbols must work.
    includes = "\n".join(f'#include "{os.path.join(roots[r], p)}"' for r, p in t.headers)
    head = _PROBE_HEAD % {"includes": includes}
    nhead = head.count("\n")
    dropped: set[str] = set()
    for _ in range(20):
        live = [(o, l) for o, l in zip(probe.owners, probe.lines) if o not in dropped]
        text = head + "\n".join(l for _, l in live) + "\nreturn 0;\n}\n"
        bad = cc.failing_lines(text, flags)
        if bad is None:
            break
        for ln in bad:
            idx = ln - nhead - 1
            if 0 <= idx < len(live):
                owner = live[idx][0]
                if owner in exact or owner.startswith("?") or owner in em.aggregates:
                    raise GenError(f"target {t.name}: gcc rejects the probe for {owner}: {live[idx][1]}")
                dropped.add(owner)
    else:
        raise GenError("probe does not converge")
    out = cc.compile_and_run(text, flags)

    values: dict[str, int] = {}
    fields: dict[str, tuple[int, int]] = {}
    sizes: dict[str, int] = {}
    offsets: dict[str, dict[str, int]] = {}
    bitpos: dict[str, dict[str, tuple[int, int]]] = {}
    nonint: set[str] = set()
    vsize: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if parts[0] == "V":
            if parts[1] == "S":
                sizes[parts[2]] = int(parts[3])
            elif parts[1] == "O":
                offsets.setdefault(parts[2], {})[parts[3]] = int(parts[4])
            else:
                values[parts[1]] = int(parts[2])
                vsize[parts[1]] = int(parts[3])
        elif parts[0] == "X":
            nonint.add(parts[1])
        elif parts[0] == "F":
            fields[parts[1]] = (int(parts[2]), int(parts[3]))
        elif parts[0] == "B":
            data = bytes.fromhex(parts[3])
            v = int.from_bytes(data, "little")
            lo = (v & -v).bit_length() - 1
            bitpos.setdefault(parts[1], {})[parts[2]] = (lo, v.bit_length() - lo)

    # ---- assemble ----------------------------------------------------------------------------
    answers = [values[f"?{i}"] for i in range(len(em.questions))]
    items = cparse.order(em.items)
    cdef = "\n".join(cparse.resolve(it.text, answers) for it in items)

    consts: dict[str, str] = {}
    defs: list[str] = []
    for n in sorted(kinds):
        if n in dropped or n in nonint:
            if n in exact:
                raise GenError(f"{n} is not an integer constant")
            continue
        k = kinds[n]
        raw = macros[n].body if n in macros else ""
        if k == "value":
            if n not in values:
                continue
            if values[n] < 0 and "<<" in expanded.get(n, ""):
                # `1 << 31` is a negative int in C but the header means a bit mask for an unsigned
                # field: keep the bit pattern so that OR-ing flags into a __u32 works.
                values[n] &= (1 << (8 * vsize[n])) - 1
            hexish = any(x in raw.lower() for x in ("0x", "<<", "bit")) or values[n] > 0xFFFF
            consts[n] = f"{n} = {_fmt_int(values[n], hexish)}"
        elif k == "field":
            hi, lo = fields[n]
            consts[n] = f'{n} = Field({hi}, {lo}, "{n}")'
        else:
            params, py = pyexpr[n]
            pnames = [p if p.isidentifier() and not p.startswith("__") else f"i{j}"
                      for j, p in enumerate(macros[n].params)]
            env_names = dict(zip(params, pnames))
            py = tuple(re.sub(r"__hwdrv_p\d+", lambda mm: env_names[mm.group()], e) for e in py)
            _verify(n, k, pnames, py, values, fields)
            sig = ", ".join(f"{p}: int" for p in pnames)
            label = "f\"" + n + "(" + ", ".join("{" + p + "}" for p in pnames) + ")\""
            if k == "ifield":
                defs.append(f"def {n}({sig}) -> Field:\n    return Field({py[0]}, {py[1]}, {label})\n")
            else:
                defs.append(f"def {n}({sig}) -> int:\n    return {py[0]}\n")
    # AMD-style NAME__SHIFT / NAME_MASK pairs become Field(NAME).
    for n in sorted(values):
        if n.endswith("__SHIFT") and n[:-7] + "_MASK" in values and n in consts:
            base, shift, mask = n[:-7], values[n], values[n[:-7] + "_MASK"]
            width = (mask >> shift).bit_length()
            if mask != ((1 << width) - 1) << shift or width == 0:
                raise GenError(f"{base}: mask {mask:#x} does not match shift {shift}")
            if base not in consts:
                consts[base] = f'{base} = Field({shift + width - 1}, {shift}, "{base}")'
    missing = [p.text for p in tpats + mpats if p.exact and not p.used]
    if missing:
        raise GenError(f"target {t.name}: not found in the headers: {', '.join(missing)}")
    for n in exact:
        if n in macros and n not in consts and not any(d.startswith(f"def {n}(") for d in defs):
            raise GenError(f"target {t.name}: {n} could not be evaluated")

    tables = {}
    for tname, spec in t.tables.items():
        tables[tname] = spec(t, src, flags, roots)

    # Layout table: one key per aggregate (typedef name preferred over the struct tag it names).
    typedef_nodes = {id(em.aggregates[k].node) for k in layout_keys if not k.startswith(("struct ", "union "))}
    layout_keys = [k for k in layout_keys
                   if not (k.startswith(("struct ", "union ")) and id(em.aggregates[k].node) in typedef_nodes)]

    used_files = {db.file_of(it.key) for it in items} | {macros[n].file for n in kinds if n in macros} \
        | {enums[n] for n in enums}
    used_files |= {os.path.join(roots[r], p) for r, p in t.table_files}
    srcs = []
    for f in sorted({os.path.realpath(f) for f in used_files if f and repo_of(f)}):
        r = repo_of(f)
        srcs.append((REPOS[r], os.path.relpath(f, roots[r])))
    return _render(t, srcs, cdef, layout_keys, sizes, offsets, bitpos, consts, defs, tables)


def _verify(n: str, kind: str, pnames: list[str], py: tuple, values: dict, fields: dict) -> None:
    """Evaluate the Python translation for every sampled index and compare with gcc's answer."""
    checked = 0
    for key, val in itertools.chain(values.items(), fields.items()):
        if not key.startswith(n + "["):
            continue
        args = [int(x) for x in key[len(n) + 1:-1].split(",")]
        env = dict(zip(pnames, args))
        try:
            got = tuple(eval(e, {}, env) for e in py)  # noqa: S307 - our own translation of header text
        except (ValueError, ZeroDivisionError):
            continue  # e.g. a negative shift: undefined in C too, so gcc's number means nothing
        want = val if kind == "ifield" else (val,)
        if got != tuple(want):
            raise GenError(f"{n}{args}: python translation {py} gives {got}, gcc gives {want}")
        checked += 1
    if checked < 2:
        raise GenError(f"{n}: fewer than two index values could be checked against gcc")


def _render(t: Target, srcs, cdef, layout_keys, sizes, offsets, bitpos, consts, defs, tables) -> str:
    o = [f'"""{t.doc}\n\nGenerated by `python -m autogen generate {t.group}` from the sources in SOURCES;'
         ' do not edit."""',
         "# fmt: off", "# flake8: noqa", "from hwdrv.ioctl.bindings import Field, build_ffi", ""]
    repos = sorted({r for r, _ in srcs}, key=lambda r: r.dir)
    var = {r: "_" + re.sub(r"\W", "_", r.dir.upper()) for r in repos}
    for r in repos:
        o.append(f"{var[r]} = {{'repo': {r.repo!r}, 'tag': {r.tag!r}, 'commit': {r.commit!r}}}")
    o.append("SOURCES = [")
    for repo, path in srcs:
        o.append(f"    {{**{var[repo]}, 'path': {path!r}}},")
    o.append("]")
    o.append("")
    o.extend(t.extra)
    if t.extra:
        o.append("")
    o.append('CDEF = """')
    o.append(cdef)
    o.append('"""')
    o.append("")
    o.append("# sizeof / offsetof measured by gcc (x86_64); bit-fields in BITFIELDS as (bit offset, width)")
    o.append("LAYOUT = {")
    for k in layout_keys:
        offs = ", ".join(f"{f!r}: {v}" for f, v in offsets.get(k, {}).items())
        o.append(f"    {k!r}: ({sizes[k]}, {{{offs}}}),")
    o.append("}")
    bf = {k: v for k, v in bitpos.items() if k in layout_keys}
    o.append("BITFIELDS = {")
    for k in sorted(bf):
        o.append(f"    {k!r}: {dict(sorted(bf[k].items()))!r},")
    o.append("}")
    o.append("")
    o.append("ffi = build_ffi(CDEF)")
    o.append("")
    for n in sorted(consts):
        o.append(consts[n])
    o.append("")
    for d in defs:
        o.append("")
        o.append(d)
    for name, body in tables.items():
        o.append("")
        o.append(body)
    return "\n".join(o).rstrip() + "\n"
