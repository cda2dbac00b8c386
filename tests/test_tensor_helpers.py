"""Shared helpers of the tensor tests: the device fixture (each test runs on the mock NVIDIA
GPU, the mock AMD GPU and the mock Adreno, or only on the device named by TENSOR_TEST_DEVICE), per-dtype
tolerances, and numpy references per dtype."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile

import numpy as np
import pytest

from tensor import dtypes
from tensor.dtype import bf16_bits_to_f32, f32_to_bf16_bits

#: (rtol, atol) for comparing against numpy, per dtype
TOL = {dtypes.float32: (2e-5, 2e-5), dtypes.float16: (2e-3, 2e-3), dtypes.bfloat16: (1.6e-2, 1.6e-2),
       dtypes.int32: (0, 0), dtypes.bool: (0, 0)}
FLOATS = [dtypes.float32, dtypes.float16, dtypes.bfloat16]


def open_runtime(name: str):
    """The tensor runtime of ``name``. A mock must always open (a failure is a test failure);
    a real device that is absent from this machine skips, saying so."""
    import hwdrv
    import tensor
    if name.startswith("mock:"):
        return tensor.runtime(name)
    try:
        return tensor.runtime(name)
    except hwdrv.DeviceNotFound as e:
        pytest.skip(f"{name} is not on this machine: {e}")


#: the devices every device test runs on (the mocks execute the real ISA: PTX, RDNA3, ir3)
DEVICES = [os.environ["TENSOR_TEST_DEVICE"]] if os.environ.get("TENSOR_TEST_DEVICE") else \
    ["mock:nvidia", "mock:amd", "mock:qcom"]


#: device tests that take long on mock:qcom (the ir3 emulator runs every fiber, and every new
#: kernel's instructions go through the isaspec assembler): they run by default (CI included);
#: TENSOR_QCOM_QUICK=1 leaves them out of a quick local run, saying so
QCOM_LONG = frozenset({
    "test_3d_and_views[mock:qcom]",
    "test_bool_reductions[mock:qcom]",
    "test_every_axis_one_pass[mock:qcom-1]",
    "test_every_axis_one_pass[mock:qcom-2]",
    "test_every_axis_one_pass[mock:qcom-None]",
    "test_every_axis_one_pass[mock:qcom-axis4]",
    "test_int_and_bool_rows[mock:qcom]",
    "test_kept_intermediate[mock:qcom]",
    "test_log_softmax_one_launch[mock:qcom-300]",
    "test_log_softmax_one_launch[mock:qcom-9000]",
    "test_long_row_softmax[mock:qcom-bfloat16]",
    "test_long_row_softmax[mock:qcom-float16]",
    "test_matmul_transposed_and_batched[mock:qcom]",
    "test_mma_configs[mock:qcom-72-200-136-32x64x64_w1x2_s4_g3_pf-bfloat16]",
    "test_mma_configs[mock:qcom-72-200-136-32x64x64_w1x2_s4_g3_pf-float16]",
    "test_mma_configs[mock:qcom-72-200-136-64x128x32_w1x4_s2_g1_pf-bfloat16]",
    "test_mma_configs[mock:qcom-72-200-136-64x64x16_w2x2_s3_g2-bfloat16]",
    "test_mma_configs[mock:qcom-72-200-136-64x64x16_w2x2_s3_g2-float16]",
    "test_mma_configs[mock:qcom-72-200-136-64x64x32_w2x2_s3_g2_pf-bfloat16]",
    "test_mma_configs[mock:qcom-72-200-136-64x64x32_w2x2_s3_g2_pf-float16]",
    "test_mma_configs[mock:qcom-72-200-136-64x64x64_w2x2_s2_g1-float16]",
    "test_movement[mock:qcom]",
    "test_reductions[mock:qcom-1-True-bfloat16]",
    "test_reductions[mock:qcom-None-False-bfloat16]",
    "test_reductions[mock:qcom-None-False-float16]",
    "test_reductions[mock:qcom-None-False-float32]",
    "test_reductions[mock:qcom-None-False-int32]",
    "test_reductions[mock:qcom-axis3-False-bfloat16]",
    "test_reductions[mock:qcom-axis3-False-float16]",
    "test_reductions[mock:qcom-axis3-False-float32]",
    "test_reductions[mock:qcom-axis3-False-int32]",
    "test_row_sum_max_mean[mock:qcom-127]",
    "test_row_sum_max_mean[mock:qcom-2048]",
    "test_row_sum_max_mean[mock:qcom-2049]",
    "test_row_sum_max_mean[mock:qcom-300]",
    "test_rows_of_several_axes_with_prologue_and_epilogue[mock:qcom]",
    "test_softmax[mock:qcom-bfloat16]",
    "test_softmax[mock:qcom-float16]",
    "test_softmax_narrow_floats[mock:qcom-2000-bfloat16]",
    "test_softmax_one_launch[mock:qcom-10240]",
    "test_softmax_one_launch[mock:qcom-1024]",
    "test_softmax_one_launch[mock:qcom-1025]",
    "test_softmax_one_launch[mock:qcom-300]",
    "test_softmax_one_launch[mock:qcom-8192]",
    "test_softmax_one_launch[mock:qcom-9000]",
    "test_split_dtypes[mock:qcom-bfloat16]",
    "test_split_dtypes[mock:qcom-bool]",
    "test_split_dtypes[mock:qcom-float16]",
    "test_split_dtypes[mock:qcom-int32]",
    "test_split_sum_max_mean[mock:qcom-(1000, 40)-0-2]",
    "test_split_sum_max_mean[mock:qcom-(2, 3000)--1-2]",
    "test_split_sum_max_mean[mock:qcom-(4, 900, 6)-1-2]",
    "test_split_sum_max_mean[mock:qcom-(70, 50)-(0, 1)-2]",
    "test_split_sum_max_mean[mock:qcom-(96, 70)-None-2]",
    "test_two_reductions_normalise[mock:qcom]",
    "test_wide_vectors_with_broadcast_and_strided_inputs[mock:qcom-bfloat16]",
    "test_wide_vectors_with_broadcast_and_strided_inputs[mock:qcom-float16]",
})


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Name of the device the tensor tests run on."""
    name = request.param
    if name.startswith("mock:amd"):
        pytest.importorskip("llvmlite", reason="the AMD renderer compiles with llvmlite (the `amd` extra)")
    if name == "mock:qcom" and request.node.name in QCOM_LONG and os.environ.get("TENSOR_QCOM_QUICK"):
        pytest.skip("long on the mock Adreno's emulator, left out by TENSOR_QCOM_QUICK=1")
    open_runtime(name)
    return name


def rounded(x: np.ndarray, dt) -> np.ndarray:
    """Host values as the device stores them in ``dt``, returned in a numpy type we can compute
    with (float32 for bfloat16)."""
    if dt == dtypes.bfloat16:
        return bf16_bits_to_f32(f32_to_bf16_bits(np.asarray(x, np.float32)))
    return np.asarray(x).astype(dt.np)


def assert_close(got: np.ndarray, want: np.ndarray, dt) -> None:
    rtol, atol = TOL[dt]
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    if rtol == 0:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got.astype(np.float64), np.asarray(want, np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)


def ptxas_log(src: str, arch: str = "sm_90", verbose: bool = False) -> str:
    """Assemble ``src`` with ptxas for ``arch`` (skip when ptxas is missing; fail with its
    message on any error); returns what ptxas printed."""
    from hwdrv.nvidia.compiler import find_ptxas
    exe = find_ptxas()        # PATH, $CUDA_HOME, or PyPI's nvidia-cuda-nvcc (the `nvidia` extra)
    if exe is None:
        pytest.skip("no ptxas found (install the `nvidia` extra: pip install -e '.[nvidia]')")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.ptx")
        with open(path, "w") as f:
            f.write(src)
        r = subprocess.run([exe, f"-arch={arch}", *(["-v"] if verbose else []), path, "-o",
                            os.path.join(d, "k.cubin")], capture_output=True, text=True)
    assert r.returncode == 0, f"ptxas rejected the kernel:\n{r.stderr}\n{src}"
    return r.stdout + r.stderr


def ptxas_check(src: str) -> None:
    """Assemble ``src`` with ptxas for sm_90; fail with its message on any error."""
    ptxas_log(src)


def ptxas_spills(src: str) -> int:
    """Bytes of spill stores plus loads ptxas -v reports for ``src`` on sm_90."""
    log = ptxas_log(src, verbose=True)
    counts = re.findall(r"(\d+) bytes spill (?:stores|loads)", log)
    assert counts, f"ptxas -v printed no spill counts:\n{log}"
    return sum(map(int, counts))


def amdgpu_asm(src: str) -> str:
    """LLVM's gfx1100 assembly for LLVM IR ``src`` (llvmlite, the pipeline AMDCompiler runs;
    skip when llvmlite is missing): what the AMD renderer's kernels become, in LLVM's words."""
    llvm = pytest.importorskip("llvmlite.binding", reason="the AMD renderer compiles with llvmlite (the `amd` extra)")
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    mod = llvm.parse_assembly(src)
    mod.triple = "amdgcn-amd-amdhsa"
    mod.verify()
    tm = llvm.Target.from_triple("amdgcn-amd-amdhsa").create_target_machine(cpu="gfx1100", opt=2, reloc="pic")
    mod.data_layout = str(tm.target_data)
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=2))
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_assembly(mod)
