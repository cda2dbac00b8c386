"""Launch: run a kernel over a grid, vectorised with numpy across whole CTAs at once.

Scheduling: lanes of a chunk of CTAs share one PC while converged. A divergent branch gives
each lane its own PC; each step then runs the instruction at the lowest PC for the lanes at
that PC, which reconverges structured control flow at its join point and runs loops to their
end. A CTA's lanes therefore reach a barrier together, and warp-wide instructions see their
whole warp."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from hwdrv.errors import HwdrvError, MockFault, ProgramError

from .builtins import DeviceHeap
from .calls import DEFAULT_STACK_SIZE
from .errors import IllegalInstruction, InterpreterDefect, LaunchTimeout, annotate
from .memory import DEFAULT_CONFIG, LOCAL_WINDOW_BYTES, AddressConfig, GlobalMemory, GlobalSpace
from .module import USER_CONST_BANK, Module
from .state import State

DEFAULT_MAX_STEPS = 50_000_000
DEFAULT_CHUNK_THREADS = 1 << 16
_EXITED = np.iinfo(np.int32).max
_EMPTY = np.zeros(0, np.int64)
_STACK_CHUNK_BYTES = 256 << 20     # bound on the stacks of one chunk of a kernel that calls functions


@dataclass
class LaunchResult:
    """What a launch did: thread-instructions (instructions x lanes that issued them), issue
    steps of the vector scheduler, CTAs and threads run, wall time, and the lines the kernel
    printed (device printf), in CTA and lane order."""
    thread_instructions: int
    steps: int
    ctas: int
    threads: int
    seconds: float
    output: list[str] = field(default_factory=list)


def _dims(v, what: str) -> tuple[int, int, int]:
    t = tuple(int(x) for x in (v if isinstance(v, (tuple, list)) else (v,)))
    if not 1 <= len(t) <= 3:
        raise ProgramError(f"{what} must have 1 to 3 dimensions, got {v!r}")
    t = t + (1,) * (3 - len(t))
    if any(x < 1 for x in t):
        raise ProgramError(f"{what} dimensions must be >= 1, got {v!r}")
    return t


def launch(module: Module, name: str, grid, block, params: bytes, memory: GlobalMemory, dynamic_shared: int = 0,
           const_banks: dict[int, bytes] | None = None, *, global_addresses: dict[str, int] | None = None,
           max_steps: int | None = None, deadline: float | None = None, cancel: threading.Event | None = None,
           chunk_threads: int = DEFAULT_CHUNK_THREADS, address_config: AddressConfig = DEFAULT_CONFIG,
           shared_bytes: int | None = None, stack_size: int | None = None,
           heap: "DeviceHeap | None" = None, function_addresses: dict[str, int] | None = None,
           cluster=None, cluster_bank: int | None = None) -> LaunchResult:
    """Run kernel ``name`` of ``module`` over ``grid`` x ``block``.

    ``params``: the kernel parameter bytes (constant bank 0 from offset 0x210). ``memory``: the
    GPU page table. ``const_banks``: bytes of constant banks by number (bank 3 defaults to the
    module's .const image). ``global_addresses``: device addresses of module .global variables.
    ``max_steps`` (scheduler issue steps), ``deadline`` (a time.monotonic() value) and
    ``cancel`` stop a runaway kernel with LaunchTimeout. ``address_config`` places the generic
    windows, the ``.local`` frame and the per-thread local memory (what the driver programmed;
    default: the interpreter's own layout). ``shared_bytes``: the shared memory each CTA has (what
    the QMD gave it); accesses past it fault. Default: what the kernel declares plus
    ``dynamic_shared``. A kernel that calls functions or allocas grows its stack down from its
    frame, as the GPU does, inside the per-thread local memory ``address_config`` gives; without
    one (``local_high`` None) each thread gets ``stack_size`` bytes (default DEFAULT_STACK_SIZE)
    including its frame. ``heap``: the device heap malloc/free use (a DeviceHeap the caller keeps
    across launches; without one, malloc returns NULL). ``function_addresses``: the address the
    loader gave each function (what ``mov r, f`` yields and indirect calls accept; default: the
    interpreter's own, ``calls.function_address``). ``cluster``: thread-block-cluster dimensions
    of a cluster launch (default: the kernel's own ``.reqnctapercluster``, else no clusters).
    ``cluster_bank``: the constant bank whose driver words %cluster_nctarank, %cluster_nctaid,
    %clusterid, %cluster_ctaid and %nclusterid are computed from, as compiled sm_90 code does
    (clusterregs.py; the mock GPU passes 0); default None: from ``cluster``.
    Faults propagate as MockFault subclasses annotated with CTA, thread, warp, lane, PC, PTX line
    and instruction; a kernel holding an instruction the interpreter cannot run faults with
    IllegalInstruction before any thread runs."""
    try:
        entry = module.entries[name]
    except KeyError:
        raise ProgramError(f"kernel {name!r} not in module (entries: {sorted(module.entries)})") from None
    if entry.unsupported:
        raise _unsupported(entry)
    grid, block = _dims(grid, "grid"), _dims(block, "block")
    nthreads = block[0] * block[1] * block[2]
    if nthreads > 1024 or block[2] > 64:
        raise ProgramError(f"block {block} exceeds 1024 threads (or z > 64)")
    if grid[0] >= 2**31 or grid[1] >= 65536 or grid[2] >= 65536:
        raise ProgramError(f"grid {grid} exceeds the sm_90 limits")
    if entry.reqntid and tuple(entry.reqntid) + (1,) * (3 - len(entry.reqntid)) != block:
        raise ProgramError(f"kernel {name} requires block {entry.reqntid} (.reqntid), launched with {block}")
    params = bytes(params)
    if len(params) < entry.param_size:
        raise ProgramError(f"kernel {name} takes {entry.param_size} bytes of parameters, got {len(params)}")
    if dynamic_shared < 0:
        raise ProgramError("dynamic_shared must be >= 0")
    shared = entry.shared_bytes(dynamic_shared) if shared_bytes is None else int(shared_bytes)
    if shared > 228 * 1024:
        raise ProgramError(f"kernel {name} needs {shared} bytes of shared memory per CTA (sm_90 max 228 KiB)")
    banks = {k: bytes(v) for k, v in (const_banks or {}).items()}
    banks.setdefault(USER_CONST_BANK, module.const_image)
    banks_np = {k: v for k, v in banks.items()}
    n_ctas = grid[0] * grid[1] * grid[2]
    cta_lanes = (nthreads + 31) // 32 * 32
    per_chunk = max(1, chunk_threads // cta_lanes)
    cluster = _dims(cluster, "cluster") if cluster is not None else entry.cluster_dims
    if cluster is not None:
        if any(g % c for g, c in zip(grid, cluster)):
            raise ProgramError(f"grid {grid} is not a whole number of clusters {cluster}")
        size = cluster[0] * cluster[1] * cluster[2]
        if size > 16:
            raise ProgramError(f"cluster {cluster} has {size} CTAs; sm_90 allows at most 16")
        per_chunk = max(size, per_chunk // size * size)      # whole clusters run in lock step
    local_size = entry.local_size
    if entry.has_calls:
        # the kernel's own frame (locals and call slots); callees' frames go below it
        local_size = entry.frame_size
        if address_config.local_high is None:
            stack = DEFAULT_STACK_SIZE if stack_size is None else int(stack_size)
            if stack < entry.frame_size:
                raise ProgramError(f"kernel {name} needs {entry.frame_size} bytes of stack for its own frame; "
                                   f"the launch gives {stack}")
            address_config = replace(address_config, stack_pointer=LOCAL_WINDOW_BYTES, local_high=stack)
        per_thread = address_config.local_high
        per_chunk = max(1, min(per_chunk, _STACK_CHUNK_BYTES // (max(per_thread, 16) * cta_lanes)))
    gspace = GlobalSpace(memory)
    budget = [DEFAULT_MAX_STEPS if max_steps is None else int(max_steps)]
    t0 = time.perf_counter()
    total_ti = total_steps = 0
    output: list[str] = []
    with np.errstate(all="ignore"):
        for cta0 in range(0, n_ctas, per_chunk):
            st = State(regs_dtypes=entry.reg_dtypes, grid=grid, block=block, cta0=cta0,
                       n_ctas=min(per_chunk, n_ctas - cta0), global_space=gspace, shared_size=shared,
                       dynamic_shared=dynamic_shared, local_size=local_size, params=params,
                       const_banks=banks_np, global_addresses=dict(global_addresses or {}),
                       config=address_config, calls=entry.has_calls, heap=heap,
                       function_addresses=function_addresses, cluster=cluster, cluster_bank=cluster_bank)
            try:
                ti, steps = _run_chunk(entry, st, budget, deadline, cancel, total_steps)
            except MockFault as exc:
                exc.output = output + st.output       # what the kernel printed before it faulted
                raise
            output += st.output
            total_ti += ti
            total_steps += steps
    return LaunchResult(total_ti, total_steps, n_ctas, n_ctas * nthreads, time.perf_counter() - t0, output)


def _run_chunk(entry, st: State, budget: list, deadline, cancel, steps_before: int) -> tuple[int, int]:
    ops = entry.ops
    L = st.L
    regs = st.regs
    if st.valid.all():
        active, n_live = None, L
    else:
        active = np.flatnonzero(st.valid)
        n_live = len(active)
    pc = 0
    pcs = None                    # per-lane PCs while divergent
    ti = steps = 0
    limit = budget[0] - steps_before
    calls = entry.has_calls
    while n_live:
        if pcs is not None:
            if calls:
                m, cur = _next_in_call_order(st, pcs)
            else:
                sel = pcs
                waiting = st.mbarrier_waiting
                if waiting is not None and waiting.any():
                    # lanes whose mbarrier wait failed yield to every other live lane until an
                    # mbarrier changes (ops_mbarrier.py), so producer and consumer roles interleave
                    alt = np.where(waiting, _EXITED, pcs)
                    if (alt != _EXITED).any():
                        sel = alt
                m = int(sel.min())
                cur = np.flatnonzero(sel == m)
            pc = m
            if len(cur) == n_live:                    # everyone is here: converged again
                pcs = None
                active = None if n_live == L else cur
                cur = active
        else:
            cur = active
        op = ops[pc]
        steps += 1
        ncur = L if cur is None else len(cur)
        ti += ncur
        st.steps = steps
        if steps > limit:
            raise _timeout(entry, st, op, pc, cur, steps_before + steps, "max_steps",
                           f"kernel {entry.name} exceeded {budget[0]} scheduler steps (endless loop?)")
        if not steps & 63:
            if cancel is not None and cancel.is_set():
                raise _timeout(entry, st, op, pc, cur, steps_before + steps, "cancelled",
                               f"kernel {entry.name} was cancelled")
            if deadline is not None and time.monotonic() > deadline:
                raise _timeout(entry, st, op, pc, cur, steps_before + steps, "deadline",
                               f"kernel {entry.name} ran past its deadline")
        exe = cur
        gmask = None
        if op.guard is not None:
            slot, neg = op.guard
            g = regs[slot] if cur is None else regs[slot][cur]
            gmask = ~g if neg else g
            if gmask.all():
                gmask = None
            elif not gmask.any():
                exe = _EMPTY
            else:
                exe = np.flatnonzero(gmask) if cur is None else cur[gmask]
        kind = op.kind
        if kind == "op" or kind == "bar":
            if exe is None or len(exe):
                try:                                  # (inline: the hot path; see _execute)
                    op.run(st, exe)
                except MockFault as exc:
                    raise _annotated(exc, entry, st, op, pc, exe) from None
                except HwdrvError:
                    raise
                except Exception as exc:           # a bug in the interpreter, not in the kernel
                    err = InterpreterDefect(f"interpreter defect executing `{op.text}`: {exc!r}", op.text, op.line)
                    raise _annotated(err, entry, st, op, pc, exe) from exc
            if pcs is None:
                pc += 1
            else:
                pcs[cur] = pc + 1
        elif kind == "fret" or kind == "icall":
            # a return, or a call through a register: each lane may go somewhere else
            if exe is not None and len(exe) == 0:
                if pcs is None:
                    pc += 1
                else:
                    pcs[cur] = pc + 1
                continue
            lanes = np.arange(L) if exe is None else exe
            go = _execute(op, st, lanes, entry, pc)
            if kind == "icall":
                st.push_call(lanes, pc)
            whole = exe is cur or (cur is not None and len(exe) == len(cur))
            if pcs is None and whole and (go == go[0]).all():
                pc = int(go[0])
            else:
                if pcs is None:
                    pcs = np.full(L, _EXITED, np.int32)
                    pcs[np.arange(L) if cur is None else cur] = pc + 1
                else:
                    pcs[cur] = pc + 1
                pcs[lanes] = go
        elif kind == "bra" or kind == "call":
            if kind == "call" and (exe is None or len(exe)):
                lanes = np.arange(L) if exe is None else exe
                _execute(op, st, lanes, entry, pc)
                st.push_call(lanes, pc)
            taken_all = exe is cur or (exe is not None and cur is not None and len(exe) == len(cur))
            if pcs is None:
                if taken_all:
                    pc = op.target
                elif len(exe) == 0:
                    pc += 1
                else:
                    pcs = np.full(L, _EXITED, np.int32)
                    pcs[np.arange(L) if cur is None else cur] = pc + 1
                    pcs[exe] = op.target
            else:
                pcs[cur] = pc + 1
                if len(exe):
                    pcs[exe] = op.target
        else:                                          # exit / ret
            n_exit = L if exe is None else len(exe)
            if pcs is None:
                if n_exit == ncur:
                    break
                if n_exit:
                    stay = ~gmask
                    active = np.flatnonzero(stay) if cur is None else cur[stay]
                    n_live -= n_exit
                pc += 1
            else:
                pcs[cur] = pc + 1
                if n_exit:
                    pcs[exe] = _EXITED
                    n_live -= n_exit
    return ti, steps


def _execute(op, st: State, lanes, entry, pc: int):
    """``op.run(st, lanes)``, its faults annotated with where they happened; a Python exception
    inside it is an InterpreterDefect (a bug of the mock), never a fault of the kernel."""
    try:
        return op.run(st, lanes)
    except MockFault as exc:
        raise _annotated(exc, entry, st, op, pc, lanes) from None
    except HwdrvError:
        raise
    except Exception as exc:
        err = InterpreterDefect(f"interpreter defect executing `{op.text}`: {exc!r}", op.text, op.line)
        raise _annotated(err, entry, st, op, pc, lanes) from exc


def _next_in_call_order(st: State, pcs: np.ndarray) -> tuple[int, np.ndarray]:
    """The PC to run next and its lanes, when lanes may be inside calls: compare lanes by their
    path of call sites, then PC. A lane still at (or before) a call site runs before the lanes
    already inside that call, and lanes inside a call finish it before their caller moves on."""
    cand = np.flatnonzero(pcs != _EXITED)
    level = 0
    while True:
        dep = st.depth[cand]
        key = pcs[cand]
        deeper = dep > level
        if deeper.any():
            key = key.copy()
            key[deeper] = st.cstack[level, cand[deeper]]
        m = int(key.min())
        sel = cand[key == m]
        at = sel[st.depth[sel] == level]
        if len(at):
            return m, at
        cand, level = sel, level + 1


def _unsupported(entry) -> IllegalInstruction:
    """The fault of a launch of a kernel that holds instructions the interpreter cannot run."""
    first = entry.unsupported[0]
    op = next((o for o in entry.ops if o.line == first.line), entry.ops[0])
    where = "" if first.function == entry.name else f" (in function {first.function}, called by {entry.name})"
    more = f"; {len(entry.unsupported) - 1} more unsupported" if len(entry.unsupported) > 1 else ""
    exc = IllegalInstruction(f"kernel {entry.name} cannot run on the mock: PTX line {first.line}{where}: "
                             f"{first.message}{more}", op.text, first.line)
    return annotate(exc, entry=entry.name, cta=(0, 0, 0), thread=(0, 0, 0), warp=0, lane=0,
                    pc=entry.ops.index(op), line=first.line, instruction=op.text)


def _lane_context(st: State, lane: int) -> dict:
    t = int(st.lane_t[lane])
    return dict(cta=st.cta_of(lane), thread=st.thread_of(lane), warp=t // 32, lane=t % 32)


def _annotated(exc: MockFault, entry, st: State, op, pc: int, exe) -> MockFault:
    lane = getattr(exc, "chunk_lane", None)
    if lane is None:
        lane = 0 if exe is None or len(exe) == 0 else int(exe[0])
    if isinstance(exc, IllegalInstruction) and not exc.instruction:
        exc.instruction, exc.line = op.text, op.line
    return annotate(exc, entry=entry.name, pc=pc, line=op.line, instruction=op.text, **_lane_context(st, int(lane)))


def _timeout(entry, st: State, op, pc: int, cur, steps: int, reason: str, msg: str) -> LaunchTimeout:
    exc = LaunchTimeout(msg, steps, reason)
    lane = 0 if cur is None or len(cur) == 0 else int(cur[0])
    return annotate(exc, entry=entry.name, pc=pc, line=op.line, instruction=op.text, **_lane_context(st, lane))
