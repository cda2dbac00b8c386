"""The generated Qualcomm facts (hwdrv/qcom/gen/{kgsl,kgsl_snapshot,a6xx,adreno_pm4}.py) checked against
sources nobody on the project wrote:

* ioctl request codes against an independent _IOC encoder with the struct sizes of reference/qcom.md
  section 1.2 (three of them seen in a real Android log: 0x400c0907, 0xc040094a, 0xc0200933);
* register offsets and opcodes against Qualcomm's own kernel headers (kgsl a6xx_reg.h, adreno_pm4types.h):
  a transcribed table always, and every shared name when the pinned sources are present
  (HWDRV_AUTOGEN_SRC, see autogen/README.md);
* PM4 headers built from the generated fields against the header values listed in reference/qcom.md 2.1
  (seen in real command streams / Mesa's docs);
* the rules-ng-ng generator on a synthetic database.
"""
from __future__ import annotations

import os
import re

import pytest

from hwdrv.ioctl.bindings import Field
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P
from hwdrv.qcom.gen import kgsl as K
from hwdrv.qcom.gen import kgsl_snapshot as S

SRC = os.environ.get("HWDRV_AUTOGEN_SRC")


def _ioc(d: int, nr: int, size: int) -> int:
    return (d << 30) | (size << 16) | (0x09 << 8) | nr


# qcom.md 1.2: (name, nr, dir (1 W, 3 RW), struct size)
IOCTLS = [
    ("DEVICE_GETPROPERTY", 0x02, 3, 24), ("DEVICE_WAITTIMESTAMP_CTXTID", 0x07, 1, 12),
    ("DRAWCTXT_CREATE", 0x13, 3, 8), ("DRAWCTXT_DESTROY", 0x14, 1, 4), ("MAP_USER_MEM", 0x15, 3, 48),
    ("CMDSTREAM_READTIMESTAMP_CTXTID", 0x16, 3, 12), ("SHAREDMEM_FREE", 0x21, 1, 8), ("SETPROPERTY", 0x32, 1, 24),
    ("TIMESTAMP_EVENT", 0x33, 3, 32), ("GPUMEM_ALLOC_ID", 0x34, 3, 48), ("GPUMEM_FREE_ID", 0x35, 3, 8),
    ("GPUMEM_GET_INFO", 0x36, 3, 72), ("GPUOBJ_ALLOC", 0x45, 3, 48), ("GPUOBJ_FREE", 0x46, 1, 32),
    ("GPUOBJ_INFO", 0x47, 3, 48), ("GPUOBJ_IMPORT", 0x48, 3, 32), ("GPUOBJ_SYNC", 0x49, 1, 16),
    ("GPU_COMMAND", 0x4A, 3, 64),
]


@pytest.mark.parametrize("name,nr,d,size", IOCTLS)
def test_kgsl_ioctl_numbers(name, nr, d, size):
    assert getattr(K, "IOCTL_KGSL_" + name) == _ioc(d, nr, size)


def test_kgsl_ioctls_seen_in_an_android_log():
    assert K.IOCTL_KGSL_DEVICE_WAITTIMESTAMP_CTXTID == 0x400C0907
    assert K.IOCTL_KGSL_GPU_COMMAND == 0xC040094A
    assert K.IOCTL_KGSL_TIMESTAMP_EVENT == 0xC0200933


def test_kgsl_struct_layouts_match_gcc_and_reference():
    for name, (size, offs) in K.LAYOUT.items():
        assert K.ffi.sizeof(name) == size, name
        for f, off in offs.items():
            assert K.ffi.offsetof(name, *f.split(".")) == off, (name, f)
    # qcom.md 1.3 byte offsets
    gc = K.LAYOUT["struct kgsl_gpu_command"][1]
    assert (gc["cmdlist"], gc["numcmds"], gc["context_id"], gc["timestamp"]) == (8, 20, 56, 60)
    di = K.LAYOUT["struct kgsl_devinfo"]
    assert di[0] == 40 and di[1]["chip_id"] == 4 and di[1]["gmem_sizebytes"] == 32
    assert K.LAYOUT["struct kgsl_gpuobj_alloc"][1]["id"] == 32
    assert K.LAYOUT["struct kgsl_devmemstore"][1]["eoptimestamp"] == 8


def test_kgsl_flag_values_reference():
    # tinygrad's context flags value and memory flags value (qcom.md 1.4)
    assert (K.KGSL_CONTEXT_PREAMBLE | K.KGSL_CONTEXT_PWR_CONSTRAINT | K.KGSL_CONTEXT_NO_FAULT_TOLERANCE
            | K.KGSL_CONTEXT_NO_GMEM_ALLOC | 8 << K.KGSL_CONTEXT_PRIORITY_SHIFT
            | K.KGSL_CONTEXT_PREEMPT_STYLE_FINEGRAIN << K.KGSL_CONTEXT_PREEMPT_STYLE_SHIFT) == 0x04008A12
    assert (12 << K.KGSL_MEMALIGN_SHIFT | K.KGSL_MEMFLAGS_USE_CPU_MAP) == 0x100C0000
    assert (K.KGSL_VERSION_MAJOR, K.KGSL_VERSION_MINOR) == (3, 14)


def test_snapshot_constants():
    assert S.SNAPSHOT_MAGIC == 0x504D0002 and S.SNAPSHOT_SECTION_MAGIC == 0xABCD
    assert (S.KGSL_SNAPSHOT_SECTION_OS, S.KGSL_SNAPSHOT_SECTION_REGS, S.KGSL_SNAPSHOT_SECTION_RB_V2,
            S.KGSL_SNAPSHOT_SECTION_IB_V2, S.KGSL_SNAPSHOT_SECTION_END) == (0x101, 0x201, 0x302, 0x402, 0xFFFF)


# Qualcomm's kernel a6xx_reg.h (A6XX_<name>) next to the Mesa names it corresponds to
KGSL_REGS = {"CP_RB_BASE": 0x800, "CP_HW_FAULT": 0x821, "CP_INTERRUPT_STATUS": 0x823, "CP_SQE_STAT_ADDR": 0x908,
             "CP_SQE_STAT_DATA": 0x909, "CP_IB1_BASE": 0x928, "RBBM_STATUS": 0x210}
# qcom.md 2.5 (Mesa new name [old name]), offsets from tinygrad's autogen and Mesa
COMPUTE_REGS = {"SP_CS_CTRL_REG0": 0xA9B0, "SP_CS_CTRL_REG1": 0xA9B1, "SP_CS_OBJ_START": 0xA9B4,
                "SP_CS_PVT_MEM_PARAM": 0xA9B6, "SP_CS_CONFIG": 0xA9BB, "SP_CS_INSTRLEN": 0xA9BC,
                "SP_CS_IBO": 0xA9F2, "SP_CS_IBO_COUNT": 0xAA00, "HLSQ_CS_CNTL": 0xB987, "HLSQ_CS_NDRANGE_0": 0xB990,
                "HLSQ_CS_CNTL_0": 0xB997, "HLSQ_CS_CNTL_1": 0xB998, "HLSQ_CS_KERNEL_GROUP_X": 0xB999,
                "HLSQ_INVALIDATE_CMD": 0xBB08, "SP_MODE_CONTROL": 0xAB00, "CP_ALWAYS_ON_COUNTER": 0x980,
                "A7XX_HLSQ_CS_NDRANGE_0": 0xA9D4, "A7XX_HLSQ_INVALIDATE_CMD": 0xAB1F}


@pytest.mark.parametrize("name,off", list(KGSL_REGS.items()) + list(COMPUTE_REGS.items()))
def test_a6xx_register_offsets(name, off):
    assert getattr(A, name) == off


def test_a6xx_fields_reference():
    # qcom.md 2.5 bit ranges
    assert A.SP_CS_CTRL_REG0_THREADSIZE == Field(20, 20)
    assert A.SP_CS_CTRL_REG0_FULLREGFOOTPRINT == Field(12, 7)
    assert A.HLSQ_CS_NDRANGE_0_LOCALSIZEX == Field(11, 2) and A.HLSQ_CS_NDRANGE_0_LOCALSIZEZ == Field(31, 22)
    assert A.HLSQ_CS_CNTL_CONSTLEN == Field(7, 0) and A.HLSQ_CS_CNTL_CONSTLEN_SHR == 2
    assert A.SP_CS_CONFIG_NIBO == Field(28, 22)
    assert A.HLSQ_CS_CNTL_0_LOCALIDREGID == Field(31, 24)
    assert A.A6XX_UBO_1_SIZE == Field(31, 17)
    assert A.REGISTERS[0xA9B4] == "SP_CS_OBJ_START" and "SP_CS_OBJ_START" in A.REG64
    assert A.CP_SCRATCH_REG(7) == 0x883 + 7
    with pytest.raises(IndexError):
        A.CP_SCRATCH_REG(8)


def test_pm4_opcodes_reference():
    # kgsl adreno_pm4types.h / qcom.md 2.2
    assert (P.CP_NOP, P.CP_WAIT_MEM_WRITES, P.CP_WAIT_FOR_IDLE, P.CP_WAIT_REG_MEM, P.CP_SET_MARKER,
            P.CP_REG_TO_MEM, P.CP_MEM_WRITE, P.CP_EVENT_WRITE) == (0x10, 0x12, 0x26, 0x3C, 0x65, 0x3E, 0x3D, 0x46)
    assert (P.CP_EXEC_CS, P.CP_LOAD_STATE6_FRAG, P.CP_INDIRECT_BUFFER, P.CP_WAIT_MEM_GTE, P.CP_RUN_OPENCL) == (
        0x33, 0x34, 0x3F, 0x14, 0x31)
    assert P.A7XX_CP_EVENT_WRITE7 == 0x46 and P.A7XX_CP_WAIT_TIMESTAMP == 0x14
    assert (P.CACHE_FLUSH_TS, P.RB_DONE_TS, P.PC_CCU_INVALIDATE_DEPTH, P.CACHE_INVALIDATE) == (4, 22, 24, 49)
    assert P.CP_LOAD_STATE6_0_NUM_UNIT == Field(31, 22) and P.CP_LOAD_STATE6_0_STATE_BLOCK == Field(21, 18)
    assert P.SB6_CS_SHADER == 13 and P.ST6_IBO == 3 and P.SS6_INDIRECT == 2 and P.RM6_COMPUTE == 8


def _parity(v: int) -> int:
    """Odd parity written out independently: 1 when popcount(v) is even."""
    return 1 - bin(v).count("1") % 2


def _hdr7(op, cnt):
    return (P.CP_TYPE7_PKT | P.PKT_TYPE7_PKT_SIZE.encode(cnt) | P.PKT_TYPE7_PKT_SIZE_PARITY.encode(_parity(cnt))
            | P.PKT_CP_TYPE7_OPCODE.encode(op) | P.PKT_CP_TYPE7_OPCODE_PARITY.encode(_parity(op)))


def _hdr4(reg, cnt):
    return (P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(cnt) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(_parity(cnt))
            | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(_parity(reg)))


def test_pm4_header_fields_give_the_headers_seen_in_real_streams():
    # qcom.md 2.1 table
    assert _hdr7(P.CP_WAIT_FOR_IDLE, 0) == 0x70268000
    assert _hdr7(P.CP_SET_MARKER, 1) == 0x70E50001
    assert _hdr7(P.CP_EVENT_WRITE, 4) == 0x70460004 and _hdr7(P.CP_EVENT_WRITE, 1) == 0x70460001
    assert _hdr7(P.CP_LOAD_STATE6_FRAG, 3) == 0x70348003
    assert _hdr7(P.CP_EXEC_CS, 4) == 0x70B30004
    assert _hdr7(P.CP_RUN_OPENCL, 1) == 0x70310001
    assert _hdr7(P.CP_WAIT_REG_MEM, 6) == 0x70BC8006
    assert _hdr7(P.CP_MEM_WRITE, 3) == 0x703D8003 and _hdr7(P.CP_REG_TO_MEM, 3) == 0x703E8003
    assert _hdr7(P.CP_WAIT_MEM_WRITES, 0) == 0x70928000 and _hdr7(P.CP_NOP, 1) == 0x70100001
    assert _hdr7(P.CP_INDIRECT_BUFFER, 3) == 0x70BF8003
    assert _hdr4(0xBB08, 1) == 0x40BB0801 and _hdr4(0xB990, 12) == 0x40B9908C
    assert _hdr4(0xA9B0, 10) == 0x40A9B08A and _hdr4(0xB983, 5) == 0x48B98385


def test_sources_are_pinned():
    for mod in (A, P):
        assert mod.SOURCES and all(s["tag"] == "mesa-25.0.7" and len(s["sha256"]) == 64 for s in mod.SOURCES)
    assert all(len(s["commit"]) == 40 for s in K.SOURCES + S.SOURCES)


needs_src = pytest.mark.skipif(not SRC or not os.path.isdir(os.path.join(SRC or "", "kgsl")),
                               reason="set HWDRV_AUTOGEN_SRC to the pinned sources (autogen/README.md) to cross-check "
                                      "every register and opcode against the kgsl kernel headers")


def _defines(path: str) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)\b", open(path).read(), re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


@needs_src
def test_every_shared_register_name_matches_kgsl_a6xx_reg_h():
    d = _defines(os.path.join(SRC, "kgsl", "a6xx_reg.h"))
    checked = 0
    for off, name in A.REGISTERS.items():
        if name.startswith("A7XX_"):
            continue
        for cand in ("A6XX_" + name, "A6XX_" + name + "_LO"):
            if cand in d:
                assert d[cand] == off, (name, hex(off), hex(d[cand]))
                checked += 1
                break
    assert checked >= 20


@needs_src
def test_every_shared_opcode_matches_kgsl_adreno_pm4types_h():
    d = _defines(os.path.join(SRC, "kgsl", "adreno_pm4types.h"))
    checked = 0
    for op, name in P.ENUMS["adreno_pm4_type3_packets"].items():
        if name in d and name != "CP_INDIRECT_BUFFER_PFE":
            assert d[name] == op, name
            checked += 1
    assert checked >= 15


def test_rnn_generator_on_a_synthetic_database(tmp_path, monkeypatch):
    from autogen import manifest, rnn
    root = tmp_path / "synth" / "regs"
    (root / "adreno").mkdir(parents=True)
    (root / "adreno" / "x.xml").write_text("""<?xml version="1.0"?>
<database xmlns="http://nouveau.freedesktop.org/">
<enum name="e"><value name="V_A" value="1"/><value name="V_B" value="2" variants="A7XX-"/></enum>
<bitset name="bs" inline="yes"><bitfield name="LO" low="0" high="3"/><bitfield name="B" pos="9" shr="2"/></bitset>
<domain name="D" width="32">
  <reg32 offset="0x10" name="R" type="bs"><bitfield name="X" low="4" high="7" variants="A6XX"/></reg32>
  <reg32 offset="0x20" name="M" variants="A6XX"/><reg32 offset="0x30" name="M" variants="A7XX-"/>
  <reg64 offset="0x40" name="W"/>
  <array offset="0x100" name="ARR" stride="4" length="3"><reg32 offset="1" name="EL"/></array>
</domain>
</database>""")
    monkeypatch.setitem(manifest.REPOS, "synth", manifest.Repo("synth", "example/synth", "t", ""))
    t = rnn.RnnTarget(name="s", group="s", output="x.py", doc="synthetic", repo="synth",
                      files=["regs/adreno/x.xml"], domains={"D": ""}, extra_variants=["A7XX"],
                      regs=["R", "M", "W", "ARR"], enums=["e"])
    text = rnn.generate(t, str(tmp_path))
    ns: dict = {}
    exec(text, ns)
    assert ns["R"] == 0x10 and ns["R_LO"] == Field(3, 0) and ns["R_B"] == Field(9, 9) and ns["R_B_SHR"] == 2
    assert ns["R_X"] == Field(7, 4) and "A7XX_R_X" not in ns
    assert ns["M"] == 0x20 and ns["A7XX_M"] == 0x30
    assert ns["W"] == 0x40 and ns["REG64"] == {"W"} and ns["REGISTERS"][0x41] == "W_HI"
    assert ns["ARR"] == 0x100 and ns["ARR_STRIDE"] == 4 and ns["ARR_EL"](2) == 0x100 + 8 + 1
    assert ns["V_A"] == 1 and "V_B" not in ns and ns["A7XX_V_B"] == 2
    t.regs = ["NOPE"]
    with pytest.raises(rnn.RnnError):
        rnn.generate(t, str(tmp_path))
