"""Programmatic dependent launch through QMD fields, without libcuda (not a pytest module).

A CUDA graph with PDL reaches ~0.50 us per empty kernel on an H100 against ~0.79 without
(reference nvidia-perf.md 5.2); hwdrv chains QMDs (DEPENDENT_QMD0 SCHEDULE). The QMD V04 fields
that plausibly carry PDL are ENABLE_PROGRAM_PRE_EXIT and PRE_EXIT_AT_LAST_CTA_LAUNCH (5.3): this
probe sets them on every QMD of a bound chain of 1000 launches, times the chain with GPU
timestamps, and checks correctness with a chain of 1000 dependent increments (each kernel waits
with griddepcontrol.wait before it reads the previous kernel's result) and with a wide chain
(200 kernels of 2048 x 256 threads, each reading what other blocks of the one before wrote,
also timed). Each variant runs in its own process with a short timeout, so a variant the GPU
rejects cannot spill into the next:

    python tests/hardware/pdl_probe.py [nvidia:0]        (PDL_PROBE_N: launches per chain, 1000;
                                                          PDL_PROBE_VARIANTS: a,b,... to run only those)
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from early_start_cases import PTX  # noqa: E402  (the same two kernels)

VARIANTS = {
    "chain": {},
    "pre_exit": {"ENABLE_PROGRAM_PRE_EXIT": 1},
    "pre_exit_last_cta": {"ENABLE_PROGRAM_PRE_EXIT": 1, "PRE_EXIT_AT_LAST_CTA_LAUNCH": 1},
    # where a plain chain's 1.04 us (a CUDA graph: 0.79) might go: the per-launch constant-bank
    # invalidation (each launch has its own bank 0 at its own address) and the end-of-kernel membar
    "no_cb0_invalidate": {"CONSTANT_BUFFER_INVALIDATE(0)": 0},
    "membar_none": {"CWD_MEMBAR_TYPE": 0},
    "no_cb0_invalidate_membar_none": {"CONSTANT_BUFFER_INVALIDATE(0)": 0, "CWD_MEMBAR_TYPE": 0},
    # what libcuda sets on a CUDA graph's chained (not last) QMDs beside hwdrv's fields
    # (tests/hardware/cuda_qmd_probe.py, 2026-12-06): the membar with task chasing, and more
    "task_chasing": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1},
    "task_chasing_pcas": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1, "REQUIRE_SCHEDULING_PCAS": 1},
    "task_chasing_no_cb0_invalidate": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1, "CONSTANT_BUFFER_INVALIDATE(0)": 0},
    "task_chasing_pre_exit": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1, "ENABLE_PROGRAM_PRE_EXIT": 1},
}
#: variants set on the chained QMDs only, as libcuda does (the last keeps hwdrv's fields)
CHAINED_ONLY = {"task_chasing", "task_chasing_pcas", "task_chasing_no_cb0_invalidate", "task_chasing_pre_exit"}
# libcuda's chained QMDs also prefetch the next kernel: its code (PROGRAM_PREFETCH_TYPE POST at the
# next program) and its constant bank 0 (bound as bank 5 with CONSTANT_BUFFER_PREFETCH POST)
NEXT_PREFETCH = {"task_chasing_next_code": ("code",), "task_chasing_next_cb0": ("cb0",),
                 "task_chasing_next_both": ("code", "cb0"), "pre_exit_next_both": ("code", "cb0")}
VARIANTS.update({"task_chasing_next_code": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1},
                 "task_chasing_next_cb0": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1},
                 "task_chasing_next_both": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1},
                 "pre_exit_next_both": {"CWD_MEMBAR_TASK_CHASING_ENABLE": 1, "ENABLE_PROGRAM_PRE_EXIT": 1}})
CHAINED_ONLY |= set(NEXT_PREFETCH)
# libcuda's other differences on every QMD (QMD group 63, samplers via the header index)
VARIANTS.update({"qmd_group_63": {"QMD_GROUP_ID": 63}, "sampler_via_header": {"SAMPLER_INDEX": 1},
                 "group_63_sampler_via_header": {"QMD_GROUP_ID": 63, "SAMPLER_INDEX": 1}})
# How a CUDA graph might hide the fetch of each chained QMD: QMDs announced to the compute front
# end with SEND_PCAS_A + SEND_SIGNALING_PCAS2_B, each QMD after the first with the action named,
# in the chain's own stream after its launch ("after") or in a queue submitted just before it
# ("before"); with REQUIRE_SCHEDULING_PCAS set on those QMDs where the variant says so
PCAS = {"pcas_prefetch_after": ("after", "PREFETCH", False),
        "pcas_prefetch_before": ("before", "PREFETCH", False),
        "pcas_force_require_before": ("before", "INVALIDATE_PREFETCH_COPY_FORCE_REQUIRE_SCHEDULING", False),
        "pcas_force_require_before_required": ("before", "INVALIDATE_PREFETCH_COPY_FORCE_REQUIRE_SCHEDULING", True),
        # what libcuda's graph launch pushes (cuda_qmd_probe's pushbuffer scan): every QMD of
        # the graph announced with INVALIDATE_PREFETCH_COPY_SCHEDULE, REQUIRE_SCHEDULING_PCAS set
        "pcas_schedule_after_required": ("after", "INVALIDATE_PREFETCH_COPY_SCHEDULE", True),
        "pcas_schedule_after_required_all": ("after", "INVALIDATE_PREFETCH_COPY_SCHEDULE", "all"),
        "pcas_schedule_after": ("after", "INVALIDATE_PREFETCH_COPY_SCHEDULE", False)}
VARIANTS.update({name: {} for name in PCAS})
# every field libcuda's chained graph QMDs differ in at once (but SELF_COPY_ON_COMPLETION, which
# faults here, and the local-memory and constant-bank bindings libcuda's own kernels need),
# to see whether the QMD fields are what a graph's 0.79 us against hwdrv's 0.83 comes from
_CUDA_LIKE = {"REGISTER_COUNT": 16, "INVALIDATE_TEXTURE_HEADER_CACHE": 1, "INVALIDATE_TEXTURE_SAMPLER_CACHE": 1,
              "QMD_GROUP_ID": 63, "SAMPLER_INDEX": 1, "CONSTANT_BUFFER_INVALIDATE(0)": 0}
VARIANTS.update({"register_count_16": {"REGISTER_COUNT": 16}, "cuda_like": _CUDA_LIKE})
CHAINED_ONLY.add("cuda_like")
NEXT_PREFETCH["cuda_like"] = ("code", "cb0")
PCAS["cuda_like"] = ("after", "INVALIDATE_PREFETCH_COPY_SCHEDULE", True)
# cuda_like with one of its parts left out: which of them the 0.79 us needs
for _part in (*_CUDA_LIKE, "code", "cb0", "pcas"):
    _name = "cuda_like_but_" + _part.lower().replace("(0)", "0")
    VARIANTS[_name] = {k: v for k, v in _CUDA_LIKE.items() if k != _part}
    CHAINED_ONLY.add(_name)
    NEXT_PREFETCH[_name] = tuple(w for w in ("code", "cb0") if w != _part)
    if _part != "pcas":
        PCAS[_name] = PCAS["cuda_like"]
VARIANTS.update({"self_copy": {"SELF_COPY_ON_COMPLETION": 1},
                 "texture_invalidates": {"INVALIDATE_TEXTURE_HEADER_CACHE": 1, "INVALIDATE_TEXTURE_SAMPLER_CACHE": 1}})
N = int(os.environ.get("PDL_PROBE_N", "1000"))
# A wide dependence: each kernel reads every element the one before wrote, written by other SMs
# (rotated by one block), so a variant whose end-of-kernel writes are not yet visible when the
# next kernel starts reads stale values somewhere.
WIDE_BLOCKS, WIDE_THREADS, WIDE_CHAIN = 2048, 256, 200
WIDE_PTX = """
.version 8.0
.target sm_90
.address_size 64
.visible .entry pdl_shift_add(.param .u64 dst, .param .u64 src)
{
    .reg .b32 %r<9>;
    .reg .b64 %rd<6>;
    ld.param.u64 %rd1, [dst];
    ld.param.u64 %rd2, [src];
    cvta.to.global.u64 %rd1, %rd1;
    cvta.to.global.u64 %rd2, %rd2;
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %nctaid.x;
    mov.u32 %r3, %tid.x;
    add.u32 %r4, %r1, 1;
    rem.u32 %r4, %r4, %r2;
    mov.u32 %r8, %ntid.x;
    mad.lo.u32 %r5, %r4, %r8, %r3;
    mad.lo.u32 %r6, %r1, %r8, %r3;
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd3, %rd2, %rd3;
    ld.global.u32 %r7, [%rd3];
    add.u32 %r7, %r7, 1;
    mul.wide.u32 %rd4, %r6, 4;
    add.s64 %rd4, %rd1, %rd4;
    st.global.u32 [%rd4], %r7;
    ret;
}
"""


def _patch(dev, q, variant: str) -> None:
    from hwdrv.ioctl import hostmem
    from hwdrv.nvidia.gen import hopper as hw
    from hwdrv.nvidia.qmd import QMD_SIZE
    fields = VARIANTS[variant]
    launches = q.launches[:-1] if variant in CHAINED_ONLY else q.launches
    for i, (_prog, _grid, _block, va) in enumerate(launches):
        words = hostmem.view(va, QMD_SIZE).view("uint32")        # command memory is CPU-mapped
        for name, value in fields.items():
            base, _, index = name.partition("(")
            field = getattr(hw, f"NVCBC0_QMDV04_00_{base}")
            (field(int(index.rstrip(")"))) if index else field).set(words, value)
        what = NEXT_PREFETCH.get(variant, ())
        nprog, *_, nva = q.launches[i + 1] if what else (None, None)
        nwords = hostmem.view(nva, QMD_SIZE).view("uint32") if what else None
        f = lambda name: getattr(hw, f"NVCBC0_QMDV04_00_{name}")  # noqa: E731
        if "code" in what:
            f("PROGRAM_PREFETCH_TYPE").set(words, hw.NVCBC0_QMDV04_00_PROGRAM_PREFETCH_TYPE_PREFTECH_POST)
            f("PROGRAM_PREFETCH_ADDR_LOWER_SHIFTED").set(words, (nprog.program_va >> 8) & 0xFFFFFFFF)
            f("PROGRAM_PREFETCH_ADDR_UPPER_SHIFTED").set(words, nprog.program_va >> 40)
            f("PROGRAM_PREFETCH_SIZE").set(words, min(511, max(1, -(-nprog.program_size // 256))))
        if "cb0" in what:
            assert 5 not in nprog.const_banks
            for name in ("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6", "CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6",
                         "CONSTANT_BUFFER_SIZE_SHIFTED4", "CONSTANT_BUFFER_VALID"):
                f(name)(5).set(words, f(name)(0).get(nwords))
            f("CONSTANT_BUFFER_PREFETCH")(5).set(words, hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_PREFETCH_PREFETCH_POST)


def _pcas_words(q, variant: str) -> list[int]:
    """The SEND_PCAS words of a PCAS variant for every launch of ``q`` after the first."""
    from hwdrv.ioctl import hostmem
    from hwdrv.nvidia import gpfifo as pb
    from hwdrv.nvidia.gen import hopper as hw
    from hwdrv.nvidia.qmd import QMD_SIZE
    _where, action, required = PCAS[variant]
    act = hw.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION.encode(
        getattr(hw, f"NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_{action}"))
    words = []
    if required == "all":
        hw.NVCBC0_QMDV04_00_REQUIRE_SCHEDULING_PCAS.set(hostmem.view(q.launches[0][3], QMD_SIZE).view("uint32"), 1)
    for *_, va in q.launches[1:]:
        if required:
            hw.NVCBC0_QMDV04_00_REQUIRE_SCHEDULING_PCAS.set(hostmem.view(va, QMD_SIZE).view("uint32"), 1)
        words += [pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SEND_PCAS_A, 1), va >> 8,
                  pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SEND_SIGNALING_PCAS2_B, 1), act]
    return words


def _chain(dev, q, variant: str, tail) -> None:
    """Finish a queue of chained launches with ``tail(q)`` and bind it, with the variant's
    patches; a "before" PCAS variant first submits its announcements in a queue of their own."""
    if PCAS.get(variant, ("",))[0] == "after":
        q._emit(*_pcas_words(q, variant))
    tail(q).bind()
    _patch(dev, q, variant)
    if PCAS.get(variant, ("",))[0] == "before":
        pre = dev.compute_queue()
        pre._emit(*_pcas_words(q, variant))
        pre.submit()


def one(name: str, variant: str) -> dict:
    import numpy as np
    import hwdrv
    dev = hwdrv.open_device(name)
    try:
        mod = dev.compiler.compile(PTX)
        empty, inc = dev.program(mod, "pdl_empty"), dev.program(mod, "pdl_inc")
        t0, t1, done = dev.signal(0), dev.signal(0), dev.signal(0)
        v = hwdrv.Var("v")
        q = dev.compute_queue().timestamp(t0)
        for _ in range(N):
            q.exec(empty, grid=(1,), block=(1,))
        tail = lambda q: q.timestamp(t1).signal(done, v)  # noqa: E731
        per = []
        for i in range(1, 8):
            if i == 1 or PCAS.get(variant, ("",))[0] == "before":
                if i > 1:
                    q = dev.compute_queue().timestamp(t0)
                    for _ in range(N):
                        q.exec(empty, grid=(1,), block=(1,))
                _chain(dev, q, variant, tail)
            q.submit(v=i)
            done.wait(i, timeout=5)
            if i > 2:
                per.append((t1.timestamp - t0.timestamp) / N / 1e3)
        x = dev.alloc(16)
        dev.upload(x, np.zeros(4, np.uint32))
        d2 = dev.signal(0)
        q2 = dev.compute_queue()
        for _ in range(N):
            q2.exec(inc, grid=(1,), block=(1,), args=[x])
        _chain(dev, q2, variant, lambda q: q.signal(d2, 1))
        q2.submit()
        d2.wait(1, timeout=5)
        got = int(dev.download(x, size=4, dtype=np.uint32)[0])
        wide = dev.program(dev.compiler.compile(WIDE_PTX), "pdl_shift_add")
        n = WIDE_BLOCKS * WIDE_THREADS
        bufs = [dev.alloc(n * 4), dev.alloc(n * 4)]
        dev.upload(bufs[0], np.zeros(n, np.uint32))
        d3, w0, w1 = dev.signal(0), dev.signal(0), dev.signal(0)
        q3 = dev.compute_queue().timestamp(w0)
        for i in range(WIDE_CHAIN):
            q3.exec(wide, grid=(WIDE_BLOCKS,), block=(WIDE_THREADS,), args=[bufs[(i + 1) % 2], bufs[i % 2]])
        _chain(dev, q3, variant, lambda q: q.timestamp(w1).signal(d3, 1))
        q3.submit()
        d3.wait(1, timeout=10)
        out = dev.download(bufs[WIDE_CHAIN % 2], size=n * 4, dtype=np.uint32)
        stale = int(np.count_nonzero(out != WIDE_CHAIN))
        return {"variant": variant, "us_per_kernel": statistics.median(per), "increments": got,
                "wide_us_per_kernel": (w1.timestamp - w0.timestamp) / WIDE_CHAIN / 1e3, "wide_stale": stale, "correct": got == N and stale == 0}
    finally:
        dev.close()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2], sys.argv[3])))
        sys.exit(0)
    name = sys.argv[1] if len(sys.argv) > 1 else "nvidia:0"
    chosen = os.environ.get("PDL_PROBE_VARIANTS")
    for variant in chosen.split(",") if chosen else VARIANTS:
        try:
            r = subprocess.run([sys.executable, __file__, "--one", name, variant], capture_output=True, text=True,
                               timeout=60)
            last = (r.stdout.strip().splitlines() or r.stderr.strip().splitlines() or ["?"])[-1]
        except subprocess.TimeoutExpired:
            last = "timed out after 60 s"
        print(f"{variant:20s} {last[:400]}", flush=True)
