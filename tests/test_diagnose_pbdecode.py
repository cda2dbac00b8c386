"""pbdecode: method headers, GP entries and QMDs decoded from the generated facts, checked
against words built here by hand from the documented bit layout (reference nvidia.md 3.1-3.3),
not with hwdrv's own encoders."""
import numpy as np
import pytest

from hwdrv.nvidia import pbdecode as d
from hwdrv.nvidia.gen import hopper as hw


def hdr(sec_op, count, subch, method):
    # 31:29 SEC_OP, 28:16 COUNT, 15:13 SUBCHANNEL, 11:0 method >> 2
    return (sec_op << 29) | (count << 16) | (subch << 13) | (method >> 2)


def test_semaphore_acquire_decodes_by_name():
    words = [hdr(1, 5, 0, 0x5C), 0x1000, 0x20, 7, 0, (3 << 0) | (1 << 12) | (1 << 24)]
    ms = d.decode(words)
    assert [m.name for m in ms] == ["SEM_ADDR_LO", "SEM_ADDR_HI", "SEM_PAYLOAD_LO", "SEM_PAYLOAD_HI",
                                    "SEM_EXECUTE"]
    assert [m.index for m in ms] == [1, 2, 3, 4, 5]
    ex = ms[-1]
    assert ex.cls == "HOST" and ex.subch == 0 and ex.value == 0x1001003
    assert "OPERATION=ACQ_CIRC_GEQ" in ex.text and "ACQUIRE_SWITCH_TSG=EN" in ex.text
    assert "PAYLOAD_SIZE=64BIT" in ex.text
    assert ex.text.startswith("0.HOST.SEM_EXECUTE = 0x1001003")


def test_compute_and_copy_classes_and_launch_fields():
    words = [hdr(1, 1, 1, 0x2B4), 0x12345, hdr(1, 1, 1, 0x2C0), 0xA,
             hdr(1, 1, 4, 0x300), (2 << 0) | (1 << 2) | (1 << 7) | (1 << 8)]
    ms = d.decode(words)
    assert ms[0].text == "1.COMPUTE.SEND_PCAS_A = 0x12345 (QMD_ADDRESS_SHIFTED8=0x12345)"
    assert ms[1].name == "SEND_SIGNALING_PCAS2_B" and "PCAS_ACTION=INVALIDATE_PREFETCH_COPY_SCHEDULE" in ms[1].text
    assert ms[2].text.startswith("4.COPY.LAUNCH_DMA = 0x186")
    assert "DATA_TRANSFER_TYPE=NON_PIPELINED" in ms[2].text and "FLUSH_ENABLE=TRUE" in ms[2].text


def test_non_inc_immediate_and_one_inc():
    ms = d.decode([hdr(3, 3, 0, 0x64), 1, 2, 3])          # NON_INC: all to SEM_PAYLOAD_LO
    assert [m.name for m in ms] == ["SEM_PAYLOAD_LO"] * 3 and [m.value for m in ms] == [1, 2, 3]
    ms = d.decode([(4 << 29) | (5 << 16) | (1 << 13) | (0x110 >> 2)])   # IMMD WAIT_FOR_IDLE = 5
    assert ms[0].name == "WAIT_FOR_IDLE" and ms[0].value == 5 and "immediate" in ms[0].detail
    ms = d.decode([hdr(5, 3, 0, 0x5C), 1, 2, 3])          # ONE_INC: first, then method+4 for the rest
    assert [m.name for m in ms] == ["SEM_ADDR_LO", "SEM_ADDR_HI", "SEM_ADDR_HI"]


def test_set_object_rebinds_a_subchannel():
    ms = d.decode([hdr(1, 1, 2, 0), hw.HOPPER_DMA_COPY_A, hdr(1, 1, 2, 0x300), 0])
    assert "binds COPY to subchannel 2" in ms[0].text
    assert ms[1].cls == "COPY" and ms[1].name == "LAUNCH_DMA"


def test_unknown_truncated_and_invalid():
    ms = d.decode([hdr(1, 4, 0, 0x5C), 1, 2])
    assert ms[-1].name == "TRUNCATED" and "promises 4" in ms[-1].detail
    ms = d.decode([6 << 29])
    assert ms[0].name == "INVALID_HEADER"
    ms = d.decode([hdr(1, 1, 1, 0x3FFC), 9])
    assert ms[0].name == "METHOD_0x3ffc"
    ms = d.decode([hdr(1, 1, 3, 0x300), 9])       # nothing bound on subchannel 3
    assert ms[0].cls == "UNBOUND"
    assert d.decode([0])[0].name == "NOP"


def test_gp_entry_decode():
    va, n = 0x20_0012_3458, 18
    e0 = va & 0xFFFFFFFC                              # VA[31:2] in place, FETCH unconditional
    e1 = ((va >> 32) & 0xFF) | (n << 10)              # GET_HI 7:0, LENGTH 30:10, LEVEL MAIN
    g = d.decode_gp_entry(e0 | e1 << 32)
    assert (g.va, g.length, g.level, g.sync) == (va, n, "MAIN", False)
    g = d.decode_gp_entry(0 | (1 << 32) | (1 << 31 << 32))
    assert g.length == 0 and g.opcode == "ILLEGAL" and "control entry" in g.text


def test_qmd_decode_matches_template():
    from hwdrv.nvidia.qmd import build_template
    q = build_template(block=(128, 2, 1), regs=24, shared_bytes=2048, local_bytes=0,
                       program_va=0x20_0000_4100, program_size=1024)
    f = d.decode_qmd(q)
    assert f["CTA_THREAD_DIMENSION0"] == 128 and f["CTA_THREAD_DIMENSION1"] == 2
    assert f["REGISTER_COUNT"] == 24 and f["QMD_TYPE"].startswith("GRID_CTA")
    s = d.qmd_summary(q)
    assert s["program_address"] == 0x20_0000_4100 and s["block"] == (128, 2, 1)
    # every field lies inside the 384-byte QMD and no two indexed instances overlap a plain field
    assert all(fl.hi < d.QMD_BITS for _, fl in d.qmd_fields())


def test_method_tables_name_the_methods_hwdrv_emits():
    host = d.host_methods()
    assert host[0x0].name == "SET_OBJECT" and host[0x6C].name == "SEM_EXECUTE" and host[0x78].name == "WFI"
    comp = d.class_methods(hw.HOPPER_COMPUTE_A)
    assert comp[0x1698].name == "INVALIDATE_SHADER_CACHES_NO_WFI" and comp[0x21C].name == "INVALIDATE_SHADER_CACHES"
    assert d.class_methods(hw.HOPPER_DMA_COPY_A)[0x300].name == "LAUNCH_DMA"


@pytest.mark.parametrize("seed", range(3))
def test_random_streams_decode_consistently(seed):
    """Random INC packets of known methods decode to the same (subch, method, value) triples."""
    rng = np.random.default_rng(seed)
    comp = sorted(m for m in d.class_methods(hw.HOPPER_COMPUTE_A) if m >= 0x100)
    words, want = [], []
    for _ in range(50):
        m = int(rng.choice(comp))
        n = int(rng.integers(1, 4))
        if m + 4 * (n - 1) not in d.class_methods(hw.HOPPER_COMPUTE_A):
            n = 1
        vals = [int(x) for x in rng.integers(0, 2**32, n, dtype=np.uint64)]
        words += [hdr(1, n, 1, m)] + vals
        want += [(1, m + 4 * k, v) for k, v in enumerate(vals)]
    assert [(x.subch, x.method, x.value) for x in d.decode(words)] == want
