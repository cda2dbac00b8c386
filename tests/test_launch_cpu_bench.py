"""bench/launch_cpu.py on the mock, and the pushbuffer ring's record of in-flight segments."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import hwdrv
from hwdrv.nvidia.gpfifo import PB_RECORDS_PER_LOOK

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import launch_cpu  # noqa: E402


def test_launch_cpu_measures_the_three_paths_and_checks_they_ran():
    res = launch_cpu.measure("mock:nvidia", batch=40, rounds=1)
    for key in ("eager_exec_submit_us", "device_launch_us", "resubmit_unbound_us", "resubmit_bound_us"):
        assert 0 < res[key] < 1e4
        assert res[key] == min(res[key.replace("_us", "_all_us")])


def test_quiet_doorbell_is_restored():
    dev = hwdrv.open_device("mock:nvidia")
    try:
        kernel = dev.kernel
        with launch_cpu.QuietDoorbell(dev):
            assert "mmio_write32" in vars(kernel)
        assert "mmio_write32" not in vars(kernel)
    finally:
        dev.close()


def test_finished_pushbuffer_records_are_dropped():
    dev = hwdrv.open_device("mock:nvidia")
    try:
        prog = dev.program(dev.compiler.compile(launch_cpu.EMPTY_PTX), "empty")
        ch = dev.channels["compute"]
        for _ in range(3 * PB_RECORDS_PER_LOOK):
            dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()
            dev.synchronize()
        assert len(ch._pb_inflight) <= PB_RECORDS_PER_LOOK
    finally:
        dev.close()


def test_exec_of_a_freed_program_raises_even_on_the_eager_path():
    """A shape that ran before skips exec's checks; after Program.free() it must not."""
    import hwdrv
    from hwdrv.errors import ProgramError
    from nv_bench import EMPTY_PTX
    dev = hwdrv.open_device("mock:nvidia")
    try:
        prog = dev.program(dev.compiler.compile(EMPTY_PTX), "empty")
        dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()
        dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()     # the remembered shape
        dev.synchronize(30)
        prog.free()
        with pytest.raises(ProgramError, match="freed"):
            dev.compute_queue().exec(prog, grid=(1,), block=(1,))
    finally:
        dev.close()


@pytest.mark.parametrize("grid, block, shared", [((1.0,), (1,), 0), ((True,), (1,), 0), ((1,), (1,), 0.0)])
def test_eager_path_keeps_exec_checks_for_look_alike_values(grid, block, shared):
    """A float or bool equal to a remembered int finds the remembered shape; exec still refuses it."""
    import hwdrv
    from hwdrv.errors import InvalidArgument
    from nv_bench import EMPTY_PTX
    dev = hwdrv.open_device("mock:nvidia")
    try:
        prog = dev.program(dev.compiler.compile(EMPTY_PTX), "empty")
        dev.compute_queue().exec(prog, grid=(1,), block=(1,), shared=0)
        with pytest.raises(InvalidArgument):
            dev.compute_queue().exec(prog, grid=grid, block=block, shared=shared)
    finally:
        dev.close()
