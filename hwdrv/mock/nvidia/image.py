"""Finding the kernel a QMD's program address points at, in the mock NVIDIA binary format.

A PTX image (docs/internals.md, "Mock NVIDIA binary format") is `HWDRV-PTX\\0`, the UTF-8 PTX
module text, and a NUL. The QMD program address points at the text `.entry k` (or
`.visible .entry k`) inside the image. The mock GPU scans back from there to the nearest magic
(at most 16 MiB; the image is contiguous in one mapping), parses the module once and caches it by
image VA + content hash, so a re-uploaded image at the same VA is re-parsed.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass

from hwdrv.ioctl import hostmem
from hwdrv.mock.gpumem import GpuPageTable, MemoryFault

from . import ptx

MAGIC = b"HWDRV-PTX\0"
MAX_SCAN = 16 << 20
_ENTRY = re.compile(rb"\s*(?:\.visible\s+|\.weak\s+)?\.entry\s+([A-Za-z_$%][A-Za-z0-9_$]*)")


class ImageError(Exception):
    """The program address does not lead to a usable PTX image (a launch error)."""


@dataclass
class Kernel:
    module: "ptx.Module"
    entry: str
    image_va: int


class ImageCache:
    """Parsed PTX images by (image VA, content hash)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modules: dict[tuple[int, bytes], "ptx.Module"] = {}
        self._starts: dict[int, tuple[int, int]] = {}      # program VA -> (image VA, text length)

    def kernel_at(self, pt: GpuPageTable, program_va: int) -> Kernel:
        """The module and entry whose `.entry` text starts at `program_va`."""
        image_va, text = self._image(pt, program_va)
        rel = program_va - image_va - len(MAGIC)
        m = _ENTRY.match(text, rel) if 0 <= rel < len(text) else None
        if m is None:
            snippet = text[max(rel, 0):max(rel, 0) + 40]
            raise ImageError(f"program address {program_va:#x} is {rel} bytes into the PTX image at "
                             f"{image_va:#x}, where the text is {snippet!r}, not '.entry <name>': the "
                             f"QMD program address must point at the kernel's .entry directive")
        key = (image_va, hashlib.blake2b(text, digest_size=16).digest())
        with self._lock:
            mod = self._modules.get(key)
        if mod is None:
            mod = ptx.parse(text.decode("utf-8"))
            with self._lock:
                self._modules[key] = mod
        name = m.group(1).decode()
        if name not in mod.entries:
            raise ImageError(f"kernel {name!r} at {program_va:#x} is not an entry of the parsed module "
                             f"(entries: {sorted(mod.entries)})")
        return Kernel(mod, name, image_va)

    def _image(self, pt: GpuPageTable, program_va: int) -> tuple[int, bytes]:
        try:
            pt.translate(program_va, 1, "fetch")
        except MemoryFault:
            raise
        cached = self._starts.get(program_va)
        if cached is not None:
            image_va, n = cached
            try:
                data = pt.read(image_va, len(MAGIC) + n + 1)
                if data.startswith(MAGIC) and data[-1] == 0 and 0 not in data[len(MAGIC):-1]:
                    return image_va, data[len(MAGIC):-1]
            except MemoryFault:
                pass
        image_va = self._scan_back(pt, program_va)
        text = self._text(pt, image_va + len(MAGIC))
        self._starts[program_va] = (image_va, len(text))
        return image_va, text

    @staticmethod
    def _mapping(pt: GpuPageTable, va: int):
        for m in pt.mappings():
            if m.va <= va < m.va + m.size:
                return m
        raise MemoryFault(va, "fetch", "unmapped", 1)

    def _scan_back(self, pt: GpuPageTable, program_va: int) -> int:
        m = self._mapping(pt, program_va)
        lo = max(m.va, program_va - MAX_SCAN)
        end = min(program_va + len(MAGIC), m.va + m.size)
        data = hostmem.read(m.host_addr + (lo - m.va), end - lo)
        pos = data.rfind(MAGIC, 0, program_va - lo + len(MAGIC) - 1)
        if pos < 0:
            raise ImageError(f"no {MAGIC!r} header within {program_va - lo:#x} bytes before program address "
                             f"{program_va:#x}: on mock:nvidia the program must be a PTX image "
                             f"(docs/internals.md, 'Mock NVIDIA binary format')")
        return lo + pos

    def _text(self, pt: GpuPageTable, text_va: int) -> bytes:
        m = self._mapping(pt, text_va)
        data = hostmem.read(m.host_addr + (text_va - m.va), m.va + m.size - text_va)
        nul = data.find(b"\0")
        if nul < 0:
            raise ImageError(f"the PTX image text at {text_va:#x} has no terminating NUL before the end of "
                             f"its mapping")
        return data[:nul]
