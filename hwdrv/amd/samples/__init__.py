"""The AMD backend's sample kernels: one gfx1100 code object built from OpenCL C
(hwdrv/amd/samples/samples.cl, rebuilt by samples/build.sh with clang-19 + ld.lld-19) holding the
demo's vecadd, the provocations of ``python -m hwdrv diagnose`` (argument conventions in
hwdrv.provoke) and the compute-queue copy blits. The real GPU and the mock run the same bytes.
"""
from __future__ import annotations

from importlib import resources

CODE_OBJECT = resources.files(__name__).joinpath("samples.hsaco").read_bytes()

#: name -> (code object, kernel name), as ``Device.samples`` wants
SAMPLES = {
    "vecadd": (CODE_OBJECT, "vecadd"),
    "oob_store": (CODE_OBJECT, "oob_store"),
    "illegal_instruction": (CODE_OBJECT, "illegal_trap"),
    "endless_loop": (CODE_OBJECT, "spin_forever"),
}
#: hwdrv's own kernels (compute-queue copies): name -> (code object, kernel name)
BUILTINS = {"copy16": (CODE_OBJECT, "copy16"), "copy1": (CODE_OBJECT, "copy1")}
