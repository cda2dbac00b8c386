"""exec(..., early_start=True): the QMD field it sets (NVIDIA), its result on every mock (a
permission: in-order execution is one valid schedule), and bad values."""
from __future__ import annotations

import pytest

import hwdrv
from hwdrv.errors import InvalidArgument
from hwdrv.ioctl import hostmem
from hwdrv.nvidia.qmd import QMD_SIZE
from hwdrv.nvidia.gen import hopper as hw

from early_start_cases import PTX, dependent_increments

PRE_EXIT = hw.NVCBC0_QMDV04_00_ENABLE_PROGRAM_PRE_EXIT


@pytest.fixture(scope="module")
def nv():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def _qmd(dev, va):
    return hostmem.view(va, QMD_SIZE).view("uint32")      # command memory is CPU-mapped


def test_field_set_on_the_qmd_that_schedules_an_early_launch(nv):
    prog = nv.program(nv.compiler.compile(PTX), "pdl_empty")
    q = nv.compute_queue()
    q.exec(prog, grid=(1,), block=(1,), early_start=True)       # first: nothing schedules it
    q.exec(prog, grid=(1,), block=(1,), early_start=True)
    q.exec(prog, grid=(1,), block=(1,))                         # may not start early
    q.exec(prog, grid=(1,), block=(1,), early_start=True)
    first, second, third, fourth = (_qmd(nv, va) for *_, va in q.launches)
    assert [PRE_EXIT.get(w) for w in (first, second, third, fourth)] == [1, 0, 1, 0]


def test_dependent_chain_is_exact_on_the_mock(nv):
    assert dependent_increments(nv, 200, early=True) == 200
    assert dependent_increments(nv, 50, early=False) == 50


def test_early_start_is_a_bool(nv):
    prog = nv.program(nv.compiler.compile(PTX), "pdl_empty")
    with pytest.raises(InvalidArgument, match="early_start must be True or False"):
        nv.compute_queue().exec(prog, grid=(1,), block=(1,), early_start=1)


@pytest.mark.parametrize("name", ["mock:amd", "mock:qcom"])
def test_in_order_backends_accept_it(name):
    """Two dependent vecadds (c = a + b, then c = c + b), the second allowed to start early."""
    import numpy as np
    from hwdrv.provoke import sample
    d = hwdrv.open_device(name)
    try:
        n = 1024
        a, b = np.arange(n, dtype=np.float32), np.full(n, 2, np.float32)
        ba, bb, bc = d.alloc(n * 4), d.alloc(n * 4), d.alloc(n * 4)
        d.upload(ba, a)
        d.upload(bb, b)
        prog, s = sample(d, "vecadd"), d.signal(0)
        q = d.compute_queue().exec(prog, grid=(n // 256,), block=(256,), args=[ba, bb, bc, n])
        q.exec(prog, grid=(n // 256,), block=(256,), args=[bc, bb, bc, n], early_start=True)
        q.signal(s, 1).submit()
        s.wait(1, timeout=30)
        assert np.array_equal(d.download(bc, dtype=np.float32), a + 2 * b)
    finally:
        d.close()
