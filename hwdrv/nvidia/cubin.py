"""sm_90 cubin parsing and image linking.

A cubin is an ELF64 file with ``e_machine == EM_CUDA`` that ptxas (or nvlink) writes. This
module reads one with pyelftools into a :class:`CubinImage`:

* per kernel (``.text.<k>`` plus its FUNC symbol) a :class:`KernelInfo`: code placement, register
  count, parameter layout in constant bank 0, constant bank 0 template, static shared memory,
  per-thread local memory, launch bounds, EXIT offsets;
* per function (kernels and ``__noinline__`` callees) a :class:`FunctionInfo` from the module-wide
  ``.nv.info`` records, which are keyed by **symbol index**;
* the other constant banks (``.nv.constant<N>``), ``.nv.global`` (NOBITS, allocated by the caller);
* every ``.nv.info`` record, decoded, for diagnostics (:attr:`CubinImage.records`).

:meth:`CubinImage.link` lays every allocatable PROGBITS section out in one image and applies the
relocations. The layout is fixed at parse time, so :attr:`KernelInfo.text_offset` is known before
linking; only the addresses depend on ``code_va``.

The ELF layer (sections, symbols, relocations, ``.nv.info`` records) is
:mod:`hwdrv.nvidia.elf`; the kernel shapes (:class:`KernelInfo`, :class:`ParamInfo`) are
:mod:`hwdrv.nvidia.kernelinfo`. This module turns the first into the second and links.

Every malformed input raises :class:`~hwdrv.errors.ProgramError` saying what is wrong.
"""
from __future__ import annotations

from ..errors import InvalidArgument, ProgramError
from .elf import (APPLIED_RELOCATIONS, EIATTR, ELF64_EHDR, ELF64_SHDR, EIFMT, RCUDA, SHF_ALLOC,
                  SHN_ABS, SHN_LORESERVE, SHN_UNDEF, SHT_CUDA_INFO, SHT_PROGBITS, STT_FUNC,
                  CudaElf, NvInfoRecord, Relocation, SectionInfo, Symbol, malformed, eiattr_name, reloc_name)
from .kernelinfo import (PARAM_BASE_BY_SM, SHARED_RESERVED_BYTES, SHARED_RESERVED_MIN_SM,
                         SHARED_RESERVED_SECTION, ConstantBank, FunctionInfo, KernelInfo,
                         ParamInfo, lookup_kernel)

__all__ = ["CubinImage", "KernelInfo", "ParamInfo", "RCUDA", "EIATTR", "EIFMT",
           "ELF64_EHDR", "ELF64_SHDR", "IMAGE_ALIGN", "PREFETCH_SLACK", "SHARED_RESERVED_BYTES",
           "PARAM_BASE_BY_SM", "reloc_name", "eiattr_name"]

IMAGE_ALIGN = 128          # every section of the image starts 128-byte aligned
PREFETCH_SLACK = 0x1000    # zero bytes after the image: the instruction prefetcher reads past code
KPARAM_SIZE_SHIFT = 18     # EIATTR_KPARAM_INFO flags word: parameter size in bits 31:18


def _round_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def _bank_name(name: str) -> tuple[int, str | None] | None:
    """``.nv.constant3`` -> (3, None); ``.nv.constant2.k`` -> (2, "k"); else None."""
    prefix = ".nv.constant"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    digits = rest.split(".", 1)
    if not digits[0].isdigit():
        return None
    return int(digits[0]), (digits[1] if len(digits) > 1 else None)




class CubinImage(CudaElf):
    """A parsed cubin. ``kernels`` maps kernel names to :class:`KernelInfo`; ``functions``,
    ``records``, ``sections``, ``constant_banks`` and ``relocations`` are there for loaders and
    diagnostics. Build the uploadable image with :meth:`link`."""

    def __init__(self, binary: bytes | bytearray | memoryview):
        super().__init__(binary)
        self.sections = self._place_sections(self.sections)
        self._by_name = {s.name: s for s in self.sections}
        self.image_size = self._image_size()
        with malformed("reading relocations"):
            self.relocations, self.skipped_relocations = self._read_relocations()
        self.records = self._read_all_records()
        self.functions = self._functions()
        self.constant_banks = self._constant_banks()
        self.global_size, self.global_align = self._global_section()
        self.kernels: dict[str, KernelInfo] = self._kernels()
        self._code_va: int | None = None
        self._global_va: int | None = None

    # ---- public API -------------------------------------------------------------------------

    def kernel(self, name: str) -> KernelInfo:
        """The kernel called ``name``; ProgramError listing the cubin's kernels if absent."""
        return lookup_kernel(self.kernels, name, "cubin")

    def section_offset(self, name: str) -> int:
        """Offset of section ``name`` within the linked image."""
        s = self._by_name.get(name)
        if s is None or s.image_offset is None:
            placed = ", ".join(x.name for x in self.sections if x.image_offset is not None)
            raise ProgramError(f"section {name!r} is not part of the image; placed: {placed}")
        return s.image_offset

    def link(self, code_va: int, global_va: int | None = None) -> bytes:
        """The uploadable image for address ``code_va``: every allocatable PROGBITS section at
        its placement, relocations applied, followed by at least 4 KiB of zeros. ``global_va``
        is where the caller allocated ``.nv.global`` (:attr:`global_size` bytes, aligned to
        :attr:`global_align`); it is needed only when a relocation refers into it."""
        self._check_va("code_va", code_va, IMAGE_ALIGN)
        if global_va is not None:
            self._check_va("global_va", global_va, max(self.global_align, 1))
        image = bytearray(self.image_size)
        for s in self.sections:
            if s.image_offset is not None:
                image[s.image_offset:s.image_offset + len(s.data)] = s.data
        for r in self.relocations:
            self._apply(image, r, code_va, global_va)
        self._code_va, self._global_va = code_va, global_va
        return bytes(image)

    def text_address(self, kernel: str, code_va: int | None = None) -> int:
        """GPU address of ``kernel``'s first instruction (the QMD program address), for
        ``code_va`` or else the address given to the last :meth:`link`."""
        return self._base(code_va) + self.kernel(kernel).text_offset

    def constant_bank_address(self, kernel: str, n: int, code_va: int | None = None) -> int:
        """GPU address of constant bank ``n`` as ``kernel`` sees it: bank 0 is the
        ``.nv.constant0.<k>`` template, others the kernel's own ``.nv.constant<n>.<k>`` or the
        module's ``.nv.constant<n>``."""
        return self._base(code_va) + self.constant_bank(kernel, n).image_offset

    def constant_bank(self, kernel: str, n: int) -> ConstantBank:
        """Constant bank ``n`` as bound for ``kernel`` (ProgramError listing banks if none)."""
        self.kernel(kernel)
        if n == 0:
            s = self._by_name.get(f".nv.constant0.{kernel}")
            if s is None or s.image_offset is None:
                raise ProgramError(f"kernel {kernel!r} has no .nv.constant0.{kernel} section")
            return ConstantBank(0, kernel, s.name, s.data, s.image_offset)
        for b in self.constant_banks:
            if b.index == n and b.kernel == kernel:
                return b
        for b in self.constant_banks:
            if b.index == n and b.kernel is None:
                return b
        have = sorted({0, *self.kernels[kernel].constant_banks})
        raise ProgramError(f"kernel {kernel!r} has no constant bank {n}; it has banks {have}")

    def kernel_banks(self, kernel: str) -> dict[int, ConstantBank]:
        """Every constant bank other than 0 that ``kernel`` binds, by index."""
        return {n: self.constant_bank(kernel, n) for n in self.kernel(kernel).constant_banks}

    def __repr__(self) -> str:
        return f"<CubinImage {self.arch}: {', '.join(self.kernels)}; {self.image_size} bytes>"

    # ---- placement, per-function records ---------------------------------------------------

    @staticmethod
    def _place_sections(sections: list[SectionInfo]) -> list[SectionInfo]:
        """Give every allocatable PROGBITS section (code, constant banks, .nv.global.init) its
        offset in the image. Non-ALLOC PROGBITS (.debug_frame) is host-only data and stays out."""
        out, cursor = [], 0
        for s in sections:
            if s.type == SHT_PROGBITS and s.flags & SHF_ALLOC:
                cursor = _round_up(cursor, max(s.align, IMAGE_ALIGN))
                out.append(SectionInfo(**{**s.__dict__, "image_offset": cursor}))
                cursor += s.size
            else:
                out.append(s)
        return out

    def _image_size(self) -> int:
        end = max((s.image_offset + s.size for s in self.sections if s.image_offset is not None),
                  default=0)
        return _round_up(end, IMAGE_ALIGN) + PREFETCH_SLACK

    def _function_records(self) -> dict[int, dict[int, int]]:
        """Module-wide per-function records: symbol index -> {attribute: value}."""
        per_sym: dict[int, dict[int, int]] = {}
        for r in self.records:
            if r.attr in (EIATTR.REGCOUNT, EIATTR.FRAME_SIZE, EIATTR.MIN_STACK_SIZE,
                          EIATTR.MAX_STACK_SIZE) and self._is_module_info(r.section):
                w = r.words
                if len(w) != 2:
                    raise ProgramError(f"malformed cubin: {r.name} record in {r.section} has "
                                       f"{len(r.payload)} payload bytes, expected 8")
                if w[0] >= len(self.symbols):
                    raise ProgramError(f"malformed cubin: {r.name} refers to symbol {w[0]}, out "
                                       f"of range ({len(self.symbols)} symbols)")
                per_sym.setdefault(w[0], {})[r.attr] = w[1]
        return per_sym

    # ---- functions, banks, kernels -------------------------------------------------------------

    def _functions(self) -> dict[str, FunctionInfo]:
        per_sym = self._function_records()
        out = {}
        for sym in self.symbols:
            if sym.type != STT_FUNC or not 0 < sym.shndx < SHN_LORESERVE:
                continue
            rec = per_sym.get(sym.index, {})
            out[sym.name] = FunctionInfo(
                name=sym.name, symbol_index=sym.index, section=self.sections[sym.shndx].name,
                offset=sym.value, size=sym.size, regs=rec.get(EIATTR.REGCOUNT),
                frame_size=rec.get(EIATTR.FRAME_SIZE, 0),
                min_stack=rec.get(EIATTR.MIN_STACK_SIZE, 0),
                max_stack=rec.get(EIATTR.MAX_STACK_SIZE, 0))
        return out

    def _constant_banks(self) -> list[ConstantBank]:
        out = []
        for s in self.sections:
            parsed = _bank_name(s.name)
            if parsed is None or parsed[0] == 0 or s.image_offset is None:
                continue
            out.append(ConstantBank(parsed[0], parsed[1], s.name, s.data, s.image_offset))
        return out

    def _global_section(self) -> tuple[int, int]:
        s = self._by_name.get(".nv.global")
        if s is None:
            return 0, 0
        return s.size, max(s.align, 1)

    def _kernels(self) -> dict[str, KernelInfo]:
        out = {}
        for s in self.sections:
            if s.name.startswith(".text.") and s.type == SHT_PROGBITS:
                name = s.name[len(".text."):]
                out[name] = self._kernel(name, s)
        return out

    def _kernel(self, name: str, text: SectionInfo) -> KernelInfo:
        sym = next((y for y in self.symbols if y.name == name and y.shndx == text.index
                    and y.type == STT_FUNC), None)
        if sym is None:
            raise ProgramError(f"malformed cubin: {text.name} has no FUNC symbol {name!r}")
        if text.image_offset is None:
            raise ProgramError(f"malformed cubin: {text.name} is not an allocatable section")
        if sym.value + sym.size > text.size:
            raise ProgramError(f"malformed cubin: symbol {name!r} (0x{sym.value:x}+0x{sym.size:x})"
                               f" runs past {text.name} (0x{text.size:x} bytes)")
        info = [r for r in self.records if self._info_for(r.section) == text.index]
        func = self.functions.get(name)
        regs = func.regs if func is not None else None
        if regs is None:
            # Toolchains before CUDA 13 kept the count in .text's sh_info bits 31:24.
            regs = text.info >> 24 or None
        if regs is None:
            raise ProgramError(f"malformed cubin: kernel {name!r} has no EIATTR_REGCOUNT record "
                               f"for its symbol (index {sym.index})")
        c0 = self._by_name.get(f".nv.constant0.{name}")
        c0_data = c0.data if c0 is not None else b""
        c0_size = c0.size if c0 is not None else 0
        param_base, param_size = self._param_bank(name, info)
        if param_size and param_base + param_size > c0_size:
            raise ProgramError(f"malformed cubin: kernel {name!r} parameters end at "
                               f"0x{param_base + param_size:x} but .nv.constant0.{name} is "
                               f"0x{c0_size:x} bytes")
        params = self._params(name, info, param_size)
        maxntid = self._dims(name, info, EIATTR.MAX_THREADS)
        reqntid = self._dims(name, info, EIATTR.REQNTID)
        limits = [d[0] * d[1] * d[2] for d in (maxntid, reqntid) if d is not None]
        shared_raw, shared_reserved, shared_static = self._shared(name)
        fr = func if func is not None else FunctionInfo(name, sym.index, text.name, 0, 0, None,
                                                        0, 0, 0)
        banks = sorted({b.index for b in self.constant_banks if b.kernel in (None, name)})
        return KernelInfo(
            name=name, text_offset=text.image_offset + sym.value, text_size=sym.size or text.size,
            params=params, param_base=param_base, param_size=param_size, regs=regs,
            shared_static=shared_static, shared_raw=shared_raw, shared_reserved=shared_reserved,
            local_per_thread=max(fr.min_stack, fr.max_stack, fr.frame_size),
            max_threads=min(limits) if limits else None, maxntid=maxntid, reqntid=reqntid,
            maxreg_count=self._hval(info, EIATTR.MAXREG_COUNT),
            constant0_size=c0_size, constant0=c0_data, constant_banks=tuple(banks),
            exit_offsets=tuple(w for r in info if r.attr == EIATTR.EXIT_INSTR_OFFSETS
                               for w in r.words),
            cuda_api_version=next((r.words[0] for r in info
                                   if r.attr == EIATTR.CUDA_API_VERSION and r.words), None),
            barriers=self._hval(info, EIATTR.NUM_BARRIERS) or 0,
            symbol_index=sym.index, frame_size=fr.frame_size, min_stack=fr.min_stack,
            max_stack=fr.max_stack,
            calls=any(y.shndx == text.index and y.type == STT_FUNC and y.index != sym.index for y in self.symbols))

    def _info_for(self, section_name: str) -> int | None:
        s = self._by_name.get(section_name)
        return s.info if s is not None and s.type == SHT_CUDA_INFO and s.info else None

    def _param_bank(self, name: str, info: list[NvInfoRecord]) -> tuple[int, int]:
        recs = [r for r in info if r.attr == EIATTR.PARAM_CBANK]
        if not recs:
            # A kernel without parameters has no PARAM_CBANK record (observed: `noargs`).
            size = self._hval(info, EIATTR.CBANK_PARAM_SIZE) or 0
            return PARAM_BASE_BY_SM[self.sm], size
        w = recs[-1].words
        if len(w) != 2:
            raise ProgramError(f"malformed cubin: EIATTR_PARAM_CBANK of {name!r} has "
                               f"{len(recs[-1].payload)} payload bytes, expected 8")
        return w[1] & 0xFFFF, w[1] >> 16

    def _params(self, name: str, info: list[NvInfoRecord], param_size: int) \
            -> tuple[ParamInfo, ...]:
        by_ordinal: dict[int, ParamInfo] = {}
        for r in info:
            if r.attr not in (EIATTR.KPARAM_INFO, EIATTR.KPARAM_INFO_V2):
                continue
            w = r.words
            if len(w) != 3:
                raise ProgramError(f"malformed cubin: {r.name} of {name!r} has "
                                   f"{len(r.payload)} payload bytes, expected 12")
            ordinal, offset = w[1] & 0xFFFF, w[1] >> 16
            if r.attr == EIATTR.KPARAM_INFO:
                size, flags = w[2] >> KPARAM_SIZE_SHIFT, w[2] & ((1 << KPARAM_SIZE_SHIFT) - 1)
            else:
                size, flags = w[2] & 0xFFFF, w[2] >> 16
            if ordinal in by_ordinal:
                raise ProgramError(f"malformed cubin: kernel {name!r} describes parameter "
                                   f"{ordinal} twice")
            if offset + size > param_size:
                raise ProgramError(f"malformed cubin: kernel {name!r} parameter {ordinal} "
                                   f"(offset 0x{offset:x}, {size} bytes) lies outside its "
                                   f"0x{param_size:x}-byte parameter block")
            by_ordinal[ordinal] = ParamInfo(offset=offset, size=size, ordinal=ordinal,
                                            flags=flags)
        if sorted(by_ordinal) != list(range(len(by_ordinal))):
            raise ProgramError(f"malformed cubin: kernel {name!r} parameter ordinals "
                               f"{sorted(by_ordinal)} are not 0..{len(by_ordinal) - 1}")
        return tuple(by_ordinal[i] for i in range(len(by_ordinal)))

    @staticmethod
    def _dims(name: str, info: list[NvInfoRecord], attr: int) -> tuple[int, int, int] | None:
        recs = [r for r in info if r.attr == attr]
        if not recs:
            return None
        w = recs[-1].words
        if len(w) != 3:
            raise ProgramError(f"malformed cubin: {eiattr_name(attr)} of {name!r} has "
                               f"{len(recs[-1].payload)} payload bytes, expected 12")
        return w[0], w[1], w[2]

    @staticmethod
    def _hval(info: list[NvInfoRecord], attr: int) -> int | None:
        return next((r.value for r in info if r.attr == attr and r.value is not None), None)

    def _shared(self, name: str) -> tuple[int, int, int]:
        s = self._by_name.get(f".nv.shared.{name}")
        raw = s.size if s is not None else 0
        if self.sm < SHARED_RESERVED_MIN_SM:
            return raw, 0, raw
        if SHARED_RESERVED_SECTION in self._by_name:
            return raw, SHARED_RESERVED_BYTES, max(raw, SHARED_RESERVED_BYTES)
        return raw, SHARED_RESERVED_BYTES, raw + SHARED_RESERVED_BYTES

    # ---- linking ---------------------------------------------------------------------------

    @staticmethod
    def _check_va(what: str, va: int, align: int) -> None:
        if not isinstance(va, int) or va < 0 or va >= 1 << 64:
            raise InvalidArgument(f"{what} must be an int in [0, 2**64), got {va!r}")
        if va % align:
            raise InvalidArgument(f"{what} 0x{va:x} must be {align}-byte aligned")

    def _base(self, code_va: int | None) -> int:
        if code_va is not None:
            self._check_va("code_va", code_va, IMAGE_ALIGN)
            return code_va
        if self._code_va is None:
            raise InvalidArgument("pass code_va, or link() the image first")
        return self._code_va

    def _symbol_address(self, sym: Symbol, code_va: int, global_va: int | None) -> int:
        if sym.shndx == SHN_ABS:
            return sym.value
        if sym.shndx == SHN_UNDEF or sym.shndx >= SHN_LORESERVE:
            raise ProgramError(f"relocation against undefined symbol {sym.name!r}: device-side "
                               f"assert/printf and other driver-provided functions are not "
                               f"available without libcuda")
        s = self.sections[sym.shndx]
        if s.image_offset is not None:
            return code_va + s.image_offset + sym.value
        if s.name == ".nv.global":
            if global_va is None:
                raise ProgramError(f"symbol {sym.name!r} lives in .nv.global: allocate "
                                   f"{self.global_size} bytes (aligned to {self.global_align}) "
                                   f"and pass their address as global_va")
            return global_va + sym.value
        raise ProgramError(f"relocation against symbol {sym.name!r} in {s.name}, which has no "
                           f"address in the image")

    def _apply(self, image: bytearray, r: Relocation, code_va: int, global_va: int | None) -> None:
        sym = self.symbols[r.symbol]
        value = self._symbol_address(sym, code_va, global_va) + r.addend
        f = APPLIED_RELOCATIONS[r.type]
        value >>= f.shift
        limit = 1 << (8 * f.width)
        if f.checked and not 0 <= value < limit:
            raise ProgramError(f"{reloc_name(r.type)} against {sym.name!r}: address 0x{value:x} "
                               f"does not fit in {8 * f.width} bits")
        at = self.sections[r.target].image_offset + r.offset + f.skip
        image[at:at + f.width] = (value % limit).to_bytes(f.width, "little")
