"""SDMA v6 packet builders for a KFD SDMA queue (reference/amd.md section 3). Every field's dword,
mask and shift comes from the generated sdma_v6_0_0_pkt_open.h bindings (gen/sdma6.py)."""
from __future__ import annotations

from .gen import sdma6 as S

_U32 = 0xFFFFFFFF
#: bytes one COPY_LINEAR moves at most (its COUNT field holds bytes - 1)
COPY_MAX = S.SDMA_PKT_COPY_LINEAR_COUNT_count_mask + 1
FUNCTION_GEQ = 5          # POLL_REGMEM func: the WAIT_REG_MEM compare functions (>= reference)
POLL_INTERVAL = 4         # POLL_REGMEM interval (tinygrad's value)
POLL_RETRY_FOREVER = S.SDMA_PKT_POLL_REGMEM_DW5_retry_count_mask   # 0xFFF: retry until satisfied


def _length(packet: str) -> int:
    """Dwords of ``packet``: one past the largest dword offset of its fields."""
    pre = f"SDMA_PKT_{packet}_"
    offs = [v for k, v in vars(S).items() if k.startswith(pre) and k.endswith("_offset")
            and k[len(pre):].split("_")[0] in ("HEADER", "COUNT", "PARAMETER", "SRC", "DST", "ADDR", "DATA", "VALUE",
                                                 "MASK", "DW5", "INT", "WRITE")]
    return 1 + max(offs)


def packet(name: str, **fields: int) -> list[int]:
    """SDMA packet ``name`` (e.g. "FENCE") with ``fields`` given as ``DWORD__field=value``
    (e.g. ``ADDR_LO__addr_31_0``); op and sub-op are filled from the packet's name."""
    words = [0] * LENGTHS[name]
    for key, v in fields.items():
        dword, fname = key.split("__")
        pre = f"SDMA_PKT_{name}_{dword}_{fname}_"
        mask, shift, off = getattr(S, pre + "mask"), getattr(S, pre + "shift"), getattr(S, pre + "offset")
        if v & ~mask:
            raise ValueError(f"SDMA {name}.{dword}.{fname} = {v:#x} does not fit its mask {mask:#x}")
        words[off] |= v << shift
    return words


LENGTHS = {p: _length(p) for p in ("COPY_LINEAR", "FENCE", "TRAP", "POLL_REGMEM", "TIMESTAMP_GET_GLOBAL")}
_OPS = {"COPY_LINEAR": (S.SDMA_OP_COPY, S.SDMA_SUBOP_COPY_LINEAR), "FENCE": (S.SDMA_OP_FENCE, 0),
        "TRAP": (S.SDMA_OP_TRAP, 0), "POLL_REGMEM": (S.SDMA_OP_POLL_REGMEM, 0),
        "TIMESTAMP_GET_GLOBAL": (S.SDMA_OP_TIMESTAMP, S.SDMA_SUBOP_TIMESTAMP_GET_GLOBAL)}


def _hdr(name: str, **extra: int) -> dict:
    op, sub = _OPS[name]
    return dict(HEADER__op=op, HEADER__sub_op=sub, **extra)


def copy_linear(dst: int, src: int, nbytes: int) -> list[int]:
    """COPY_LINEAR of ``nbytes`` (1..COPY_MAX)."""
    return packet("COPY_LINEAR", **_hdr("COPY_LINEAR"), COUNT__count=nbytes - 1,
                  SRC_ADDR_LO__src_addr_31_0=src & _U32, SRC_ADDR_HI__src_addr_63_32=src >> 32,
                  DST_ADDR_LO__dst_addr_31_0=dst & _U32, DST_ADDR_HI__dst_addr_63_32=dst >> 32)


#: dword index of the source / destination address low words inside copy_linear() (patch sites)
COPY_SRC_LO = S.SDMA_PKT_COPY_LINEAR_SRC_ADDR_LO_src_addr_31_0_offset
COPY_DST_LO = S.SDMA_PKT_COPY_LINEAR_DST_ADDR_LO_dst_addr_31_0_offset
#: dword index of the data inside fence()
FENCE_DATA = S.SDMA_PKT_FENCE_DATA_data_offset
#: dword index of the reference value inside poll_geq()
POLL_VALUE = S.SDMA_PKT_POLL_REGMEM_VALUE_value_offset


def fence(addr: int, value: int) -> list[int]:
    """FENCE: write the 32-bit ``value`` to ``addr`` after earlier packets completed."""
    return packet("FENCE", **_hdr("FENCE"), ADDR_LO__addr_31_0=addr & _U32, ADDR_HI__addr_63_32=addr >> 32,
                  DATA__data=value & _U32)


def trap(ctx_id: int) -> list[int]:
    """TRAP: raise the engine interrupt with context ``ctx_id`` (a KFD event id)."""
    return packet("TRAP", **_hdr("TRAP"), INT_CONTEXT__int_context=ctx_id)


def poll_geq(addr: int, reference: int) -> list[int]:
    """POLL_REGMEM on memory: block until the 32-bit word at ``addr`` >= ``reference``."""
    return packet("POLL_REGMEM", **_hdr("POLL_REGMEM", HEADER__func=FUNCTION_GEQ, HEADER__mem_poll=1),
                  ADDR_LO__addr_31_0=addr & _U32, ADDR_HI__addr_63_32=addr >> 32, VALUE__value=reference & _U32,
                  MASK__mask=_U32, DW5__interval=POLL_INTERVAL, DW5__retry_count=POLL_RETRY_FOREVER)


def timestamp(addr: int) -> list[int]:
    """TIMESTAMP GET_GLOBAL: write the 64-bit GPU clock to ``addr`` (8-byte aligned)."""
    shift = S.SDMA_PKT_TIMESTAMP_GET_GLOBAL_WRITE_ADDR_LO_write_addr_31_3_shift
    return packet("TIMESTAMP_GET_GLOBAL", **_hdr("TIMESTAMP_GET_GLOBAL"),
                  WRITE_ADDR_LO__write_addr_31_3=(addr & _U32) >> shift, WRITE_ADDR_HI__write_addr_63_32=addr >> 32)
