"""Thread-block cluster launches (``exec(..., cluster=)``) on mock:nvidia: the probe kernel's
geometry and distributed-shared-memory records against the PTX ISA's definitions, the QMD and
constant-bank-0 words each QMD variant writes, that the mock takes the cluster registers from
constant bank 0 as compiled code does, and the bad-input errors."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import hwdrv
from hwdrv.errors import GPUHang, InvalidArgument, UnsupportedDevice
from hwdrv.ioctl import hostmem
from hwdrv.nvidia import cluster as C
from hwdrv.nvidia.gen import hopper as hw
from hwdrv.nvidia.qmd import QMD_SIZE
from hwdrv.provoke import sample

from cluster_cases import BLOCK, CASES, FIELDS, expected, mismatches, program, run_case

TIMEOUT = 30.0
_Q = "NVCBC0_QMDV04_00_"


@pytest.fixture(scope="module")
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


@pytest.fixture(scope="module")
def prog(dev):
    return program(dev)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cluster_records(dev, prog, case):
    grid, cluster = CASES[case]
    got, ran = run_case(dev, prog, grid, cluster, TIMEOUT)
    assert ran == grid[0] * grid[1] * grid[2]
    assert mismatches(got, expected(grid, cluster)) == []


def _launch_words(dev, prog, grid, cluster) -> tuple[hwdrv.Queue, np.ndarray]:
    """A built (not submitted) queue with one probe launch, and that launch's QMD + cbuf0 words."""
    out, count = dev.alloc(4096), dev.alloc(16)
    q = dev.compute_queue().exec(prog, grid=grid, block=BLOCK, args=[out, count, 1], cluster=cluster)
    va = q.launches[0][3]
    return q, hostmem.view(va, QMD_SIZE + prog.cb0_size).view(np.uint32)


def _cb0(words: np.ndarray, offset: int, fmt: str) -> tuple:
    return struct.unpack_from(fmt, words[QMD_SIZE // 4:].tobytes(), offset)


@pytest.mark.parametrize("name", sorted(C.VARIANTS))
def test_variant_qmd_and_cbuf0_words(dev, prog, name):
    v = C.VARIANTS[name]
    dev.cluster_variant = v
    try:
        _, w = _launch_words(dev, prog, (8, 4, 1), (4, 2, 1))
    finally:
        dev.cluster_variant = C.variant(C.DEFAULT_VARIANT)
    f = lambda n: getattr(hw, _Q + n).get(w)  # noqa: E731
    assert f("QMD_TYPE") == v.qmd_type
    dims = {C.CLUSTER_DIMS: [4, 2, 1], C.ONES: [1, 1, 1], C.ZEROS: [0, 0, 0]}
    assert [f(f"GPC_CGA_{a}") for a in ("WIDTH", "HEIGHT", "DEPTH")] == dims[v.gpc_cga]
    assert [f(f"GPU_CGA_{a}") for a in ("WIDTH", "HEIGHT", "DEPTH")] == dims[v.gpu_cga]
    assert [f("GRID_WIDTH"), f("GRID_HEIGHT"), f("GRID_DEPTH")] == ([2, 2, 1] if v.grid_in_clusters else [8, 4, 1])
    # what ptxas 13.0 code reads: the same in every variant
    assert _cb0(w, C.CB0_CLUSTER_NCTAID, "<3I") == (4, 2, 1)
    assert _cb0(w, C.CB0_CLUSTER_RCP, "<3f") == (np.float32(0.25), np.float32(0.5), np.float32(1.0))
    assert _cb0(w, C.CB0_NCLUSTERID, "<3I") == (2, 2, 1)
    assert _cb0(w, C.CB0_CLUSTER_NCTARANK, "<I") == (8,)


def test_default_encoding_is_the_one_the_h100_ran(dev, prog):
    """GRID_GPC_CGA, GPC_CGA = cluster, GRID_* in clusters (docs/clusters.md); a launch with no
    variant chosen writes it."""
    assert C.DEFAULT_VARIANT == "gpc_cga_grid_in_clusters" and dev.cluster_variant == C.variant(C.DEFAULT_VARIANT)
    _, w = _launch_words(dev, prog, (8, 4, 1), (2, 2, 1))
    f = lambda n: getattr(hw, _Q + n).get(w)  # noqa: E731
    assert f("QMD_TYPE") == hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPC_CGA
    assert [f("GRID_WIDTH"), f("GRID_HEIGHT"), f("GRID_DEPTH")] == [4, 2, 1]


def test_plain_launch_is_an_implicit_1x1x1_cluster(dev, prog):
    n = hwdrv.Var("n")
    out, count = dev.alloc(4096), dev.alloc(16)
    q = dev.compute_queue().exec(prog, grid=(n, 3), block=BLOCK, args=[out, count, 1])
    w = hostmem.view(q.launches[0][3], QMD_SIZE + prog.cb0_size).view(np.uint32)
    assert hw.NVCBC0_QMDV04_00_QMD_TYPE.get(w) == hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_CTA
    assert _cb0(w, C.CB0_CLUSTER_NCTAID, "<3I") == (1, 1, 1)
    assert _cb0(w, C.CB0_CLUSTER_RCP, "<3f") == (1.0, 1.0, 1.0)
    assert _cb0(w, C.CB0_CLUSTER_NCTARANK, "<I") == (1,)
    done = dev.signal(0)
    q.signal(done, 1).submit(n=5)      # a Var grid: %nclusterid is patched with it
    done.wait(1, timeout=TIMEOUT)
    assert _cb0(w, C.CB0_NCLUSTERID, "<3I") == (5, 3, 1)


def test_mock_reads_cluster_registers_from_cbuf0(dev, prog):
    """A constant bank saying 1/4 where the QMD launches clusters of 2: %clusterid follows the
    bank (as SASS computes it), %cluster_ctarank and the DSMEM partner follow the QMD."""
    slots = 8
    out, count = dev.alloc(slots * len(FIELDS) * 4), dev.alloc(16)
    dev.upload(count, np.zeros(4, np.uint32))
    done = dev.signal(0)
    q = dev.compute_queue().exec(prog, grid=(8,), block=BLOCK, args=[out, count, slots], cluster=(2,))
    w = hostmem.view(q.launches[0][3], QMD_SIZE + prog.cb0_size).view(np.uint32)
    w[(QMD_SIZE + C.CB0_CLUSTER_RCP) // 4] = np.float32(0.25).view(np.uint32)
    q.signal(done, 1).submit()
    done.wait(1, timeout=TIMEOUT)
    got = dev.download(out, dtype=np.uint32).reshape(slots, len(FIELDS))
    col = {k: i for i, k in enumerate(FIELDS)}
    assert got[:, col["clusterid.x"]].tolist() == [x // 4 for x in range(8)]
    # ctaid - clusterid * %cluster_nctaid (2, from the bank): what the kernel computes
    assert got[:, col["cluster_ctaid.x"]].tolist() == [x - x // 4 * 2 for x in range(8)]
    assert got[:, col["cluster_ctarank"]].tolist() == [x % 2 for x in range(8)]
    assert got[:, col["peer"]].tolist() == [(x % 2) ^ 1 for x in range(8)]


@pytest.mark.parametrize("cluster, match", [
    ((4, 4, 1), "at most 8.*16-block non-portable clusters are not supported"),
    ((3, 1, 1), "not a whole number of clusters"),
    ((0, 1, 1), "positive ints"),
    ((1, 1, 1, 1), "positive ints"),
    ("2", "positive ints"),
    ((True,), "positive ints"),
])
def test_bad_cluster_is_refused(dev, prog, cluster, match):
    with pytest.raises(InvalidArgument, match=match):
        dev.compute_queue().exec(prog, grid=(8, 1, 1), block=BLOCK, args=[0, 0, 1], cluster=cluster)


def test_cluster_needs_a_concrete_grid(dev, prog):
    with pytest.raises(InvalidArgument, match="grid of plain ints"):
        dev.compute_queue().exec(prog, grid=(hwdrv.Var("n"),), block=BLOCK, args=[0, 0, 1], cluster=(2,))


def test_unknown_variant_is_refused(monkeypatch):
    monkeypatch.setenv(C.VARIANT_ENV, "no_such_variant")
    with pytest.raises(InvalidArgument, match="gpc_cga"):
        hwdrv.open_device("mock:nvidia")


def test_mock_refuses_unmodelled_cga_qmds(dev, prog):
    """The mock runs the default hypothesis only; another CGA encoding is a launch error, never
    a guess. The device recovers for the next submission."""
    dev.cluster_variant = C.variant("gpu_cga")
    try:
        with pytest.raises(GPUHang, match="Xid 69 ROBUST_CHANNEL_GR_CLASS_ERROR") as e:
            run_case(dev, prog, (8, 1, 1), (2, 1, 1), TIMEOUT)
        assert "not modelled by the mock" in e.value.report.to_text()
    finally:
        dev.cluster_variant = C.variant(C.DEFAULT_VARIANT)
    got, ran = run_case(dev, prog, (8, 1, 1), (2, 1, 1), TIMEOUT)
    assert ran == 8 and mismatches(got, expected((8, 1, 1), (2, 1, 1))) == []


@pytest.mark.parametrize("kind", ["mock:amd", "mock:qcom"])
def test_backends_without_clusters_raise_unsupported(kind):
    d = hwdrv.open_device(kind)
    try:
        with pytest.raises(UnsupportedDevice, match="no thread-block clusters"):
            d.compute_queue().exec(sample(d, "vecadd"), grid=(2,), block=(64,), args=[0, 0, 0, 0], cluster=(2,))
    finally:
        d.close()
