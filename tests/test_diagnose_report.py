"""HangReport JSON round trip, the decode CLI, and the pure pieces of NVIDIA diagnosis
(notifier decoding, semaphore replay, stall finding, cause mapping, fault merging)."""
import json
import struct
import time

import numpy as np
import pytest

from hwdrv.errors import InvalidArgument
from hwdrv.hang import (Command, ErrorCode, Fault, HangReport, Launch, QueueState, RefusedRegister, Register,
                        WaveError)
from hwdrv.nvidia import diagnose as nd
from hwdrv.nvidia import pbdecode


def full_report() -> HangReport:
    return HangReport(
        device="mock:nvidia", cause="mmu_fault", error=ErrorCode("nvidia", "Xid", 31, "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT"),
        signal_va=0x2000032020, expected=1, seen=0,
        queues=[QueueState("compute GPFIFO", 1, 2, "entries",
                           [Command(0x2000200044, "1.COMPUTE.SEND_PCAS_A = 0x200a2000", True),
                            Command(0x2000200048, "x")])],
        launches=[Launch("oob_store", (1, 1, 1), (32, 1, 1), ["0x200a700000", "57005"], 0x2000033037, "q")],
        faults=[Fault(0x200A700000, "write", "FAULT_PTE", "GR0", "NV83DE")],
        wave_errors=[WaveError(3, 1, {"HWW_GLOBAL_ESR": 0, "HWW_WARP_ESR": 0x20}, "MMU_NACK", 0x2000033100, 0x200A700000, "oob_store", "l", 0xC9)],
        registers=[Register("SM3.hwwWarpEsr", 0x20, {"ERROR": "MMU_NACK", "n": 12}, "NV83DE"),
                   Register("NV_PMC_BOOT_0", 0x180000A1, {"ARCHITECTURE_0": "GH100 (24)"}, "regops", 0)],
        notes=["a note"], unit_name="SM",
        headline="Kernel oob_store faulted at PTX line 9: a write to 0x200a700000, which has no page mapped.",
        refused_registers=[RefusedRegister("NV_RUNLIST_PREEMPT", 0x4098, "INVALID_OFFSET", "regops")],
        kernel_log=["[    12.000001] NVRM: Xid (PCI:0000:42:00): 31, pid=1, name=x, channel 0x00000001"])


def test_json_round_trip():
    r = full_report()
    back = HangReport.from_json(r.to_json())
    assert back == r
    assert back.wave_errors[0].where == "oob_store+0xc9"
    assert json.loads(r.to_json())["format"] == "hwdrv.HangReport/2"


def test_text_reads_top_down():
    r = full_report()
    t = r.to_text()
    lines = t.splitlines()
    assert lines[1] == "  " + r.headline                     # the sentence comes first
    assert "cause: mmu_fault" in t and "error: Xid 31" in t and "0x200a700000 write FAULT_PTE by GR0" in t
    assert ">> 0x2000200044  1.COMPUTE.SEND_PCAS_A" in t and "oob_store+0xc9" in t and "n=0xc" in t
    assert "NV_PMC_BOOT_0 @ 0x0 = 0x180000a1 ARCHITECTURE_0=GH100 (24)" in t
    assert "NV_RUNLIST_PREEMPT @ 0x4098: INVALID_OFFSET" in t
    order = ["  faults:", "  wave errors (SM):", "  in-flight launches:", "  queue compute GPFIFO",
             "  registers:", "  registers the driver refused:", "  kernel log:", "  notes:"]
    assert [t.index(x) for x in order] == sorted(t.index(x) for x in order)
    assert r.summary().startswith(r.headline)


def test_text_never_prints_unknowns():
    r = HangReport("mock:nvidia", "exception", wave_errors=[WaveError(None, None, {}, "", None, None, "k")],
                   kernel_log_error="the kernel log is unreadable: open('/dev/kmsg') failed: EPERM")
    t = r.to_text()
    assert "None" not in t and "?" not in t
    assert "kernel log:\n    the kernel log is unreadable: open('/dev/kmsg') failed: EPERM" in t


def test_from_json_rejects_other_documents():
    with pytest.raises(InvalidArgument):
        HangReport.from_json("{}")
    with pytest.raises(InvalidArgument):
        HangReport.from_json("not json")
    d = json.loads(full_report().to_json())
    d["bogus"] = 1
    with pytest.raises(InvalidArgument):
        HangReport.from_json(json.dumps(d))


def test_decode_file_json_and_pushbuffer(tmp_path, capsys):
    from hwdrv.provoke import decode_file
    p = tmp_path / "r.json"
    p.write_text(full_report().to_json())
    assert decode_file(str(p)) == 0
    assert "HangReport for mock:nvidia" in capsys.readouterr().out
    words = [(1 << 29) | (5 << 16) | (0x5C >> 2), 0x1000, 0x20, 7, 0, 0x1001003]
    b = tmp_path / "pb.bin"
    b.write_bytes(np.array(words, "<u4").tobytes())
    assert decode_file(str(b)) == 0
    out = capsys.readouterr().out
    assert "0.HOST.SEM_EXECUTE = 0x1001003 (OPERATION=ACQ_CIRC_GEQ" in out
    b.write_bytes(b"\1\2\3")
    with pytest.raises(InvalidArgument):
        decode_file(str(b))
    with pytest.raises(InvalidArgument):
        decode_file(str(tmp_path / "missing.bin"))


def test_read_notifier():
    raw = struct.pack("<IIIHH", 0x1, 0x89ABCDEF, 31, 1, 0xFFFF)     # nanoseconds[0] = high word
    st = nd.read_notifier(raw)
    assert (st.info32, st.info16, st.status, st.timestamp_ns) == (31, 1, 0xFFFF, 0x1_89ABCDEF)
    assert st.set and not nd.read_notifier(bytes(16)).set


def _acquire(addr, payload, op=3, p64=True):
    return [(1 << 29) | (5 << 16) | (0x5C >> 2), addr & 0xFFFFFFFC, addr >> 32, payload & 0xFFFFFFFF,
            payload >> 32, op | (int(p64) << 24)]


def test_find_stall_picks_the_unmet_acquire_then_the_launch():
    launch = [(1 << 29) | (1 << 16) | (1 << 13) | (0x2B4 >> 2), 0x1234]
    words = _acquire(0x1000, 1) + launch + _acquire(0x2000, 5)
    ms = pbdecode.decode(words)
    mem = {0x1000: 1, 0x2000: 4}
    pos, why = nd.find_stall(ms, lambda a, p64: mem.get(a))
    assert ms[pos].name == "SEM_EXECUTE" and ms[pos].index == len(words) - 1 and "0x2000" in why
    mem[0x2000] = 5
    pos, why = nd.find_stall(ms, lambda a, p64: mem.get(a))
    assert ms[pos].name == "SEND_PCAS_A" and "in flight" in why
    pos, why = nd.find_stall(pbdecode.decode(_acquire(0x3000, 1)), lambda a, p64: None)
    assert pos is not None and "not CPU-readable" in why


@pytest.mark.parametrize("op,payload,cur,met", [(3, 5, 5, True), (3, 5, 4, False), (3, 5, 2**63 + 6, False),
                                                (0, 5, 5, True), (0, 5, 6, False), (4, 6, 2, True),
                                                (4, 4, 2, False), (2, 5, 9, True)])
def test_acquire_conditions(op, payload, cur, met):
    sem = nd.SemOp(0, 0x1000, payload, op, True)
    assert nd.acquire_met(sem, cur) is met


def test_cause_and_fault_merging():
    f1 = Fault(0x10, "write", "FAULT_PTE", "", "A")
    f2 = Fault(0x10, "", "", "GR0", "B")
    m = nd.merge_faults([f1, f2])
    assert len(m) == 1 and (m[0].access, m[0].kind, m[0].engine, m[0].source) == ("write", "FAULT_PTE", "GR0", "A; B")
    assert nd.cause_for(13, [], [WaveError(0, status={"HWW_WARP_ESR": 9})]) == "exception"
    assert nd.cause_for(31, [], []) == "mmu_fault"
    assert nd.cause_for(69, [], []) == "channel_error"
    assert nd.access_kind(1) == "write" and nd.xid_name(13) == "ROBUST_CHANNEL_GR_EXCEPTION"


def test_kmsg_record_format():
    """Records in the format of the kernel's Documentation/ABI/testing/dev-kmsg (its example)."""
    from hwdrv.nvidia import kmsg
    r = kmsg.parse("7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n"
                   " SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n")
    assert (r.level, r.seq, r.usec) == (7, 160, 424069)
    assert r.text == "pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)"
    assert r.line() == "[     0.424069] pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)"
    assert kmsg.parse("not a record") is None
    tag = kmsg.pci_tag(0, 0x42, 0)
    assert tag == "PCI:0000:42:00"
    assert kmsg.concerns("NVRM: Xid (PCI:0000:42:00): 31, pid=1", tag)
    assert not kmsg.concerns("NVRM: Xid (PCI:0000:43:00): 31, pid=1", tag)
    assert kmsg.concerns("NVRM: GPU lost", tag) and not kmsg.concerns("EXT4-fs (vda): mounted", tag)


def test_nvdisasm_listing():
    """parse_nvdisasm reads nvdisasm's own output (tests/data/nvidia/diagnose/README.md)."""
    import pathlib
    from hwdrv.nvidia import explain
    d = pathlib.Path(__file__).parent / "data" / "nvidia" / "diagnose"
    ins = explain.parse_nvdisasm((d / "oob_store.sm90.nvdisasm.txt").read_text())
    assert len(ins) == len((d / "oob_store.sm90.text.bin").read_bytes()) // 16     # 16-byte Hopper words
    assert ins[0x40] == "STG.E desc[UR4][R2.64], R5" and ins[0x50] == "EXIT"


def test_register_decoding_by_header_fields():
    """Fields as nv_ref.h / dev_runlist.h place them: BOOT_0 ARCHITECTURE 28:24, IMPLEMENTATION
    23:20, MAJOR_REVISION 7:4, MINOR_REVISION 3:0; RUNLIST_PREEMPT TYPE 25:24 (TSG = 1), ID 11:0,
    TSG_PREEMPT_PENDING 20, RUNLIST_PREEMPT_PENDING 21."""
    from hwdrv.nvidia import regdump
    specs = {s.name: s for s in regdump.registers(0x4000)}
    assert regdump.decode(specs["NV_PMC_BOOT_0"], (0x18 << 24) | (0xA << 4) | 1) == {
        "ARCHITECTURE_0": "GH100 (24)", "IMPLEMENTATION": 0, "MAJOR_REVISION": 10, "MINOR_REVISION": 1}
    pre = specs["NV_RUNLIST_PREEMPT"]
    assert pre.offset == 0x4000 + 0x98
    assert regdump.decode(pre, (1 << 24) | (1 << 20) | 5) == {
        "TYPE": "TSG (1)", "ID": 5, "TSG_PREEMPT_PENDING": "TRUE (1)", "RUNLIST_PREEMPT_PENDING": "FALSE (0)"}
    assert "NV_RUNLIST_PREEMPT" not in {s.name for s in regdump.registers(None)}


def test_wave_errors_of_one_fault_merge():
    chan = WaveError(None, pc=0x1000, kernel="k", offset=0, error="shader exception (FAULT_PTE)", address=0x55)
    sm = WaveError(3, None, {"HWW_WARP_ESR": 0x20}, "", 0x1040, None, "k", "PTX line 9: st", 0x40)
    other = WaveError(None, pc=0x2000, kernel="j", offset=0)
    out = nd.merge_wave_errors([chan, sm, other])
    assert out == [sm, other] and sm.address == 0x55


def test_log_cursor_shows_new_lines_once():
    """LogCursor over a MockKernel log: lines since the cursor, for this GPU only, each once."""
    from hwdrv.mock.kernel import MockKernel
    from hwdrv.nvidia import kmsg
    k = MockKernel()
    k.kmsg.printk("NVRM: Xid (PCI:0000:42:00): 31, before the device opened")
    c = kmsg.LogCursor(k, "PCI:0000:42:00")
    k.kmsg.printk("NVRM: Xid (PCI:0000:42:00): 13, ours\nNVRM: Xid (PCI:0000:43:00): 13, another GPU\nEXT4: x")
    lines = c.take()
    assert [ln.split("] ", 1)[1] for ln in lines] == ["NVRM: Xid (PCI:0000:42:00): 13, ours"]
    assert c.take() == [] and not c.no_driver_lines
    t = time.monotonic()
    assert c.take(wait_for_xid=13) == [] and time.monotonic() - t >= kmsg.XID_LINE_WAIT_S * 0.9
    k.kmsg.printk("NVRM: Xid (PCI:0000:42:00): 31, an older event's late line")
    t = time.monotonic()
    assert len(c.take(wait_for_xid=13)) == 1 and time.monotonic() - t >= kmsg.XID_LINE_WAIT_S * 0.9
    k2 = MockKernel()
    k2.kmsg.printk("EXT4-fs (vda): mounted")
    c2 = kmsg.LogCursor(k2, "PCI:0000:42:00")
    t = time.monotonic()
    assert c2.no_driver_lines and c2.take(wait_for_xid=31) == [] and c2.no_driver_lines
    assert time.monotonic() - t < kmsg.XID_LINE_WAIT_S / 2      # no waiting for lines that never come


def test_headline_from_the_channel_fault_record_alone():
    """The H100 report of 2026-12-06 (illegal_trap, Xid 13): RM refused the SM error states, but the
    channel's MMU fault info held shaderProgramVA = illegal_trap+0x50, the `trap` itself; the
    headline names that instruction and the kernel log's exception."""
    from hwdrv.nvidia import explain
    rep = HangReport(device="nvidia:0", cause="exception", error=ErrorCode("nvidia", "Xid", 13, "ROBUST_CHANNEL_GR_EXCEPTION"))
    rep.wave_errors.append(WaveError(None, pc=0x2000035050, kernel="illegal_trap", offset=0x50,
                                     error="shader exception (UNRECOGNIZED_FAULT) at the PC of the channel's fault record"))
    rep.kernel_log.append("[  104.927826] NVRM: Xid (PCI:0000:00:06): 13, Graphics SM Warp Exception on "
                          "(GPC 1, TPC 4, SM 0): Illegal Instruction Encoding")
    assert explain.headline(rep) == ("Kernel illegal_trap stopped at illegal_trap+0x50: Illegal Instruction "
                                     "Encoding (as the kernel log says) (Xid 13 ROBUST_CHANNEL_GR_EXCEPTION).")
    rep.wave_errors[0].offset = 0            # at the program's first byte it may only name the program
    assert explain.headline(rep).startswith("Kernel illegal_trap stopped: Illegal Instruction Encoding")
