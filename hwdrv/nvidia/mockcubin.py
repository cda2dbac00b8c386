"""The binary ``mock:nvidia`` runs: an sm_90 cubin whose code is PTX text.

:func:`build` turns a PTX module into an ELF64 ``EM_CUDA`` executable laid out like ptxas 13.0's
sm_90 output (tests/test_cubin_mock.py compares the two on committed ptxas cubins), so the one
loader (:class:`~hwdrv.nvidia.cubin.CubinImage`, :class:`~hwdrv.nvidia.program.NVProgram`) reads,
links and places both the same way:

* ``.text.<k>`` per kernel: the module's PTX text with the other kernels' definitions removed, then
  a NUL. The kernel's FUNC symbol is at offset 0, so the QMD program address is the first byte of
  that text; the mock GPU reads the text from GPU memory there (docs/internals.md, "Mock NVIDIA
  binary format").
* ``.nv.info``: REGCOUNT (an estimate of the live 32-bit registers, plus the stack pointer and
  one address temporary), FRAME_SIZE and MIN_STACK_SIZE (the kernel's ``.local`` bytes) per
  kernel symbol; ``.nv.info.<k>``: KPARAM_INFO (KPARAM_INFO_V2 above 4 KiB) per parameter, CBANK_PARAM_SIZE, PARAM_CBANK,
  MAXREG_COUNT, CRS_STACK_SIZE, NUM_BARRIERS when the kernel synchronises, MAX_THREADS
  (``.maxntid``), REQNTID (``.reqntid``).
* ``.nv.constant0.<k>``: the driver area (0x210 bytes on sm_90) plus the parameter block.
* ``.nv.shared.<k>`` (NOBITS): the static shared memory after the 1 KiB sm_90 reserves, with the
  ``.nv.shared.reserved.0`` marker, as ptxas writes it.
* Module ``.global`` variables: initialised ones in ``.nv.global.init``, the others in the NOBITS
  ``.nv.global``; their addresses in ``.nv.constant4`` (8 bytes each, in declaration order), filled
  by R_CUDA_64 relocations from ``.rela.nv.constant4`` -- ptxas's scheme for ``__device__``
  variables. The mock GPU reads a variable's address from that slot of constant bank 4.
* Module ``.const`` variables: ``.nv.constant3``, laid out in declaration order (what ptxas uses
  for ``__constant__``).
* Function pointers, as ptxas 13.0 links them (tests/data/nvcc_corpus/mixed_support.cubin): a
  function's address is a descriptor, the byte offset of its slot in constant bank 2; slot 0
  holds 1, slot k the offset of the k-th address-taken function (declaration order) in the
  kernel's code. Every kernel gets ``.nv.constant2.<k>`` with its own offsets (the text of each
  kernel holds its own copy of the functions); ``.global`` initialisers naming functions hold
  their descriptors in ``.nv.global.init``. The mock GPU reads bank 2 to map a descriptor to the
  code it calls.
* ``.nv.info``: MIN_STACK_SIZE 0 for a kernel that calls functions, as ptxas reports (the
  driver adds its stack limit; :mod:`hwdrv.nvidia.program`).
"""
from __future__ import annotations

import dataclasses
import re
import struct
from dataclasses import dataclass

from ..errors import ProgramError
from .elf import (EF_CUDA_SM_SHIFT_V8, EI_ABIVERSION, EI_OSABI, EIATTR, EIFMT, ELF64_EHDR,
                  ELF64_SHDR, ELF_ABI_VERSION_SM_IN_BITS_15_8, ELFCLASS64, ELFDATA2LSB,
                  ELFOSABI_CUDA, EM_CUDA, ET_EXEC, RCUDA, SHF_ALLOC, SHF_EXECINSTR, SHF_INFO_LINK,
                  SHF_WRITE, SHT_CUDA_INFO, SHT_NOBITS, SHT_PROGBITS, SHT_RELA, SHT_STRTAB,
                  SHT_SYMTAB, STB_GLOBAL, STB_LOCAL, STO_CUDA_ENTRY, STT_FUNC, STT_OBJECT,
                  STT_SECTION)
from .kernelinfo import PARAM_BASE_BY_SM, SHARED_RESERVED_BYTES, SHARED_RESERVED_SECTION
from . import ptxscan

MOCK_SM = 90
#: e_flags low byte ptxas 13.0 writes for sm_90 executables (0x6005a04 observed: 0x04 | SM << 8 |
#: 0x6000000); the loader reads only the SM field
_E_FLAGS_OTHER = 0x6000004
#: registers every kernel holds besides its values: R1, the stack pointer (ABI), and one
#: temporary to form addresses
RESERVED_REGISTERS = 2
MAX_REGISTERS = 255
REGISTERS_PER_SM = 65536
#: KPARAM_INFO's low bits as ptxas 13.0 writes them for every parameter (0x1f000: the 0x1f
#: "cbank" field; tests/data/nvidia cubins)
KPARAM_FLAGS = 0x1F000
KPARAM_SIZE_SHIFT = 18
#: above this many parameter bytes ptxas 13.0 describes parameters with KPARAM_INFO_V2
#: ([index, offset << 16 | ordinal, size], no flags; observed on tests/data/nvidia/big_params)
KPARAM_V1_MAX_BLOCK = 4096
GLOBAL_ADDRESS_BANK = 4
FUNCTION_DESCRIPTOR_BANK = 2
#: what ptxas 13.0 writes in slot 0 of the descriptor bank (observed; slot 0 is no function)
DESCRIPTOR_SLOT0 = 1
DESCRIPTOR_SLOT = 8
_CALL_RE = re.compile(rb"\bcall(?:\.uni)?\s+(?:\([^)]*\)\s*,\s*)?(%?[A-Za-z_$][\w$]*)")
_FUNC_ADDRESS_RE = re.compile(rb"\bmov\.[bu]64\s+[^,;]+,\s*([A-Za-z_$][\w$]*)\s*;")
CONST_BANK = 3
ADDRESS_SLOT = 8
TEXT_ALIGN = 128
#: named barriers a CTA has on sm_90; a barrier id in a register may be any of them
NUM_NAMED_BARRIERS = 16
_BARRIER_RE = re.compile(rb"\b(?:bar|barrier)((?:\.(?!warp\b)\w+)*)\s+([^;]*);")


@dataclass
class _Section:
    name: str
    type: int
    flags: int
    data: bytes = b""
    size: int | None = None        # NOBITS size
    align: int = 4
    link: int = 0
    info: int = 0
    entsize: int = 0


def build(ptx: bytes) -> bytes:
    """The mock cubin of PTX module text ``ptx``; ProgramError on what it cannot read."""
    text = ptxscan.blank_comments(ptx)
    _, entries = ptxscan.scan_entries(ptx)
    funcs = {f.name: f for f in ptxscan.functions(text) if f.is_entry}
    kernels = [e for e in entries if e.name in funcs]
    if not kernels:
        raise ProgramError("PTX module has no .entry with a body")
    names = [e.name for e in kernels]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ProgramError(f"PTX module defines .entry {', '.join(sorted(dup))} twice")
    module_vars = ptxscan.module_variables(text)
    for v in module_vars:
        if v.space == "local":
            raise ProgramError(f"module-scope .local variable {v.name} is not supported")
    return _Writer(ptx, text, kernels, funcs, module_vars).write()


def _address_taken(text: bytes, module_vars) -> list[str]:
    """Functions (with bodies) whose address the module takes -- named in a ``.global``
    initialiser or moved into a register -- in definition order: the descriptor slots 1, 2, ..."""
    named = {n for v in module_vars for _, n in v.symbol_inits}
    named |= {m.group(1).decode() for m in _FUNC_ADDRESS_RE.finditer(text)}
    return [f.name for f in ptxscan.functions(text) if not f.is_entry and f.name in named]


def _resolve_function_inits(text: bytes, variables):
    """``variables`` with each function named in an initialiser replaced by its descriptor."""
    slots = {n: DESCRIPTOR_SLOT * (k + 1) for k, n in enumerate(_address_taken(text, variables))}
    out = []
    for v in variables:
        if v.symbol_inits:
            init = bytearray(v.init)
            for off, name in v.symbol_inits:
                if name not in slots:
                    raise ProgramError(f".global {v.name}: initializer {name} is not a function defined in the "
                                       f"module (the mock compiler resolves only function addresses)")
                init[off:off + DESCRIPTOR_SLOT] = slots[name].to_bytes(DESCRIPTOR_SLOT, "little")
            v = dataclasses.replace(v, init=bytes(init))
        out.append(v)
    return out


class _Writer:
    def __init__(self, raw: bytes, text: bytes, kernels, funcs, module_vars):
        self.raw, self.text, self.kernels, self.funcs = raw, text, kernels, funcs
        self.globals_ = _resolve_function_inits(text, [v for v in module_vars if v.space == "global" and not v.extern])
        self.descriptors = _address_taken(text, module_vars)
        self.reach: dict[str, set[str]] = {}          # device functions each kernel can call
        self.consts = [v for v in module_vars if v.space == "const"]
        self.mod_shared = [v for v in module_vars if v.space == "shared"]
        self.sections: list[_Section] = [_Section("", 0, 0, align=0)]
        self.symbols: list[tuple[str, int, int, int, int, int, int]] = []  # name, info, other, shndx, value, size

    # -- sections and symbols ---------------------------------------------------------------
    def _add(self, s: _Section) -> int:
        self.sections.append(s)
        return len(self.sections) - 1

    def _sym(self, name: str, typ: int, bind: int, shndx: int, value: int = 0, size: int = 0,
             other: int = 0) -> int:
        self.symbols.append((name, (bind << 4) | typ, other, shndx, value, size))
        return len(self.symbols)        # index after the null symbol

    def write(self) -> bytes:
        """The cubin: sections in ptxas's order, then the symbol table, then the records."""
        symtab = self._add(_Section(".symtab", SHT_SYMTAB, 0, align=8, entsize=24))
        nvinfo = self._add(_Section(".nv.info", SHT_CUDA_INFO, 0, link=symtab))
        kinfo = {e.name: self._add(_Section(f".nv.info.{e.name}", SHT_CUDA_INFO, SHF_INFO_LINK, link=symtab))
                 for e in self.kernels}
        self.local_syms: list[tuple[str, int, int, int, int]] = []     # name, type, shndx, value, size
        rela = None
        if self.globals_:
            rela = self._add(_Section(".rela.nv.constant4", SHT_RELA, SHF_INFO_LINK, align=8, link=symtab,
                                      entsize=24))
            self.sections[rela].info = self._add(_Section(
                f".nv.constant{GLOBAL_ADDRESS_BANK}", SHT_PROGBITS, SHF_ALLOC,
                bytes(ADDRESS_SLOT * len(self.globals_)), align=8))
        self._variables(f".nv.constant{CONST_BANK}", SHT_PROGBITS, SHF_ALLOC, self.consts)
        texts = {}
        for e in self.kernels:
            body = ptxscan.without_other_entries(self.raw, self.text, e.name) + b"\0"
            texts[e.name] = self._add(_Section(f".text.{e.name}", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR,
                                               body, align=TEXT_ALIGN, link=symtab))
            self.local_syms.append((f".text.{e.name}", STT_SECTION, texts[e.name], 0, 0))
        self._variables(".nv.global.init", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE,
                        [v for v in self.globals_ if v.init is not None])
        self._add(_Section(SHARED_RESERVED_SECTION, SHT_NOBITS, SHF_ALLOC | SHF_WRITE, size=0, align=1))
        self._variables(".nv.global", SHT_NOBITS, SHF_ALLOC | SHF_WRITE,
                        [v for v in self.globals_ if v.init is None])
        for e in self.kernels:
            self._function_symbols(e.name, texts[e.name])
        facts = {e.name: self._kernel_facts(e) for e in self.kernels}
        for e in self.kernels:
            if facts[e.name]["shared"]:
                self._add(_Section(f".nv.shared.{e.name}", SHT_NOBITS, SHF_ALLOC | SHF_WRITE | SHF_INFO_LINK,
                                   size=SHARED_RESERVED_BYTES + facts[e.name]["shared"], align=16,
                                   info=texts[e.name]))
        if self.descriptors:
            for e in self.kernels:
                self._add(_Section(f".nv.constant{FUNCTION_DESCRIPTOR_BANK}.{e.name}", SHT_PROGBITS,
                                   SHF_ALLOC | SHF_INFO_LINK, self._descriptor_bank(self.sections[texts[e.name]].data),
                                   align=4, info=texts[e.name]))
        for e in self.kernels:
            size = PARAM_BASE_BY_SM[MOCK_SM] + facts[e.name]["param_size"]
            c0 = self._add(_Section(f".nv.constant0.{e.name}", SHT_PROGBITS, SHF_ALLOC | SHF_INFO_LINK,
                                    bytes(size), align=4, info=texts[e.name]))
            self.local_syms.append((f".nv.constant0.{e.name}", STT_SECTION, c0, 0, 0))
        # symbols: locals first (ELF rule), kernels last; sh_info of .symtab = first global
        sym = {name: self._sym(name, typ, STB_LOCAL, shndx, value, size)
               for name, typ, shndx, value, size in self.local_syms}
        for e in self.kernels:
            sym[e.name] = self._sym(e.name, STT_FUNC, STB_GLOBAL, texts[e.name], 0,
                                    len(self.sections[texts[e.name]].data), STO_CUDA_ENTRY)
            self.sections[texts[e.name]].info = sym[e.name]
            self.sections[kinfo[e.name]].info = texts[e.name]
        self.sections[symtab].info = len(self.local_syms) + 1
        if rela is not None:
            self.sections[rela].data = b"".join(
                struct.pack("<QQq", i * ADDRESS_SLOT, (sym[v.name] << 32) | RCUDA.R_CUDA_64, 0)
                for i, v in enumerate(self.globals_))
        # .nv.info: per-function resources keyed by symbol index
        info = bytearray()
        for e in self.kernels:
            k, f = sym[e.name], facts[e.name]
            info += _sval(EIATTR.REGCOUNT, struct.pack("<II", k, f["regs"]))
            info += _sval(EIATTR.FRAME_SIZE, struct.pack("<II", k, f["local"]))
            info += _sval(EIATTR.MIN_STACK_SIZE, struct.pack("<II", k, f["local"]))
            self.sections[kinfo[e.name]].data = self._kernel_info(f, sym[f".nv.constant0.{e.name}"])
        self.sections[nvinfo].data = bytes(info)
        return self._serialise()

    def _variables(self, name: str, sh_type: int, flags: int, variables: list[ptxscan.PtxVariable]) -> None:
        """One section holding ``variables`` in declaration order at their alignment (their
        initial bytes unless NOBITS), its section symbol and one OBJECT symbol per variable."""
        if not variables:
            return
        offs, end = ptxscan.layout(variables)
        data = bytearray(end if sh_type != SHT_NOBITS else 0)
        for v in variables:
            if v.init is not None and sh_type != SHT_NOBITS:
                data[offs[v.name]:offs[v.name] + v.size] = v.init
        ix = self._add(_Section(name, sh_type, flags, bytes(data), size=end if sh_type == SHT_NOBITS else None,
                                align=max(v.align for v in variables)))
        self.local_syms.append((name, STT_SECTION, ix, 0, 0))
        self.local_syms += [(v.name, STT_OBJECT, ix, offs[v.name], v.size) for v in variables]

    def _function_symbols(self, kernel: str, shndx: int) -> None:
        """A local FUNC symbol ``$kernel$function`` in the kernel's text for each device function
        the kernel can call, as ptxas names its per-kernel copies (the driver reads from them
        that the kernel calls, and sizes its stack)."""
        text = ptxscan.blank_comments(self.sections[shndx].data.rstrip(b"\0"))
        funcs = {f.name: f for f in ptxscan.functions(text)}
        reach, todo = set(), [kernel]
        while todo:
            f = funcs[todo.pop()]
            for m in _CALL_RE.finditer(text[f.body:f.end - 1]):
                targets = self.descriptors if m.group(1).startswith(b"%") else [m.group(1).decode()]
                for t in targets:
                    if t in funcs and not funcs[t].is_entry and t not in reach:
                        reach.add(t)
                        todo.append(t)
        self.reach[kernel] = reach
        for name, f in funcs.items():
            if name in reach:
                self.local_syms.append((f"${kernel}${name}", STT_FUNC, shndx, f.start, f.end - f.start))

    def _descriptor_bank(self, kernel_text: bytes) -> bytes:
        """Constant bank 2 of a kernel: slot 0, then each address-taken function's code offset."""
        starts = {f.name: f.start for f in ptxscan.functions(ptxscan.blank_comments(kernel_text.rstrip(b"\0")))
                  if not f.is_entry}
        return struct.pack(f"<{1 + len(self.descriptors)}Q", DESCRIPTOR_SLOT0, *(starts[n] for n in self.descriptors))

    # -- per-kernel facts -------------------------------------------------------------------
    def _kernel_facts(self, e) -> dict:
        fn = self.funcs[e.name]
        params, psize = ptxscan.parse_params(e.name, e.params_text)
        body = self.text[fn.body:fn.end - 1]
        own = ptxscan.body_variables(self.text, fn)
        static = [v for v in self.mod_shared + own if v.space == "shared" and not v.extern]
        _, shared_end = ptxscan.layout(static)
        # the kernel's frame: its .local variables, and the .param slots of its call sequences
        # where it calls only the device runtime (printf, malloc, ...): the mock keeps them in
        # local memory. A kernel that calls device functions has a call stack for them
        # (program.py), as ptxas leaves them out of its frame.
        local = [v for v in own if v.space == "local"]
        if not self.reach[e.name]:
            local += ptxscan.body_call_slots(self.text, fn)
        _, local_end = ptxscan.layout(local)
        regs = ptxscan.estimate_registers(body)
        # callees' registers and stack count too: the kernel runs them on its own registers/stack
        callee_local = 0
        for f in ptxscan.functions(self.text):
            if not f.is_entry and f.name and re.search(rb"\bcall(?:\.uni)?\b[^;]*[\s,(]" + re.escape(f.name.encode())
                                                        + rb"\b", body):
                fbody = self.text[f.body:f.end - 1]
                regs = max(regs, ptxscan.estimate_registers(fbody))
                _, fl = ptxscan.layout([v for v in ptxscan.body_variables(self.text, f) if v.space == "local"])
                callee_local = max(callee_local, fl)
        maxntid, reqntid = ptxscan.launch_dims(self.text[e.offset:e.header_end])
        regs = min(regs + RESERVED_REGISTERS, MAX_REGISTERS)
        bound = reqntid or maxntid
        if bound is not None:
            # like ptxas: a kernel declared for N threads gets no more registers than N fit an SM
            warps = -(-(bound[0] * bound[1] * bound[2]) // 32)
            regs = min(regs, max(1, REGISTERS_PER_SM // (warps * 32)))
        return {"params": params, "param_size": psize, "shared": shared_end,
                "local": -(-(local_end + callee_local) // 8) * 8,
                "regs": regs,
                "barriers": _barriers(body),
                "maxntid": maxntid, "reqntid": reqntid}

    def _kernel_info(self, f: dict, c0_sym: int) -> bytes:
        out = bytearray()
        big = f["param_size"] > KPARAM_V1_MAX_BLOCK
        for p in reversed(f["params"]):           # ptxas lists the last parameter first
            last = p.size if big else (p.size << KPARAM_SIZE_SHIFT) | KPARAM_FLAGS
            out += _sval(EIATTR.KPARAM_INFO_V2 if big else EIATTR.KPARAM_INFO,
                         struct.pack("<III", 0, (p.offset << 16) | p.ordinal, last))
        out += _hval(EIATTR.MAXREG_COUNT, MAX_REGISTERS)
        if f["barriers"]:
            out += struct.pack("<BBH", EIFMT.BVAL, EIATTR.NUM_BARRIERS, f["barriers"])
        out += _sval(EIATTR.CRS_STACK_SIZE, struct.pack("<I", 0))
        if f["params"]:                           # ptxas writes neither for a kernel without parameters
            out += _hval(EIATTR.CBANK_PARAM_SIZE, f["param_size"])
            out += _sval(EIATTR.PARAM_CBANK, struct.pack(
                "<II", c0_sym, (f["param_size"] << 16) | PARAM_BASE_BY_SM[MOCK_SM]))
        if f["maxntid"] is not None:
            out += _sval(EIATTR.MAX_THREADS, struct.pack("<III", *f["maxntid"]))
        if f["reqntid"] is not None:
            out += _sval(EIATTR.REQNTID, struct.pack("<III", *f["reqntid"]))
        return bytes(out)

    # -- file ---------------------------------------------------------------------------------
    def _serialise(self) -> bytes:
        shstr, strtab = _StrTab(), _StrTab()
        shstrndx = len(self.sections)
        strndx = shstrndx + 1
        self.sections.append(_Section(".shstrtab", SHT_STRTAB, 0, align=1))
        self.sections.append(_Section(".strtab", SHT_STRTAB, 0, align=1))
        symtab = next(i for i, s in enumerate(self.sections) if s.type == SHT_SYMTAB)
        self.sections[symtab].link = strndx
        syms = bytearray(24)
        for name, info, other, shndx, value, size in self.symbols:
            syms += struct.pack("<IBBHQQ", strtab.add(name), info, other, shndx, value, size)
        self.sections[symtab].data = bytes(syms)
        names = [shstr.add(s.name) for s in self.sections]
        self.sections[strndx].data = strtab.data()
        self.sections[shstrndx].data = shstr.data()
        out = bytearray(ELF64_EHDR.size)
        offsets = []
        for s in self.sections:
            if s.type in (0, SHT_NOBITS):
                offsets.append(len(out) if s.type else 0)
                continue
            out += bytes(-len(out) % max(s.align, 1))
            offsets.append(len(out))
            out += s.data
        out += bytes(-len(out) % 8)
        shoff = len(out)
        for s, name, off in zip(self.sections, names, offsets):
            size = s.size if s.type == SHT_NOBITS else len(s.data)
            out += ELF64_SHDR.pack(name, s.type, s.flags, 0, off, size, s.link, s.info, s.align, s.entsize)
        ident = bytearray(16)
        ident[:4] = b"\x7fELF"
        ident[4], ident[5], ident[6] = ELFCLASS64, ELFDATA2LSB, 1
        ident[EI_OSABI] = ELFOSABI_CUDA
        ident[EI_ABIVERSION] = ELF_ABI_VERSION_SM_IN_BITS_15_8
        e_flags = _E_FLAGS_OTHER | (MOCK_SM << EF_CUDA_SM_SHIFT_V8)
        ELF64_EHDR.pack_into(out, 0, bytes(ident), ET_EXEC, EM_CUDA, 1, 0, 0, shoff, e_flags,
                             ELF64_EHDR.size, 0, 0, ELF64_SHDR.size, len(self.sections), shstrndx)
        return bytes(out)


class _StrTab:
    def __init__(self) -> None:
        self._buf = bytearray(b"\0")
        self._at: dict[str, int] = {"": 0}

    def add(self, s: str) -> int:
        if s not in self._at:
            self._at[s] = len(self._buf)
            self._buf += s.encode() + b"\0"
        return self._at[s]

    def data(self) -> bytes:
        return bytes(self._buf)


def _barriers(body: bytes) -> int:
    """Named barriers ``body`` uses: the highest immediate id + 1 (all of them if an id is a
    register), 0 if it never synchronises (``bar.warp.sync`` is not a named barrier)."""
    need = 0
    for m in _BARRIER_RE.finditer(body):
        if b".warp" in m.group(1):
            continue
        args = [a.strip() for a in m.group(2).split(b",")]
        bid = args[1] if b".red" in m.group(1) else args[0]
        need = max(need, int(bid, 0) + 1 if bid.isdigit() else NUM_NAMED_BARRIERS)
    return need


def _sval(attr: int, payload: bytes) -> bytes:
    return struct.pack("<BBH", EIFMT.SVAL, attr, len(payload)) + payload


def _hval(attr: int, value: int) -> bytes:
    return struct.pack("<BBH", EIFMT.HVAL, attr, value)
