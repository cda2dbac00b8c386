"""Thread block clusters (sm_90): cluster geometry registers, barrier.cluster, distributed
shared memory (mapa and loads/atomics into another CTA's shared memory), launched with the
kernel's own .reqnctapercluster or with cluster dimensions given at launch. The kernels are
tests/data/nvcc_corpus/cluster.cu compiled by nvcc 13."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdrv.errors import ProgramError
from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu  # noqa: F401

PTX = (Path(__file__).parent / "data" / "nvcc_corpus" / "cluster.ptx").read_text()


@pytest.fixture(scope="module")
def module():
    return ptx.parse(PTX)


def test_cluster_dims_come_from_the_kernel(module):
    assert module.entries["cluster_geometry"].cluster_dims == (2, 2, 1)
    assert module.entries["dsmem_ring"].cluster_dims == (4, 1, 1)


def test_cluster_geometry(gpu, module):
    out = gpu.alloc(4 * 6 * 16)
    gpu.run(module, "cluster_geometry", (4, 4), 64, [out])
    got = gpu.download(out, np.uint32, 6 * 16).reshape(16, 6)
    for cta in range(16):
        x, y = cta % 4, cta // 4
        # rank x-major in the 2x2 cluster; 4 CTAs; index in the cluster; dims 2x2; cluster id
        assert got[cta].tolist() == [x % 2 + 2 * (y % 2), 4, x % 2, y % 2, 22, x // 2 + 100 * (y // 2)], cta


def test_distributed_shared_memory_ring(gpu, module):
    """Each CTA reads its neighbour's shared buffer (rank + 1 mod 4) backwards."""
    x = np.random.default_rng(5).integers(-1000, 1000, 8 * 128).astype(np.int32)
    out = gpu.alloc(4 * 8 * 128)
    gpu.run(module, "dsmem_ring", 8, 128, [gpu.upload(x), out])
    xr = x.reshape(8, 128)
    want = [xr[b // 4 * 4 + (b % 4 + 1) % 4][::-1] + b % 4 for b in range(8)]
    assert np.array_equal(gpu.download(out, np.int32, 8 * 128).reshape(8, 128), np.array(want))


def test_atomics_on_another_ctas_shared_memory(gpu, module):
    out = gpu.alloc(16)
    gpu.run(module, "dsmem_atomic", 8, 64, [out])
    assert gpu.download(out, np.int32, 4).tolist() == [2 * sum(range(1, 65))] * 4    # both CTAs of each cluster


def test_launch_cluster_dims_override_and_checks(gpu, module):
    x = np.random.default_rng(6).integers(-1000, 1000, 8 * 128).astype(np.int32)
    xr = x.reshape(8, 128)
    out = gpu.alloc(4 * 8 * 128)
    gpu.run(module, "dsmem_ring", 8, 128, [gpu.upload(x), out], cluster=(2, 1, 1))      # a ring of 2
    want = [xr[b // 2 * 2 + (b % 2 + 1) % 2][::-1] + b % 2 for b in range(8)]
    assert np.array_equal(gpu.download(out, np.int32, 8 * 128).reshape(8, 128), np.array(want))
    gpu.run(module, "dsmem_ring", 8, 128, [gpu.upload(x), out], cluster=(1, 1, 1))      # each its own
    assert np.array_equal(gpu.download(out, np.int32, 8 * 128).reshape(8, 128), xr[:, ::-1])
    with pytest.raises(ProgramError, match="whole number of clusters"):
        gpu.run(module, "dsmem_ring", 6, 128, [gpu.upload(x), gpu.alloc(4096)])
    with pytest.raises(ProgramError, match="at most 16"):
        gpu.run(module, "dsmem_ring", 32, 128, [gpu.upload(x), gpu.alloc(16384)], cluster=(32, 1, 1))


def test_mapa_beyond_the_cluster_is_illegal(gpu):
    m = ptx.parse(""".version 8.0
.target sm_90
.address_size 64
.visible .entry k() .reqnctapercluster 2, 1, 1
{
    .reg .b64 %rd<3>;
    .shared .align 4 .b8 s[16];
    mov.u64 %rd0, s;
    cvta.shared.u64 %rd1, %rd0;
    mapa.u64 %rd2, %rd1, 5;
    ret;
}
""")
    with pytest.raises(ptx.IllegalInstruction, match="beyond the cluster of 2"):
        gpu.run(m, "k", 2, 32, [])
