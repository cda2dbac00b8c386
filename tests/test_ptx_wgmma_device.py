"""wgmma and TMA kernels through hwdrv's public API on ``mock:nvidia`` (device, compiler, queue,
QMD, constant bank, mock GPU, PTX interpreter), compared with numpy. The same cases run on the
H100 from tests/hardware/test_ptx_wgmma_hw.py (compiled with ``ptxas -arch=sm_90a``), which is
what checks the mock's layouts (descriptor, swizzle, fragments) against the hardware."""
from __future__ import annotations

import numpy as np
import pytest

import hwdrv
from hwdrv.nvidia.tensormap import encode_tiled

from test_nvcc_corpus import SIGNAL_TIMEOUT
from test_ptx_tma_copy import PTX as TMA_PTX
from test_ptx_tma_copy import ROWS, COLS, swizzled_image
from test_ptx_wgmma import _random, desc, frag_to_matrix, kernel, kmajor_plain

# (N, element type, swizzle bytes, B N-major). N-major B wider than 64 spans several 64-column
# slabs LBO apart: the layout of tensor/matmul_wgmma.py's B tiles
GEMM_CASES = [(64, "f16", 128, 0), (128, "bf16", 64, 0), (8, "f16", 0, 0), (64, "bf16", 128, 1), (64, "f16", 32, 0),
              (256, "f16", 128, 1), (128, "bf16", 128, 1)]


def _launch(dev, binary: bytes, name: str, grid, block: int, args: list) -> None:
    prog = dev.program(binary, name)
    sig = dev.signal(0)
    dev.compute_queue().exec(prog, grid=grid, block=block, args=args).signal(sig, 1).submit()
    sig.wait(1, timeout=SIGNAL_TIMEOUT)


def _buf(dev, arr: np.ndarray):
    arr = np.ascontiguousarray(arr)
    b = dev.alloc(max(arr.nbytes, 16))
    dev.upload(b, arr)
    return b


def run_gemm_case(dev, compile_ptx, n: int, atype: str, swizzle: int, trans_b: int) -> None:
    """One warpgroup D = A B^T on ``dev``; ``compile_ptx`` turns PTX text into a loadable binary."""
    rng = np.random.default_rng(n + swizzle + trans_b)
    k = swizzle // 2 if swizzle else 32
    a_raw, a = _random((64, k), atype, rng)
    b_raw, b = _random((n, k), atype, rng)
    if trans_b:     # B N-major: per 64 columns a slab of k rows of 128 bytes, slabs LBO = k * 128 apart
        assert swizzle == 128 and n % 64 == 0
        bt = np.ascontiguousarray(b_raw.T)
        b_img = np.concatenate([swizzled_image(np.ascontiguousarray(bt[:, j:j + 64]), 128) for j in range(0, n, 64)])
        step_b = 16 * 128
    elif swizzle:
        b_img, step_b = swizzled_image(b_raw, swizzle), 32
    else:
        b_img, step_b = kmajor_plain(b_raw, 128, k // 8 * 128, n * k * 2), 256
    if swizzle:
        a_img, step_a, da = swizzled_image(a_raw, swizzle), 32, desc(sbo=8 * swizzle, swizzle=swizzle)
        dbd = desc(lbo=k * 128, sbo=1024, swizzle=swizzle) if trans_b else desc(sbo=8 * swizzle, swizzle=swizzle)
    else:
        a_img, step_a = kmajor_plain(a_raw, 128, k // 8 * 128, 64 * k * 2), 256
        da = dbd = desc(lbo=128, sbo=k // 8 * 128)
    src = kernel(n, atype, atype, k // 16, step_a, step_b, trans_b=trans_b)
    # the kernel copies whole 8 KiB / 32 KiB shared buffers: pad the images to them
    a_img, b_img = np.pad(a_img, (0, 8192 - a_img.size)), np.pad(b_img, (0, 32768 - b_img.size))
    bufs = [_buf(dev, a_img), _buf(dev, b_img), _buf(dev, np.zeros((128, n // 2), np.float32))]
    _launch(dev, compile_ptx(src), "wg_gemm", (1, 1, 1), 128, bufs + [da, dbd, 0])
    got = dev.download(bufs[2], size=128 * n // 2 * 4, dtype=np.float32).reshape(128, n // 2)
    np.testing.assert_allclose(frag_to_matrix(got, n), a @ b.T, rtol=1e-6, atol=1e-6)
    for x in bufs:
        x.free()


def run_tma_case(dev, compile_ptx, swizzle: int, box: tuple[int, int], coords: tuple[int, int]) -> None:
    """A TMA load through a tensor map in global memory (the form that needs no driver-filled
    constant-bank slot on the GPU), OOB zero fill, swizzled shared image copied out."""
    rng = np.random.default_rng(swizzle)
    t = rng.standard_normal((ROWS, COLS)).astype(np.float16)
    tb = _buf(dev, t)
    tm = encode_tiled(tb.va, "f16", [COLS, ROWS], [COLS * 2], list(box), swizzle=swizzle)
    mb = _buf(dev, np.frombuffer(tm, np.uint8))
    nbytes = box[0] * box[1] * 2
    out = _buf(dev, np.zeros(nbytes, np.uint8))
    _launch(dev, compile_ptx(TMA_PTX), "tma_load_2d_global_map", (1, 1, 1), 128, [mb, out, coords[0], coords[1], nbytes])
    want = np.zeros((box[1], box[0]), np.float16)
    for r in range(box[1]):
        for c in range(box[0]):
            y, x = coords[1] + r, coords[0] + c
            if 0 <= y < ROWS and 0 <= x < COLS:
                want[r, c] = t[y, x]
    assert np.array_equal(dev.download(out, size=nbytes, dtype=np.uint8), swizzled_image(want, swizzle))
    for x in (tb, mb, out):
        x.free()


TMA_CASES = [(0, (64, 16), (40, -3)), (32, (16, 16), (-8, 30)), (64, (32, 16), (48, 32)), (128, (64, 16), (8, 4))]


@pytest.fixture(scope="module")
def mock_dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


@pytest.mark.parametrize("case", GEMM_CASES, ids=[f"n{c[0]}-{c[1]}-sw{c[2]}-tb{c[3]}" for c in GEMM_CASES])
def test_wgmma_on_mock_device(mock_dev, case):
    run_gemm_case(mock_dev, mock_dev.compiler.compile, *case)


@pytest.mark.parametrize("case", TMA_CASES, ids=[f"sw{c[0]}" for c in TMA_CASES])
def test_tma_on_mock_device(mock_dev, case):
    run_tma_case(mock_dev, mock_dev.compiler.compile, *case)


# What an H100 did with TMA boxes (driver 580.159.04, 2026-12-06, tests/hardware/tma_swizzle_probe.py):
# (swizzle, box, start) -> loaded, or stopped with a shader exception. Every start whose first
# coordinate is not 16-byte aligned faulted, whatever the swizzle.
H100_TMA = [((32, (16, 16), (-5, 30)), False), ((32, (16, 16), (8, 20)), True), ((32, (16, 16), (3, 0)), False),
            ((64, (32, 16), (50, 32)), False), ((64, (32, 16), (48, 16)), True), ((64, (32, 16), (4, 0)), False),
            ((0, (64, 16), (41, -3)), False), ((0, (8, 16), (3, 0)), False), ((128, (64, 16), (9, 4)), False)]


@pytest.mark.parametrize("case,loaded", H100_TMA, ids=[f"sw{c[0]}-{c[2][0]}_{c[2][1]}" for c, _ in H100_TMA])
def test_tma_box_starts_as_on_the_h100(mock_dev, case, loaded):
    if loaded:
        run_tma_case(mock_dev, mock_dev.compiler.compile, *case)
        return
    with pytest.raises(hwdrv.GPUHang, match="cp.async.bulk.tensor"):
        run_tma_case(mock_dev, mock_dev.compiler.compile, *case)
    mock_dev.recover()
