"""The mock Hopper GPU driven by hand-built pushbuffers: host semaphores, a PTX QMD launch, the copy
engine, and fault injection (Xid, notifier, NV906F / NV83DE fault readback), in threaded and
HWDRV_MOCK_SYNC=1 modes. The encoder below is the test's own, built from the generated Fields.
"""
from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from hwdrv.ioctl import hostmem
from hwdrv.nvidia.gen import hopper as hw
from hwdrv.nvidia.gen import nv580 as nv
from test_mock_nvidia_rm import Rig, ffi

SUB_COMPUTE, SUB_COPY = hw.NVA06F_SUBCHANNEL_COMPUTE, hw.NVA06F_SUBCHANNEL_COPY_ENGINE
Q = "NVCBC0_QMDV04_00_"
HEADER = """
.version 8.0
.target sm_90
.address_size 64
"""
# On mock:nvidia a kernel's code is a PTX module that defines just that entry (docs/internals.md,
# "Mock NVIDIA binary format"); the QMD program address is its first byte.
KERNELS = {
    "vadd": """
.visible .entry vadd(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)
{
  .reg .b32 %r<6>; .reg .b64 %rd<8>; .reg .f32 %f<4>; .reg .pred %p<2>;
  ld.param.u64 %rd1, [a]; ld.param.u64 %rd2, [b]; ld.param.u64 %rd3, [c]; ld.param.u32 %r1, [n];
  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;
  mad.lo.s32 %r5, %r2, %r3, %r4;
  setp.ge.s32 %p1, %r5, %r1;
  @%p1 bra DONE;
  mul.wide.s32 %rd4, %r5, 4;
  add.s64 %rd5, %rd1, %rd4; add.s64 %rd6, %rd2, %rd4; add.s64 %rd7, %rd3, %rd4;
  ld.global.f32 %f1, [%rd5]; ld.global.f32 %f2, [%rd6]; add.f32 %f3, %f1, %f2; st.global.f32 [%rd7], %f3;
DONE:
  ret;
}
""",
    "poke": """
.visible .entry poke(.param .u64 p)
{
  .reg .b64 %rd<2>; .reg .b32 %r<2>;
  ld.param.u64 %rd1, [p]; mov.u32 %r1, 7; st.global.u32 [%rd1], %r1; ret;
}
""",
    "spin": """
.visible .entry spin()
{
LOOP:
  bra LOOP;
}
""",
}
# Generic-address windows the test programs (4 GiB / 16 MiB aligned, above every heap address)
SHARED_WINDOW, LOCAL_WINDOW = 0x7000_0000_0000, 0x7001_0000_0000
LOCAL_WINDOW_SIZE, STACK_RESERVE = 16 << 20, 0x240


# ---- the test's own encoder (from the generated Field facts) -----------------------------------------
def hdr(subch: int, mthd: int, count: int, op: int = hw.NVC56F_DMA_SEC_OP_INC_METHOD) -> int:
    return (hw.NVC56F_DMA_SEC_OP.encode(op) | hw.NVC56F_DMA_METHOD_COUNT.encode(count)
            | hw.NVC56F_DMA_METHOD_SUBCHANNEL.encode(subch) | hw.NVC56F_DMA_METHOD_ADDRESS.encode(mthd >> 2))


def m(subch: int, mthd: int, *data: int) -> list[int]:
    return [hdr(subch, mthd, len(data)), *data]


def sem(va: int, payload: int, op: int, extra: int = 0) -> list[int]:
    ex = (hw.NVC56F_SEM_EXECUTE_OPERATION.encode(op) | extra
          | hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE.encode(hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE_64BIT))
    return m(0, hw.NVC86F_SEM_ADDR_LO, va & 0xFFFFFFFC, va >> 32, payload & 0xFFFFFFFF, payload >> 32, ex)


def release(va: int, payload: int) -> list[int]:
    return sem(va, payload, hw.NVC56F_SEM_EXECUTE_OPERATION_RELEASE,
               hw.NVC56F_SEM_EXECUTE_RELEASE_WFI.encode(1) | hw.NVC56F_SEM_EXECUTE_RELEASE_TIMESTAMP.encode(1))


def submit(rig: Rig, ch: dict, words: list[int]) -> None:
    pb = rig.heap_alloc(4 * len(words), 4)
    hostmem.write(pb, np.array(words, np.uint32).tobytes())
    e0 = hw.NVC86F_GP_ENTRY0_GET.encode((pb & 0xFFFFFFFF) >> 2)
    e1 = hw.NVC86F_GP_ENTRY1_GET_HI.encode(pb >> 32) | hw.NVC86F_GP_ENTRY1_LENGTH.encode(len(words))
    hostmem.write(ch["ring"] + 8 * ch["put"], struct.pack("<Q", e0 | (e1 << 32)))
    ch["put"] = (ch["put"] + 1) % ch["entries"]
    hostmem.store_fence()
    hostmem.write(ch["userd"] + hw.ffi.offsetof("HopperAControlGPFifo", "GPPut"), struct.pack("<I", ch["put"]))
    rig.k.mmio_write32(rig.usermode_va + hw.NVC361_NOTIFY_CHANNEL_PENDING, ch["token"])


def u64(va: int) -> int:
    return struct.unpack("<Q", hostmem.read(va, 8))[0]


def wait_u64(va: int, want: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while u64(va) < want:
        assert time.monotonic() < end, f"timed out waiting for {va:#x} >= {want} (it is {u64(va)})"
        time.sleep(0.001)


def notifier_xid(rig: Rig, timeout: float = 20.0) -> int:
    end = time.monotonic() + timeout
    while struct.unpack_from("<H", hostmem.read(rig.notifier + 14, 2))[0] != 0xFFFF:
        assert time.monotonic() < end, "no error notifier written"
        time.sleep(0.001)
    return struct.unpack("<I", hostmem.read(rig.notifier + 8, 4))[0]


def qmd(program: int, cb0: int, cb0_size: int, grid, block, sem_va: int = 0, payload: int = 0) -> bytes:
    w = np.zeros(96, np.uint32)
    f = lambda n, *i: getattr(hw, Q + n)(*i) if i else getattr(hw, Q + n)  # noqa: E731
    # a grid launch must say GRID_CTA: the hardware runs nothing for a QUEUE-type (0) QMD
    for name, v in (("QMD_TYPE", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_CTA),
                    ("QMD_MAJOR_VERSION", 4), ("QMD_MINOR_VERSION", 0), ("REGISTER_COUNT", 16),
                    ("SHARED_MEMORY_SIZE", 0x400), ("GRID_WIDTH", grid[0]), ("GRID_HEIGHT", grid[1]),
                    ("GRID_DEPTH", grid[2]), ("CTA_THREAD_DIMENSION0", block[0]), ("CTA_THREAD_DIMENSION1", block[1]),
                    ("CTA_THREAD_DIMENSION2", block[2]), ("PROGRAM_ADDRESS_LOWER", program & 0xFFFFFFFF),
                    ("PROGRAM_ADDRESS_UPPER", program >> 32), ("API_VISIBLE_CALL_LIMIT", 1)):
        f(name).set(w, v)
    f("CONSTANT_BUFFER_VALID", 0).set(w, 1)
    f("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6", 0).set(w, (cb0 >> 6) & 0xFFFFFFFF)
    f("CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6", 0).set(w, cb0 >> 38)
    f("CONSTANT_BUFFER_SIZE_SHIFTED4", 0).set(w, -(-cb0_size // 16))
    if sem_va:
        f("RELEASE_ENABLE", 0).set(w, 1)
        f("RELEASE_PAYLOAD64B", 0).set(w, 1)
        f("RELEASE_SEMAPHORE0_ADDR_LOWER").set(w, sem_va & 0xFFFFFFFF)
        f("RELEASE_SEMAPHORE0_ADDR_UPPER").set(w, sem_va >> 32)
        f("RELEASE_SEMAPHORE0_PAYLOAD_LOWER").set(w, payload)
    return w.tobytes()


def launch_words(rig: Rig, entry: str, grid, block, params: bytes, sem_va: int = 0, payload: int = 0,
                 text: bytes | None = None) -> list[int]:
    text = (HEADER + KERNELS[entry]).encode() + b"\0" if text is None else text
    prog = rig.heap_alloc(len(text) + 4096, 256)
    hostmem.write(prog, text)
    cb0 = rig.heap_alloc(0x210 + len(params), 256)
    driver = struct.pack("<6IQQI", *block, *grid, SHARED_WINDOW, LOCAL_WINDOW, LOCAL_WINDOW_SIZE - STACK_RESERVE)
    hostmem.write(cb0, driver + bytes(0x210 - len(driver)) + params)
    q = rig.heap_alloc(384, 256)
    hostmem.write(q, qmd(prog, cb0, 0x210 + len(params), grid, block, sem_va, payload))
    launch = hw.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION.encode(
        hw.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_INVALIDATE_PREFETCH_COPY_SCHEDULE)
    return (m(SUB_COMPUTE, hw.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_A, SHARED_WINDOW >> 32, SHARED_WINDOW & 0xFFFFFFFF)
            + m(SUB_COMPUTE, hw.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_A, LOCAL_WINDOW >> 32, LOCAL_WINDOW & 0xFFFFFFFF)
            + m(SUB_COMPUTE, hw.NVCBC0_SEND_PCAS_A, q >> 8) + m(SUB_COMPUTE, hw.NVCBC0_SEND_SIGNALING_PCAS2_B, launch))


@pytest.fixture(params=["threaded", "sync"])
def rig(request, monkeypatch):
    monkeypatch.setenv("HWDRV_MOCK_SYNC", "1" if request.param == "sync" else "0")
    r = Rig(kernel_timeout=0.5).bring_up()
    submit(r, r.compute, m(SUB_COMPUTE, hw.NVC86F_SET_OBJECT, nv.HOPPER_COMPUTE_A))
    submit(r, r.copy, m(SUB_COPY, hw.NVC86F_SET_OBJECT, nv.HOPPER_DMA_COPY_A))
    yield r
    r.close()


def test_semaphore_release_timestamp_and_acquire(rig):
    gate, done = rig.heap_alloc(16, 16), rig.heap_alloc(16, 16)
    t0 = time.time_ns()
    submit(rig, rig.compute, sem(gate, 3, hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ) + release(done, 5))
    time.sleep(0.1)
    assert u64(done) == 0, "the acquire must block until the CPU sets the gate"
    hostmem.write(gate, struct.pack("<Q", 2))
    time.sleep(0.05)
    assert u64(done) == 0
    hostmem.write(gate, struct.pack("<Q", 3))
    wait_u64(done, 5)
    assert t0 <= u64(done + 8) <= time.time_ns()
    gpget = struct.unpack("<I", hostmem.read(rig.compute["userd"] + 0x88, 4))[0]
    assert gpget == rig.compute["put"]


def test_vector_add_qmd(rig):
    n = 1000
    a, b, c = (rig.heap_alloc(4 * n) for _ in range(3))
    done = rig.heap_alloc(16, 16)
    x = np.arange(n, dtype=np.float32)
    hostmem.write(a, x.tobytes())
    hostmem.write(b, (2 * x).tobytes())
    words = launch_words(rig, "vadd", (4, 1, 1), (256, 1, 1), struct.pack("<QQQI", a, b, c, n), done, 9)
    submit(rig, rig.compute, words)
    wait_u64(done, 9)
    np.testing.assert_array_equal(np.frombuffer(hostmem.read(c, 4 * n), np.float32), 3 * x)


def test_copy_engine_64mib_and_semaphore(rig):
    n = 64 << 20
    src, dst, done = rig.heap_alloc(n, 4096), rig.heap_alloc(n, 4096), rig.heap_alloc(16, 16)
    data = np.random.default_rng(0).integers(0, 255, n, dtype=np.uint8)
    hostmem.view(src, n)[:] = data
    launch = (hw.NVC8B5_LAUNCH_DMA_DATA_TRANSFER_TYPE.encode(hw.NVC8B5_LAUNCH_DMA_DATA_TRANSFER_TYPE_NON_PIPELINED)
              | hw.NVC8B5_LAUNCH_DMA_SRC_MEMORY_LAYOUT.encode(1) | hw.NVC8B5_LAUNCH_DMA_DST_MEMORY_LAYOUT.encode(1)
              | hw.NVC8B5_LAUNCH_DMA_FLUSH_ENABLE.encode(1)
              | hw.NVC8B5_LAUNCH_DMA_SEMAPHORE_TYPE.encode(hw.NVC8B5_LAUNCH_DMA_SEMAPHORE_TYPE_RELEASE_FOUR_WORD_SEMAPHORE)
              | hw.NVC8B5_LAUNCH_DMA_SEMAPHORE_PAYLOAD_SIZE.encode(1))
    words = (m(SUB_COPY, hw.NVC8B5_OFFSET_IN_UPPER, src >> 32, src & 0xFFFFFFFF, dst >> 32, dst & 0xFFFFFFFF)
             + m(SUB_COPY, hw.NVC8B5_LINE_LENGTH_IN, n)
             + m(SUB_COPY, hw.NVC8B5_SET_SEMAPHORE_A, done >> 32, done & 0xFFFFFFFF, 11, 0)
             + m(SUB_COPY, hw.NVC8B5_LAUNCH_DMA, launch))
    submit(rig, rig.copy, words)
    wait_u64(done, 11)
    assert np.array_equal(hostmem.view(dst, n), data)
    assert u64(done + 8) > 0


def test_unknown_method_is_xid_69(rig):
    done = rig.heap_alloc(16, 16)
    submit(rig, rig.compute, m(SUB_COMPUTE, 0x3FF0, 1) + release(done, 1))
    assert notifier_xid(rig) == 69
    info16 = struct.unpack("<H", hostmem.read(rig.notifier + 12, 2))[0]
    assert info16 == nv.NV2080_ENGINE_TYPE_GRAPHICS
    time.sleep(0.05)
    assert u64(done) == 0, "an RC'd channel runs nothing more"
    submit(rig, rig.compute, release(done, 2))
    time.sleep(0.05)
    assert u64(done) == 0


def test_out_of_bounds_store_faults_with_address(rig):
    bad = 0x6600_0000_0000
    submit(rig, rig.compute, launch_words(rig, "poke", (1, 1, 1), (32, 1, 1), struct.pack("<Q", bad)))
    assert notifier_xid(rig) == 31
    info = ffi.new("NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS *")
    assert rig.control(rig.compute["h"], nv.NV906F_CTRL_CMD_GET_MMU_FAULT_INFO, info) == 0
    # nothing mapped in its 2 MiB: no page table under the directory entry (as on the H100)
    assert (info.addrHi << 32 | info.addrLo) == bad and info.faultType == nv.NV_PFAULT_FAULT_TYPE_PDE
    assert ffi.string(info.faultString).startswith(b"FAULT_PDE ACCESS_TYPE_VIRT_WRIT")   # 32-byte field
    dbg = rig.ok_alloc(rig.device, nv.GT200_DEBUGGER, ffi.new(
        "NV83DE_ALLOC_PARAMETERS *", {"hAppClient": rig.client, "hClass3dObject": rig.compute["obj"]}))
    sm = ffi.new("NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS *",
                 {"hTargetChannel": rig.compute["h"], "numSMsToRead": 100})
    assert rig.control(dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES, sm) == 0
    assert sm.mmuFault.valid and sm.smErrorStateArray[0].hwwEsrAddr == bad and sm.smErrorStateArray[0].hwwWarpEsr
    sm.numSMsToRead = 101
    assert rig.control(dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES, sm) == 0x1F
    mf = ffi.new("NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS *")
    assert rig.control(dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO, mf) == 0
    assert mf.count == 1 and mf.mmuFaultInfoList[0].faultAddress == bad
    assert mf.mmuFaultInfoList[0].accessType == nv.NV_PFAULT_ACCESS_TYPE_VIRT_WRITE


def test_endless_kernel_is_stopped_and_reported(rig):
    t = time.monotonic()
    submit(rig, rig.compute, launch_words(rig, "spin", (1, 1, 1), (32, 1, 1), b""))
    assert notifier_xid(rig) == 13
    assert time.monotonic() - t < 15
    dbg = rig.ok_alloc(rig.device, nv.GT200_DEBUGGER, ffi.new(
        "NV83DE_ALLOC_PARAMETERS *", {"hAppClient": rig.client, "hClass3dObject": rig.compute["obj"]}))
    one = ffi.new("NV83DE_CTRL_DEBUG_READ_SINGLE_SM_ERROR_STATE_PARAMS *",
                  {"hTargetChannel": rig.compute["h"], "smID": 0})
    assert rig.control(dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_SINGLE_SM_ERROR_STATE, one) == 0
    assert one.smErrorState.hwwGlobalEsr == 1 << 31          # the mock's watchdog bit (faults.py)


@pytest.mark.parametrize("text", [
    (HEADER + KERNELS["poke"] + KERNELS["spin"]).encode() + b"\0",     # two entries: which one?
    b"\x90\xff\xfe SASS, not PTX\0",                                # not text
])
def test_program_address_without_one_kernel_text_is_a_launch_error(rig, text):
    words = launch_words(rig, "poke", (1, 1, 1), (32, 1, 1), struct.pack("<Q", rig.heap_alloc(16, 16)),
                         text=text)
    submit(rig, rig.compute, words)
    assert notifier_xid(rig) == 69            # GR class error: the launch is refused


def test_fresh_channel_works_after_an_error(rig):
    submit(rig, rig.compute, m(SUB_COMPUTE, 0x3FF0, 1))
    assert notifier_xid(rig) == 69
    hostmem.write(rig.notifier, bytes(16))
    ch = rig.channel(2, nv.HOPPER_COMPUTE_A, 0x2800_0000)
    done = rig.heap_alloc(16, 16)
    submit(rig, ch, m(SUB_COMPUTE, hw.NVC86F_SET_OBJECT, nv.HOPPER_COMPUTE_A) + release(done, 4))
    wait_u64(done, 4)


def test_fault_type_follows_the_page_table_region():
    """FAULT_PTE where the 2 MiB region holds another mapping (its page table exists), FAULT_PDE
    where it holds none (an H100 reported PDE for a freed buffer alone in its region)."""
    from hwdrv.mock.gpumem import TABLE_REGION, GpuPageTable, MemoryFault
    from hwdrv.mock.nvidia.faults import mmu_fault
    pt = GpuPageTable("t")
    host = np.zeros(8192, np.uint8)
    base = 0x20_0000_0000
    pt.map(base, host.ctypes.data, 4096)
    for va, want in ((base + 4096, nv.NV_PFAULT_FAULT_TYPE_PTE), (base + TABLE_REGION - 8, nv.NV_PFAULT_FAULT_TYPE_PTE),
                     (base + TABLE_REGION, nv.NV_PFAULT_FAULT_TYPE_PDE), (base - 8, nv.NV_PFAULT_FAULT_TYPE_PDE)):
        for read in (lambda: pt.read(va, 4), lambda: pt.load(np.array([va], np.uint64), np.uint32)):
            with pytest.raises(MemoryFault) as ei:
                read()
            assert mmu_fault(ei.value, "GPCCLIENT_T1_0", 0, "test").mmu.fault_type == want, hex(va)
