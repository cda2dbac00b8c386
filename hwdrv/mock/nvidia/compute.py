"""HOPPER_COMPUTE_A (0xCBC0) on the mock GPU: the compute class methods and QMD launches.

A launch (SEND_PCAS_A with the QMD VA >> 8, then SEND_SIGNALING_PCAS2_B with a scheduling
action) reads the QMD V04_00, checks it like the hardware would need it (nonzero register count,
grid/block sizes, shared memory), reads the constant banks the QMD binds (bank 0: the sm_90 driver
words at 0x0..0x14 must match the QMD's block and grid; the shared/local window bases at
0x18/0x20 and the stack pointer at 0x28 are what the kernel's code uses; parameters from 0x210),
fetches the kernel's PTX text at the program address (image.py) and runs it in the PTX
interpreter with the channel's page table and what the driver programmed:

* generic addresses are routed by the SET_SHADER_SHARED/LOCAL_MEMORY_WINDOW methods; ``cvta``
  adds the constant-bank-0 bases, so bases that disagree with the windows send accesses to
  global memory (an MMU fault, or silently wrong data, as on the GPU);
* the ``.local`` frame sits below the constant-bank-0 stack pointer, inside the top
  SHADER_LOCAL_MEMORY_HIGH_SIZE bytes of the local window, and only as far as the SLM backing
  (SET_SHADER_LOCAL_MEMORY_A/B, NON_THROTTLED_A/B) holds per thread; an access outside faults
  (warp ESR OOR_ADDR);
* shared memory per CTA is the QMD's SHARED_MEMORY_SIZE less the 1 KiB sm_90 reserves; an access
  beyond faults;
* module ``.global`` variables are where constant bank 4 says (the relocated addresses), ``.const``
  ones are bank 3.

A GRID_GPC_CGA QMD runs as thread-block clusters of GPC_CGA_* CTAs (the one CGA encoding the
mock models: docs/clusters.md); the kernel computes its cluster registers from constant bank 0.

After the grid, the QMD's release semaphores are applied and enabled dependent QMDs are launched.

Constant banks go through a constant cache, as on the GPU: a launch reads each bank it binds
from the cache where the cache holds that bank and the QMD does not ask for it to be invalidated
(CONSTANT_BUFFER_INVALIDATE), else from memory, keeping what it read; INVALIDATE_SHADER_CACHES
(_NO_WFI) with CONSTANT empties the cache. Host writes do not reach cached banks, so a launch
that keeps a bank the host has rewritten since it was cached reads the old constants -- what
a missing invalidation does on the GPU.
"""
from __future__ import annotations

import os
import re
import struct
import time
from typing import TYPE_CHECKING

from hwdrv.errors import MockFault, ProgramError
from hwdrv.mock.gpumem import MemoryFault

from . import faults as X
from . import ptx
from . import semaphore as S
from . import facts as F
from .facts import HW
from .image import ImageError
from .qmd import Qmd

if TYPE_CHECKING:
    from .fifo import Channel

PARAM_OFFSET = 0x210          # sm_90: kernel parameters in constant bank 0
CB0_SHARED_WINDOW = 0x18      # sm_90 code reads the generic shared base here (reference nvidia.md 3.8)
CB0_LOCAL_WINDOW = 0x20       # ... the generic local base
CB0_STACK_POINTER = 0x28      # ... and the initial stack pointer (a local window offset)
SHARED_WINDOW_ALIGN = 1 << 32  # Hopper: the shared window is 4 GiB aligned and nonzero
LOCAL_WINDOW_ALIGN = 16 << 20
GLOBAL_ADDRESS_BANK = 4       # ptxas puts the addresses of __device__ variables in c[4]
#: ptxas's function pointers are byte offsets into c[2], whose 8-byte slots hold the code offset
#: of each address-taken function in the kernel's code (slot 0 is no function)
FUNCTION_DESCRIPTOR_BANK = 2
_FUNC_HEAD_RE = re.compile(rb"(?:\.(?:visible|weak)\s+)*\.func\s*(?:\([^)]*\))?\s*([A-Za-z_$][\w$]*)")
ADDRESS_SLOT = 8
CONST_BANK = 3
SLM_WARP_GRANULE = 0x200      # SLM is handed out per warp in 512-byte steps
RESERVED_SHARED = 0x400       # 1 KiB of shared memory per CTA reserved by sm_80+
MAX_DEPENDENT_CHAIN = 1 << 16
#: CTAs one sm_90 cluster may hold (16 with CUDA's non-portable opt-in; PTX ISA, cluster limits)
MAX_CLUSTER_SIZE = 16
#: shared memory one Hopper SM has (the largest carveout, 228 KiB)
MAX_SHARED_PER_SM = 228 << 10
#: seconds a kernel may run before the mock's watchdog stops it (HWDRV_MOCK_NV_KERNEL_TIMEOUT)
DEFAULT_KERNEL_TIMEOUT = float(os.environ.get("HWDRV_MOCK_NV_KERNEL_TIMEOUT", "10"))

_SCHEDULE_ACTIONS = {
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_SCHEDULE,
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_INVALIDATE_COPY_SCHEDULE,
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_PREFETCH_SCHEDULE,
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_INVALIDATE_PREFETCH_COPY_SCHEDULE,
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_INVALIDATE_PREFETCH_COPY_FORCE_REQUIRE_SCHEDULING,
}
_NO_LAUNCH_ACTIONS = {
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_NOP, HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_INVALIDATE,
    HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_PREFETCH,
}
_DEP_SCHEDULE = {HW.NVCBC0_QMDV04_00_DEPENDENT_QMD_ACTION_QMD_SCHEDULE,
                 HW.NVCBC0_QMDV04_00_DEPENDENT_QMD_ACTION_QMD_INVALIDATE_COPY_SCHEDULE}

# Methods that set state: remembered in `state`; a launch reads the shared/local windows and the
# SLM backing from there, the others (caches, SM config, timeouts, render enables) only show in
# dumps.
_STATE_METHODS = {
    HW.NVCBC0_NO_OPERATION, HW.NVCBC0_SET_NOTIFY_A, HW.NVCBC0_SET_NOTIFY_B, HW.NVCBC0_WAIT_FOR_IDLE,
    HW.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_A, HW.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_B,
    HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_A, HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_B,
    HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_A, HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_B,
    HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_A, HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_B,
    HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_C, HW.NVCBC0_INVALIDATE_SHADER_CACHES,
    HW.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI, HW.NVCBC0_INVALIDATE_SKED_CACHES, HW.NVCBC0_SET_QMD_VERSION,
    HW.NVCBC0_SET_SPA_VERSION, HW.NVCBC0_SET_SHADER_EXCEPTIONS, HW.NVCBC0_SET_SM_TIMEOUT_INTERVAL,
    HW.NVCBC0_SET_RENDER_ENABLE_OVERRIDE, HW.NVCBC0_SET_CWD_SLOT_COUNT, HW.NVCBC0_SET_CWD_REF_COUNTER,
    HW.NVCBC0_SET_REPORT_SEMAPHORE_PAYLOAD_LOWER, HW.NVCBC0_SET_REPORT_SEMAPHORE_PAYLOAD_UPPER,
    HW.NVCBC0_SET_REPORT_SEMAPHORE_ADDRESS_LOWER, HW.NVCBC0_SET_REPORT_SEMAPHORE_ADDRESS_UPPER,
    HW.NVCBC0_SET_REPORT_SEMAPHORE_A, HW.NVCBC0_SET_REPORT_SEMAPHORE_B, HW.NVCBC0_SET_REPORT_SEMAPHORE_C,
    HW.NVCBC0_SET_TRAP_HANDLER_A, HW.NVCBC0_SET_TRAP_HANDLER_B,
}


class ComputeEngine:
    """The HOPPER_COMPUTE_A object bound to a subchannel of one channel."""

    cls = HW.HOPPER_COMPUTE_A

    def __init__(self, channel: "Channel"):
        self.ch = channel
        self.state: dict[int, int] = {}
        self.qmd_va = 0
        self.launches = 0
        self.last_launch: dict | None = None
        #: the constant cache: (bank address, size) -> the bytes read when it was filled
        self.const_cache: dict[tuple[int, int], bytes] = {}

    def method(self, mthd: int, data: int, where: str) -> None:
        if mthd == HW.NVCBC0_SEND_PCAS_A:
            self.qmd_va = HW.NVCBC0_SEND_PCAS_A_QMD_ADDRESS_SHIFTED8.decode(data) << 8
        elif mthd == HW.NVCBC0_SEND_SIGNALING_PCAS2_B:
            action = HW.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION.decode(data)
            if action in _SCHEDULE_ACTIONS:
                self.launch_chain(self.qmd_va, where)
            elif action not in _NO_LAUNCH_ACTIONS:
                raise self._class_error(where, mthd, data, f"PCAS action {action} is not supported by the mock")
        elif mthd == HW.NVCBC0_SEND_SIGNALING_PCAS_B:
            if HW.NVCBC0_SEND_SIGNALING_PCAS_B_SCHEDULE.decode(data):
                self.launch_chain(self.qmd_va, where)
        elif mthd == HW.NVCBC0_SET_REPORT_SEMAPHORE_D:
            self._report_semaphore(data, where)
        elif mthd in _STATE_METHODS:
            if (mthd == HW.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI
                    and HW.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_CONSTANT.decode(data)) or \
                    (mthd == HW.NVCBC0_INVALIDATE_SHADER_CACHES and HW.NVCBC0_INVALIDATE_SHADER_CACHES_CONSTANT.decode(data)):
                self.const_cache.clear()
            self.state[mthd] = data
        else:
            raise self._class_error(where, mthd, data, "unknown method for HOPPER_COMPUTE_A")

    def _class_error(self, where: str, mthd: int, data: int, why: str) -> X.ChannelError:
        return X.ChannelError(X.XID_GR_CLASS, f"{where}: GR class error, method {mthd:#x} data {data:#x}: {why}",
                              self.ch.engine_type)

    # ---- legacy report semaphore (SET_REPORT_SEMAPHORE_A..D) -----------------------------------------
    def _report_semaphore(self, data: int, where: str) -> None:
        op = HW.NVCBC0_SET_REPORT_SEMAPHORE_D_OPERATION.decode(data)
        if op != HW.NVCBC0_SET_REPORT_SEMAPHORE_D_OPERATION_RELEASE:
            raise self._class_error(where, HW.NVCBC0_SET_REPORT_SEMAPHORE_D, data,
                                    f"report semaphore operation {op} is not supported by the mock")
        va = (HW.NVCBC0_SET_REPORT_SEMAPHORE_A_OFFSET_UPPER.decode(
            self.state.get(HW.NVCBC0_SET_REPORT_SEMAPHORE_A, 0)) << 32) \
            | self.state.get(HW.NVCBC0_SET_REPORT_SEMAPHORE_B, 0)
        payload = self.state.get(HW.NVCBC0_SET_REPORT_SEMAPHORE_C, 0)
        one_word = (HW.NVCBC0_SET_REPORT_SEMAPHORE_D_STRUCTURE_SIZE.decode(data)
                    == HW.NVCBC0_SET_REPORT_SEMAPHORE_D_STRUCTURE_SIZE_ONE_WORD)
        try:
            S.write(self.ch.pt, va, payload, 4)
            if not one_word:
                S.write(self.ch.pt, va + 4, 0, 4)
                S.write_timestamp(self.ch.pt, va)
        except MemoryFault as f:
            raise X.mmu_fault(f, "HUBCLIENT_FE", self.ch.engine_type, "writing a report semaphore") from None

    # ---- launches --------------------------------------------------------------------------------
    def launch_chain(self, qmd_va: int, where: str) -> None:
        """Launch the QMD at `qmd_va`, then its scheduled dependent QMDs, in order."""
        pending = [qmd_va]
        for _ in range(MAX_DEPENDENT_CHAIN):
            if not pending:
                return
            q = self._read_qmd(pending.pop(0), where)
            self._launch(q, where)
            pending.extend(va for action, va in q.dependent if action in _DEP_SCHEDULE)
        raise X.ChannelError(X.XID_GR_EXCEPTION, f"{where}: more than {MAX_DEPENDENT_CHAIN} dependent QMDs "
                                                 f"chained (a QMD cycle?)", self.ch.engine_type)

    def _read_qmd(self, va: int, where: str) -> Qmd:
        if va % 256:
            raise self._launch_error(where, va, f"QMD address {va:#x} is not 256-byte aligned")
        try:
            return Qmd.read(self.ch.pt, va)
        except MemoryFault as f:
            raise X.mmu_fault(f, "HUBCLIENT_SKED", self.ch.engine_type, f"fetching the QMD at {va:#x}") from None

    def _launch_error(self, where: str, qmd_va: int, why: str) -> X.ChannelError:
        """A malformed launch the mock detects where no hardware behaviour was measured."""
        return X.ChannelError(X.XID_GR_CLASS, f"{where}: launch of QMD {qmd_va:#x} rejected: {why}",
                              self.ch.engine_type)

    def _sked_check(self, where: str, qmd_va: int, why: str) -> X.ChannelError:
        """A launch the scheduler's checks refuse: on an H100 (580.159.04) register count 0, a zero
        block dimension or too much shared memory each gave Xid 13, 'Graphics Exception:
        SKEDCHECK..._ZERO failed' (tests/hardware/bad_qmd_probe.py)."""
        return X.ChannelError(X.XID_GR_EXCEPTION, f"{where}: launch of QMD {qmd_va:#x} failed the scheduler's "
                                                  f"checks: {why}", self.ch.engine_type)

    def _launch(self, q: Qmd, where: str) -> None:
        ch = self.ch
        # As measured on an H100: the version fields are not checked (a V04 QMD saying 3.0 ran
        # normally), and a QMD of type QUEUE is fetched but runs no grid, silently.
        if q.qmd_type == HW.NVCBC0_QMDV04_00_QMD_TYPE_QUEUE:
            return
        cluster = self._cluster(q, where)
        # a cluster launch's grid fields count clusters (H100, tests/hardware/cluster_probe.py)
        grid = q.grid if cluster is None else (q.grid[0] * cluster[0], q.grid[1] * cluster[1], q.grid[2] * cluster[2])
        if q.registers == 0:
            raise self._sked_check(where, q.va, "REGISTER_COUNT is 0 (a kernel needs at least one register)")
        if 0 in grid or 0 in q.block:
            raise self._sked_check(where, q.va, f"grid {grid} / block {q.block} has a zero dimension")
        nthreads = q.block[0] * q.block[1] * q.block[2]
        if nthreads > 1024 or q.registers * nthreads > 65536:
            raise self._sked_check(where, q.va, f"block {q.block} x {q.registers} registers does not fit an "
                                                f"SM (max 1024 threads, 64K registers)")
        if q.shared_size > MAX_SHARED_PER_SM:
            raise self._sked_check(where, q.va, f"{q.shared_size} bytes of shared memory exceed the "
                                                f"{MAX_SHARED_PER_SM} an SM has")
        if 0 not in q.cbufs:
            raise self._launch_error(where, q.va, "constant buffer 0 is not valid (kernel parameters live there)")
        banks: dict[int, bytes] = {}
        for i, (cva, size) in q.cbufs.items():
            if cva % 64:
                raise self._launch_error(where, q.va, f"constant buffer {i} address {cva:#x} is not 64-byte aligned")
            key = (cva, size)
            cached = None if i in q.cbuf_invalidate else self.const_cache.get(key)
            if cached is not None:
                banks[i] = cached
                continue
            try:
                banks[i] = self.const_cache[key] = ch.pt.read(cva, size)
            except MemoryFault as f:
                raise X.mmu_fault(f, "GPCCLIENT_GCC", ch.engine_type,
                                  f"fetching constant buffer {i} ({size} bytes) of QMD {q.va:#x}") from None
        cb0 = banks[0]
        if len(cb0) < PARAM_OFFSET:
            raise self._launch_error(where, q.va, f"constant buffer 0 is {len(cb0)} bytes; sm_90 kernels read "
                                                  f"driver words below {PARAM_OFFSET:#x} and parameters from it")
        dims = struct.unpack_from("<6I", cb0, 0)
        if dims[:3] != q.block or dims[3:] != grid:
            raise self._launch_error(where, q.va, f"constant bank 0 says blockDim {dims[:3]} gridDim {dims[3:]} "
                                                  f"(words 0x0..0x14), the QMD says block {q.block} grid {grid}: "
                                                  f"the kernel would see the wrong %ntid/%nctaid (mock-detected)")
        try:
            kernel = ch.gpu.images.kernel_at(ch.pt, q.program_va)
        except MemoryFault as f:
            raise X.mmu_fault(f, "GPCCLIENT_T1_0", ch.engine_type,
                              f"fetching the program at {q.program_va:#x}") from None
        except (ImageError, ProgramError) as e:
            raise self._launch_error(where, q.va, str(e)) from None
        if kernel.barriers > q.barriers:
            raise self._sked_check(where, q.va, f"kernel {kernel.entry} uses {kernel.barriers} named barriers, the "
                                                f"QMD's BARRIER_COUNT is {q.barriers} (mock-detected)")
        required = kernel.module.entries[kernel.entry].cluster_dims
        if required is not None and required != cluster:
            raise self._launch_error(where, q.va, f"kernel {kernel.entry} requires clusters of {required} "
                                                  f"(.reqnctapercluster), the QMD launches "
                                                  f"{'no clusters' if cluster is None else f'clusters of {cluster}'} "
                                                  f"(mock-detected)")
        config = self._address_config(q, cb0, where)
        global_addresses = self._global_addresses(q, kernel, banks, where)
        function_addresses = self._function_addresses(q, kernel, banks, where)
        if kernel.module.const_layout and CONST_BANK not in banks:
            raise self._launch_error(where, q.va, f"kernel {kernel.entry} reads .const variables from constant "
                                                  f"bank {CONST_BANK}, which the QMD does not bind")
        shared = max(0, q.shared_size - RESERVED_SHARED)
        t0 = time.perf_counter()
        try:
            result = ptx.launch(kernel.module, kernel.entry, grid=grid, block=q.block,
                                params=cb0[PARAM_OFFSET:], memory=ch.pt, const_banks=banks,
                                global_addresses=global_addresses, address_config=config, shared_bytes=shared,
                                function_addresses=function_addresses, cluster=cluster, cluster_bank=0,
                                deadline=time.monotonic() + ch.gpu.kernel_timeout, cancel=ch.cancel)
        except MockFault as f:
            # the SM reports a PC (a GPU address): the faulting PTX line in the kernel's text
            f.pc = q.program_va + kernel.line_offset(int(getattr(f, "line", 0) or 0))
            raise X.kernel_fault(f, kernel.entry, q.program_va, ch.engine_type, grid) from None
        except ProgramError as e:
            raise self._launch_error(where, q.va, f"kernel {kernel.entry}: {e}") from None
        self.launches += 1
        self.last_launch = {"qmd": q.va, "kernel": kernel.entry, "grid": grid, "block": q.block,
                            "seconds": time.perf_counter() - t0, "result": result}
        self._releases(q)

    def _cluster(self, q: Qmd, where: str) -> tuple[int, int, int] | None:
        """The thread-block cluster shape a QMD launches (None: no clusters). What an H100 ran
        correctly (tests/hardware/cluster_probe.py, 2026-12-06; docs/clusters.md): GRID_GPC_CGA
        with GPC_CGA_* the cluster's CTAs per dimension, GPU_CGA_* zero and the grid fields
        counting clusters. Every other CGA use is refused rather than guessed (the H100 ran the
        grid-in-CTAs forms with too many CTAs and faulted on GRID_GPU_CGA and GRID_CTA with CGA)."""
        cga = q.gpc_cga + q.gpu_cga
        if q.qmd_type == HW.NVCBC0_QMDV04_00_QMD_TYPE_GRID_CTA:
            if any(cga):
                raise self._launch_error(where, q.va, f"a GRID_CTA QMD with CGA dimensions (GPC {q.gpc_cga}, GPU "
                                                      f"{q.gpu_cga}) is not modelled by the mock")
            return None
        if q.qmd_type != HW.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPC_CGA:
            raise self._launch_error(where, q.va, f"QMD type {q.qmd_type} is not modelled by the mock (it runs "
                                                  f"GRID_CTA and GRID_GPC_CGA grids; a QUEUE QMD runs nothing)")
        if any(q.gpu_cga):
            raise self._launch_error(where, q.va, f"a GRID_GPC_CGA QMD with GPU_CGA {q.gpu_cga} is not modelled by "
                                                  f"the mock (it models GPU_CGA 0, 0, 0)")
        cluster = q.gpc_cga
        size = cluster[0] * cluster[1] * cluster[2]
        if size == 0:
            raise self._sked_check(where, q.va, f"GPC_CGA {cluster} has a zero dimension (mock-detected)")
        if size > MAX_CLUSTER_SIZE:
            raise self._sked_check(where, q.va, f"a cluster of {cluster} = {size} CTAs exceeds the {MAX_CLUSTER_SIZE} "
                                                f"one GPC can co-schedule (mock-detected)")
        return cluster

    def _address(self, upper_mthd: int, upper, lower_mthd: int, lower) -> int:
        """A 64-bit value the driver sent as an upper/lower method pair (fields from clcbc0.h)."""
        return (upper.decode(self.state.get(upper_mthd, 0)) << 32) | lower.decode(self.state.get(lower_mthd, 0))

    def _address_config(self, q: Qmd, cb0: bytes, where: str) -> "ptx.AddressConfig":
        """Windows, cvta bases, stack pointer and per-thread local memory of this launch, from the
        methods, constant bank 0 and the QMD. Windows the hardware cannot use fail the launch."""
        shared_w = self._address(HW.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_A,
                                 HW.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_A_BASE_ADDRESS_UPPER,
                                 HW.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_B,
                                 HW.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_B_BASE_ADDRESS)
        local_w = self._address(HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_A,
                                HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_A_BASE_ADDRESS_UPPER,
                                HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_B,
                                HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_B_BASE_ADDRESS)
        if shared_w == 0 or shared_w % SHARED_WINDOW_ALIGN:
            raise self._sked_check(where, q.va, f"shared memory window {shared_w:#x} (SET_SHADER_SHARED_MEMORY_WINDOW) "
                                                f"is not a nonzero multiple of 4 GiB")
        if local_w == 0 or local_w % LOCAL_WINDOW_ALIGN:
            raise self._sked_check(where, q.va, f"local memory window {local_w:#x} (SET_SHADER_LOCAL_MEMORY_WINDOW) "
                                                f"is not a nonzero multiple of 16 MiB")
        if shared_w <= local_w < shared_w + ptx.WINDOW_SIZE or local_w <= shared_w < local_w + ptx.LOCAL_WINDOW_BYTES:
            raise self._sked_check(where, q.va, f"the shared window {shared_w:#x} and the local window {local_w:#x} "
                                                f"overlap")
        shared_cvta, local_cvta, sp = struct.unpack_from("<QQI", cb0, CB0_SHARED_WINDOW)
        return ptx.AddressConfig(shared_window=shared_w, local_window=local_w,
                                 local_window_size=ptx.LOCAL_WINDOW_BYTES, shared_cvta=shared_cvta,
                                 local_cvta=local_cvta, stack_pointer=sp,
                                 local_high=min(q.local_high, self._slm_per_thread(q, where)))

    def _slm_per_thread(self, q: Qmd, where: str) -> int:
        """Local memory per thread the SLM backing holds: NON_THROTTLED bytes per TPC shared by its
        SMs' warps, in 512-byte per-warp steps. The backing must be mapped when a kernel needs any."""
        if not q.local_high:
            return 0
        per_tpc = self._address(HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_A,
                                HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_A_SIZE_UPPER,
                                HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_B,
                                HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_B_SIZE_LOWER)
        va = self._address(HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_A, HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_A_ADDRESS_UPPER,
                           HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_B, HW.NVCBC0_SET_SHADER_LOCAL_MEMORY_B_ADDRESS_LOWER)
        warps = F.GR_INFO[F.nv.NV2080_CTRL_GR_INFO_INDEX_MAX_WARPS_PER_SM] \
            * F.GR_INFO[F.nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_SM_PER_TPC]
        per_warp = per_tpc // warps // SLM_WARP_GRANULE * SLM_WARP_GRANULE
        tpcs = F.GR_INFO[F.nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_TPC_PER_GPC] \
            * F.GR_INFO[F.nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_GPCS]
        if per_tpc:
            try:
                self.ch.pt.translate(va, per_tpc * tpcs, "write")
            except MemoryFault as f:
                raise X.mmu_fault(f, "GPCCLIENT_T1_0", self.ch.engine_type,
                                  f"QMD {q.va:#x} needs {q.local_high} bytes of local memory per thread; the SLM "
                                  f"backing ({per_tpc:#x} bytes per TPC at {va:#x}) is not all mapped") from None
        return per_warp // 32

    def _global_addresses(self, q: Qmd, kernel, banks: dict[int, bytes], where: str) -> dict[str, int]:
        """Addresses of the module's .global variables: slot i of constant bank 4 for the i-th one
        (the slots the loader's relocations filled)."""
        names = [n for n, v in kernel.module.variables.items() if v.space == "global" and not v.extern]
        if not names:
            return {}
        bank = banks.get(GLOBAL_ADDRESS_BANK)
        if bank is None or len(bank) < ADDRESS_SLOT * len(names):
            raise self._launch_error(where, q.va, f"kernel {kernel.entry} reads the addresses of {len(names)} .global "
                                                  f"variables from constant bank {GLOBAL_ADDRESS_BANK}, which the QMD "
                                                  f"does not bind with {ADDRESS_SLOT * len(names)} bytes")
        return {n: struct.unpack_from("<Q", bank, ADDRESS_SLOT * i)[0] for i, n in enumerate(names)}

    def _function_addresses(self, q: Qmd, kernel, banks: dict[int, bytes], where: str) -> dict[str, int]:
        """Function pointers of this launch: descriptor ``8 * k`` names the function whose code
        starts at the offset in slot k of constant bank 2 (the code there is its ``.func``)."""
        bank = banks.get(FUNCTION_DESCRIPTOR_BANK)
        if bank is None:
            return {}
        out = {}
        for k in range(1, len(bank) // ADDRESS_SLOT):
            off = struct.unpack_from("<Q", bank, ADDRESS_SLOT * k)[0]
            if off == 0:          # past the table: the bank is bound in 16-byte units (offset 0 is no .func)
                continue
            m = _FUNC_HEAD_RE.match(kernel.text, off) if off < len(kernel.text) else None
            fn = kernel.module.parsed.functions.get(m.group(1).decode()) if m else None
            if fn is None or not fn.has_body or fn.is_entry:
                raise self._launch_error(
                    where, q.va, f"kernel {kernel.entry}: function descriptor {ADDRESS_SLOT * k:#x} (constant bank "
                                 f"{FUNCTION_DESCRIPTOR_BANK}) points at code offset {off:#x}, which does not start a "
                                 f".func of the kernel")
            out[fn.name] = ADDRESS_SLOT * k
        return out

    def _releases(self, q: Qmd) -> None:
        for r in q.releases:
            size = 8 if r.payload64 else 4
            try:
                if r.reduction is not None:
                    op = S.QMD_REDUCTIONS.get(r.reduction)
                    if op is None:
                        raise X.ChannelError(X.XID_GR_CLASS, f"QMD {q.va:#x} release {r.index}: unknown reduction "
                                                             f"{r.reduction}", self.ch.engine_type)
                    S.reduce(self.ch.pt, r.va, op, r.payload, size, r.signed)
                else:
                    S.write(self.ch.pt, r.va, r.payload, size)
                if r.structure_size == HW.NVCBC0_QMDV04_00_RELEASE_STRUCTURE_SIZE_SEMAPHORE_FOUR_WORDS:
                    if size == 4:
                        S.write(self.ch.pt, r.va + 4, 0, 4)
                    S.write_timestamp(self.ch.pt, r.va)
            except MemoryFault as f:
                raise X.mmu_fault(f, "HUBCLIENT_FE", self.ch.engine_type,
                                  f"writing release semaphore {r.index} of QMD {q.va:#x}") from None
