"""ir3 kernels through the whole mock: a hand-built packet stream in Mesa computerator's a6xx
dispatch order (reference/qcom.md 2.8: SP_CS_* / HLSQ_CS_* registers, CP_LOAD_STATE6 for shader,
constants and IBO descriptors, CP_EXEC_CS) submitted with GPU_COMMAND to the mock kgsl, whose CP
runs the real ir3 emulator; results are read back through the CPU mapping and checked with numpy.
A kernel with a scheduling hazard faults the context the way kgsl reports GPU faults."""
from __future__ import annotations

import errno as E
import os
import struct

import numpy as np
import pytest

import hwdrv.mock.qcom as Q
from hwdrv.errors import IoctlError
from hwdrv.ioctl import hostmem
from hwdrv.ioctl.bindings import addressof, new
from hwdrv.ioctl.kernel import MAP_SHARED, PROT_READ, PROT_WRITE
from hwdrv.qcom import ir3
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P
from hwdrv.qcom.gen import kgsl as K

PAGE = 4096
CTX_FLAGS = (K.KGSL_CONTEXT_PREAMBLE | K.KGSL_CONTEXT_NO_GMEM_ALLOC | K.KGSL_CONTEXT_NO_FAULT_TOLERANCE
             | K.KGSL_CONTEXT_NO_SNAPSHOT)
MEM_FLAGS = K.KGSL_MEMFLAGS_USE_CPU_MAP


def _parity(v: int) -> int:
    return 1 - bin(v).count("1") % 2


def pkt7(op: int, *payload: int) -> list[int]:
    n = len(payload)
    return [P.CP_TYPE7_PKT | P.PKT_TYPE7_PKT_SIZE.encode(n) | P.PKT_TYPE7_PKT_SIZE_PARITY.encode(_parity(n))
            | P.PKT_CP_TYPE7_OPCODE.encode(op) | P.PKT_CP_TYPE7_OPCODE_PARITY.encode(_parity(op)), *payload]


def pkt4(reg: int, *vals: int) -> list[int]:
    n = len(vals)
    return [P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(n) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(_parity(n))
            | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(_parity(reg)), *vals]


def lohi(a: int) -> tuple[int, int]:
    return a & 0xFFFFFFFF, a >> 32


def load_state6(typ: int, n: int, *, addr: int = 0, payload: list[int] | None = None, off: int = 0) -> list[int]:
    src = P.SS6_DIRECT if payload is not None else P.SS6_INDIRECT
    d0 = (P.CP_LOAD_STATE6_0_DST_OFF.encode(off) | P.CP_LOAD_STATE6_0_STATE_TYPE.encode(typ)
          | P.CP_LOAD_STATE6_0_STATE_SRC.encode(src) | P.CP_LOAD_STATE6_0_STATE_BLOCK.encode(P.SB6_CS_SHADER)
          | P.CP_LOAD_STATE6_0_NUM_UNIT.encode(n))
    return pkt7(P.CP_LOAD_STATE6_FRAG, d0, *lohi(addr), *(payload or []))


def ibo_descriptor(va: int, dwords: int) -> list[int]:
    """A storage buffer as computerator's cs_ibo_emit writes it (FMT6_32_UINT, size split in WIDTH/HEIGHT)."""
    return [A.A6XX_TEX_CONST_0_FMT.encode(A.FMT6_32_UINT) | A.A6XX_TEX_CONST_0_TILE_MODE.encode(A.TILE6_LINEAR),
            A.A6XX_TEX_CONST_1_WIDTH.encode(dwords & 0x7FFF) | A.A6XX_TEX_CONST_1_HEIGHT.encode(dwords >> 15),
            A.A6XX_TEX_CONST_2_STRUCTSIZETEXELS.encode(1) | A.A6XX_TEX_CONST_2_TYPE.encode(A.A6XX_TEX_BUFFER), 0,
            A.A6XX_TEX_CONST_4_BASE_LO.encode((va & 0xFFFFFFFF) >> A.A6XX_TEX_CONST_4_BASE_LO_SHR),
            A.A6XX_TEX_CONST_5_BASE_HI.encode(va >> 32)] + [0] * 10


class Client:
    def __init__(self):
        self.k = Q.make_kernel(sync=True, hang_timeout=0.5)
        self.fd = self.k.open("/dev/kgsl-3d0", os.O_RDWR)

    def io(self, req: int, typ: str, **fields):
        a = new(K.ffi, typ, **fields)
        self.k.ioctl(self.fd, req, addressof(a))
        return a

    def buffer(self, size: int) -> tuple[int, int]:
        a = self.io(K.IOCTL_KGSL_GPUOBJ_ALLOC, "struct kgsl_gpuobj_alloc", size=size, flags=MEM_FLAGS)
        cpu = self.k.mmap(0, a.mmapsize, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd, a.id * PAGE)
        return cpu, self.io(K.IOCTL_KGSL_GPUOBJ_INFO, "struct kgsl_gpuobj_info", id=a.id).gpuaddr

    def submit_and_wait(self, ctx: int, gpu: int, nbytes: int) -> None:
        objs = K.ffi.new("struct kgsl_command_object[]", 1)
        objs[0].gpuaddr, objs[0].size, objs[0].flags = gpu, nbytes, K.KGSL_CMDLIST_IB
        ts = self.io(K.IOCTL_KGSL_GPU_COMMAND, "struct kgsl_gpu_command", cmdlist=addressof(objs),
                     cmdsize=K.ffi.sizeof("struct kgsl_command_object"), numcmds=1, context_id=ctx).timestamp
        self.io(K.IOCTL_KGSL_DEVICE_WAITTIMESTAMP_CTXTID, "struct kgsl_device_waittimestamp_ctxtid",
                context_id=ctx, timestamp=ts, timeout=5000)


SAXPY = """
shl.b r0.y, r48.x, 6
(rpt2)nop
add.u r0.y, r0.y, r0.x
(rpt2)nop
ldib.b.untyped.1d.u32.1.imm r1.x, r0.y, 0
ldib.b.untyped.1d.u32.1.imm r1.y, r0.y, 1
(sy)mul.f r1.z, r1.x, c1.x
(rpt2)nop
add.f r1.w, r1.z, r1.y
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.w, r0.y, 1
end
nop
"""


def dispatch(cl: Client, text: str, x: np.ndarray, y: np.ndarray, a: float, threadsize=A.THREAD64,
             launch: str = "exec_cs") -> np.ndarray:
    """Run ``text`` (r0.x = local id, r48.x = workgroup id, c1.x = a, IBO 0 = x, IBO 1 = y) over len(x) fibers
    in workgroups of 64, launched with CP_EXEC_CS (Mesa's way) or CP_RUN_OPENCL with the group counts in
    HLSQ_CS_KERNEL_GROUP_X/Y/Z (the vendor CL way tinygrad uses); returns y afterwards."""
    n, local = len(x), 64
    code = ir3.assemble(text)
    instrlen = -(-len(code) // 128)
    ctx = cl.io(K.IOCTL_KGSL_DRAWCTXT_CREATE, "struct kgsl_drawctxt_create", flags=CTX_FLAGS).drawctxt_id
    shader_cpu, shader = cl.buffer(instrlen * 128)
    hostmem.write(shader_cpu, code)
    x_cpu, x_va = cl.buffer(4 * n)
    y_cpu, y_va = cl.buffer(4 * n)
    hostmem.write(x_cpu, x.tobytes())
    hostmem.write(y_cpu, y.tobytes())
    desc_cpu, desc = cl.buffer(PAGE)
    hostmem.write(desc_cpu, struct.pack("<32I", *ibo_descriptor(x_va, n), *ibo_descriptor(y_va, n)))
    ctrl0 = (A.SP_CS_CTRL_REG0_THREADSIZE.encode(threadsize) | A.SP_CS_CTRL_REG0_FULLREGFOOTPRINT.encode(2)
             | A.SP_CS_CTRL_REG0_MERGEDREGS.encode(1))
    words = (pkt4(A.SP_MODE_CONTROL, A.SP_MODE_CONTROL_CONSTANT_DEMOTION_ENABLE.encode(1)
                  | A.SP_MODE_CONTROL_ISAMMODE.encode(A.ISAMMODE_GL))
             + pkt4(A.HLSQ_INVALIDATE_CMD, A.HLSQ_INVALIDATE_CMD_CS_STATE.encode(1)
                    | A.HLSQ_INVALIDATE_CMD_CS_IBO.encode(1))
             + pkt4(A.HLSQ_CS_CNTL, A.HLSQ_CS_CNTL_CONSTLEN.encode(4 >> A.HLSQ_CS_CNTL_CONSTLEN_SHR)
                    | A.HLSQ_CS_CNTL_ENABLED.encode(1))
             + pkt4(A.SP_CS_CONFIG, A.SP_CS_CONFIG_ENABLED.encode(1) | A.SP_CS_CONFIG_NIBO.encode(2))
             + pkt4(A.SP_CS_INSTRLEN, instrlen)
             + pkt4(A.SP_CS_CTRL_REG0, ctrl0, A.SP_CS_CTRL_REG1_SHARED_SIZE.encode(1))
             + pkt4(A.HLSQ_CS_CNTL_0, A.HLSQ_CS_CNTL_0_WGIDCONSTID.encode(48 << 2)
                    | A.HLSQ_CS_CNTL_0_WGSIZECONSTID.encode(0xFC) | A.HLSQ_CS_CNTL_0_WGOFFSETCONSTID.encode(0xFC)
                    | A.HLSQ_CS_CNTL_0_LOCALIDREGID.encode(0),
                    A.HLSQ_CS_CNTL_1_LINEARLOCALIDREGID.encode(0xFC) | A.HLSQ_CS_CNTL_1_THREADSIZE.encode(threadsize))
             + pkt4(A.SP_CS_OBJ_START, *lohi(shader))
             + load_state6(P.ST6_SHADER, instrlen, addr=shader)
             + load_state6(P.ST6_CONSTANTS, 1, off=1, payload=[int(np.float32(a).view(np.uint32)), 0, 0, 0])
             + load_state6(P.ST6_IBO, 2, addr=desc)
             + pkt4(A.SP_CS_IBO, *lohi(desc)) + pkt4(A.SP_CS_IBO_COUNT, 2)
             + pkt7(P.CP_SET_MARKER, P.CP_SET_MARKER_0_MODE.encode(P.RM6_COMPUTE))
             + pkt4(A.HLSQ_CS_NDRANGE_0, A.HLSQ_CS_NDRANGE_0_KERNELDIM.encode(1)
                    | A.HLSQ_CS_NDRANGE_0_LOCALSIZEX.encode(local - 1), n, 0, 1, 0, 1, 0)
             + (pkt4(A.HLSQ_CS_KERNEL_GROUP_X, 1, 1, 1) + pkt7(P.CP_EXEC_CS, 0, n // local, 1, 1) if launch == "exec_cs"
                else pkt4(A.HLSQ_CS_KERNEL_GROUP_X, n // local, 1, 1) + pkt7(P.CP_RUN_OPENCL, 0))
             + pkt7(P.CP_WAIT_FOR_IDLE))
    cmd_cpu, cmd = cl.buffer(4 * len(words))
    hostmem.write(cmd_cpu, struct.pack(f"<{len(words)}I", *words))
    cl.submit_and_wait(ctx, cmd, 4 * len(words))
    return np.frombuffer(hostmem.read(y_cpu, 4 * n), np.float32)


@pytest.fixture
def client():
    cl = Client()
    yield cl
    cl.k.qcom.engine.stop()


@pytest.mark.parametrize("threadsize,launch", [(A.THREAD64, "exec_cs"), (A.THREAD128, "exec_cs"),
                                               (A.THREAD64, "run_opencl")])
def test_saxpy_through_gpu_command_and_the_cp(client, threadsize, launch):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(512).astype(np.float32), rng.standard_normal(512).astype(np.float32)
    out = dispatch(client, SAXPY, x, y, 0.75, threadsize, launch)
    np.testing.assert_array_equal(out, np.float32(0.75) * x + y)
    assert client.k.qcom.cp.dispatches == 1


def test_a_hazard_in_the_shader_is_a_gpu_fault_of_the_context(client):
    bad = SAXPY.replace("(sy)mul.f", "mul.f")
    x = np.ones(64, np.float32)
    with pytest.raises(IoctlError) as ei:
        dispatch(client, bad, x, x, 1.0)
    assert ei.value.errno == E.EDEADLK
    f = client.k.qcom.faults[-1]
    assert f.kind == "shader" and "without (sy)" in str(f) and "mul.f" in str(f)
