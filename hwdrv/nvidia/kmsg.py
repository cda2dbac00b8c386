"""The kernel log lines a hang report shows: what NVRM printed about this GPU.

On an error RM prints the Xid and its details to the kernel log, e.g.
``NVRM: Xid (PCI:0000:42:00): 31, pid=..., name=..., channel 0x..., intr 00000000. MMU Fault:
ENGINE GRAPHICS GPC0 GPCCLIENT_T1_0 faulted @ 0x20_0a700000. Fault is of type FAULT_PTE
ACCESS_TYPE_VIRT_WRITE`` (the mock prints the same wording to its own log). The log is read
through the Kernel seam (``Kernel.read_kmsg``: /dev/kmsg records ``prio,seq,usec,flags;text``).
A :class:`LogCursor` remembers the last record seen (at device open, then after each report), so a
report shows the lines printed since then that name this GPU's PCI address, plus NVRM lines that
name no GPU at all (they may concern this one). When the log cannot be read, the cursor keeps
the reason (the errno), and the report says it.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ..errors import HwdrvError
from ..ioctl.kernel import Kernel

#: how long a report waits for RM's Xid line after the notifier said an error happened (RM
#: writes the notifier and prints the line from different contexts; every wait has a bound)
XID_LINE_WAIT_S = 1.0
_POLL_S = 0.02
_PCI = re.compile(r"PCI:[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}")


@dataclass(frozen=True)
class Record:
    """One /dev/kmsg record."""
    seq: int
    usec: int
    level: int
    text: str

    def line(self) -> str:
        """As ``dmesg`` prints it: ``[seconds.micros] text``."""
        return f"[{self.usec // 1_000_000:6d}.{self.usec % 1_000_000:06d}] {self.text}"


def parse(raw: str) -> Record | None:
    """A /dev/kmsg record (``prio,seq,usec,flags[,...];text`` then continuation lines), or None
    if ``raw`` is not one."""
    head, sep, rest = raw.partition(";")
    parts = head.split(",")
    if not sep or len(parts) < 3:
        return None
    try:
        prio, seq, usec = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return None
    text = rest.split("\n", 1)[0]       # continuation lines (" KEY=value") are metadata
    return Record(seq, usec, prio & 7, text)


def pci_tag(domain: int, bus: int, slot: int) -> str:
    """How NVRM names a GPU in its lines: ``PCI:dddd:bb:ss``."""
    return f"PCI:{domain:04x}:{bus:02x}:{slot:02x}"


def concerns(text: str, tag: str) -> bool:
    """Whether a log line is about the GPU ``tag``: it names that PCI address, or it is an NVRM
    line that names no GPU."""
    if tag in text:
        return True
    return text.startswith("NVRM:") and _PCI.search(text) is None


class LogCursor:
    """The position in the kernel log up to which lines have been shown (see the module doc)."""

    def __init__(self, kernel: Kernel, tag: str):
        self.kernel, self.tag = kernel, tag
        self.last_seq: int | None = None
        self.error = ""
        #: the last read found no NVRM line at all in the log: the driver's messages do not reach
        #: this kernel's log (e.g. a sandbox that emulates the kernel while the driver runs outside)
        self.no_driver_lines = False
        records = self._read()
        if records is not None:
            self.last_seq = records[-1].seq if records else -1
            self.no_driver_lines = not any(r.text.startswith("NVRM:") for r in records)

    def _read(self) -> list[Record] | None:
        try:
            raw = self.kernel.read_kmsg()
        except HwdrvError as e:
            self.error = f"the kernel log is unreadable: {e}"
            return None
        self.error = ""
        return [r for r in (parse(x) for x in raw) if r is not None]

    def take(self, wait_for_xid: int | None = None) -> list[str] | None:
        """The lines about this GPU printed since the last call (or since the cursor was made),
        then advance; with ``wait_for_xid``, wait up to XID_LINE_WAIT_S for the line of that Xid
        (``NVRM: Xid (PCI:...): <n>,``) to appear (not where the log has shown no NVRM line at
        all: the driver's lines do not reach it). None if the log is unreadable (``error`` says
        why)."""
        want = f"Xid ({self.tag}): {wait_for_xid}," if wait_for_xid is not None and not self.no_driver_lines \
            else None
        deadline = time.monotonic() + (XID_LINE_WAIT_S if want else 0.0)
        while True:
            records = self._read()
            if records is None:
                return None
            new = [r for r in records if (self.last_seq is None or r.seq > self.last_seq)
                   and concerns(r.text, self.tag)]
            if want is None or any(want in r.text for r in new) or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        if records:
            self.last_seq = max(records[-1].seq, self.last_seq if self.last_seq is not None else -1)
        self.no_driver_lines = not any(r.text.startswith("NVRM:") for r in records)
        return [r.line() for r in new]
