"""The mock Qualcomm kgsl driver and mock Adreno (A630) GPU.

`make_kernel()` returns a MockKernel with /dev/kgsl-3d0 and its sysfs snapshot file, so the qcom
backend can run without a GPU. Written from the kgsl driver source and Mesa's freedreno register and
packet descriptions (generated into hwdrv.qcom.gen), never from backend code.

Modules: kgsl.py (ioctls, mmap, ring, timestamps, faults), memory.py (kgsl memory entries),
context.py (draw contexts), cp.py (the command processor), cs_state.py (what a dispatch hands the ir3
emulator), pm4.py (packet headers), regmap.py (a6xx/a7xx register names), snapshot.py (kgsl snapshot
format), facts.py (kernel-internal constants with their sources).
"""
from __future__ import annotations

import os
from typing import Callable

from hwdrv.mock.kernel import MockKernel

from .cs_state import CsState
from .kgsl import DEVICE_PATH, KgslDevice, KgslDriver

DESCRIPTION = "mock Adreno 630 (kgsl 3.14)"


#: seconds a dispatch may run on the mock before its watchdog faults it (HWDRV_MOCK_QCOM_SHADER_TIMEOUT):
#: the mock's stand-in for a GPU hang detection, short enough that a runaway shader frees the single
#: ring before the host's default 10 s waits give up, long enough for the emulator's largest dispatches
SHADER_TIMEOUT_S = 5.0


def make_kernel(*, run_cs: Callable[[CsState], None] | None = None, hang_timeout: float | None = None,
                sync: bool | None = None, shader_timeout: float | None = None) -> MockKernel:
    """A MockKernel serving one mock A630 at /dev/kgsl-3d0. ``run_cs`` replaces the ir3 emulator
    (default: hwdrv.mock.qcom.ir3emu.run_cs with a ``shader_timeout`` watchdog, default
    HWDRV_MOCK_QCOM_SHADER_TIMEOUT or SHADER_TIMEOUT_S); ``hang_timeout`` (seconds, default
    HWDRV_MOCK_QCOM_HANG_TIMEOUT or 2) bounds how long a CP wait may poll before the hang detector
    fires; ``sync`` runs the CP inline (default HWDRV_MOCK_SYNC)."""
    if run_cs is None:
        watchdog = float(os.environ.get("HWDRV_MOCK_QCOM_SHADER_TIMEOUT", SHADER_TIMEOUT_S)) \
            if shader_timeout is None else shader_timeout

        def run_cs(state: CsState) -> None:
            from .cp import _default_run_cs      # imported at dispatch: the emulator may be absent
            _default_run_cs()(state, timeout=watchdog)
    k = MockKernel()
    dev = KgslDevice(k, run_cs=run_cs, hang_timeout=hang_timeout, sync=sync)
    k.register_driver(DEVICE_PATH, KgslDriver(dev))
    k.qcom = dev            # mock-only handle for tests and diagnostics (the device, its CP and memory)
    return k


__all__ = ["DESCRIPTION", "make_kernel", "CsState", "KgslDevice", "KgslDriver"]
