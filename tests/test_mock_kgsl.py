"""The mock kgsl driver driven through MockKernel with the generated msm_kgsl.h structs: good and bad
calls, each answered with the errno kgsl's source gives (docs/qcom-kgsl-rules.md names the function)."""
from __future__ import annotations

import errno as E
import os
import struct

import numpy as np
import pytest

from hwdrv.errors import IoctlError
from hwdrv.ioctl import hostmem
from hwdrv.ioctl.bindings import addressof, new
from hwdrv.ioctl.kernel import MAP_SHARED, PROT_READ, PROT_WRITE
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P
from hwdrv.qcom.gen import kgsl as K
from hwdrv.qcom.gen import kgsl_snapshot as S
import hwdrv.mock.qcom as Q
from hwdrv.mock.qcom import facts as F
from hwdrv.mock.qcom import snapshot

TINYGRAD_CTX_FLAGS = 0x04008A12      # qcom.md 1.4
TURNIP_CTX_FLAGS = 0x13
TINYGRAD_MEM_FLAGS = 0x100C0000
PAGE = 4096


def _parity(v: int) -> int:
    return 1 - bin(v).count("1") % 2


def pkt7(op: int, cnt: int) -> int:
    return (P.CP_TYPE7_PKT | P.PKT_TYPE7_PKT_SIZE.encode(cnt) | P.PKT_TYPE7_PKT_SIZE_PARITY.encode(_parity(cnt))
            | P.PKT_CP_TYPE7_OPCODE.encode(op) | P.PKT_CP_TYPE7_OPCODE_PARITY.encode(_parity(op)))


class Kgsl:
    """A test client: one fd on a mock kernel, ioctls by generated struct name."""

    def __init__(self, k, fd=None):
        self.k = k
        self.fd = k.open("/dev/kgsl-3d0", os.O_RDWR) if fd is None else fd

    def io(self, req: int, typ: str, **fields):
        a = new(K.ffi, typ, **fields)
        self.k.ioctl(self.fd, req, addressof(a))
        return a

    def ctx(self, flags=TINYGRAD_CTX_FLAGS) -> int:
        return self.io(K.IOCTL_KGSL_DRAWCTXT_CREATE, "struct kgsl_drawctxt_create", flags=flags).drawctxt_id

    def alloc(self, size=PAGE, flags=TINYGRAD_MEM_FLAGS):
        return self.io(K.IOCTL_KGSL_GPUOBJ_ALLOC, "struct kgsl_gpuobj_alloc", size=size, flags=flags)

    def mmap(self, a, size=None):
        return self.k.mmap(0, a.mmapsize if size is None else size, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd,
                           a.id * PAGE)

    def info(self, id_):
        return self.io(K.IOCTL_KGSL_GPUOBJ_INFO, "struct kgsl_gpuobj_info", id=id_)

    def buffer(self, size=PAGE, flags=TINYGRAD_MEM_FLAGS):
        """(cpu address, gpu address) of a new mapped object."""
        a = self.alloc(size, flags)
        cpu = self.mmap(a)
        return cpu, self.info(a.id).gpuaddr

    def submit(self, ctx: int, ibs: list[tuple[int, int]], flags=0, ts=0, entry_flags=K.KGSL_CMDLIST_IB):
        objs = K.ffi.new("struct kgsl_command_object[]", max(len(ibs), 1))
        for i, (addr, nbytes) in enumerate(ibs):
            objs[i].gpuaddr, objs[i].size, objs[i].flags = addr, nbytes, entry_flags
        g = self.io(K.IOCTL_KGSL_GPU_COMMAND, "struct kgsl_gpu_command", flags=flags,
                    cmdlist=addressof(objs) if ibs else 0, cmdsize=K.ffi.sizeof("struct kgsl_command_object") if ibs else 0,
                    numcmds=len(ibs), context_id=ctx, timestamp=ts)
        return g.timestamp

    def run(self, ctx: int, cpu: int, gpu: int, words: list[int], **kw) -> int:
        hostmem.write(cpu, struct.pack(f"<{len(words)}I", *words))
        return self.submit(ctx, [(gpu, 4 * len(words))], **kw)

    def wait(self, ctx: int, ts: int, timeout_ms=2000):
        self.io(K.IOCTL_KGSL_DEVICE_WAITTIMESTAMP_CTXTID, "struct kgsl_device_waittimestamp_ctxtid",
                context_id=ctx, timestamp=ts, timeout=timeout_ms)

    def read_ts(self, ctx: int, typ=K.KGSL_TIMESTAMP_RETIRED) -> int:
        return self.io(K.IOCTL_KGSL_CMDSTREAM_READTIMESTAMP_CTXTID, "struct kgsl_cmdstream_readtimestamp_ctxtid",
                       context_id=ctx, type=typ).timestamp

    def prop(self, typ: int, out: str | None = None, sizebytes: int | None = None, value=None):
        buf = value if value is not None else K.ffi.new(out + " *")
        n = K.ffi.sizeof(out) if sizebytes is None else sizebytes
        self.io(K.IOCTL_KGSL_DEVICE_GETPROPERTY, "struct kgsl_device_getproperty", type=typ, value=buf, sizebytes=n)
        return buf


def errno_of(fn, *a, **kw) -> int:
    with pytest.raises(IoctlError) as ei:
        fn(*a, **kw)
    return ei.value.errno


@pytest.fixture(params=[True, False], ids=["sync", "threaded"])
def kern(request):
    k = Q.make_kernel(sync=request.param, hang_timeout=0.3)
    yield k
    k.qcom.engine.stop()


@pytest.fixture
def kg(kern):
    return Kgsl(kern)


# --- properties -----------------------------------------------------------------------------------------
def test_device_info_is_an_a630(kg):
    d = kg.prop(K.KGSL_PROP_DEVICE_INFO, "struct kgsl_devinfo")
    assert d.chip_id >> 24 == 6 and (d.chip_id >> 16) & 0xFF == 3 and (d.chip_id >> 8) & 0xFF == 0
    assert d.gmem_sizebytes == 1 << 20 and d.mmu_enabled == 1 and d.device_id == 1 and d.gpu_id == 0


def test_getproperty_copies_at_most_sizebytes(kg):
    buf = K.ffi.new("uint8_t[40]", [0xAA] * 40)
    kg.prop(K.KGSL_PROP_DEVICE_INFO, "struct kgsl_devinfo", sizebytes=8, value=buf)
    assert bytes(buf[8:40]) == b"\xaa" * 32 and struct.unpack_from("<I", bytes(buf), 4)[0] == 0x06030001


def test_version_needs_exact_size_and_unknown_property_is_enodev(kg):
    v = kg.prop(K.KGSL_PROP_VERSION, "struct kgsl_version")
    assert (v.drv_major, v.drv_minor) == (3, 14)
    assert errno_of(kg.prop, K.KGSL_PROP_VERSION, "struct kgsl_version", sizebytes=8) == E.EINVAL
    assert errno_of(kg.prop, 0x7777, "struct kgsl_version") == E.ENODEV


def test_device_shadow_and_memstore_mapping(kg):
    s = kg.prop(K.KGSL_PROP_DEVICE_SHADOW, "struct kgsl_shadowprop")
    assert s.gpuaddr == 0xEFFFF000 and s.size == 8 * PAGE
    assert s.flags & K.KGSL_FLAGS_PER_CONTEXT_TIMESTAMPS
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    ts = kg.run(ctx, cpu, gpu, [pkt7(P.CP_NOP, 0)])
    kg.wait(ctx, ts)
    ms = kg.k.mmap(0, s.size, PROT_READ, MAP_SHARED, kg.fd, s.gpuaddr)
    rec = ms + ctx * K.ffi.sizeof("struct kgsl_devmemstore")
    assert struct.unpack("<I", hostmem.read(rec + K.ffi.offsetof("struct kgsl_devmemstore", "eoptimestamp"), 4))[0] == ts


# --- contexts -------------------------------------------------------------------------------------------
def test_context_flags_rules(kg):
    assert kg.ctx(TINYGRAD_CTX_FLAGS) == 1 and kg.ctx(TURNIP_CTX_FLAGS) == 2
    assert kg.k.qcom.contexts[2].priority == 8          # unset priority becomes MED
    assert kg.k.qcom.contexts[2].flags & K.KGSL_CONTEXT_PER_CONTEXT_TS
    assert errno_of(kg.ctx, K.KGSL_CONTEXT_NO_GMEM_ALLOC) == E.EINVAL       # no PREAMBLE: legacy switching
    assert errno_of(kg.ctx, K.KGSL_CONTEXT_PREAMBLE) == E.EINVAL
    assert errno_of(kg.ctx, TURNIP_CTX_FLAGS | K.KGSL_CONTEXT_SECURE) == E.EOPNOTSUPP
    assert kg.k.qcom.contexts[1].flags & 0x80000000 == 0   # unknown bits dropped


def test_context_ownership_and_stale_ids(kern):
    a, b = Kgsl(kern), Kgsl(kern)
    ctx = a.ctx()
    cpu, gpu = a.buffer()
    assert errno_of(b.io, K.IOCTL_KGSL_DRAWCTXT_DESTROY, "struct kgsl_drawctxt_destroy", drawctxt_id=ctx) == E.EINVAL
    assert errno_of(b.run, ctx, cpu, gpu, [pkt7(P.CP_NOP, 0)]) == E.EINVAL
    assert errno_of(b.wait, ctx, 0) == E.EINVAL
    assert errno_of(b.read_ts, ctx) == E.EINVAL
    a.io(K.IOCTL_KGSL_DRAWCTXT_DESTROY, "struct kgsl_drawctxt_destroy", drawctxt_id=ctx)
    assert errno_of(a.io, K.IOCTL_KGSL_DRAWCTXT_DESTROY, "struct kgsl_drawctxt_destroy", drawctxt_id=ctx) == E.EINVAL
    assert errno_of(a.run, ctx, cpu, gpu, [pkt7(P.CP_NOP, 0)]) == E.EINVAL
    assert errno_of(a.wait, ctx, 0) == E.EINVAL
    assert errno_of(a.io, K.IOCTL_KGSL_DRAWCTXT_DESTROY, "struct kgsl_drawctxt_destroy", drawctxt_id=99) == E.EINVAL


# --- memory ---------------------------------------------------------------------------------------------
def test_gpuobj_alloc_rules(kg):
    a = kg.alloc(100, TINYGRAD_MEM_FLAGS | 1 << 40)
    assert a.size == PAGE and a.mmapsize == PAGE and a.flags == TINYGRAD_MEM_FLAGS and a.id == 1
    g = kg.alloc(PAGE, K.KGSL_MEMFLAGS_GUARD_PAGE)
    assert g.mmapsize == 2 * PAGE
    assert errno_of(kg.alloc, 0) == E.EINVAL
    assert errno_of(kg.alloc, 1 << 32) == E.EINVAL
    assert errno_of(kg.alloc, PAGE, K.KGSL_MEMFLAGS_SECURE) == E.EOPNOTSUPP
    assert kg.alloc(PAGE, 40 << K.KGSL_MEMALIGN_SHIFT).flags >> K.KGSL_MEMALIGN_SHIFT & 0xFF == 25   # capped 32 MiB


def test_svm_object_gpu_address_is_its_cpu_address(kg):
    a = kg.alloc(3 * PAGE)
    assert kg.info(a.id).gpuaddr == 0                     # no GPU address before mmap
    assert errno_of(kg.mmap, a, PAGE) == E.ERANGE        # must map the whole footprint
    cpu = kg.mmap(a)
    inf = kg.info(a.id)
    assert inf.gpuaddr == cpu and inf.va_len == 3 * PAGE and inf.va_addr == 0
    assert F.SVM_BASE64 <= cpu < F.SVM_END64              # placed in kgsl's 64-bit SVM window
    assert errno_of(kg.mmap, a) == E.EBUSY                # a USE_CPU_MAP object maps once


def test_plain_object_gets_a_gpu_address_in_the_64bit_window(kg):
    a = kg.io(K.IOCTL_KGSL_GPUMEM_ALLOC_ID, "struct kgsl_gpumem_alloc_id", size=5000, flags=0)
    assert F.VA_BASE64 <= a.gpuaddr < F.VA_END64 and a.size == 2 * PAGE and a.mmapsize == 2 * PAGE
    cpu = kg.k.mmap(0, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, kg.fd, a.id * PAGE)
    assert cpu != a.gpuaddr
    # mmap by GPU address (pgoff = gpuaddr >> 12 when no object has that id)
    cpu2 = kg.k.mmap(0, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, kg.fd, a.gpuaddr)
    hostmem.write(cpu, b"hello")
    assert hostmem.read(cpu2, 5) == b"hello"
    assert errno_of(kg.k.mmap, 0, PAGE * 3, PROT_READ, MAP_SHARED, kg.fd, a.id * PAGE) == E.ERANGE
    inf = kg.io(K.IOCTL_KGSL_GPUMEM_GET_INFO, "struct kgsl_gpumem_get_info", gpuaddr=a.gpuaddr + 10)
    assert inf.id == a.id and inf.size == 2 * PAGE
    assert errno_of(kg.k.mmap, 0, PAGE, PROT_READ, MAP_SHARED, kg.fd, 77 * PAGE) == E.EINVAL


def test_free_rules(kg):
    a = kg.alloc()
    assert errno_of(kg.info, 0) == E.EINVAL
    kg.io(K.IOCTL_KGSL_GPUOBJ_FREE, "struct kgsl_gpuobj_free", id=a.id)
    assert errno_of(kg.info, a.id) == E.EINVAL
    assert errno_of(kg.io, K.IOCTL_KGSL_GPUOBJ_FREE, "struct kgsl_gpuobj_free", id=a.id) == E.EINVAL
    b = kg.io(K.IOCTL_KGSL_GPUMEM_ALLOC_ID, "struct kgsl_gpumem_alloc_id", size=PAGE, flags=0)
    kg.io(K.IOCTL_KGSL_GPUMEM_FREE_ID, "struct kgsl_gpumem_free_id", id=b.id)
    assert errno_of(kg.io, K.IOCTL_KGSL_GPUMEM_FREE_ID, "struct kgsl_gpumem_free_id", id=b.id) == E.EINVAL
    assert errno_of(kg.io, K.IOCTL_KGSL_GPUOBJ_FREE, "struct kgsl_gpuobj_free", id=5, flags=0) == E.EINVAL


def test_free_on_timestamp(kg):
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    a = kg.alloc()
    ts = kg.run(ctx, cpu, gpu, [pkt7(P.CP_NOP, 0)])
    ev = K.ffi.new("struct kgsl_gpu_event_timestamp *", {"context_id": ctx, "timestamp": ts})
    kg.io(K.IOCTL_KGSL_GPUOBJ_FREE, "struct kgsl_gpuobj_free", id=a.id, flags=K.KGSL_GPUOBJ_FREE_ON_EVENT,
          type=K.KGSL_GPU_EVENT_TIMESTAMP, priv=addressof(ev), len=8)
    kg.wait(ctx, ts)
    assert errno_of(kg.info, a.id) == E.EINVAL
    b = kg.alloc()
    assert errno_of(kg.io, K.IOCTL_KGSL_GPUOBJ_FREE, "struct kgsl_gpuobj_free", id=b.id,
                    flags=K.KGSL_GPUOBJ_FREE_ON_EVENT, type=K.KGSL_GPU_EVENT_TIMESTAMP, priv=addressof(ev), len=4) == E.EINVAL


def test_map_user_mem(kg):
    host = kg.k.mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, 0x22, -1, 0)    # MAP_PRIVATE|MAP_ANONYMOUS
    assert errno_of(kg.io, K.IOCTL_KGSL_MAP_USER_MEM, "struct kgsl_map_user_mem", hostptr=host + 8, len=PAGE,
                    memtype=K.KGSL_USER_MEM_TYPE_ADDR) == E.EINVAL
    m = kg.io(K.IOCTL_KGSL_MAP_USER_MEM, "struct kgsl_map_user_mem", hostptr=host, len=2 * PAGE,
              memtype=K.KGSL_USER_MEM_TYPE_ADDR)
    assert m.gpuaddr == host
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    ts = kg.run(ctx, cpu, gpu, [pkt7(P.CP_MEM_WRITE, 3), (host + 16) & 0xFFFFFFFF, (host + 16) >> 32, 0x1234])
    kg.wait(ctx, ts)
    assert struct.unpack("<I", hostmem.read(host + 16, 4))[0] == 0x1234
    info = kg.io(K.IOCTL_KGSL_GPUMEM_GET_INFO, "struct kgsl_gpumem_get_info", gpuaddr=host)
    assert errno_of(kg.k.mmap, 0, 2 * PAGE, PROT_READ, MAP_SHARED, kg.fd, info.id * PAGE) == E.EBUSY
    kg.io(K.IOCTL_KGSL_SHAREDMEM_FREE, "struct kgsl_sharedmem_free", gpuaddr=host)
    assert errno_of(kg.io, K.IOCTL_KGSL_SHAREDMEM_FREE, "struct kgsl_sharedmem_free", gpuaddr=host) == E.EINVAL
    kg.k.munmap(host, 2 * PAGE)


# --- submission -----------------------------------------------------------------------------------------
def test_gpu_command_runs_ibs_and_timestamps_are_per_context(kg):
    c1, c2 = kg.ctx(), kg.ctx()
    cpu, gpu = kg.buffer(2 * PAGE)
    out = gpu + PAGE
    for i, c in enumerate((c1, c1, c2)):
        ts = kg.run(c, cpu + 64 * i, gpu + 64 * i, [pkt7(P.CP_MEM_WRITE, 3), (out + 4 * i) & 0xFFFFFFFF, out >> 32, 100 + i])
        kg.wait(c, ts)
    assert (kg.read_ts(c1), kg.read_ts(c2)) == (2, 1)
    assert kg.read_ts(c1, K.KGSL_TIMESTAMP_QUEUED) == 2 and kg.read_ts(c1, K.KGSL_TIMESTAMP_CONSUMED) == 2
    assert struct.unpack("<3I", hostmem.read(cpu + PAGE, 12)) == (100, 101, 102)
    assert errno_of(kg.read_ts, c1, 7) == E.EINVAL


def test_marker_command_gets_a_timestamp(kg):
    ctx = kg.ctx()
    ts = kg.submit(ctx, [])
    kg.wait(ctx, ts)
    assert ts == 1 and kg.read_ts(ctx) == 1


def test_gpu_command_input_checks(kg):
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    obj = K.ffi.new("struct kgsl_command_object *", {"gpuaddr": gpu, "size": 4, "flags": K.KGSL_CMDLIST_IB})
    base = dict(cmdlist=addressof(obj), cmdsize=32, numcmds=1, context_id=ctx)
    T = "struct kgsl_gpu_command"
    assert errno_of(kg.io, K.IOCTL_KGSL_GPU_COMMAND, T, **{**base, "numcmds": 2001}) == E.EINVAL
    assert errno_of(kg.io, K.IOCTL_KGSL_GPU_COMMAND, T, **{**base, "numsyncs": 33}) == E.EINVAL
    assert errno_of(kg.io, K.IOCTL_KGSL_GPU_COMMAND, T, **{**base, "cmdsize": 0}) == E.EINVAL
    assert errno_of(kg.io, K.IOCTL_KGSL_GPU_COMMAND, T, **{**base, "context_id": 42}) == E.EINVAL
    assert errno_of(kg.submit, ctx, [(gpu, 4)], entry_flags=0) == E.EINVAL             # no IB flag
    assert errno_of(kg.submit, ctx, [(gpu, 0)]) == E.EINVAL                            # empty IB
    assert errno_of(kg.submit, ctx, [(gpu + 2, 4)]) == E.EINVAL                        # not dword aligned
    assert errno_of(kg.submit, ctx, [(0x1000, 4)]) == E.EINVAL                         # outside the VA windows
    assert errno_of(kg.submit, ctx, [(gpu, 4 * (F.IB_MAX_DWORDS + 1))]) == E.EINVAL    # over 0xFFFFF dwords
    # a bigger entry stride is fine when the extra bytes are zero (copy_struct_from_user)
    big = K.ffi.new("uint8_t[40]")
    K.ffi.memmove(big, K.ffi.buffer(obj), 32)
    hostmem.write(cpu, struct.pack("<I", pkt7(P.CP_NOP, 0)))
    g = kg.io(K.IOCTL_KGSL_GPU_COMMAND, T, **{**base, "cmdlist": addressof(big), "cmdsize": 40})
    kg.wait(ctx, g.timestamp)


def test_user_generated_timestamps(kg):
    ctx = kg.ctx(TURNIP_CTX_FLAGS | K.KGSL_CONTEXT_USER_GENERATED_TS)
    assert kg.submit(ctx, [], ts=10) == 10
    assert errno_of(kg.submit, ctx, [], ts=10) == E.ERANGE
    assert errno_of(kg.submit, ctx, [], ts=5) == E.ERANGE
    assert kg.submit(ctx, [], ts=11) == 11


def test_wait_rules(kern, kg):
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    flag = gpu + 256
    # a command that waits for memory the CPU writes later (CP_WAIT_REG_MEM EQ on memory)
    kern.qcom.cp.hang_timeout = 30
    ts = kg.run(ctx, cpu, gpu, [pkt7(P.CP_WAIT_REG_MEM, 6),
                                P.CP_WAIT_REG_MEM_0_FUNCTION.encode(P.WRITE_EQ) | P.CP_WAIT_REG_MEM_0_POLL.encode(P.POLL_MEMORY),
                                flag & 0xFFFFFFFF, flag >> 32, 7, 0xFFFFFFFF, 16])
    assert errno_of(kg.wait, ctx, ts, 50) == E.ETIMEDOUT
    assert errno_of(kg.wait, ctx, ts + 1) == E.EINVAL           # never queued
    assert kg.read_ts(ctx) == 0 and kg.read_ts(ctx, K.KGSL_TIMESTAMP_CONSUMED) == 1
    hostmem.write(cpu + 256, struct.pack("<I", 7))
    kg.wait(ctx, ts)
    assert kg.read_ts(ctx) == ts


def test_legacy_waittimestamp_is_enotty(kg):
    arg = K.ffi.new("uint32_t[2]")
    assert errno_of(kg.k.ioctl, kg.fd, 0x40080906, addressof(arg)) == E.ENOTTY


# --- faults ---------------------------------------------------------------------------------------------
def test_unknown_packet_faults_the_context_and_writes_a_snapshot(kern, kg):
    ctx, other = kg.ctx(), kg.ctx()
    cpu, gpu = kg.buffer()
    bad = [pkt7(P.CP_NOP, 0), pkt7(0x7E, 0)]
    ts = kg.run(ctx, cpu, gpu, bad)
    assert errno_of(kg.wait, ctx, ts) == E.EDEADLK
    assert errno_of(kg.submit, ctx, []) == E.EDEADLK
    f = kern.qcom.faults[-1]
    assert f.kind == "opcode" and "opcode 0x7e" in str(f) and f"{gpu + 4:#x}" in str(f) and f.ib[:2] == (1, gpu)
    stat = kg.prop(K.KGSL_PROP_GPU_RESET_STAT, None, 4, K.ffi.new("uint32_t *", ctx))
    assert stat[0] == K.KGSL_CTX_STAT_GUILTY_CONTEXT_RESET_EXT
    stat = kg.prop(K.KGSL_PROP_GPU_RESET_STAT, None, 4, K.ffi.new("uint32_t *", ctx))
    assert stat[0] == K.KGSL_CTX_STAT_NO_ERROR                     # reading cleared it
    fault = K.ffi.new("struct kgsl_context_property_fault *")
    cprop = K.ffi.new("struct kgsl_context_property *", {"data": addressof(fault), "size": 8,
                                                          "type": K.KGSL_CONTEXT_PROP_FAULTS, "contextid": ctx})
    kg.prop(K.KGSL_PROP_CONTEXT_PROPERTY, "struct kgsl_context_property", value=cprop)
    assert (fault.faults, fault.timestamp) == (1, ts)
    # the snapshot: kgsl format, readable once
    s = snapshot.parse(kern.read_file("/sys/class/kgsl/kgsl-3d0/snapshot/dump"))
    assert s.chipid == 0x06030001 and s.current_context == ctx
    assert A.CP_INTERRUPT_STATUS_CP_OPCODE_ERROR.decode(s.regs[A.CP_INTERRUPT_STATUS])
    assert (s.regs[A.CP_IB1_BASE], s.regs[A.CP_IB1_BASE + 1]) == (gpu & 0xFFFFFFFF, gpu >> 32)
    assert s.regs[A.CP_IB1_REM_SIZE] == 0 and s.regs[A.CP_SQE_STAT_DATA] == bad[1]
    assert s.ibs and s.ibs[0] == (gpu, bad)
    assert s.rb["gpuaddr"] and s.rb["rbsize"] == F.RB_SIZE // 4 and len(s.rb["data"]) == F.RB_SIZE // 4
    assert any(o[0] == S.SNAPSHOT_GPU_OBJECT_GLOBAL and o[1] == 0xEFFFF000 for o in s.objects)
    assert kern.read_file("/sys/class/kgsl/kgsl-3d0/snapshot/dump") == b""
    # an innocent context keeps working after the GPU recovered
    ts2 = kg.run(other, cpu + 512, gpu + 512, [pkt7(P.CP_NOP, 0)])
    kg.wait(other, ts2)
    assert kg.read_ts(other) == ts2


def test_queued_commands_of_a_faulting_context_are_dropped(kern, kg):
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    kern.qcom.cp.hang_timeout = 30
    gate = gpu + 1024
    wait_gate = [pkt7(P.CP_WAIT_REG_MEM, 6),
                 P.CP_WAIT_REG_MEM_0_FUNCTION.encode(P.WRITE_EQ) | P.CP_WAIT_REG_MEM_0_POLL.encode(P.POLL_MEMORY),
                 gate & 0xFFFFFFFF, gate >> 32, 1, 0xFFFFFFFF, 16, pkt7(0x7E, 0)]
    kg.run(ctx, cpu, gpu, wait_gate)
    out = gpu + 2048
    ts2 = kg.run(ctx, cpu + 256, gpu + 256, [pkt7(P.CP_MEM_WRITE, 3), out & 0xFFFFFFFF, out >> 32, 0x55])
    hostmem.write(cpu + 1024, struct.pack("<I", 1))
    assert errno_of(kg.wait, ctx, ts2) == E.EDEADLK
    assert struct.unpack("<I", hostmem.read(cpu + 2048, 4))[0] == 0       # the second command never ran
    assert kg.read_ts(ctx) == ts2                                          # memstore set to the last queued


def test_hang_detect_and_page_fault(kern, kg):
    ctx = kg.ctx(TINYGRAD_CTX_FLAGS | K.KGSL_CONTEXT_NO_SNAPSHOT)
    cpu, gpu = kg.buffer()
    never = gpu + 256
    ts = kg.run(ctx, cpu, gpu, [pkt7(P.CP_WAIT_MEM_GTE, 4), 0, never & 0xFFFFFFFF, never >> 32, 1])
    assert errno_of(kg.wait, ctx, ts, 5000) == E.EDEADLK
    f = kern.qcom.faults[-1]
    assert f.kind == "hang" and "CP_WAIT_MEM_GTE" in str(f)
    assert kern.read_file("/sys/class/kgsl/kgsl-3d0/snapshot/dump") == b""   # NO_SNAPSHOT
    ctx2 = kg.ctx()
    ts = kg.run(ctx2, cpu + 512, gpu + 512, [pkt7(P.CP_MEM_WRITE, 3), 0x10, 0, 1])
    assert errno_of(kg.wait, ctx2, ts) == E.EDEADLK
    f = kern.qcom.faults[-1]
    assert f.kind == "pagefault" and f.address == 0x10 and f.access == "write"
    s = snapshot.parse(kern.read_file("/sys/class/kgsl/kgsl-3d0/snapshot/dump"))
    assert s.current_context == ctx2


def test_close_releases_memory_and_contexts(kern):
    a = Kgsl(kern)
    ctx = a.ctx()
    a.buffer()
    kern.close(a.fd)
    assert not kern.qcom.contexts and not kern.qcom.mem.entries
    b = Kgsl(kern)
    assert errno_of(b.wait, ctx, 0) == E.EINVAL


def test_ioctl_dispatch_is_by_number_with_min_size_copies(kg):
    """kgsl_ioctl_helper: a request with a smaller size copies only that many bytes in and out."""
    ctx = kg.ctx()
    a = K.ffi.new("struct kgsl_cmdstream_readtimestamp_ctxtid *", {"context_id": ctx, "type": K.KGSL_TIMESTAMP_QUEUED,
                                                                    "timestamp": 0xAAAA})
    short = (K.IOCTL_KGSL_CMDSTREAM_READTIMESTAMP_CTXTID & ~(0x3FFF << 16)) | (8 << 16)
    kg.k.ioctl(kg.fd, short, addressof(a))
    assert a.timestamp == 0xAAAA            # the out field lies past the 8 bytes copied back
    ts = kg.submit(ctx, [])
    kg.k.ioctl(kg.fd, K.IOCTL_KGSL_CMDSTREAM_READTIMESTAMP_CTXTID, addressof(a))
    assert a.timestamp == ts
    assert errno_of(kg.k.ioctl, kg.fd, 0xC0080977, addressof(a)) == E.ENOTTY


def test_fault_tolerant_context_skips_the_command_and_reports_eproto_once(kern, kg):
    ctx = kg.ctx(TURNIP_CTX_FLAGS)                  # default fault tolerance
    cpu, gpu = kg.buffer()
    ts = kg.run(ctx, cpu, gpu, [pkt7(0x7E, 0)])
    assert errno_of(kg.wait, ctx, ts) == E.EPROTO   # "success", but the device faulted
    kg.wait(ctx, ts)                                # reported once
    assert kg.read_ts(ctx) == ts
    stat = kg.prop(K.KGSL_PROP_GPU_RESET_STAT, None, 4, K.ffi.new("uint32_t *", ctx))
    assert stat[0] == K.KGSL_CTX_STAT_GUILTY_CONTEXT_RESET_EXT
    ts2 = kg.run(ctx, cpu + 64, gpu + 64, [pkt7(P.CP_MEM_WRITE, 3), (gpu + 512) & 0xFFFFFFFF, gpu >> 32, 3])
    kg.wait(ctx, ts2)
    assert struct.unpack("<I", hostmem.read(cpu + 512, 4))[0] == 3


def test_register_protection_as_the_kernel_programs_it(kern, kg):
    """a6xx_protect_init with a630_protected_regs: writes to any span fault, reads of noaccess spans fault,
    CP_PROTECT_STATUS holds the register (bit 20 = read) as a6xx_cp_hw_err_callback decodes it."""
    cpu, gpu = kg.buffer()
    out = gpu + 1024

    def stream(words):
        ctx = kg.ctx()
        ts = kg.run(ctx, cpu, gpu, words)
        return ctx, ts

    # reading the always-on counter (span 0x8d0-0x98c, readable) and writing compute registers is fine
    ctx, ts = stream([pkt7(P.CP_REG_TO_MEM, 3), P.CP_REG_TO_MEM_0_REG.encode(A.CP_ALWAYS_ON_COUNTER)
                      | P.CP_REG_TO_MEM_0_CNT.encode(2) | P.CP_REG_TO_MEM_0_64B.encode(1), out & 0xFFFFFFFF, out >> 32,
                      pkt7(P.CP_NOP, 0)])
    kg.wait(ctx, ts)
    # writing CP_RB_BASE from an IB
    hdr = (P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(1) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(_parity(1))
           | P.PKT_TYPE4_PKT_OFFSET.encode(A.CP_RB_BASE) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(_parity(A.CP_RB_BASE)))
    ctx, ts = stream([hdr, 0])
    assert errno_of(kg.wait, ctx, ts) == E.EDEADLK
    f = kern.qcom.faults[-1]
    assert f.kind == "protect" and "CP_RB_BASE" in str(f)
    s = snapshot.parse(kern.read_file("/sys/class/kgsl/kgsl-3d0/snapshot/dump"))
    assert A.CP_INTERRUPT_STATUS_CP_REGISTER_PROTECTION_ERROR.decode(s.regs[A.CP_INTERRUPT_STATUS])
    assert s.regs[A.CP_PROTECT_STATUS] == A.CP_RB_BASE
    # reading CP_RB_RPTR (a noaccess span)
    ctx, ts = stream([pkt7(P.CP_REG_TO_MEM, 3), P.CP_REG_TO_MEM_0_REG.encode(A.CP_RB_RPTR), out & 0xFFFFFFFF,
                      out >> 32])
    assert errno_of(kg.wait, ctx, ts) == E.EDEADLK
    assert kern.qcom.faults[-1].kind == "protect" and kern.qcom.cp.faulted is None


@pytest.mark.skipif(not os.environ.get("HWDRV_AUTOGEN_SRC"), reason="needs the pinned kgsl source (HWDRV_AUTOGEN_SRC)")
def test_protected_spans_match_adreno_gpulist_h():
    import re
    text = open(os.path.join(os.environ["HWDRV_AUTOGEN_SRC"], "kgsl", "adreno-gpulist.h")).read()
    body = text[text.index("a630_protected_regs[] = {"):]
    body = body[:body.index("{ 0 }")]
    spans = [(int(a, 16), int(b, 16), int(c)) for a, b, c in
             re.findall(r"\{ A6XX_CP_PROTECT_REG \+ \d+, (0x[0-9a-f]+), (0x[0-9a-f]+), (\d) \}", body)]
    assert spans == F.A630_PROTECTED_REGS


def test_timestamps_wrap_at_32_bits(kg):
    """kgsl.h timestamp_cmp with KGSL_TIMESTAMP_WINDOW: 0xFFFFFFFF is *older* than the initial 0 (rollover),
    so a user timestamp must move forward from 0 first; 0x7FFFFFFF..0x80000001 crosses the half window."""
    ctx = kg.ctx(TURNIP_CTX_FLAGS | K.KGSL_CONTEXT_USER_GENERATED_TS)
    assert errno_of(kg.submit, ctx, [], ts=0xFFFFFFFF) == E.ERANGE
    assert kg.submit(ctx, [], ts=0x7FFFFFFF) == 0x7FFFFFFF
    assert kg.submit(ctx, [], ts=0xFFFFFFF0) == 0xFFFFFFF0
    assert kg.submit(ctx, [], ts=2) == 2                 # newer across the wrap
    kg.wait(ctx, 2)
    kg.wait(ctx, 0xFFFFFFF0)                              # older than the retired 2: already done
    assert kg.read_ts(ctx) == 2


def test_timestamp_cmp_matches_kgsl_at_the_window_edges():
    from hwdrv.mock.qcom.context import timestamp_cmp
    assert timestamp_cmp(0, 0xFFFFFFFF) == 1 and timestamp_cmp(0xFFFFFFFF, 0) == -1
    assert timestamp_cmp(0x80000000, 0) == -1 and timestamp_cmp(0, 0x80000000) == 1   # "<=" on the rollover side
    assert timestamp_cmp(0x7FFFFFFF, 0) == 1 and timestamp_cmp(5, 5) == 0


def test_timestamp_syncpoints_are_validated(kg):
    a, b = kg.ctx(), kg.ctx()
    ts = kg.submit(a, [])
    sp_ts = K.ffi.new("struct kgsl_cmd_syncpoint_timestamp *", {"context_id": a, "timestamp": ts})
    sp = K.ffi.new("struct kgsl_command_syncpoint *", {"priv": addressof(sp_ts), "size": 8, "type": 0})
    T = "struct kgsl_gpu_command"
    g = kg.io(K.IOCTL_KGSL_GPU_COMMAND, T, synclist=addressof(sp), syncsize=24, numsyncs=1, context_id=b)
    assert g.timestamp == 0                               # a sync object alone takes no timestamp
    sp_ts.timestamp = ts + 5
    assert errno_of(kg.io, K.IOCTL_KGSL_GPU_COMMAND, T, synclist=addressof(sp), syncsize=24, numsyncs=1,
                    context_id=b) == E.EINVAL             # never queued
    sp_ts.timestamp, sp_ts.context_id = ts, 77
    assert errno_of(kg.io, K.IOCTL_KGSL_GPU_COMMAND, T, synclist=addressof(sp), syncsize=24, numsyncs=1,
                    context_id=b) == E.EINVAL


def test_a_tinygrad_style_dispatch_reaches_the_emulator_entry_point():
    """The packet sequence of reference/qcom.md 2.6 (tinygrad's QCOMComputeQueue.exec, CL path), submitted
    through the mock kgsl: the CP hands run_cs the decoded CsState, and what run_cs stores is visible."""
    seen = []

    def run_cs(s):            # stands in for the ir3 emulator: c0.xy holds an output pointer
        seen.append(s)
        ptr = int(s.consts[0, 0]) | int(s.consts[0, 1]) << 32
        n = s.groups[0] * s.local_size[0]
        s.memory.store(ptr + 4 * np.arange(n, dtype=np.uint64), np.arange(n, dtype=np.uint32))

    k = Q.make_kernel(run_cs=run_cs, sync=True)
    kg = Kgsl(k)
    ctx = kg.ctx()
    cmd_cpu, cmd = kg.buffer(4 * PAGE)
    args_cpu, args = kg.buffer(PAGE)
    shader_cpu, shader = kg.buffer(PAGE)
    out_cpu, out = kg.buffer(PAGE)
    hostmem.write(args_cpu, struct.pack("<Q", out))

    def p4(reg, *vals):
        n = len(vals)
        return [P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(n) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(_parity(n))
                | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(_parity(reg)), *vals]

    def ls6(typ, n, addr):
        return [pkt7(P.CP_LOAD_STATE6_FRAG, 3), P.CP_LOAD_STATE6_0_STATE_TYPE.encode(typ)
                | P.CP_LOAD_STATE6_0_STATE_SRC.encode(P.SS6_INDIRECT) | P.CP_LOAD_STATE6_0_STATE_BLOCK.encode(P.SB6_CS_SHADER)
                | P.CP_LOAD_STATE6_0_NUM_UNIT.encode(n), addr & 0xFFFFFFFF, addr >> 32]

    local, groups = 32, 4
    words = ([pkt7(P.CP_SET_MARKER, 1), P.CP_SET_MARKER_0_MODE.encode(P.RM6_COMPUTE)]
             + p4(A.HLSQ_INVALIDATE_CMD, 0x60) + p4(A.HLSQ_INVALIDATE_CMD, 0)
             + p4(A.SP_CS_TEX_COUNT, 0x80) + p4(A.SP_CS_IBO_COUNT, 0x40)
             + p4(A.SP_MODE_CONTROL, 2) + p4(A.SP_PERFCTR_ENABLE, 0x20) + p4(A.SP_TP_MODE_CNTL, 1)
             + p4(A.TPL1_DBG_ECO_CNTL, 0) + [pkt7(P.CP_WAIT_FOR_IDLE, 0)]
             + p4(A.HLSQ_CS_NDRANGE_0, 3 | (local - 1) << 2, local * groups, 0, 1, 0, 1, 0, 0x00CCC0CF, 0xFC,
                  groups, 1, 1)
             + p4(A.SP_CS_CTRL_REG0, 0x180, 0x41, 0, 0, shader & 0xFFFFFFFF, shader >> 32, 0, 0, 0, 0)
             + ls6(P.ST6_CONSTANTS, 256, args) + ls6(P.ST6_SHADER, 1, shader)
             + p4(A.HLSQ_CONTROL_2_REG, 0xFCFCFCFC, 0xFCFCFCFC, 0xFCFCFCFC, 0xFC, 0x100)
             + p4(A.SP_CS_PVT_MEM_HW_STACK_OFFSET, 0) + p4(A.SP_CS_INSTRLEN, 1) + p4(A.SP_CS_CONFIG, 0x100)
             + [pkt7(P.CP_RUN_OPENCL, 1), 0,
                pkt7(P.CP_EVENT_WRITE, 4), P.CP_EVENT_WRITE_0_EVENT.encode(P.CACHE_FLUSH_TS), (out + 2048) & 0xFFFFFFFF,
                out >> 32, 0])
    assert words[:2] == [0x70E50001, 8] and 0x70310001 in words and 0x40B9908C in words and 0x48B98385 in words
    ts = kg.run(ctx, cmd_cpu, cmd, words)
    kg.wait(ctx, ts)
    s = seen[0]
    assert s.groups == (4, 1, 1) and s.local_size == (32, 1, 1) and s.threadsize == 64 and s.shared_size == 2048
    assert s.wgid_regid == 0xCF and s.localid_regid == 0 and s.const_enabled and s.constlen_vec4 == 0
    assert s.consts_loaded.sum() == 256 and s.shader_iova == shader
    assert list(struct.unpack("<128I", hostmem.read(out_cpu, 512))) == list(range(128))
    k.qcom.engine.stop()


def test_many_commands_wrap_the_ring(kg):
    """More wrapper dwords than the 32 KiB ring holds: the kernel pads to the end with a CP_NOP and wraps;
    every command still runs once, in order, with consecutive timestamps."""
    ctx = kg.ctx()
    cpu, gpu = kg.buffer(2 * PAGE)
    counter = gpu + PAGE
    n = 700
    for i in range(n):
        ib = [pkt7(P.CP_MEM_WRITE, 3), counter & 0xFFFFFFFF, counter >> 32, i + 1]
        ts = kg.run(ctx, cpu + 16 * (i % 64), gpu + 16 * (i % 64), ib)
        assert ts == i + 1
    kg.wait(ctx, n)
    assert struct.unpack("<I", hostmem.read(cpu + PAGE, 4))[0] == n
    per_cmd = len(kg.k.qcom.wrapper(kg.k.qcom.contexts[ctx], 1, [(gpu, 4)]))
    assert per_cmd * n > 2 * (F.RB_SIZE // 4)            # so the ring wrapped at least twice
