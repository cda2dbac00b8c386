"""What the GPU does with a queue wait whose target is far above (or far below) the signal's
value: hwdrv promises a plain unsigned 64-bit ">=" on every engine (README, Semantics), and
encodes it as SEM_EXECUTE ACQ_STRICT_GEQ. Each case is bounded: a wait that must block is
observed for WAIT_S, then the gate is opened (so the channel drains normally, no recovery
needed); one that must pass has to finish within PASS_S.

Also run on the mock (the same cases as tests/test_reliability.py); on the H100 this shows the
hardware agrees with dev_pbdma.ref.txt's definition of ACQ_STRICT_GEQ, and, for contrast, that
the old ACQ_CIRC_GEQ encoding passes at once for a target 2**63 above the value."""
from __future__ import annotations

import pytest

from hwdrv.errors import GPUHang
from hwdrv.nvidia import gpfifo as pb

WAIT_S = 0.5
PASS_S = 5.0
HALF = 1 << 63
CASES = [  # (signal value, wait target, must block)
    (1, HALF + 5, True),            # far above: blocks (a circular compare would pass at once)
    (1, (1 << 64) - 1, True),
    (0, HALF, True),
    (HALF + 5, 1, False),           # far below: passes (a circular compare would block)
    ((1 << 64) - 1, 0, False),
    (7, 7, False),
    (7, 8, True),
]


@pytest.mark.parametrize("engine", ["compute", "copy"])
@pytest.mark.parametrize("value,target,blocks", CASES)
def test_wait_is_unsigned_64_bit_geq(dev, engine, value, target, blocks):
    gate, done = dev.signal(value), dev.signal(0)
    q = dev.compute_queue() if engine == "compute" else dev.copy_queue()
    q.wait(gate, target).signal(done, 1).submit()
    if blocks:
        with pytest.raises(GPUHang):
            done.wait(1, timeout=WAIT_S)
        gate.value = target                    # open the gate: the queue finishes normally
    done.wait(1, timeout=PASS_S)
    dev.synchronize(PASS_S)


@pytest.mark.parametrize("engine", ["compute", "copy"])
def test_circular_geq_passes_far_above_for_contrast(dev, engine, monkeypatch):
    """The encoding hwdrv used before: ACQ_CIRC_GEQ passes at once for a target 2**63 + 5
    above the value 1 (what issue 10 saw on the mock; this shows whether the H100 agrees)."""
    from hwdrv.ioctl.bindings import encode
    from hwdrv.nvidia.gen import hopper as hw
    circ = encode(hw, "NVC56F_SEM_EXECUTE", OPERATION="ACQ_CIRC_GEQ", ACQUIRE_SWITCH_TSG="EN",
                  PAYLOAD_SIZE="64BIT")
    monkeypatch.setattr(pb, "SEM_ACQUIRE_GEQ", circ)
    gate, done = dev.signal(1), dev.signal(0)
    q = dev.compute_queue() if engine == "compute" else dev.copy_queue()
    q.wait(gate, HALF + 5).signal(done, 1).submit()
    try:
        done.wait(1, timeout=PASS_S)
    finally:
        gate.value = HALF + 5                  # never leave the channel blocked
        dev.synchronize(PASS_S)
