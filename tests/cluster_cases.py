"""Thread-block cluster launch (``exec(..., cluster=)``) cases shared by the mock test
(tests/test_cluster.py), the GPU test (tests/hardware/test_cluster_hw.py) and the QMD variant
probe (tests/hardware/cluster_probe.py).

One kernel: every CTA records its geometry registers and, in a cluster of 2 or more, the value
its partner CTA (rank ^ 1) stored in its own shared memory, read through distributed shared
memory between two cluster barriers, once with a shared::cluster address and once generic. The expected records come from
the PTX ISA's definitions (rank x-major within the cluster), never from the interpreter."""
from __future__ import annotations

import numpy as np

PTX = """
.version 8.0
.target sm_90
.address_size 64
.visible .entry cluster_probe(.param .u64 out, .param .u64 count, .param .u32 slots)
{
    .reg .b32 %r<24>;
    .reg .b64 %rd<6>;
    .reg .pred %p<3>;
    .shared .align 4 .b32 mine;
    mov.u32 %r0, %cluster_ctarank;
    mov.u32 %r1, %cluster_nctarank;
    mov.u32 %r2, %tid.x;
    setp.eq.u32 %p0, %r2, 0;
    mov.u32 %r9, 0xFFFFFFFF;
    mov.u32 %r21, 0xFFFFFFFF;
    setp.lt.u32 %p1, %r1, 2;
    @%p1 bra NOPEER;
    st.shared.u32 [mine], %r0;
    barrier.cluster.arrive;
    barrier.cluster.wait;
    xor.b32 %r3, %r0, 1;
    mov.u32 %r4, mine;
    mapa.shared::cluster.u32 %r5, %r4, %r3;
    ld.shared::cluster.u32 %r9, [%r5];
    cvta.shared.u64 %rd4, mine;
    mapa.u64 %rd5, %rd4, %r3;
    ld.u32 %r21, [%rd5];
    barrier.cluster.arrive;
    barrier.cluster.wait;
NOPEER:
    @!%p0 bra DONE;
    ld.param.u64 %rd0, [out];
    ld.param.u64 %rd1, [count];
    ld.param.u32 %r6, [slots];
    cvta.to.global.u64 %rd0, %rd0;
    cvta.to.global.u64 %rd1, %rd1;
    atom.global.add.u32 %r7, [%rd1], 1;
    mov.u32 %r10, %ctaid.x;
    mov.u32 %r11, %ctaid.y;
    mov.u32 %r12, %nctaid.x;
    mad.lo.u32 %r13, %r11, %r12, %r10;
    setp.ge.u32 %p2, %r13, %r6;
    @%p2 bra DONE;
    mul.wide.u32 %rd2, %r13, 52;
    add.u64 %rd3, %rd0, %rd2;
    mov.u32 %r14, %clusterid.x;
    mov.u32 %r15, %clusterid.y;
    mov.u32 %r16, %cluster_ctaid.x;
    mov.u32 %r17, %cluster_ctaid.y;
    mov.u32 %r18, %cluster_nctaid.x;
    mov.u32 %r19, %nclusterid.x;
    mov.u32 %r20, %nclusterid.y;
    st.global.u32 [%rd3], %r10;
    st.global.u32 [%rd3+4], %r11;
    st.global.u32 [%rd3+8], %r0;
    st.global.u32 [%rd3+12], %r14;
    st.global.u32 [%rd3+16], %r15;
    st.global.u32 [%rd3+20], %r16;
    st.global.u32 [%rd3+24], %r17;
    st.global.u32 [%rd3+28], %r18;
    st.global.u32 [%rd3+32], %r1;
    st.global.u32 [%rd3+36], %r19;
    st.global.u32 [%rd3+40], %r20;
    st.global.u32 [%rd3+44], %r9;
    st.global.u32 [%rd3+48], %r21;
DONE:
    ret;
}
"""
#: what each CTA records, in order (13 u32 words): "peer" is read with mapa.shared::cluster.u32 +
#: ld.shared::cluster, "peer_generic" with mapa.u64 on a generic address + ld (what CUDA's
#: cluster.map_shared_rank compiles to)
FIELDS = ("ctaid.x", "ctaid.y", "cluster_ctarank", "clusterid.x", "clusterid.y", "cluster_ctaid.x",
          "cluster_ctaid.y", "cluster_nctaid.x", "cluster_nctarank", "nclusterid.x", "nclusterid.y", "peer",
          "peer_generic")
NO_PEER = 0xFFFFFFFF
#: record slots allocated per expected CTA: room for a launch that runs more CTAs than asked
SLOT_SLACK = 4
BLOCK = (64, 1, 1)

#: name -> (grid, cluster); cluster None: a plain launch (an implicit 1x1x1 cluster)
CASES = {
    "no_cluster_8": ((8, 1, 1), None),
    "8_in_2": ((8, 1, 1), (2, 1, 1)),
    "8_in_4": ((8, 1, 1), (4, 1, 1)),
    "4x4_in_2x2": ((4, 4, 1), (2, 2, 1)),
    "4x2_in_2x1": ((4, 2, 1), (2, 1, 1)),
}


def expected(grid: tuple, cluster: tuple | None) -> np.ndarray:
    """The records the PTX ISA defines for a 2D ``grid`` in clusters of ``cluster``."""
    gx, gy, _ = grid
    cx, cy, _ = cluster or (1, 1, 1)
    rows = []
    for y in range(gy):
        for x in range(gx):
            rank = x % cx + cx * (y % cy)
            peer = rank ^ 1 if cx * cy >= 2 else NO_PEER
            rows.append([x, y, rank, x // cx, y // cy, x % cx, y % cy, cx, cx * cy, gx // cx, gy // cy, peer, peer])
    return np.array(rows, np.uint32)


def run_case(dev, prog, grid: tuple, cluster: tuple | None, timeout: float) -> tuple[np.ndarray, int]:
    """Launch the probe kernel; returns (records of the expected CTAs, CTAs that ran)."""
    n = grid[0] * grid[1] * grid[2]
    slots = n * SLOT_SLACK
    width = len(FIELDS)
    out, count = dev.alloc(slots * width * 4), dev.alloc(16)
    try:
        dev.upload(out, np.full(slots * width, 0xDEADBEEF, np.uint32))
        dev.upload(count, np.zeros(4, np.uint32))
        done = dev.signal(0)
        kw = {} if cluster is None else {"cluster": cluster}
        dev.compute_queue().exec(prog, grid=grid, block=BLOCK, args=[out, count, slots], **kw) \
            .signal(done, 1).submit()
        done.wait(1, timeout=timeout)
        got = dev.download(out, slots * width * 4, dtype=np.uint32).reshape(slots, width)[:n]
        return got, int(dev.download(count, 4, dtype=np.uint32)[0])
    finally:
        out.free()
        count.free()


def mismatches(got: np.ndarray, want: np.ndarray) -> list[str]:
    """Human-readable differences: 'CTA i field: got g want w' (at most a few per field)."""
    lines = []
    for j, name in enumerate(FIELDS):
        bad = np.flatnonzero(got[:, j] != want[:, j])
        if len(bad):
            lines.append(f"{name}: CTAs {bad[:4].tolist()} got {got[bad[:4], j].tolist()} "
                         f"want {want[bad[:4], j].tolist()}")
    return lines


def program(dev):
    """The probe kernel loaded on ``dev``."""
    return dev.program(dev.compiler.compile(PTX), "cluster_probe")
