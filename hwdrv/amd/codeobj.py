"""AMDGPU code-object loader: ELF (ET_DYN from ld.lld, ET_REL from llc/llvmlite) -> a relocatable
image, its kernels (64-byte kernel descriptor + metadata) and a kernarg-segment packer.

Facts come from generated modules: ELF constants, relocation numbers and the descriptor layout
from ``gen/amdhsa.py`` (LLVM 19 headers), the COMPUTE_PGM_RSRC*/kernel-code-property bit fields
from ``gen/rdna3_isa.py`` (LLVM AMDHSAKernelDescriptor.h). Hidden kernel arguments are filled the
way ROCm's runtime does (ROCm/clr ``VirtualGPU::submitKernelInternal``): block counts are the
number of *full* work-groups (global / local), remainders global % local, group sizes the local
size, grid dims the number of dimensions given.

Usage::

    co = load(open("k.hsaco", "rb").read())
    image = co.relocated(base)            # bytes to copy to GPU VA ``base``
    k = co.kernels["vec_add_f32"]
    code_va = base + k.code_offset        # COMPUTE_PGM_LO/HI = code_va >> 8
    kernargs = k.pack_kernargs([a_va, b_va, c_va, n], global_size=(1000,), local_size=(64,))

Every problem with the file is a :class:`ProgramError` naming the ELF part or field at fault.
"""
from __future__ import annotations

import io
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
from elftools.elf.elffile import ELFFile

from ..errors import InvalidArgument, ProgramError
from .gen import amdhsa
from .gen.rdna3_isa import KD_FIELDS
from .metadata import CodeObjectMetadata, KernelArg, KernelMetadata, parse

MAX_IMAGE = 64 << 20             # refuse images (PT_LOAD span / ALLOC sections) above 64 MiB (kernels are KiBs)
KD_ALIGN = 64                    # HSA: kernel descriptors are 64-byte aligned
CODE_ALIGN = 256                 # COMPUTE_PGM_LO holds the entry address >> 8
ET_REL, ET_DYN = 1, 3            # ELF e_type (System V gABI)
SHT_RELA, SHT_NOBITS, SHT_NOTE = 4, 8, 7
SHF_ALLOC = 0x2
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
_MACH_NAMES = {v: k[len("EF_AMDGPU_MACH_AMDGCN_"):].lower() for k, v in vars(amdhsa).items()
               if k.startswith("EF_AMDGPU_MACH_AMDGCN_GFX")}
_R_NAME = {v: k for k, v in amdhsa.R_AMDGPU.items()}


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn any failure of pyelftools on malformed input into a ProgramError naming the part read."""
    try:
        yield
    except ProgramError:
        raise
    except Exception as e:  # pyelftools raises many types on corrupt files (ELFError, struct, Unicode...)
        raise ProgramError(f"code object: cannot read {what}: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------------------------------------
# user SGPRs in the order the hardware loads them (AMDGPUUsage "Initial Kernel Execution State"), sizes in SGPRs
_USER_SGPRS = (("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER", 4), ("ENABLE_SGPR_DISPATCH_PTR", 2), ("ENABLE_SGPR_QUEUE_PTR", 2),
               ("ENABLE_SGPR_KERNARG_SEGMENT_PTR", 2), ("ENABLE_SGPR_DISPATCH_ID", 2),
               ("ENABLE_SGPR_FLAT_SCRATCH_INIT", 2), ("ENABLE_SGPR_PRIVATE_SEGMENT_SIZE", 1))


@dataclass(frozen=True)
class KernelDescriptor:
    """The 64-byte ``kernel_descriptor_t`` (fields named as in LLVM's AMDHSAKernelDescriptor.h)."""
    group_segment_fixed_size: int
    private_segment_fixed_size: int
    kernarg_size: int
    kernel_code_entry_byte_offset: int
    compute_pgm_rsrc3: int
    compute_pgm_rsrc1: int
    compute_pgm_rsrc2: int
    kernel_code_properties: int
    kernarg_preload: int
    raw: bytes

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "KernelDescriptor":
        if len(data) != amdhsa.KD_SIZE:
            raise ProgramError(f"{where}: kernel descriptor is {len(data)} bytes, expected {amdhsa.KD_SIZE}")
        vals = {}
        for name, (off, size, signed) in amdhsa.KD_LAYOUT.items():
            if not name.startswith("reserved"):
                vals[name] = int.from_bytes(data[off:off + size], "little", signed=signed)
        return cls(raw=bytes(data), **vals)

    def field(self, register: str, name: str) -> int:
        """A bit field, e.g. ``field("COMPUTE_PGM_RSRC2", "USER_SGPR_COUNT")``."""
        value = {"COMPUTE_PGM_RSRC1": self.compute_pgm_rsrc1, "COMPUTE_PGM_RSRC2": self.compute_pgm_rsrc2,
                 "COMPUTE_PGM_RSRC3": self.compute_pgm_rsrc3,
                 "KERNEL_CODE_PROPERTY": self.kernel_code_properties}[register]
        shift, width = KD_FIELDS[register][name]
        return (value >> shift) & ((1 << width) - 1)

    def fields(self) -> dict[str, dict[str, int]]:
        """Every gfx11 bit field of rsrc1/2/3 and the kernel code properties, decoded."""
        return {reg: {n: self.field(reg, n) for n in f} for reg, f in KD_FIELDS.items()}

    @property
    def user_sgpr_count(self) -> int:
        return self.field("COMPUTE_PGM_RSRC2", "USER_SGPR_COUNT")

    def user_sgpr_layout(self) -> list[tuple[str, int, int]]:
        """The enabled user SGPRs in HSA order as (kernel-code-property name, first SGPR, count):
        what a dispatcher loads into COMPUTE_USER_DATA_n. Raises ProgramError if they do not fit in
        USER_SGPR_COUNT (the descriptor contradicts itself)."""
        out, n = [], 0
        for prop, count in _USER_SGPRS:
            if self.field("KERNEL_CODE_PROPERTY", prop):
                out.append((prop, n, count))
                n += count
        if n > self.user_sgpr_count:
            raise ProgramError(f"kernel descriptor enables {n} user SGPRs ({', '.join(p for p, _, _ in out)}) but "
                               f"COMPUTE_PGM_RSRC2.USER_SGPR_COUNT is {self.user_sgpr_count}")
        return out

    @property
    def wave32(self) -> bool:
        return bool(self.field("KERNEL_CODE_PROPERTY", "ENABLE_WAVEFRONT_SIZE32"))


@dataclass(frozen=True)
class Kernel:
    """One kernel of a loaded code object; offsets are relative to the image base."""
    name: str
    kd_offset: int
    code_offset: int
    descriptor: KernelDescriptor
    metadata: KernelMetadata

    def pack_kernargs(self, args: Sequence[Any], global_size: Sequence[int], local_size: Sequence[int], *,
                      global_offset: Sequence[int] = (0, 0, 0), dynamic_lds: int = 0, private_base: int = 0,
                      shared_base: int = 0, queue_ptr: int = 0) -> bytes:
        """The kernarg segment (``kernarg_segment_size`` bytes) for a launch.

        ``args``: one value per explicit argument (``global_buffer``: a GPU address or an object with
        ``.va``; ``by_value``: int / float / numpy scalar / bytes of the argument's size).
        ``global_size``: work-items per dimension (1-3 dims; the last group may be partial),
        ``local_size``: the work-group size, same number of dims. Hidden arguments are filled as
        ROCm's runtime does; kinds that need runtime services hwdrv does not provide (printf,
        hostcall, heap, default queue, multigrid sync) are zero — such kernels cannot use them.
        """
        m = self.metadata
        dims = len(global_size)
        if not 1 <= dims <= 3 or len(local_size) != dims:
            raise InvalidArgument(f"{self.name}: global_size {tuple(global_size)} and local_size {tuple(local_size)} "
                                  "must have the same number (1-3) of dimensions")
        g = [int(v) for v in global_size] + [1] * (3 - dims)
        loc = [int(v) for v in local_size] + [1] * (3 - dims)
        if any(v < 1 for v in g + loc) or any(v > 0xFFFF for v in loc) or any(v > 0xFFFFFFFF for v in g):
            raise InvalidArgument(f"{self.name}: sizes must be >= 1 (local <= 65535, global < 2**32): "
                                  f"global {tuple(global_size)}, local {tuple(local_size)}")
        if loc[0] * loc[1] * loc[2] > m.max_flat_workgroup_size:
            raise InvalidArgument(f"{self.name}: work-group {tuple(local_size)} has {loc[0] * loc[1] * loc[2]} "
                                  f"work-items; the kernel allows {m.max_flat_workgroup_size} (max_flat_workgroup_size)")
        explicit = m.explicit_args
        if len(args) != len(explicit):
            raise InvalidArgument(f"{self.name}: takes {len(explicit)} arguments "
                                  f"({', '.join(a.name or a.value_kind for a in explicit)}), got {len(args)}")
        out = bytearray(m.kernarg_segment_size)
        for i, (a, v) in enumerate(zip(explicit, args)):
            out[a.offset:a.offset + a.size] = _arg_bytes(self.name, i, a, v)
        hidden = {
            "hidden_block_count_x": g[0] // loc[0], "hidden_block_count_y": g[1] // loc[1],
            "hidden_block_count_z": g[2] // loc[2],
            "hidden_group_size_x": loc[0], "hidden_group_size_y": loc[1], "hidden_group_size_z": loc[2],
            "hidden_remainder_x": g[0] % loc[0], "hidden_remainder_y": g[1] % loc[1], "hidden_remainder_z": g[2] % loc[2],
            "hidden_grid_dims": dims, "hidden_global_offset_x": global_offset[0],
            "hidden_global_offset_y": global_offset[1], "hidden_global_offset_z": global_offset[2],
            "hidden_dynamic_lds_size": dynamic_lds, "hidden_private_base": private_base,
            "hidden_shared_base": shared_base, "hidden_queue_ptr": queue_ptr,
        }
        for a in m.args:
            if a.hidden and a.value_kind in hidden:
                v = hidden[a.value_kind]
                if v >= 1 << (8 * a.size):
                    raise InvalidArgument(f"{self.name}: {a.value_kind} = {v} does not fit its {a.size} bytes")
                out[a.offset:a.offset + a.size] = v.to_bytes(a.size, "little")
        return bytes(out)


def _arg_bytes(kernel: str, i: int, a: KernelArg, v: Any) -> bytes:
    label = f"{kernel}: argument {i} ({a.name or a.value_kind}, {a.size} bytes)"
    if a.value_kind == "global_buffer" or a.value_kind == "dynamic_shared_pointer":
        addr = v.va if hasattr(v, "va") else v
        if not isinstance(addr, (int, np.integer)) or isinstance(addr, bool) or not 0 <= int(addr) < 1 << 64:
            raise InvalidArgument(f"{label}: expects a GPU address (int or buffer), got {type(v).__name__}")
        return int(addr).to_bytes(a.size, "little")
    if isinstance(v, (bytes, bytearray, memoryview)):
        raw = bytes(v)
    elif isinstance(v, np.generic):
        raw = v.tobytes()
    elif isinstance(v, bool):
        raw = int(v).to_bytes(a.size, "little")
    elif isinstance(v, int):
        if not -(1 << (8 * a.size - 1)) <= v < 1 << (8 * a.size):
            raise InvalidArgument(f"{label}: {v} does not fit")
        raw = (v % (1 << (8 * a.size))).to_bytes(a.size, "little")
    elif isinstance(v, float) and a.size in (2, 4, 8):
        raw = struct.pack({2: "<e", 4: "<f", 8: "<d"}[a.size], v)
    else:
        raise InvalidArgument(f"{label}: cannot pass a {type(v).__name__}")
    if len(raw) != a.size:
        raise InvalidArgument(f"{label}: got {len(raw)} bytes")
    return raw


@dataclass(frozen=True)
class Relocation:
    """One relocation to apply at load time: image offset, R_AMDGPU_* type, symbol offset in the
    image (None for R_AMDGPU_RELATIVE64 / SHN_ABS symbols: see ``absolute``), addend."""
    offset: int
    type: int
    symbol: int | None
    addend: int
    absolute: int = 0

    @property
    def type_name(self) -> str:
        return _R_NAME.get(self.type, f"type {self.type}")


_RELOC_SIZE = {"R_AMDGPU_NONE": 0, "R_AMDGPU_ABS32_LO": 4, "R_AMDGPU_ABS32_HI": 4, "R_AMDGPU_ABS64": 8,
               "R_AMDGPU_REL32": 4, "R_AMDGPU_REL64": 8, "R_AMDGPU_ABS32": 4, "R_AMDGPU_REL32_LO": 4,
               "R_AMDGPU_REL32_HI": 4, "R_AMDGPU_RELATIVE64": 8, "R_AMDGPU_REL16": 2}


class CodeObject:
    """A parsed code object: ``image`` (placed at offset 0, unrelocated), ``kernels`` by name."""

    def __init__(self, image: bytes, align: int, relocations: list[Relocation], kernels: dict[str, Kernel],
                 metadata: CodeObjectMetadata, arch: str, abi_version: int, elf_type: int):
        self.image, self.align, self.relocations = image, align, relocations
        self.kernels, self.metadata, self.arch = kernels, metadata, arch
        self.abi_version, self.elf_type = abi_version, elf_type

    @property
    def size(self) -> int:
        return len(self.image)

    def relocated(self, base: int) -> bytes:
        """The image with every relocation applied for GPU virtual address ``base``."""
        if base % self.align or not 0 <= base < 1 << 64:
            raise InvalidArgument(f"code object base 0x{base:x} must be a multiple of its alignment 0x{self.align:x}")
        return _apply(self.image, self.relocations, base)

    def __repr__(self) -> str:
        return f"CodeObject({self.arch}, {len(self.image)} bytes, kernels={sorted(self.kernels)})"


def _apply(image: bytes, relocs: list[Relocation], base: int) -> bytes:
    out = bytearray(image)
    for r in relocs:
        name = r.type_name
        p = base + r.offset
        s = (base + r.symbol if r.symbol is not None else r.absolute) + r.addend
        v = {"R_AMDGPU_ABS32_LO": s & 0xFFFFFFFF, "R_AMDGPU_ABS32_HI": s >> 32, "R_AMDGPU_ABS64": s,
             "R_AMDGPU_ABS32": s, "R_AMDGPU_REL32": s - p, "R_AMDGPU_REL64": s - p,
             "R_AMDGPU_REL32_LO": (s - p) & 0xFFFFFFFF, "R_AMDGPU_REL32_HI": (s - p) >> 32,
             "R_AMDGPU_RELATIVE64": base + r.addend, "R_AMDGPU_REL16": (s - p - 4) >> 2}.get(name)
        size = _RELOC_SIZE[name]
        if size:
            out[r.offset:r.offset + size] = (v % (1 << (8 * size))).to_bytes(size, "little")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
def load(data: bytes) -> CodeObject:
    """Parse an AMDGPU HSA code object (v4-v6, ET_DYN or ET_REL)."""
    data = bytes(data)
    if data[:4] != b"\x7fELF":
        raise ProgramError("code object: not an ELF file (bad magic)")
    if len(data) < 64 or data[4] != 2 or data[5] != 1:
        raise ProgramError("code object: ELF header EI_CLASS/EI_DATA: expected a 64-bit little-endian ELF")
    # identification fields read raw: pyelftools names OSABI 64 after ARM's use of the number
    osabi, abi = data[7], data[8]
    e_type, machine = struct.unpack_from("<HH", data, 16)
    flags = struct.unpack_from("<I", data, 48)[0]
    if machine != amdhsa.EM_AMDGPU:
        raise ProgramError(f"code object: ELF header e_machine is {machine}, expected EM_AMDGPU "
                           f"({amdhsa.EM_AMDGPU}): not an AMD GPU binary")
    with _reading("the ELF header"):
        elf = ELFFile(io.BytesIO(data))
    if osabi != amdhsa.ELFOSABI_AMDGPU_HSA:
        raise ProgramError(f"code object: ELF header EI_OSABI is {osabi}, expected ELFOSABI_AMDGPU_HSA "
                           f"({amdhsa.ELFOSABI_AMDGPU_HSA}): not an HSA (ROCm/KFD) code object")
    if not amdhsa.ELFABIVERSION_AMDGPU_HSA_V4 <= abi <= amdhsa.ELFABIVERSION_AMDGPU_HSA_V6:
        raise ProgramError(f"code object: ELF header EI_ABIVERSION {abi} is not code object v4-v6 "
                           f"({amdhsa.ELFABIVERSION_AMDGPU_HSA_V4}-{amdhsa.ELFABIVERSION_AMDGPU_HSA_V6}); rebuild with LLVM >= 14")
    if e_type not in (ET_REL, ET_DYN):
        raise ProgramError(f"code object: ELF header e_type {e_type} is neither ET_REL nor ET_DYN")
    mach = flags & amdhsa.EF_AMDGPU_MACH
    arch = _MACH_NAMES.get(mach, f"mach 0x{mach:x}")

    with _reading("the section headers"):
        sections = [(s.name, s.header, s) for s in elf.iter_sections()]
    if e_type == ET_DYN:
        image, align, addr_of_section = _place_segments(elf, data)
    else:
        image, align, addr_of_section = _place_sections(sections)
    symbols = _symbols(sections, addr_of_section, e_type)
    relocs = _relocations(elf, sections, addr_of_section, e_type, len(image))
    meta = _metadata(sections)
    base0 = _apply(image, relocs, 0)
    kernels = {}
    for name, km in meta.kernels.items():
        where = f"kernel {name!r}"
        if km.symbol not in symbols or symbols[km.symbol][0] is None:
            raise ProgramError(f"code object: {where}: descriptor symbol {km.symbol!r} (metadata .symbol) "
                               "is not defined in the symbol table")
        kd = symbols[km.symbol][0]
        if kd % KD_ALIGN or kd + amdhsa.KD_SIZE > len(image):
            raise ProgramError(f"code object: {where}: kernel descriptor at image offset 0x{kd:x} is not "
                               f"{KD_ALIGN}-byte aligned inside the {len(image)}-byte image")
        desc = KernelDescriptor.from_bytes(base0[kd:kd + amdhsa.KD_SIZE], f"code object: {where}")
        code = kd + desc.kernel_code_entry_byte_offset
        if code % CODE_ALIGN or not 0 <= code < len(image):
            raise ProgramError(f"code object: {where}: kernel_code_entry_byte_offset {desc.kernel_code_entry_byte_offset} "
                               f"puts the entry at image offset {code}, not a {CODE_ALIGN}-byte aligned offset inside the image")
        for field, md in (("kernarg_size", km.kernarg_segment_size),
                          ("group_segment_fixed_size", km.group_segment_fixed_size),
                          ("private_segment_fixed_size", km.private_segment_fixed_size)):
            if getattr(desc, field) != md:
                raise ProgramError(f"code object: {where}: descriptor {field} = {getattr(desc, field)} but the "
                                   f"metadata note says {md}")
        kernels[name] = Kernel(name, kd, code, desc, km)
    return CodeObject(image, align, relocs, kernels, meta, arch, abi, e_type)


def _place_segments(elf, data: bytes) -> tuple[bytes, int, dict]:
    """ET_DYN: lay PT_LOAD segments out at their p_vaddr (relative to base 0)."""
    with _reading("the program headers"):
        loads = [s.header for s in elf.iter_segments() if s.header["p_type"] == "PT_LOAD"]
        loads = [(h["p_offset"], h["p_vaddr"], h["p_filesz"], h["p_memsz"], h["p_align"]) for h in loads]
    if not loads:
        raise ProgramError("code object: ET_DYN without PT_LOAD program headers")
    end, align = 0, 1
    for i, (off, va, fsz, msz, al) in enumerate(loads):
        where = f"code object: PT_LOAD[{i}]"
        if msz < fsz or off + fsz > len(data):
            raise ProgramError(f"{where}: file bytes 0x{off:x}+0x{fsz:x} (memsz 0x{msz:x}) lie outside the "
                               f"{len(data)}-byte file or exceed p_memsz")
        if va + msz > MAX_IMAGE:
            raise ProgramError(f"{where}: p_vaddr 0x{va:x} + p_memsz 0x{msz:x} exceeds the {MAX_IMAGE >> 20} MiB image limit")
        if al > 1 and (al & (al - 1) or va % al != off % al):
            raise ProgramError(f"{where}: p_align 0x{al:x} is not a power of two congruent with p_vaddr/p_offset")
        end, align = max(end, va + msz), max(align, al)
    image = bytearray(end)
    spans = sorted((va, va + msz) for _, va, _, msz, _ in loads)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        if b0 < a1:
            raise ProgramError(f"code object: PT_LOAD segments overlap at vaddr 0x{b0:x}")
    for off, va, fsz, _, _ in loads:
        image[va:va + fsz] = data[off:off + fsz]
    return bytes(image), align, {}


def _place_sections(sections) -> tuple[bytes, int, dict]:
    """ET_REL: concatenate the SHF_ALLOC sections, each at its sh_addralign."""
    addr: dict[int, int] = {}
    chunks, end, align = [], 0, 1
    for idx, (name, h, s) in enumerate(sections):
        if not h["sh_flags"] & SHF_ALLOC:
            continue
        al = max(1, h["sh_addralign"])
        if al & (al - 1) or al > 1 << 16:
            raise ProgramError(f"code object: section {name!r} sh_addralign {al} is not a power of two <= 65536")
        end = (end + al - 1) // al * al
        size = h["sh_size"]
        if end + size > MAX_IMAGE:
            raise ProgramError(f"code object: section {name!r} (0x{size:x} bytes) exceeds the image limit")
        addr[idx] = end
        if h["sh_type"] != "SHT_NOBITS":
            with _reading(f"section {name!r}"):
                body = s.data()
            if len(body) != size:
                raise ProgramError(f"code object: section {name!r} data is {len(body)} bytes, sh_size says {size}")
            chunks.append((end, body))
        end += size
        align = max(align, al)
    image = bytearray(end)
    for off, body in chunks:
        image[off:off + len(body)] = body
    return bytes(image), align, addr


def _sym_value(sym, addr_of_section: dict, e_type: int) -> tuple[int | None, int]:
    """(image offset, or None if undefined / absolute; absolute value)."""
    shndx, value = sym["st_shndx"], sym["st_value"]
    if shndx in ("SHN_UNDEF", SHN_UNDEF):
        return None, 0
    if shndx in ("SHN_ABS", SHN_ABS):
        return None, value
    if e_type == ET_DYN:
        return value, value
    if isinstance(shndx, int) and shndx in addr_of_section:
        return addr_of_section[shndx] + value, 0
    return None, 0


def _symbols(sections, addr_of_section: dict, e_type: int) -> dict[str, tuple[int | None, int]]:
    """name -> (image offset or None if undefined/absolute, absolute value)."""
    want = "SHT_DYNSYM" if e_type == ET_DYN else "SHT_SYMTAB"
    out: dict[str, tuple[int | None, int]] = {}
    for name, h, s in sections:
        if h["sh_type"] != want:
            continue
        with _reading(f"symbol table {name!r}"):
            for sym in s.iter_symbols():
                if sym.name:
                    out[sym.name] = _sym_value(sym, addr_of_section, e_type)
    return out


def _relocations(elf, sections, addr_of_section: dict, e_type: int, size: int) -> list[Relocation]:
    out: list[Relocation] = []
    for name, h, s in sections:
        if h["sh_type"] == "SHT_REL":
            raise ProgramError(f"code object: section {name!r} is SHT_REL; AMDGPU uses SHT_RELA only")
        if h["sh_type"] != "SHT_RELA":
            continue
        if e_type == ET_REL:
            target = h["sh_info"]
            if target not in addr_of_section:
                continue           # relocations of non-loaded sections (debug info)
            place0 = addr_of_section[target]
        else:
            place0 = 0             # ET_DYN: r_offset is a virtual address
        with _reading(f"relocation section {name!r}"):
            symtab = elf.get_section(h["sh_link"]) if h["sh_link"] else None
            rows = []
            for r in s.iter_relocations():
                symi = r["r_info_sym"]
                sym = symtab.get_symbol(symi) if symi and symtab is not None else None
                if symi and sym is None:
                    raise ProgramError(f"code object: section {name!r}: relocation symbol #{symi} has no symbol table")
                rows.append((r["r_offset"], r["r_info_type"], sym, r["r_addend"]))
        for off, typ, sym, addend in rows:
            tname = _R_NAME.get(typ)
            where = f"code object: section {name!r} relocation at 0x{off:x}"
            if tname not in _RELOC_SIZE:
                raise ProgramError(f"{where}: unsupported relocation {tname or f'type {typ}'} (GOT-relative "
                                   "relocations need a GOT; hwdrv loads position-independent kernels only)")
            place = place0 + off
            if place + _RELOC_SIZE[tname] > size:
                raise ProgramError(f"{where}: patches bytes outside the {size}-byte image")
            target_off, absval = None, 0
            if sym is not None and tname != "R_AMDGPU_RELATIVE64":
                with _reading(f"relocation section {name!r} symbol"):
                    target_off, absval = _sym_value(sym, addr_of_section, e_type)
                    undefined = sym["st_shndx"] in ("SHN_UNDEF", SHN_UNDEF)
                if undefined:
                    raise ProgramError(f"{where}: symbol {sym.name!r} is undefined (external symbols are not supported)")
            out.append(Relocation(place, typ, target_off, addend, absval))
    return out


def _metadata(sections) -> CodeObjectMetadata:
    for name, h, s in sections:
        if h["sh_type"] != "SHT_NOTE":
            continue
        with _reading(f"note section {name!r}"):
            body = s.data()
        pos = 0
        while pos + 12 <= len(body):
            namesz, descsz, ntype = struct.unpack_from("<III", body, pos)
            owner_end = pos + 12 + namesz
            desc_at = pos + 12 + (namesz + 3) // 4 * 4
            if desc_at + descsz > len(body):
                raise ProgramError(f"code object: note section {name!r}: note at byte {pos} runs past the section end")
            owner = body[pos + 12:owner_end].rstrip(b"\0")
            if owner == b"AMDGPU" and ntype == amdhsa.NT_AMDGPU_METADATA:
                return parse(body[desc_at:desc_at + descsz])
            pos = desc_at + (descsz + 3) // 4 * 4
    raise ProgramError("code object: no NT_AMDGPU_METADATA note (owner \"AMDGPU\") found; code object v3+ "
                       "from LLVM always has one")
