"""Signals: a 64-bit timeline value and a 64-bit timestamp in GPU-visible host memory."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from .errors import GPUHang, InvalidArgument

if TYPE_CHECKING:
    from .device import Device

#: byte layout of a signal slot: value at +0, timestamp at +8 (the GPU writes both)
SIGNAL_SIZE = 16
DEFAULT_TIMEOUT = 10.0
# While waiting, look for a reported GPU error this often, so a fault fails the wait in well
# under a second instead of sitting out the whole timeout.
_ERROR_POLL_S = 0.05


def check_timeout(timeout: float | None) -> float:
    """A wait's timeout in seconds: ``None`` means :data:`DEFAULT_TIMEOUT`; anything else must
    be a finite number >= 0 (every wait in hwdrv ends)."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout < 0:
        raise InvalidArgument(f"timeout must be a finite number of seconds >= 0 (or None for the "
                              f"default {DEFAULT_TIMEOUT} s), got {timeout!r}")
    return float(timeout)


class Signal:
    """A 16-byte slot the GPU writes: ``value`` (u64) and ``timestamp`` (u64, device clock)."""

    __slots__ = ("device", "va", "_mem", "__weakref__")

    def __init__(self, device: "Device", va: int, mem: np.ndarray):
        self.device, self.va, self._mem = device, va, mem

    def _live(self) -> np.ndarray:
        # the slot's page is unmapped when the device closes: touching it then would crash
        if self.device._closed:
            self.device._check_open()
        return self._mem

    @property
    def value(self) -> int:
        """The current value (read from memory the GPU writes)."""
        return int(self._live()[0])

    @value.setter
    def value(self, v: int) -> None:
        self._live()
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 1 << 64:
            raise InvalidArgument(f"Signal.value must be an int in [0, 2**64), got {v!r}")
        self._mem[0] = int(v)

    @property
    def timestamp(self) -> int:
        """The raw timestamp the GPU last wrote, in device clock ticks."""
        return int(self._live()[1])

    @property
    def timestamp_ns(self) -> float:
        """The last timestamp converted to nanoseconds."""
        return int(self._live()[1]) * 1e9 / self.device.timestamp_hz

    def wait(self, value: int, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Block until the signal holds at least ``value``. Raises :class:`~hwdrv.GPUHang` with a HangReport
        after ``timeout`` seconds (None: the default), or as soon as the device reports an error;
        :class:`~hwdrv.DeviceClosed` if another thread closes the device meanwhile."""
        timeout = check_timeout(timeout)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value < 1 << 64:
            raise InvalidArgument(f"Signal.wait: value must be an int in [0, 2**64), got {value!r}")
        value = int(value)
        mem = self._live()
        if int(mem[0]) >= value:
            return
        dev = self.device
        start = time.perf_counter()
        deadline = start + timeout
        next_check = start + _ERROR_POLL_S
        spins = 0
        while int(mem[0]) < value:
            spins += 1
            if spins < 2000:
                continue      # spin first: most waits are short and sleeping costs 50+ us
            if dev._closed:
                dev._check_open()     # closed by another thread: mem now reads zeros
            now = time.perf_counter()
            if now >= next_check:
                next_check = now + _ERROR_POLL_S
                report = dev._check_error(self, value)
                if report is not None:
                    raise GPUHang(f"{dev.name}: GPU reported an error while waiting for signal "
                                  f"{self.va:#x} to reach {value} (it is {int(mem[0])})", report)
            if now >= deadline:
                report = dev._hang_report("timeout", signal=self, expected=value)
                raise GPUHang(f"{dev.name}: timed out after {timeout:.3g} s waiting for signal "
                              f"{self.va:#x} to reach {value} (it is {int(mem[0])})", report)
            if spins < 20000:
                time.sleep(0)
            else:
                dev._backend_sleep(self, value, min(deadline, next_check) - now)

    def __repr__(self) -> str:
        value = "closed" if self.device._closed else self.value
        return f"Signal(va={self.va:#x}, value={value}, device={self.device.name})"


class Timeline:
    """A signal one engine bumps after each submission, in order: ``done(v)`` says whether the
    submission that got value ``v`` has finished."""

    __slots__ = ("signal", "value", "_cell")

    def __init__(self, signal: Signal):
        self.signal, self.value = signal, 0
        # the value word as a memoryview: reading an item costs a quarter of a numpy scalar read
        self._cell = memoryview(signal._mem)

    def unreserve(self, value: int) -> None:
        """Give back ``value``, the value taken for a submission that could not be pushed."""
        if self.value == value:
            self.value -= 1

    def done(self, value: int) -> bool:
        return self._cell[0] >= value

    def completed(self) -> int:
        """The value of the last finished submission (what the engine has released)."""
        return self._cell[0]

    def wait(self, value: int, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.signal.wait(value, timeout)
