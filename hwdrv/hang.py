"""HangReport: what the hardware said when a wait failed or a fault was reported.

Backends fill it from real state (error notifiers, fault buffers, SM error registers, queue
read/write pointers, decoded command streams, registers, the kernel log); the mock GPUs fill it
from their own state. ``to_text()`` is for people: one plain sentence (``headline``: which kernel,
which instruction, which address, which access, why) and then the evidence, section by section;
``to_json()`` is for tools, ``HangReport.from_json()`` reads one back. Unknown facts are left out,
never printed as ``?`` or ``None``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Register:
    """One register value with its decoded fields."""
    name: str
    value: int
    fields: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    offset: int | None = None        # register offset (e.g. in BAR0) where it is a hardware register


@dataclass
class RefusedRegister:
    """A register the driver would not let this client read, and the status it gave."""
    name: str
    offset: int
    status: str
    source: str = ""


@dataclass
class Command:
    """One decoded command of a queue's stream."""
    offset: int            # byte offset or address of the command
    text: str              # decoded, e.g. "COMPUTE.SEND_PCAS_A = 0x12345"
    stalled: bool = False  # the command the queue is stopped at


@dataclass
class QueueState:
    """Where one hardware queue stands."""
    name: str
    get: int | None = None           # read pointer (entries or bytes, see ``units``)
    put: int | None = None           # write pointer
    units: str = "entries"
    commands: list[Command] = field(default_factory=list)


@dataclass
class Launch:
    """A kernel launch that was in flight."""
    kernel: str
    grid: tuple
    block: tuple
    args: list[str] = field(default_factory=list)
    program_address: int | None = None
    queue: str = ""


@dataclass
class Fault:
    """A memory fault the hardware recorded."""
    address: int
    access: str = ""          # read / write / atomic / prefetch / fetch
    kind: str = ""            # e.g. FAULT_PTE, unmapped
    engine: str = ""          # engine or client (e.g. GPCCLIENT_T1_0, HUBCLIENT_ESC)
    source: str = ""


@dataclass
class ErrorCode:
    """The error number the driver reported for a channel / queue / context, e.g. NVIDIA's
    ``Xid 31``, a KFD memory-exception event, a kgsl fault code."""
    vendor: str               # nvidia / amd / qcom
    kind: str                 # what the number is: "Xid", "KFD event", "kgsl fault", ...
    code: int
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.code}" + (f" {self.name}" if self.name else "")


@dataclass
class WaveError:
    """Error state of one warp / wave / fiber group. ``unit`` is the SM, CU or SP that ran it
    and ``wave`` its slot there (None where the source does not say, e.g. a shader PC from a
    channel's fault record); ``status`` holds the raw status words by their hardware names
    (NVIDIA: HWW_GLOBAL_ESR / HWW_WARP_ESR; AMD: TRAPSTS, IB_STS, ...), ``error`` their
    decoded meaning."""
    unit: int | None = None
    wave: int | None = None
    status: dict[str, int] = field(default_factory=dict)
    error: str = ""
    pc: int | None = None
    address: int | None = None
    kernel: str = ""
    source_line: str = ""
    offset: int | None = None  # byte offset of ``pc`` in ``kernel``'s code

    @property
    def where(self) -> str:
        """``kernel+0xOFF`` (or just the kernel, or "")."""
        return f"{self.kernel}+{self.offset:#x}" if self.kernel and self.offset is not None else self.kernel

    def describe(self, unit_name: str = "unit") -> str:
        """One line, printing only what is known."""
        parts = []
        if self.unit is not None:
            parts.append(f"{unit_name} {self.unit}")
        if self.wave is not None:
            parts.append(f"wave {self.wave}")
        if self.error:
            parts.append(self.error)
        parts.extend(f"{k}={v:#x}" for k, v in self.status.items())
        if self.pc is not None:
            parts.append(f"pc={self.pc:#x}")
        if self.address is not None:
            parts.append(f"addr={self.address:#x}")
        if self.kernel:
            parts.append(f"in {self.where}")
        if self.source_line:
            parts.append(f"({self.source_line})")
        return " ".join(parts)


@dataclass
class HangReport:
    """State gathered when a wait timed out, a fault was reported, or on request."""
    device: str
    cause: str                               # timeout / mmu_fault / exception / channel_error / requested
    error: ErrorCode | None = None
    signal_va: int | None = None
    expected: int | None = None
    seen: int | None = None
    queues: list[QueueState] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    wave_errors: list[WaveError] = field(default_factory=list)
    registers: list[Register] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what the wave/warp's unit is called on this vendor (SM, CU, SP)
    unit_name: str = "unit"
    #: one plain sentence saying what went wrong (the backend words it from the evidence)
    headline: str = ""
    #: registers the driver refused to read, with its status
    refused_registers: list[RefusedRegister] = field(default_factory=list)
    #: kernel log lines about this GPU since the device opened or the previous report
    kernel_log: list[str] = field(default_factory=list)
    #: why the kernel log could not be read ("" if it was read)
    kernel_log_error: str = ""

    def summary(self) -> str:
        """One paragraph: the headline (or, where the backend gave none, the cause) and the most
        telling facts."""
        parts = [self.headline or f"cause: {self.cause}"]
        if self.error is not None:
            parts.append(str(self.error))
        if self.expected is not None:
            parts.append(f"signal {self.signal_va:#x} expected >= {self.expected}"
                         + (f", saw {self.seen}" if self.seen is not None else ""))
        for f in self.faults[:2]:
            parts.append(" ".join(x for x in (f"fault at {f.address:#x}", f.access, f.kind, f.engine) if x))
        for w in self.wave_errors[:2]:
            parts.append(w.describe(self.unit_name))
        for q in self.queues:
            st = next((c for c in q.commands if c.stalled), None)
            if st is not None:
                parts.append(f"{q.name} stalled at {st.text}")
        return "; ".join(parts)

    def to_text(self) -> str:
        """The report for a person, top-down: headline, then the evidence sections."""
        out = [f"HangReport for {self.device}"]
        if self.headline:
            out.append(f"  {self.headline}")
        out.append("")
        what = [f"cause: {self.cause}"]
        if self.error is not None:
            what.append(f"error: {self.error}")
        if self.expected is not None:
            what.append(f"signal {self.signal_va:#x} expected >= {self.expected}"
                        + (f", holds {self.seen}" if self.seen is not None else ""))
        out.append("  " + "; ".join(what))

        def section(title: str, lines: list[str]) -> None:
            if lines:
                out.append(f"  {title}:")
                out.extend(f"    {x}" for x in lines)

        section("faults", [" ".join(x for x in (f"{f.address:#x}", f.access, f.kind,
                                                 f"by {f.engine}" if f.engine else "") if x)
                           + (f"  [{f.source}]" if f.source else "") for f in self.faults])
        section(f"wave errors ({self.unit_name})", [w.describe(self.unit_name) for w in self.wave_errors])
        section("in-flight launches", [
            f"{ln.kernel}" + (f" @ {ln.program_address:#x}" if ln.program_address is not None else "")
            + f" grid={ln.grid} block={ln.block} args=[{', '.join(ln.args)}]" + (f" ({ln.queue})" if ln.queue else "")
            for ln in self.launches])
        for q in self.queues:
            where = " ".join(f"{k}={v}" for k, v in (("get", q.get), ("put", q.put)) if v is not None)
            out.append(f"  queue {q.name}: {where} ({q.units})")
            for c in q.commands:
                out.append(f"    {'>>' if c.stalled else '  '} {c.offset:#010x}  {c.text}")
        section("registers", [_register_line(r) for r in self.registers])
        section("registers the driver refused", [f"{r.name} @ {r.offset:#x}: {r.status}"
                                                 + (f"  [{r.source}]" if r.source else "")
                                                 for r in self.refused_registers])
        if self.kernel_log_error:
            section("kernel log", [self.kernel_log_error])
        else:
            section("kernel log", self.kernel_log or ["(no lines about this GPU)"])
        section("notes", self.notes)
        return "\n".join(out)

    def to_json(self) -> str:
        """Machine-readable form (``HangReport.from_json`` reads it back)."""
        return json.dumps({"format": "hwdrv.HangReport/2", **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "HangReport":
        """Read a report written by :meth:`to_json`."""
        from .errors import InvalidArgument
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"not a HangReport JSON document: {e}") from None
        if not isinstance(d, dict) or d.pop("format", None) != "hwdrv.HangReport/2":
            raise InvalidArgument("not a HangReport JSON document (missing format "
                                  "'hwdrv.HangReport/2')")
        kinds = {"queues": QueueState, "launches": Launch, "faults": Fault,
                 "wave_errors": WaveError, "registers": Register, "refused_registers": RefusedRegister}
        known = {f.name for f in fields(cls)}
        extra = set(d) - known
        if extra:
            raise InvalidArgument(f"unknown HangReport fields {sorted(extra)}")
        for key, kcls in kinds.items():
            items = []
            for item in d.get(key, []):
                if kcls is QueueState:
                    item = dict(item, commands=[Command(**c) for c in item.get("commands", [])])
                if kcls is Launch:
                    item = dict(item, grid=tuple(item["grid"]), block=tuple(item["block"]))
                items.append(kcls(**item))
            d[key] = items
        if d.get("error") is not None:
            d["error"] = ErrorCode(**d["error"])
        try:
            return cls(**d)
        except TypeError as e:
            raise InvalidArgument(f"malformed HangReport JSON document: {e}") from None


def _register_line(r: Register) -> str:
    fl = " ".join(f"{k}={v:#x}" if isinstance(v, int) and not isinstance(v, bool) and v > 9 else f"{k}={v}"
                  for k, v in r.fields.items())
    at = f" @ {r.offset:#x}" if r.offset is not None else ""
    return f"{r.name}{at} = {r.value:#x} {fl} {('[' + r.source + ']') if r.source else ''}".rstrip().replace("  ", " ")

