"""Every clang-19 OpenCL kernel of tests/data/amd/kernels runs on mock:amd through the whole KFD
path - buffers from ALLOC/MAP_MEMORY_TO_GPU, the code object placed by hwdrv.amd.codeobj, the
kernarg segment with ROCm's hidden arguments, a PM4 dispatch on a KFD compute queue (doorbell,
OpenCL non-uniform work-groups via USE_THREAD_DIMENSIONS + PARTIAL_TG_EN, LDS and scratch from the
descriptor), completion signalled through the KFD event page - and matches numpy (kernels.json)."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from hwdrv.amd.gen import gc11 as G
from hwdrv.amd.gen import kfd as K
from hwdrv.amd.gen import pm4 as PM
from hwdrv.ioctl import hostmem
from test_mock_kfd import GTT, PUB, VRAM
from test_mock_kfd_cp import KDIR, Gpu, set_sh

_spec = importlib.util.spec_from_file_location("amd_kernel_cases", KDIR / "cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
CASES = cases.load()


@pytest.fixture(scope="module")
def gpu():
    g = Gpu()
    g.objects = {}
    yield g
    g.k.close(g.kfd)


def _run(g: Gpu, case: dict) -> dict:
    if case["file"] not in g.objects:
        g.objects[case["file"]] = g.load(case["file"])
    co, code = g.objects[case["file"]]
    k = co.kernels[case["kernel"]]
    d = k.descriptor
    inputs = cases.make_inputs(case)
    args, bufs = [], {}
    for a in case["args"]:
        v = inputs[a["name"]]
        if a["kind"] == "buffer":
            va, _ = g.alloc_cpu(max(4096, (v.nbytes + 4095) & ~4095), VRAM | PUB)
            hostmem.write(va, v.tobytes())
            bufs[a["name"]] = (va, v.dtype, v.size)
            args.append(va)
        else:
            args.append(v)
    kernarg, _ = g.alloc_cpu(4096, GTT)
    hostmem.write(kernarg, k.pack_kernargs(args, case["global"], case["local"]))
    loc, glob = case["local"], case["global"]
    waves = math.ceil(loc[0] * loc[1] * loc[2] / 32) * math.prod(math.ceil(x / b) for x, b in zip(glob, loc))
    tmpring, scratch = 0, 0
    if d.private_segment_fixed_size:
        per_wave = math.ceil(d.private_segment_fixed_size * 32 / 256) * 256
        scratch = g.alloc((per_wave * waves + 4095) & ~4095, VRAM)[0]      # GPU-only memory
        tmpring = G.COMPUTE_TMPRING_SIZE__WAVESIZE.encode(per_wave >> 8) | G.COMPUTE_TMPRING_SIZE__WAVES.encode(min(waves, 0xFFF))
    pgm = (code + k.code_offset) >> 8
    lds = math.ceil(d.group_segment_fixed_size / 512)
    init = (G.COMPUTE_DISPATCH_INITIATOR__COMPUTE_SHADER_EN.encode(1) | G.COMPUTE_DISPATCH_INITIATOR__CS_W32_EN.encode(1)
            | G.COMPUTE_DISPATCH_INITIATOR__USE_THREAD_DIMENSIONS.encode(1) | G.COMPUTE_DISPATCH_INITIATOR__PARTIAL_TG_EN.encode(1))
    words = (set_sh("COMPUTE_PGM_LO", pgm & 0xFFFFFFFF, pgm >> 32)
             + set_sh("COMPUTE_PGM_RSRC1", d.compute_pgm_rsrc1, d.compute_pgm_rsrc2 | G.COMPUTE_PGM_RSRC2__LDS_SIZE.encode(lds))
             + set_sh("COMPUTE_PGM_RSRC3", d.compute_pgm_rsrc3) + set_sh("COMPUTE_TMPRING_SIZE", tmpring)
             + set_sh("COMPUTE_DISPATCH_SCRATCH_BASE_LO", (scratch >> 8) & 0xFFFFFFFF, scratch >> 40)
             + set_sh("COMPUTE_USER_DATA_0", kernarg & 0xFFFFFFFF, kernarg >> 32) + set_sh("COMPUTE_NUM_THREAD_X", *loc)
             + [PM.PACKET3(PM.PACKET3_DISPATCH_DIRECT, 3), *glob, init]
             + g.signal_words(g.signal, 1))
    g.submit("pm4", words)
    res, _ = g.wait(g.event, 120_000)
    q = g.k.amd.processes[0].queues[g.queues["pm4"]["id"]]
    assert res == K.KFD_IOC_WAIT_RESULT_COMPLETE, q.error
    return {n: np.frombuffer(hostmem.read(va, cnt * dt.itemsize), dt).copy() for n, (va, dt, cnt) in bufs.items()}, inputs


@pytest.mark.parametrize("case", CASES, ids=[cases.case_id(c) for c in CASES])
def test_kernel_through_kfd_matches_numpy(gpu, case):
    outputs, inputs = _run(gpu, case)
    cases.compare(case, inputs, outputs)
