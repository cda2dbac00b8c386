"""Faults the RDNA3 emulator raises: what the hardware's trap/exception path would report."""
from __future__ import annotations

from ....errors import MockFault


class ShaderFault(MockFault):
    """A wave stopped on an exception: s_trap, an illegal or unsupported instruction, a timeout.
    Carries the state a debugger reads from the wave (gfx11 SQ_WAVE_* registers):
    ``pc`` (byte address), ``wave`` (wave index in the dispatch), ``workgroup`` ((x, y, z)),
    ``disasm`` (the instruction's text), ``exec`` (EXEC mask), ``status``/``trapsts``/``hw_id``
    (register-like words), ``kind`` ("trap" | "illegal" | "unsupported" | "timeout"),
    ``snapshot`` (a :class:`~.snapshot.WaveSnapshot` of the resident waves; None for a dispatch
    refused before any wave started)."""

    def __init__(self, kind: str, message: str, *, pc: int, wave: int, workgroup: tuple,
                 disasm: str, exec_mask: int, status: int = 0, trapsts: int = 0, hw_id: int = 0,
                 sgprs: list[int] | None = None, snapshot=None):
        self.kind, self.pc, self.wave, self.workgroup, self.disasm = kind, pc, wave, workgroup, disasm
        self.exec, self.status, self.trapsts, self.hw_id = exec_mask, status, trapsts, hw_id
        self.sgprs = sgprs or []
        self.snapshot = snapshot
        super().__init__(f"shader {kind}: {message} at pc {pc:#x} ({disasm!r}), wave {wave}, "
                         f"workgroup {workgroup}, EXEC {exec_mask:#010x}, STATUS {status:#010x}, "
                         f"TRAPSTS {trapsts:#010x}, HW_ID {hw_id:#010x}")


class ShaderTimeout(ShaderFault):
    """The dispatch ran past its deadline or was cancelled (an endless loop never hangs the mock)."""


class Unsupported(Exception):
    """Raised while compiling an instruction the emulator does not implement (turned into a
    ShaderFault with the wave state when a wave reaches it)."""
