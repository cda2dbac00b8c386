"""Diagnosis-source probe for a real NVIDIA GPU (not a pytest module): tries every source a hang
report reads, before and after each provoked fault, and prints what works and what the driver
refuses (with the status). One call:

    python tests/hardware/diag_probe.py [nvidia:0]
"""
from __future__ import annotations

import sys
import time
import traceback

import hwdrv
from hwdrv import provoke as D
from hwdrv.errors import HwdrvError
from hwdrv.nvidia import diagnose as nd
from hwdrv.nvidia import regdump
from hwdrv.nvidia.gen import nv580 as nv


def step(label, fn):
    t = time.perf_counter()
    try:
        r = fn()
        text = str(r) if not isinstance(r, tuple) else "(report follows)"
        print(f"  OK      {label} ({(time.perf_counter() - t) * 1e3:.1f} ms): {text[:400]}", flush=True)
        return r
    except HwdrvError as e:
        print(f"  REFUSED {label}: {e}", flush=True)
    except Exception as e:  # noqa: BLE001 - a probe reports everything
        print(f"  FAILED  {label}: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(limit=3)
    return None


def sm_states(dev):
    ffi, out = dev.nv.ffi, []
    count = getattr(dev, "sm_count", None) or nd.sm_count(dev)
    for start in range(0, count, 100):
        p = ffi.new("NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS *")
        p.hTargetChannel, p.startingSM, p.numSMsToRead = dev.h_compute_ch, start, min(100, count - start)
        dev.rm.control(dev.debugger(), nv.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES, p, "READ_ALL_SM_ERROR_STATES")
        for i in range(p.numSMsToRead):
            s = p.smErrorStateArray[i]
            if s.hwwGlobalEsr or s.hwwWarpEsr:
                out.append(f"SM{start + i}: gesr={s.hwwGlobalEsr:#x} wesr={s.hwwWarpEsr:#x} pc={s.hwwWarpEsrPc:#x} "
                           f"pc64={s.hwwWarpEsrPc64:#x} addr={s.hwwEsrAddr:#x} cga={s.hwwCgaEsr:#x}")
        out.append(f"[start {start}: read {p.numSMsToRead}, mmuFault.valid={p.mmuFault.valid} "
                   f"faultInfo={p.mmuFault.faultInfo:#x}]")
    return f"sm_count={count}; " + "; ".join(out)


def mmu_debugger(dev):
    p = dev.nv.ffi.new("NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS *")
    dev.rm.control(dev.debugger(), nv.NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO, p, "READ_MMU_FAULT_INFO")
    return [(hex(p.mmuFaultInfoList[i].faultAddress), nd.FAULT_TYPES.get(p.mmuFaultInfoList[i].faultType),
             nd.ACCESS_TYPES.get(p.mmuFaultInfoList[i].accessType)) for i in range(min(p.count, 4))] or "count=0"


def mmu_channel(dev, h):
    p = dev.nv.ffi.new("NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS *")
    dev.rm.control(h, nv.NV906F_CTRL_CMD_GET_MMU_FAULT_INFO, p, "GET_MMU_FAULT_INFO")
    return (f"addr={p.addrHi << 32 | p.addrLo:#x} type={p.faultType} "
            f"string={dev.nv.ffi.string(p.faultString)!r} shaderVA={[hex(p.shaderProgramVA[i]) for i in range(7)]}")


def regops(dev, via, typ, offset):
    names = regdump.regop_status_names()
    res = regdump.exec_reg_ops(dev, [("reg", offset, typ)], via)
    return [(n, names.get(st, st), hex(v) if v is not None else None) for n, st, v in res]


def rc_error_count(dev):
    p = dev.nv.ffi.new("NV2080_CTRL_RC_GET_ERROR_COUNT_PARAMS *")
    dev.rm.control(dev.h_subdevice, nv.NV2080_CTRL_CMD_RC_GET_ERROR_COUNT, p, "RC_GET_ERROR_COUNT")
    return p.errorCount


def sources(dev, title):
    print(f"-- sources {title}", flush=True)
    step("error notifier", lambda: nd.read_notifier(bytes(dev._notifier_view[:16])))
    step("USERD GPGet/GPPut", lambda: {k: (c.gp_get, int(c.userd[c._gpput])) for k, c in dev._channels.items()})
    step("GT200_DEBUGGER alloc", lambda: hex(dev.debugger()))
    step("READ_ALL_SM_ERROR_STATES (all SMs)", lambda: sm_states(dev))
    step("NV83DE READ_MMU_FAULT_INFO", lambda: mmu_debugger(dev))
    step("NV906F GET_MMU_FAULT_INFO compute", lambda: mmu_channel(dev, dev.h_compute_ch))
    step("NV906F GET_MMU_FAULT_INFO copy", lambda: mmu_channel(dev, dev.h_copy_ch))
    step("NV2080 RC_GET_ERROR_COUNT", lambda: rc_error_count(dev))
    # offset 0 is the chip's boot/id register on every NVIDIA GPU: a harmless read that tells
    # whether the driver lets this client use register operations at all
    for via in ("debugger", "subdevice"):
        step(f"EXEC_REG_OPS via {via}, GLOBAL offset 0", lambda v=via: regops(dev, v, nv.NV2080_CTRL_GPU_REG_OP_TYPE_GLOBAL, 0))
        step(f"EXEC_REG_OPS via {via}, GR_CTX offset 0", lambda v=via: regops(dev, v, nv.NV2080_CTRL_GPU_REG_OP_TYPE_GR_CTX, 0))


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "nvidia:0"
    dev = hwdrv.open_device(name)
    print(f"device {dev!r} driver {getattr(dev, 'driver_version', '?')} sm_count {getattr(dev, 'sm_count', '?')}")
    try:
        sources(dev, "at rest")
        step("requested report", lambda: dev.diagnose().summary())
        for kind, fn in D.PROVOCATIONS.items():
            print(f"== {kind}", flush=True)
            t = time.perf_counter()
            res = step(kind, lambda f=fn: f(dev))
            if res:
                rep, msg, exp = res
                print(f"  detected after {time.perf_counter() - t:.2f} s: {msg}; expected {exp}")
                print(rep.to_text() if rep else "  NO REPORT")
            sources(dev, f"after {kind}" + (" (recovered)" if kind in ("endless loop", "wait on a signal nobody sets") else ""))
            step("recover + vecadd", lambda: D.vecadd_check(dev))
            step("recoveries", lambda: dev.recoveries[-1:] )
    finally:
        dev.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
