"""Fetching the kernel a QMD's program address points at.

On ``mock:nvidia`` a kernel's code is PTX text (docs/internals.md, "Mock NVIDIA binary format"):
the QMD program address is the first byte of a NUL-terminated PTX module that defines exactly one
``.entry``, the kernel (with the module's variables and device functions). The mock GPU reads it
from GPU memory through the channel's page table, as the SM fetches code: at most
:data:`MAX_TEXT` bytes, inside one mapping. It parses a text once and caches the module by
(program address, content hash), so code re-uploaded at the same address is parsed again.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from hwdrv.ioctl import hostmem
from hwdrv.mock.gpumem import GpuPageTable, MemoryFault

from . import ptx
from .ptx.ast import Imm

MAX_TEXT = 16 << 20
NAMED_BARRIERS = 16               # per CTA on sm_90
_READ_CHUNK = 64 << 10


class ImageError(Exception):
    """The program address does not lead to a kernel the mock can run (a launch error)."""


@dataclass
class Kernel:
    """The module and entry at a program address, with where each PTX line starts in the text
    (so a fault's PTX line becomes a PC: program address + byte offset)."""
    module: "ptx.Module"
    entry: str
    text: bytes
    line_starts: list[int] = field(default_factory=list)
    barriers: int = 0                 # named barriers the entry uses (highest id + 1)

    def line_offset(self, line: int) -> int:
        """Byte offset of 1-based PTX ``line`` in the text (0 if out of range)."""
        return self.line_starts[line - 1] if 1 <= line <= len(self.line_starts) else 0


def _barriers(entry: "ptx.Entry") -> int:
    """Named barriers an entry's bar/barrier instructions use: highest immediate id + 1; all 16
    if an id is in a register. bar.warp and barrier.cluster use none (they take no id)."""
    need = 0
    for ins in entry.function.instrs if entry.function is not None else ():
        if ins.opcode not in ("bar", "barrier") or "warp" in ins.mods or "cluster" in ins.mods:
            continue
        bid = ins.operands[1] if "red" in ins.mods else ins.operands[0]
        need = max(need, int(bid.value) + 1 if isinstance(bid, Imm) else NAMED_BARRIERS)
    return need


class ImageCache:
    """Parsed kernel texts by (program address, content hash)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kernels: dict[tuple[int, bytes], Kernel] = {}
        self._lengths: dict[int, int] = {}          # program VA -> text length last seen there

    def kernel_at(self, pt: GpuPageTable, program_va: int) -> Kernel:
        """The kernel whose text starts at ``program_va``; MemoryFault if the address is not
        mapped, ImageError if what is there is not one NUL-terminated PTX module with one entry."""
        text = self._text(pt, program_va)
        key = (program_va, hashlib.blake2b(text, digest_size=16).digest())
        with self._lock:
            k = self._kernels.get(key)
        if k is not None:
            return k
        try:
            src = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ImageError(f"the code at program address {program_va:#x} is not PTX text (byte "
                             f"{e.start} is not UTF-8): on mock:nvidia the QMD program address must "
                             f"point at a kernel's PTX text (docs/internals.md, 'Mock NVIDIA binary "
                             f"format')") from None
        mod = ptx.parse(src)
        if len(mod.entries) != 1:
            raise ImageError(f"the PTX text at program address {program_va:#x} defines "
                             f"{len(mod.entries)} entries ({sorted(mod.entries)}); a kernel's text "
                             f"defines exactly one")
        starts = [0] + [i + 1 for i, c in enumerate(text) if c == 0x0A]
        name = next(iter(mod.entries))
        k = Kernel(mod, name, text, starts, _barriers(mod.entries[name]))
        with self._lock:
            self._kernels[key] = k
        return k

    def _text(self, pt: GpuPageTable, va: int) -> bytes:
        pt.translate(va, 1, "fetch")                 # MemoryFault: the SM's instruction fetch faults
        n = self._lengths.get(va)
        if n is not None:
            try:
                data = pt.read(va, n + 1)
                if data[-1] == 0 and 0 not in data[:-1]:
                    return data[:-1]
            except MemoryFault:
                pass
        m = next(m for m in pt.mappings() if m.va <= va < m.va + m.size)
        end = min(m.va + m.size, va + MAX_TEXT)
        out = bytearray()
        pos = va
        while pos < end:
            chunk = hostmem.read(m.host_addr + (pos - m.va), min(_READ_CHUNK, end - pos))
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                self._lengths[va] = len(out)
                return bytes(out)
            out += chunk
            pos += len(chunk)
        raise ImageError(f"the kernel text at {va:#x} has no terminating NUL within "
                         f"{end - va:#x} bytes (the end of its mapping or {MAX_TEXT:#x})")
