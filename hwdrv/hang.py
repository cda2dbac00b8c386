"""HangReport: what the hardware said when a wait failed or a fault was reported.

Backends fill it from real state (error notifiers, fault buffers, SM error registers, queue
read/write pointers, decoded command streams); the mock GPUs fill it from their own state.
``to_text()`` is for people, ``to_json()`` for tools, ``HangReport.from_json()`` reads one back.
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
class WarpError:
    """An SM / wave error state (``sm`` None: the source names no SM, e.g. a shader PC from
    the channel's fault record)."""
    sm: int | None
    warp: int | None = None
    global_esr: int = 0
    warp_esr: int = 0
    pc: int | None = None
    error: str = ""           # decoded warp error name
    address: int | None = None
    kernel: str = ""
    source_line: str = ""
    offset: int | None = None  # byte offset of ``pc`` in ``kernel``'s code

    @property
    def where(self) -> str:
        """``kernel+0xOFF`` (or just the kernel, or "")."""
        return f"{self.kernel}+{self.offset:#x}" if self.kernel and self.offset is not None else self.kernel


@dataclass
class HangReport:
    """State gathered when a wait timed out, a fault was reported, or on request."""
    device: str
    cause: str                               # timeout / mmu_fault / exception / channel_error / requested
    xid: int | None = None
    xid_name: str = ""
    signal_va: int | None = None
    expected: int | None = None
    seen: int | None = None
    queues: list[QueueState] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    warp_errors: list[WarpError] = field(default_factory=list)
    registers: list[Register] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph: the cause and the most telling facts."""
        parts = [f"cause: {self.cause}"]
        if self.xid is not None:
            parts.append(f"Xid {self.xid} {self.xid_name}".rstrip())
        if self.expected is not None:
            parts.append(f"signal {self.signal_va:#x} expected >= {self.expected}, saw {self.seen}")
        for f in self.faults[:2]:
            parts.append(f"fault at {f.address:#x} ({f.access} {f.kind} {f.engine})".replace("  ", " "))
        for w in self.warp_errors[:2]:
            pc = f" pc {w.pc:#x}" if w.pc is not None else ""
            parts.append(f"SM {'?' if w.sm is None else w.sm} warp {w.warp}: {w.error or hex(w.warp_esr)}{pc}"
                         f"{' in ' + w.where if w.kernel else ''}")
        for q in self.queues:
            st = next((c for c in q.commands if c.stalled), None)
            if st is not None:
                parts.append(f"{q.name} stalled at {st.text}")
        return "; ".join(parts)

    def to_text(self) -> str:
        """A readable multi-line report."""
        out = [f"HangReport for {self.device}", f"  {self.summary()}"]
        if self.launches:
            out.append("  in-flight launches:")
            for ln in self.launches:
                pa = f" @ {ln.program_address:#x}" if ln.program_address is not None else ""
                out.append(f"    {ln.kernel}{pa} grid={ln.grid} block={ln.block} "
                           f"args=[{', '.join(ln.args)}] {ln.queue}".rstrip())
        for f in self.faults:
            out.append(f"  fault: address={f.address:#x} access={f.access} kind={f.kind} "
                       f"engine={f.engine} ({f.source})")
        for w in self.warp_errors:
            pc = f"{w.pc:#x}" if w.pc is not None else "?"
            addr = f" addr={w.address:#x}" if w.address is not None else ""
            out.append(f"  SM {'?' if w.sm is None else w.sm} warp {w.warp}: global_esr={w.global_esr:#x} "
                       f"warp_esr={w.warp_esr:#x} {w.error} pc={pc}{addr} {w.where} "
                       f"{w.source_line}".rstrip())
        for q in self.queues:
            out.append(f"  queue {q.name}: get={q.get} put={q.put} ({q.units})")
            for c in q.commands:
                out.append(f"    {'>>' if c.stalled else '  '} {c.offset:#010x}  {c.text}")
        if self.registers:
            out.append("  registers:")
            for r in self.registers:
                fl = " ".join(f"{k}={v:#x}" if isinstance(v, int) and not isinstance(v, bool) and v > 9
                              else f"{k}={v}" for k, v in r.fields.items())
                out.append(f"    {r.name} = {r.value:#x} {fl} {('[' + r.source + ']') if r.source else ''}"
                           .rstrip())
        for n in self.notes:
            out.append(f"  note: {n}")
        return "\n".join(out)

    def to_json(self) -> str:
        """Machine-readable form (``HangReport.from_json`` reads it back)."""
        return json.dumps({"format": "hwdrv.HangReport/1", **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "HangReport":
        """Read a report written by :meth:`to_json`."""
        from .errors import InvalidArgument
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
            raise InvalidArgument(f"not a HangReport JSON document: {e}") from None
        if not isinstance(d, dict) or d.pop("format", None) != "hwdrv.HangReport/1":
            raise InvalidArgument("not a HangReport JSON document (missing format "
                                  "'hwdrv.HangReport/1')")
        kinds = {"queues": QueueState, "launches": Launch, "faults": Fault,
                 "warp_errors": WarpError, "registers": Register}
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
        return cls(**d)
