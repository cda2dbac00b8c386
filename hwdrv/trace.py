"""A timeline of GPU work with GPU timestamps, exported as Chrome trace / Perfetto JSON.

Work is recorded with two signals whose timestamps the GPU writes before and after it; the
times are read later (``resolve()``: on export, and when the device closes), so recording costs
the hot path two timestamp commands and one list append. Open the JSON in ``chrome://tracing``
or https://ui.perfetto.dev.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument

if TYPE_CHECKING:
    from .signal import Signal


@dataclass
class Span:
    """One piece of GPU work between two GPU timestamps (signals until resolved, then the
    raw timestamps; 0 where the GPU never wrote one)."""
    name: str
    category: str              # "kernel", "copy", ...
    queue: str                 # the engine / queue it ran on
    start: "Signal | int"
    end: "Signal | int"
    args: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> None:
        if not isinstance(self.start, int):
            self.start, self.end = self.start.timestamp, self.end.timestamp


class Trace:
    """Spans recorded on one device, in submission order."""

    def __init__(self, device_name: str, timestamp_hz: int):
        self.device_name, self.timestamp_hz = device_name, timestamp_hz
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def add(self, span: Span) -> None:
        with self._lock:
            self.spans.append(span)

    def resolve(self) -> None:
        """Read the timestamps of every span (while the device is open; its work finished)."""
        with self._lock:
            for s in self.spans:
                s.resolve()

    def events(self) -> list[dict]:
        """Chrome trace "complete" events (µs), relative to the first span's start. Spans whose
        timestamps the GPU has not written (work that never ran) are left out."""
        self.resolve()
        to_us = 1e6 / self.timestamp_hz
        done = [(s, s.start, s.end) for s in self.spans]
        done = [(s, a, b) for s, a, b in done if a and b >= a]
        if not done:
            return []
        t0 = min(a for _, a, _ in done)
        return [{"name": s.name, "cat": s.category, "ph": "X", "pid": self.device_name,
                 "tid": s.queue, "ts": (a - t0) * to_us, "dur": (b - a) * to_us, "args": s.args}
                for s, a, b in done]


def write_chrome_trace(traces: list[Trace], path: str) -> int:
    """Write every trace's events into one Chrome trace JSON file; returns the event count."""
    events: list[dict] = []
    for t in traces:
        events.extend(t.events())
    try:
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns"}, f)
    except OSError as e:
        raise InvalidArgument(f"cannot write the trace to {path}: {e.strerror}") from None
    return len(events)
