"""Random cross-device wait/signal/copy graphs and their checker (tests/test_multigpu_fuzz.py on
the mock, tests/hardware/test_multigpu_hw.py on GPUs).

Each device has ``cells`` 8-byte cells in device memory, a copy stream and a compute stream
(the compute queue copies with the SMs), one signal per stream. Op i runs on one stream and
either *stamps* a cell (copies the constant i + 1 from host memory into it) or *moves* one cell
into another, logging the value it read. Cells of every device are fair game (peer memory).
Before its work an op waits, on other streams' signals (other devices' included), for every
earlier op it conflicts with (the last writer of what it reads, the last writer and the
readers since of what it writes) plus a few random earlier ops; after it, it signals its
stream. Running the graph must give exactly the sequential result: every logged read and every
final cell equal to a host replay in op order. Each mismatch is an ordering violation.
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np

CELL = 8


@dataclasses.dataclass
class Op:
    index: int
    stream: int           # index into streams: device * 2 + (0 copy, 1 compute)
    kind: str             # "stamp" | "move"
    dst: tuple[int, int]  # (device, cell)
    src: tuple[int, int] | None
    waits: dict[int, int]  # stream -> op sequence number on it to wait for
    seq: int = 0          # this op's sequence number on its stream (1-based)


def make_graph(ndev: int, nops: int, cells: int, seed: int) -> list[Op]:
    rng = random.Random(seed)
    nstreams = 2 * ndev
    seq = [0] * nstreams
    last_writer: dict[tuple[int, int], Op] = {}
    readers: dict[tuple[int, int], list[Op]] = {}
    ops: list[Op] = []
    for i in range(nops):
        s = rng.randrange(nstreams)
        dst = (rng.randrange(ndev), rng.randrange(cells))
        kind = "stamp" if rng.random() < 0.35 else "move"
        src = None
        if kind == "move":
            while True:
                src = (rng.randrange(ndev), rng.randrange(cells))
                if src != dst:
                    break
        deps: list[Op] = []
        if src is not None and src in last_writer:
            deps.append(last_writer[src])
        if dst in last_writer:
            deps.append(last_writer[dst])
        deps += readers.get(dst, [])
        if ops and rng.random() < 0.3:
            deps.append(ops[rng.randrange(len(ops))])      # an extra, harmless dependency
        waits: dict[int, int] = {}
        for d in deps:
            if d.stream != s:
                waits[d.stream] = max(waits.get(d.stream, 0), d.seq)
        seq[s] += 1
        op = Op(i, s, kind, dst, src, waits, seq[s])
        ops.append(op)
        last_writer[dst] = op
        readers[dst] = []
        if src is not None:
            readers.setdefault(src, []).append(op)
    return ops


def replay(ops: list[Op], ndev: int, cells: int, init: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sequential result: final cells (ndev x cells) and each op's logged read (0: stamp)."""
    state = init.copy()
    logs = np.zeros(len(ops), np.uint64)
    for op in ops:
        if op.kind == "stamp":
            state[op.dst] = op.index + 1
        else:
            logs[op.index] = state[op.src]
            state[op.dst] = state[op.src]
    return state, logs


def run_graph(devs: list, ops: list[Op], cells: int, seed: int, timeout: float = 120.0) -> int:
    """Run ``ops`` on ``devs`` (peers enabled already); returns the number of ordering
    violations (mismatched logged reads + mismatched final cells)."""
    ndev = len(devs)
    init = (np.arange(ndev * cells, dtype=np.uint64).reshape(ndev, cells) + 1) << np.uint64(32)
    cell_bufs = []
    for d, row in zip(devs, init):
        b = d.alloc(cells * CELL)
        d.upload(b, row)
        cell_bufs.append(b)
    for d in devs:       # ops address cells by number: every device maps every device's cells
        for b in cell_bufs:
            if b.device is not d:
                d._use_foreign(b, "fuzz cells")
    # per device: host-visible constants (op i's stamp value at slot i) and read logs
    consts = [d.alloc(len(ops) * CELL, host_visible=True) for d in devs]
    logs = [d.alloc(len(ops) * CELL, host_visible=True) for d in devs]
    for c in consts:
        c.view(np.uint64)[:] = np.arange(1, len(ops) + 1, dtype=np.uint64)
    for lg in logs:
        lg.view(np.uint64)[:] = 0
    sigs = [devs[s // 2].signal(0) for s in range(2 * ndev)]
    for op in ops:
        dev = devs[op.stream // 2]
        q = dev.copy_queue() if op.stream % 2 == 0 else dev.compute_queue()
        for s, v in sorted(op.waits.items()):
            q.wait(sigs[s], v)
        dcell = cell_bufs[op.dst[0]].va + op.dst[1] * CELL
        if op.kind == "stamp":
            q.copy(dcell, consts[op.stream // 2].va + op.index * CELL, CELL)
        else:
            scell = cell_bufs[op.src[0]].va + op.src[1] * CELL
            q.copy(logs[op.stream // 2].va + op.index * CELL, scell, CELL)
            q.copy(dcell, scell, CELL)
        q.signal(sigs[op.stream], op.seq).submit()
    final_seq = [0] * (2 * ndev)
    for op in ops:
        final_seq[op.stream] = op.seq
    for s, v in enumerate(final_seq):
        sigs[s].wait(v, timeout)
    for d in devs:
        d.synchronize(timeout)
    want_cells, want_logs = replay(ops, ndev, cells, init)
    got_cells = np.stack([d.download(b, cells * CELL).view(np.uint64) for d, b in zip(devs, cell_bufs)])
    got_logs = np.zeros(len(ops), np.uint64)
    for op in ops:
        if op.kind == "move":
            got_logs[op.index] = logs[op.stream // 2].view(np.uint64)[op.index]
    bad = int(np.count_nonzero(got_cells != want_cells) + np.count_nonzero(got_logs != want_logs))
    for b in cell_bufs + consts + logs:
        b.free()
    return bad
