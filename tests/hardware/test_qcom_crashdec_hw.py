"""crashdec on a real Adreno's kgsl snapshot (`pytest -m hardware tests/hardware/test_qcom_crashdec_hw.py`).

* ``test_saved_snapshot_decodes``: a snapshot saved from a device (``HWDRV_QCOM_SNAPSHOT=path``, e.g.
  ``adb shell cat /sys/class/kgsl/kgsl-3d0/snapshot/dump > s.bin``) parses and gives a report.
* ``test_unknown_opcode_on_the_device``: submits an IB with an opcode no a6xx has (0x7e) through the
  real /dev/kgsl-3d0, then reads the snapshot kgsl took (needs read access to
  /sys/class/kgsl/kgsl-3d0/snapshot/dump, usually root) and checks the report names that packet.
Both skip where there is no snapshot or no kgsl device.
"""
import errno
import os
import sys

import pytest

from hwdrv.qcom import crashdec, snapshot
from hwdrv.qcom.gen import adreno_pm4 as P

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

KGSL = "/dev/kgsl-3d0"
DUMP = "/sys/class/kgsl/kgsl-3d0/snapshot/dump"


def test_saved_snapshot_decodes():
    path = os.environ.get("HWDRV_QCOM_SNAPSHOT")
    if not path:
        pytest.skip("set HWDRV_QCOM_SNAPSHOT to a snapshot saved from a device")
    with open(path, "rb") as f:
        data = f.read()
    s = snapshot.parse(data)
    assert s.chipid >> 24 in (6, 7) and s.rings, [x.name for x in s.sections]
    rep = crashdec.report_from_snapshot(s)
    print(rep.to_text())
    assert rep.queues and rep.registers and rep.error is not None


def test_unknown_opcode_on_the_device():
    if not os.path.exists(KGSL):
        pytest.skip(f"no Adreno GPU on this machine ({KGSL} missing)")
    if not os.access(DUMP, os.R_OK):
        pytest.skip(f"{DUMP} is not readable (run as root)")
    from hwdrv.ioctl.linux import LinuxKernel
    from test_mock_kgsl import Kgsl, errno_of, pkt7
    k = LinuxKernel()
    k.read_file(DUMP)                                   # release an older snapshot (reading it whole does)
    kg = Kgsl(k)
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    words = [pkt7(P.CP_NOP, 0), pkt7(P.CP_WAIT_FOR_IDLE, 0), pkt7(0x7E, 0)]
    ts = kg.run(ctx, cpu, gpu, words)
    assert errno_of(kg.wait, ctx, ts, 5000) in (errno.EDEADLK, errno.EPROTO)
    data = k.read_file(DUMP)
    assert snapshot.is_snapshot(data), f"kgsl wrote no snapshot ({len(data)} bytes)"
    rep = crashdec.report_from_snapshot(data)
    print(rep.to_text())
    assert "CP_OPCODE_ERROR" in rep.error.name
    ib = next(q for q in rep.queues if q.name.startswith(f"IB1 @ {gpu:#x}"))
    marked = [c for c in ib.commands if c.stalled]
    assert marked and marked[0].offset in (gpu + 4, gpu + 8), rep.to_text()
