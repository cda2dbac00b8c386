"""HangReport JSON round trip, the decode CLI, and the pure pieces of NVIDIA diagnosis
(notifier decoding, semaphore replay, stall finding, cause mapping, fault merging)."""
import json
import struct

import numpy as np
import pytest

from hwdrv.errors import InvalidArgument
from hwdrv.hang import Command, Fault, HangReport, Launch, QueueState, Register, WaveError, ErrorCode
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
        registers=[Register("SM3.hwwWarpEsr", 0x20, {"ERROR": "MMU_NACK", "n": 12}, "NV83DE")],
        notes=["a note"])


def test_json_round_trip():
    r = full_report()
    back = HangReport.from_json(r.to_json())
    assert back == r
    assert back.wave_errors[0].where == "oob_store+0xc9"
    assert json.loads(r.to_json())["format"] == "hwdrv.HangReport/2"


def test_text_names_the_facts():
    t = full_report().to_text()
    assert "cause: mmu_fault" in t and "Xid 31" in t and "fault at 0x200a700000" in t
    assert ">> 0x2000200044  1.COMPUTE.SEND_PCAS_A" in t and "oob_store+0xc9" in t and "n=0xc" in t


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
