"""The first sentence of an NVIDIA hang report: which kernel, which instruction, which address,
which access, and why, worded from the evidence the report gathered.

The instruction is the PTX source line on the mock (its PC is an address in the PTX image) and
the SASS offset on the GPU, with the instruction disassembled by ``nvdisasm`` where it is
installed (``nvdisasm -b SM90`` over the kernel's code read back from CPU-visible memory).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from ..hang import Fault, HangReport, WaveError

#: seconds nvdisasm may take (one kernel's code)
NVDISASM_TIMEOUT_S = 10.0
_SASS_LINE = re.compile(r"/\*([0-9a-fA-F]{4,})\*/\s+(.*?)\s*;")

#: what an MMU fault type says about the address, in words (names from dev_fault.h)
_FAULT_WHY = {
    "FAULT_PDE": "which no page table covers",
    "FAULT_PTE": "which has no page mapped",
    "FAULT_VA_LIMIT_VIOLATION": "which lies beyond the address space",
    "FAULT_RO_VIOLATION": "which is read-only",
    "FAULT_WO_VIOLATION": "which is write-only",
    "FAULT_PRIV_VIOLATION": "which is privileged",
    "FAULT_ATOMIC_VIOLATION": "which does not allow atomics",
    "FAULT_UNBOUND_INST_BLOCK": "in a channel with no bound instance block",
}
#: NVRM's SM exception line: "... Graphics SM Warp Exception on (GPC g, TPC t, SM s): <what>"
_WARP_EXCEPTION = re.compile(r"Graphics SM Warp Exception on \([^)]*\): (.*)")


def parse_nvdisasm(text: str) -> dict[int, str]:
    """``{byte offset: instruction}`` from nvdisasm's listing (``/*0040*/  STG.E ... ;``)."""
    return {int(m.group(1), 16): m.group(2).strip() for m in _SASS_LINE.finditer(text)}


def nvdisasm_path() -> str | None:
    return shutil.which("nvdisasm")


def disassemble(code: bytes, arch: str = "SM90") -> dict[int, str]:
    """Disassemble raw SASS ``code`` with nvdisasm (which must be installed)."""
    exe = nvdisasm_path()
    if exe is None:
        raise FileNotFoundError("nvdisasm is not installed")
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        f.write(code)
        path = f.name
    try:
        out = subprocess.run([exe, "-b", arch, path], capture_output=True, text=True, check=True,
                             timeout=NVDISASM_TIMEOUT_S).stdout
    finally:
        os.unlink(path)
    return parse_nvdisasm(out)


def instruction_text(w: WaveError) -> str:
    """``PTX line 9 (st.global.u32 [%rd1], %r1;)`` / ``oob_store+0x40 (STG.E ...)`` / ``""``."""
    if w.source_line:
        m = re.match(r"PTX line (\d+): (.*)", w.source_line)
        if m:
            return f"PTX line {m.group(1)} (`{m.group(2)}`)"
        return w.source_line
    if w.kernel and w.offset is not None:
        return w.where
    return ""


def _kernel(report: HangReport, w: WaveError | None) -> str:
    if w is not None and w.kernel:
        return w.kernel
    return report.launches[0].kernel if report.launches else ""


def headline(report: HangReport) -> str:
    """The report's first sentence (see the module doc)."""
    # an SM's record names the instruction; so does a channel's fault record (no SM) whose PC
    # lies past the start of its kernel (RM's shaderProgramVA is the faulting PC); at offset 0 it
    # may only name the program
    w = next((x for x in report.wave_errors if x.kernel and x.unit is not None),
             next((x for x in report.wave_errors if x.kernel), report.wave_errors[0] if report.wave_errors else None))
    kernel = _kernel(report, w)
    err = f" ({report.error})" if report.error is not None else ""
    where = instruction_text(w) if w is not None and (w.unit is not None or w.offset) else ""
    if report.faults:
        f: Fault = report.faults[0]
        access = {"write": "a write to", "read": "a read of", "atomic": "an atomic on",
                  "prefetch": "a prefetch of"}.get(f.access, "an access to")
        why = _FAULT_WHY.get(f.kind, "which the MMU refused")
        kind = f"{f.kind}, " if f.kind else ""
        who = f"Kernel {kernel}" if kernel else (f"The {f.engine} engine" if f.engine else "The GPU")
        at = f" at {where}" if where else ""
        err = f" ({kind}{report.error})" if report.error is not None else (f" ({f.kind})" if f.kind else "")
        return f"{who} faulted{at}: {access} {f.address:#x}, {why}{err}."
    if w is not None and (w.error or any(w.status.values())):
        who = f"Kernel {kernel}" if kernel else "A kernel"
        at = f" at {where}" if where else ""
        addr = f" (address {w.address:#x})" if w.address is not None else ""
        logged = next((m.group(1) for m in map(_WARP_EXCEPTION.search, report.kernel_log) if m), "")
        what = (f"{logged} (as the kernel log says)" if logged and (w.unit is None or not w.error)
                else w.error or "an SM exception")
        return f"{who} stopped{at}: {what}{addr}{err}."
    if report.cause == "timeout":
        sig = (f"signal {report.signal_va:#x} did not reach {report.expected}"
               + (f" (it holds {report.seen})" if report.seen is not None else "")
               if report.expected is not None and report.signal_va is not None else "the wait timed out")
        acquire = next((c for q in report.queues for c in q.commands if c.stalled and "SEM_EXECUTE" in c.text), None)
        if acquire is not None:
            q = next(q for q in report.queues if acquire in q.commands)
            waits = next((n.split("; ", 1)[1] for n in report.notes
                          if n.startswith(q.name.split()[0] + ":") and "acquire waits" in n), "")
            return (f"The {q.name} is stopped at a semaphore acquire" + (f": it {waits.split('acquire ', 1)[1]}"
                                                                          if waits else "")
                    + f"; {sig}.")
        if kernel:
            return (f"Kernel {kernel} was still running when {sig}: no SM reported an error, so it is "
                    f"looping or waiting.")
        return f"The wait timed out: {sig}; no engine reported an error."
    if report.error is not None:
        return f"The channel was stopped by {report.error}" + (f" while {kernel} was in flight" if kernel else "") + "."
    return ""
