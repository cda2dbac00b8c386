"""The Qualcomm backend (hwdrv/qcom) on the mock kgsl + a6xx: packets checked against published
header values and the mock's independent decoder, the dispatch registers the mock CP decodes, the
ir3 binary format, memory with kgsl-chosen GPU addresses, the 64-bit wait rule, faults, recovery
and the four provocations."""
from __future__ import annotations

import pathlib
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import hwdrv
import hwdrv.mock.qcom as MQ
from hwdrv.ioctl import hostmem
from hwdrv import provoke
from hwdrv.errors import ProgramError, UnsupportedDevice
from hwdrv.mock.qcom import facts as F
from hwdrv.mock.qcom import ir3emu
from hwdrv.mock.qcom import pm4 as mock_pm4
from hwdrv.mock.qcom.ir3emu import harness
from hwdrv.qcom import binary as B
from hwdrv.qcom import pm4, samples
from hwdrv.qcom.compiler import Ir3Compiler, footprint
from hwdrv.qcom.device import open as qcom_open
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P

KERNELS = (pathlib.Path(__file__).parent / "data" / "conformance" / "kernels.ir3").read_text()


def open_mock(**kw):
    return qcom_open(MQ.make_kernel(**kw), 0, "mock:qcom")


@pytest.fixture(scope="module")
def dev():
    d = hwdrv.open_device("mock:qcom")
    yield d
    d.close()


# ---- packets ---------------------------------------------------------------------------------
def test_headers_match_published_values():
    """reference qcom.md 2.1: headers seen in Mesa's docs, tinygrad and a kgsl ring dump."""
    assert pm4.wait_for_idle() == [0x70268000]
    assert pm4.set_marker(P.RM6_COMPUTE) == [0x70E50001, 8]
    assert pm4.pkt7(P.CP_EVENT_WRITE, [0] * 4)[0] == 0x70460004
    assert pm4.pkt7(P.CP_EXEC_CS, [0] * 4)[0] == 0x70B30004
    assert pm4.pkt7(P.CP_WAIT_REG_MEM, [0] * 6)[0] == 0x70BC8006
    assert pm4.pkt7(P.CP_MEM_WRITE, [0] * 3)[0] == 0x703D8003
    assert pm4.indirect_buffer(0, 0)[0] == 0x70BF8003
    assert pm4.pkt4(0xB990, [0] * 12)[0] == 0x40B9908C and pm4.pkt4(0xB983, [0] * 5)[0] == 0x48B98385
    assert pm4.pkt4(0xA9B0, [0] * 10)[0] == 0x40A9B08A and pm4.pkt4(0xBB08, [0])[0] == 0x40BB0801
    # tinygrad's wait: GE on memory (qcom.md 2.4)
    assert pm4.wait_mem_ge(0x1234_5678_9ABC, 7)[1] == 0x15


@settings(max_examples=200, deadline=None)
@given(reg=st.integers(0, (1 << 18) - 1), n=st.integers(1, 127), op=st.integers(0, 127), cnt=st.integers(0, 300))
def test_the_mock_cp_decodes_what_the_backend_builds(reg, n, op, cnt):
    h4 = mock_pm4.decode(pm4.pkt4(reg, [0] * n)[0])
    assert (h4.kind, h4.what, h4.count) == (4, reg, n)
    h7 = mock_pm4.decode(pm4.pkt7(op, [0] * cnt)[0])
    assert (h7.kind, h7.what, h7.count) == (7, op, cnt)


# ---- binaries ----------------------------------------------------------------------------------
def test_binary_round_trip_and_param_layout():
    a, kernels, code = B.unpack(Ir3Compiler().compile(KERNELS))
    assert a == "a630" and set(kernels) == {"vecadd", "add_scalar", "grid3d", "block_reduce", "local_mem", "bigparam"}
    va = kernels["vecadd"]
    assert va.params == [("a", 32, 8), ("b", 40, 8), ("c", 48, 8), ("n", 56, 4)] and va.param_size == 28
    assert va.const_vec4 == 4 and va.code_size % 128 == 0 and va.wgid == 48 * 4 and va.localid == 0
    assert kernels["add_scalar"].params == [("x", 32, 8), ("a", 40, 4), ("n", 44, 4)]
    for k in kernels.values():
        assert code[k.code_offset:k.code_offset + k.code_size][-8:] == bytes(8), "padded with nops"


@pytest.mark.parametrize("source", [KERNELS, samples.VECADD, samples.OOB_STORE, samples.ENDLESS, samples.COPY])
def test_register_footprint_agrees_with_the_emulators_decoder(source):
    _, kernels, code = B.unpack(Ir3Compiler().compile(source))
    for k in kernels.values():
        text = code[k.code_offset:k.code_offset + k.code_size]
        assert k.full_regs == footprint(text) == harness.footprint(text, merged=True), k.name


def test_compiler_errors_name_the_problem():
    c = Ir3Compiler()
    with pytest.raises(ProgramError, match="before the first .kernel"):
        c.compile("mov.u32u32 r0.x, 1\n")
    with pytest.raises(ProgramError, match=r"kernel 'k'.*line 4"):
        c.compile(".kernel k\n.param a 8\nnop\nfrobnicate r0.x\nend\n")
    with pytest.raises(ProgramError, match="UBO"):
        c.compile(".kernel k\n.param big 600000\nend\nnop\n")
    with pytest.raises(ProgramError, match="high register"):
        c.compile(".kernel k\n.wgid r2.x\nend\n")
    with pytest.raises(ProgramError, match="HWIR3BIN"):
        B.unpack(b"\x7fELF" + bytes(64))


def test_program_errors(dev):
    b = dev.compiler.compile(KERNELS)
    with pytest.raises(ProgramError, match="add_scalar"):
        dev.program(b, "nope")
    with pytest.raises(ProgramError, match="a7"):
        dev.program(Ir3Compiler("a730").compile(KERNELS), "vecadd")


# ---- memory --------------------------------------------------------------------------------------
def test_kgsl_chooses_gpu_addresses_and_the_core_keeps_cpu_addresses_apart(dev):
    h = dev.alloc(8192, host_visible=True)
    d = dev.alloc(8192)
    assert 0x40_0000_0000 <= h.va < 0x80_0000_0000 and 0x40_0000_0000 <= d.va < 0x80_0000_0000   # kgsl_iommu.h
    assert h.cpu_addr != h.va and not dev.gpu_va_is_cpu_va
    with pytest.raises(hwdrv.InvalidArgument, match="not host-visible"):
        d.cpu_addr
    data = np.arange(2048, dtype=np.uint32)
    dev.upload(h, data)
    assert np.array_equal(h.view(np.uint32), data)
    dev.upload(d, data[::-1].copy())
    sig = dev.signal(0)
    dev.compute_queue().copy(h, d, 8192).signal(sig, 1).submit()
    sig.wait(1, timeout=10)
    assert np.array_equal(dev.download(h, dtype=np.uint32), data[::-1])
    assert dev.engines == ("compute",) and dev.copy_queue().kind == "compute"


# ---- the dispatch the CP decodes -----------------------------------------------------------------
def test_exec_programs_what_the_cp_hands_the_shader_core():
    seen = []

    def run_cs(s):
        seen.append(s)
        ir3emu.run_cs(s)

    d = open_mock(run_cs=run_cs)
    try:
        p = d.program(d.compiler.compile(KERNELS), "vecadd")
        n = 1000
        a, b, c = (d.alloc(4 * n, host_visible=True) for _ in range(3))
        a.view(np.float32)[:] = np.arange(n)
        b.view(np.float32)[:] = 0.5
        sig = d.signal(0)
        d.compute_queue().exec(p, grid=(4, 1, 1), block=(256, 1, 1), args=[a, b, c, n]).signal(sig, 1).submit()
        sig.wait(1, timeout=10)
        assert np.array_equal(c.view(np.float32), np.arange(n, dtype=np.float32) + 0.5)
        s = seen[-1]
        assert s.groups == (4, 1, 1) and s.local_size == (256, 1, 1) and s.global_size == (1024, 1, 1)
        assert s.threadsize == 64 and s.mergedregs and s.full_regs == p.meta.full_regs and s.branchstack == 1
        assert s.shader_iova == p.code.va and s.instrlen == p.instrlen and s.first_exec_offset == 0
        assert s.const_enabled and s.constlen_vec4 == p.meta.const_vec4 and s.consts_loaded[:4].all()
        assert list(s.consts[0, :3]) == [4, 1, 1] and list(s.consts[1]) == [256, 1, 1, 256]
        assert int(s.consts[2, 0]) | int(s.consts[2, 1]) << 32 == a.va and int(s.consts[3, 2]) == n
        assert s.wgid_regid == 48 * 4 and s.localid_regid == 0 and s.wgsize_regid == 0xFC
        assert s.constant_demotion and s.isammode == A.ISAMMODE_GL
        u0, u1 = (int(x) for x in s.ubos[0])       # UBO 0 = the parameter block the const file came from
        base = A.A6XX_UBO_0_BASE_LO.decode(u0) | A.A6XX_UBO_1_BASE_HI.decode(u1) << 32
        assert A.A6XX_UBO_1_SIZE.decode(u1) == p.meta.block_vec4 == 4
        assert np.frombuffer(s.memory.read(base, 64), np.uint32).tolist() == s.consts[:4].reshape(-1).tolist()
    finally:
        d.close()


def test_var_grid_and_arguments_are_patched(dev):
    p = dev.program(dev.compiler.compile(KERNELS), "add_scalar")
    x = dev.alloc(4 * 2048, host_visible=True)
    x.view(np.int32)[:] = 0
    g, k = hwdrv.Var("g"), hwdrv.Var("k")
    sig = dev.signal(0)
    q = dev.compute_queue().exec(p, grid=(g, 1, 1), block=(256, 1, 1), args=[x, k, 2048]).signal(sig, g)
    q.submit(g=2, k=3)
    sig.wait(2, timeout=10)
    q.submit(g=8, k=1)
    sig.wait(8, timeout=10)
    want = np.full(2048, 1, np.int32)
    want[:512] += 3
    assert np.array_equal(x.view(np.int32), want)


def test_wait_compares_64_bit_values(dev):
    """GPU waits on a non-decreasing signal: the high word first, then the low word (queue.py's rule)."""
    gate, done = dev.signal(4), dev.signal(0)
    dev.compute_queue().wait(gate, (1 << 32) + 5).signal(done, 1).submit()
    for v, why in ((6, "6 < 0x1_00000005 (the low word alone would pass)"),
                   ((1 << 32) + 4, "0x1_00000004 < 0x1_00000005")):
        gate.value = v
        time.sleep(0.1)
        assert done.value == 0, why
    gate.value = (1 << 32) + 5
    done.wait(1, timeout=10)


def test_signal_writes_value_and_timestamp(dev):
    s = dev.signal(0)
    dev.compute_queue().signal(s, 9).submit()
    s.wait(9, timeout=10)
    t = s.timestamp
    dev.compute_queue().signal(s, 10).submit()
    s.wait(10, timeout=10)
    assert 0 < t < s.timestamp and dev.timestamp_hz == 19_200_000


# ---- faults, recovery, provocations ----------------------------------------------------------------
def test_a_scheduling_hazard_is_a_gpu_fault_and_the_device_recovers(dev):
    bad = ".kernel racy\n.param out 8\nmov.u32u32 r1.x, c2.x\nmov.u32u32 r1.y, c2.y\nstg.u32 g[r1.x], r1.x, 1\nend\nnop\n"
    out = dev.alloc(4096, host_visible=True)
    sig = dev.signal(0)
    dev.compute_queue().exec(dev.program(dev.compiler.compile(bad), "racy"), grid=(1,), block=(64,),
                             args=[out]).signal(sig, 1).submit()
    with pytest.raises(hwdrv.GPUHang) as ei:
        sig.wait(1, timeout=10)
    rep = ei.value.report
    assert rep.error is not None and rep.error.kind == "kgsl fault" and rep.error.name == "GUILTY_CONTEXT_RESET"
    assert [ln.kernel for ln in rep.launches] == ["racy"], rep.to_text()
    assert provoke.vecadd_check(dev), "the next submit recovers with a new context"


def test_unsupported_chip_is_refused(monkeypatch):
    monkeypatch.setitem(F.A630, "chip_id", 0x07030001)
    with pytest.raises(UnsupportedDevice, match="A630"):
        open_mock()


def test_the_four_provocations_report_and_recover():
    # the mock's shader watchdog (make_kernel's default, 5 s) ends the endless loop
    d = hwdrv.open_device("mock:qcom")
    try:
        out = provoke.diagnose_all(d)
        assert [o.kind for o in out] == list(provoke.PROVOCATIONS)
        assert all(o.report is not None and o.after_ok for o in out), [(o.kind, o.message) for o in out]
        by = {o.kind: o.report for o in out}
        for kind, kernel in (("out-of-bounds store", "oob_store"), ("illegal instruction", "illegal_instruction")):
            assert by[kind].error.kind == "kgsl fault" and [ln.kernel for ln in by[kind].launches] == [kernel]
        assert by["endless loop"].cause == "timeout" and [ln.kernel for ln in by["endless loop"].launches] == ["endless_loop"]
        assert by["wait on a signal nobody sets"].error is not None        # the CP's hang detector
        assert len(d.recoveries) == 4
    finally:
        d.close()


def test_private_memory_registers():
    seen = []

    def run_cs(s):
        seen.append(s)
        ir3emu.run_cs(s)

    d = open_mock(run_cs=run_cs)
    try:
        p = d.program(d.compiler.compile(KERNELS), "local_mem")
        idx, out = d.alloc(4 * 64, host_visible=True), d.alloc(4 * 64, host_visible=True)
        idx.view(np.int32)[:] = np.arange(64) * 5
        sig = d.signal(0)
        d.compute_queue().exec(p, grid=(1,), block=(64,), args=[idx, out, 64]).signal(sig, 1).submit()
        sig.wait(1, timeout=10)
        assert np.array_equal(out.view(np.int32), 165 + np.arange(64))
        s = seen[-1]
        # 256 bytes per fiber -> one 512-byte item; 2048 fibers per SP -> 1 MiB per SP, 2 SPs
        assert s.pvt_per_fiber == 512 and s.pvt_total == 1 << 20 and s.hw_stack_offset == 1 << 20
        assert s.pvt_iova == d._pvt.va and d._pvt.size == 2 << 20
    finally:
        d.close()


IBO_DOUBLE = """
.kernel ibo_double
.param dst 8
.param src 8
.ibo dst
.ibo src
mad.u24 r0.y, c1.x, r48.x, r0.x
(rpt2)nop
ldib.b.untyped.1d.u32.1.imm r2.x, r0.y, 1
(sy)add.u r2.y, r2.x, r2.x
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r2.y, r0.y, 0
end
nop
"""


def test_ibo_parameters_get_descriptors_bounded_by_their_buffers(dev):
    """ldib/stib through IBO descriptors the queue builds from the Buffer arguments: 128 fibers over a
    100-element source and a 90-element destination; past the ends loads read 0 and stores drop."""
    p = dev.program(dev.compiler.compile(IBO_DOUBLE), "ibo_double")
    assert p.meta.ibos == [0, 1]
    src, dst = dev.alloc(400, host_visible=True), dev.alloc(360, host_visible=True)
    src.view(np.uint32)[:] = np.arange(100) + 1
    sig = dev.signal(0)
    dev.compute_queue().exec(p, grid=(2,), block=(64,), args=[dst, src]).signal(sig, 1).submit()
    sig.wait(1, timeout=10)
    assert np.array_equal(dst.view(np.uint32), 2 * (np.arange(90) + 1))
    # the kgsl object is a whole page: the bytes past the buffer's 360 stay untouched
    assert hostmem.read(dst.cpu_addr + 360, 4096 - 360) == bytes(4096 - 360)
    with pytest.raises(hwdrv.InvalidArgument, match="IBO 1: pass a Buffer"):
        dev.compute_queue().exec(p, grid=(1,), block=(64,), args=[dst, src.va])
    with pytest.raises(ProgramError, match="pointer"):
        dev.compiler.compile(".kernel k\n.param n 4\n.ibo n\nend\n")


# ---- registry and CLI ------------------------------------------------------------------------------
def test_info_lists_the_kgsl_mock_and_probe_reads_the_chip():
    from hwdrv.qcom.device import probe
    assert any(d.name == "mock:qcom" and d.vendor == "qcom" and d.mock for d in hwdrv.devices())
    k = MQ.make_kernel()
    (info,) = probe(k)
    assert info.available and "Adreno 630" in info.description and "0x06030001" in info.description


def test_demo_on_mock_qcom_runs_the_tensor_program(capsys):
    """tensor has an ir3 renderer (tensor/render/ir3.py): the demo runs its tensor program on the
    mock Adreno and checks every result against numpy."""
    from hwdrv.cli import main
    assert main(["demo", "--device", "mock:qcom"]) == 0
    out = capsys.readouterr().out
    assert "tensor demo on mock:qcom (a630, mock)" in out and "MISMATCH" not in out
    assert out.count(": OK (") == 3


def test_a_submit_to_an_invalidated_context_gets_edeadlk_and_recovers():
    """kgsl answers EDEADLK to a submit on a context a fault invalidated: the backend makes a new
    context and resubmits (no wait had reported the fault yet)."""
    d = open_mock()
    try:
        p = d.program(d.compiler.compile(samples.ILLEGAL), "illegal_instruction")
        out = d.alloc(4096, host_visible=True)
        d.compute_queue().exec(p, grid=(1,), block=(32,), args=[out]).submit()
        ctx = d.ctx
        deadline = time.monotonic() + 10
        while d.kgsl.read_timestamp(ctx) != d.last_ts and time.monotonic() < deadline:
            time.sleep(0.01)           # kgsl retires an invalidated context's timestamps at once
        sig = d.signal(0)
        d.compute_queue().signal(sig, 5).submit()
        sig.wait(5, timeout=10)
        assert d.ctx != ctx and ctx not in d._stale_contexts, "an invalidated context is destroyed at once"
        assert "GUILTY_CONTEXT_RESET" in d.recoveries[-1]
    finally:
        d.close()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_binaries_fail_cleanly(data):
    """Any byte flip or truncation of a binary either still parses or raises ProgramError."""
    good = bytearray(_GOOD_BINARY)
    if data.draw(st.booleans()):
        good = good[:data.draw(st.integers(0, len(good)))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            if good:
                good[data.draw(st.integers(0, len(good) - 1))] = data.draw(st.integers(0, 255))
    try:
        B.unpack(bytes(good))
    except ProgramError:
        pass


_GOOD_BINARY = Ir3Compiler().compile(samples.VECADD)


def test_unbound_submissions_reuse_the_command_ring(monkeypatch):
    """A small command ring wraps many times: each piece is reused only after its submission's
    timeline value has passed."""
    import hwdrv.qcom.device as qd
    monkeypatch.setattr(qd, "CMD_RING_SIZE", 8192)
    d = open_mock()
    try:
        s = d.signal(0)
        x = d.alloc(4 * 256, host_visible=True)
        x.view(np.int32)[:] = 0
        p = d.program(d.compiler.compile(KERNELS), "add_scalar")
        for i in range(1, 61):
            d.compute_queue().exec(p, grid=(1,), block=(256,), args=[x, 1, 256]).signal(s, i).submit()
        s.wait(60, timeout=20)
        assert np.array_equal(x.view(np.int32), np.full(256, 60))
        assert d.cmd_ring.buf.size == 8192 and len(d.cmd_ring.pieces) < 60
    finally:
        d.close()
