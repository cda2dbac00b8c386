"""Errors of the PTX interpreter.

Parse-time problems are :class:`PTXError` (a :class:`hwdrv.errors.ProgramError` carrying the PTX
source line). Run-time problems are :class:`hwdrv.errors.MockFault` subclasses; every fault that
escapes :func:`launch` carries the SM error-state context as attributes (see :func:`annotate`).
"""
from __future__ import annotations

from hwdrv.errors import MockFault, ProgramError


class PTXError(ProgramError):
    """Malformed or unsupported PTX, found while parsing. ``line`` is 1-based (0 if unknown)."""

    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(f"PTX line {line}: {message}")


class IllegalInstruction(MockFault):
    """An instruction that cannot be executed at run time (unsupported form, bad operand value)."""

    def __init__(self, message: str, instruction: str = "", line: int = 0):
        self.message, self.instruction, self.line = message, instruction, line
        super().__init__(message)


class InterpreterDefect(MockFault):
    """A Python exception inside the interpreter while executing an instruction: a bug in the
    mock, not a fault of the kernel. Kept apart from IllegalInstruction so that no test (and no
    hang report) can mistake an interpreter crash for the SM refusing an instruction."""

    def __init__(self, message: str, instruction: str = "", line: int = 0):
        self.message, self.instruction, self.line = message, instruction, line
        super().__init__(message)


class LaunchTimeout(MockFault):
    """The kernel ran past its step budget or deadline, or was cancelled: a hung kernel."""

    def __init__(self, message: str, steps: int = 0, reason: str = "max_steps"):
        self.steps, self.reason = steps, reason
        super().__init__(message)


class AddressSpaceFault(MockFault):
    """A bad access to a space the interpreter owns (shared, local, param, const windows), or a
    misaligned access. Same attributes as ``hwdrv.mock.gpumem.MemoryFault`` plus ``space``."""

    def __init__(self, address: int, access: str, reason: str, space: str):
        self.address, self.access, self.reason, self.space = address, access, reason, space
        super().__init__(f"{space} memory {access} fault at 0x{address:x}: {reason}")


def annotate(exc: MockFault, *, entry: str, cta: tuple[int, int, int], thread: tuple[int, int, int],
             warp: int, lane: int, pc: int, line: int, instruction: str) -> MockFault:
    """Attach the SM error-state context to a fault (as attributes and a note) and return it.

    The mock GPU reads these to fill its ESR/SM state: which CTA, warp, lane and PC faulted.
    ``lane`` becomes the lane within the warp; a page-table fault's own ``lane`` (the element
    index of the vector access) is kept as ``vector_lane``."""
    if not hasattr(exc, "_ptx_noted") and getattr(exc, "lane", None) is not None:
        exc.vector_lane = exc.lane
    exc.entry, exc.cta, exc.thread, exc.warp, exc.lane = entry, cta, thread, warp, lane
    exc.pc, exc.line, exc.instruction = pc, line, instruction
    if not hasattr(exc, "_ptx_noted"):
        exc._ptx_noted = True
        exc.add_note(f"in kernel {entry}: CTA {cta} thread {thread} (warp {warp}, lane {lane}), "
                     f"pc {pc}, PTX line {line}: {instruction}")
    return exc
