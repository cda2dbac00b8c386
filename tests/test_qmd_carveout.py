"""QMD template settings measured on an H100: the shared-memory carveout a QMD asks for (enough
for as many blocks as the registers and threads let one SM run, CUDA's default, not just one
block's worth) and the data-cache invalidation every launch needs."""
from __future__ import annotations

import pytest

from hwdrv.nvidia import qmd
from hwdrv.nvidia.gen import hopper as hw


def _config(q, name: str, *index: int) -> int:
    field = getattr(hw, "NVCBC0_QMDV04_00_" + name)
    return (field(*index) if index else field).get(q)


@pytest.mark.parametrize("threads, regs, blocks", [
    (256, 128, 2),      # 128 registers x 256 threads = half the register file
    (256, 117, 2),      # 117 rounds up to 120 per thread (256 per warp): still 2
    (256, 64, 4),
    (128, 255, 2),      # 255 -> 256 per thread: 32768 per block
    (32, 8, 32),        # the block limit
    (1024, 32, 2),      # the thread limit
])
def test_resident_blocks(threads, regs, blocks):
    assert qmd.resident_blocks(threads, regs) == blocks


def test_carveout_holds_every_resident_block():
    # the SIMT matmul's default: 3 stages of 8320 bytes + 1 KiB reserved, 2 blocks per SM
    block = 3 * 8320 + qmd.RESERVED_SHARED
    q = qmd.build_template(block=(256, 1, 1), regs=117, shared_bytes=block, local_bytes=0,
                           program_va=0x20_0000_0000, program_size=1024)
    want = qmd.sm_config(2 * block)                 # 64 KiB, not the 32 KiB one block needs
    assert want == qmd.sm_config(64 << 10) != qmd.sm_config(block)
    assert _config(q, "MIN_SM_CONFIG_SHARED_MEM_SIZE") == want
    assert _config(q, "TARGET_SM_CONFIG_SHARED_MEM_SIZE") == want


def test_carveout_is_capped_at_the_largest():
    # 4 resident blocks of 100 KiB cannot share 228 KiB: two do
    assert qmd.occupancy_carveout(100 << 10, 4) == 200 << 10
    assert qmd.occupancy_carveout(200 << 10, 2) == 200 << 10
    with pytest.raises(ValueError):
        qmd.sm_config(qmd.occupancy_carveout(230 << 10, 1))


def test_every_launch_invalidates_the_sm_data_caches():
    """A chained QMD starts with no invalidation method before it; without these bits an H100
    read stale L1 lines in a chain of wide kernels (tests/hardware/pdl_probe.py, 2026-12-06)."""
    q = qmd.build_template(block=(256, 1, 1), regs=32, shared_bytes=1024, local_bytes=0,
                           program_va=0x1000_0000, program_size=4096)
    assert _config(q, "INVALIDATE_SHADER_DATA_CACHE") == hw.NVCBC0_QMDV04_00_INVALIDATE_SHADER_DATA_CACHE_TRUE
    assert _config(q, "INVALIDATE_TEXTURE_DATA_CACHE") == hw.NVCBC0_QMDV04_00_INVALIDATE_TEXTURE_DATA_CACHE_TRUE


def test_chained_qmds_membar_as_cuda_graphs_do():
    """A queue's back-to-back launches: every QMD but the last schedules the next one and ends
    with a GPU-scope membar with task chasing (libcuda's CUDA-graph QMDs, read back on an H100 by
    tests/hardware/cuda_qmd_probe.py); the last keeps the system-scope membar, no chasing."""
    import numpy as np
    import hwdrv
    from hwdrv.ioctl import hostmem
    from hwdrv.nvidia.qmd import QMD_WORDS
    ptx = (".version 8.0\n.target sm_90\n.address_size 64\n"
           ".visible .entry chained_empty()\n{\n    ret;\n}\n")
    dev = hwdrv.open_device("mock:nvidia")
    try:
        prog = dev.program(dev.compiler.compile(ptx), "chained_empty")
        q = dev.compute_queue()
        for _ in range(3):
            q.exec(prog, grid=(2,), block=(32,))
        qmds = [hostmem.view(va, QMD_WORDS * 4).view(np.uint32) for *_, va in q.launches]
        for i, w in enumerate(qmds):
            last = i == len(qmds) - 1
            assert _config(w, "DEPENDENT_QMD0_POINTER") == (0 if last else q.launches[i + 1][3] >> 8)
            assert _config(w, "CWD_MEMBAR_TYPE") == (hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TYPE_L1_SYSMEMBAR if last
                                                     else hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TYPE_L1_MEMBAR)
            assert _config(w, "CWD_MEMBAR_TASK_CHASING_ENABLE") == (
                hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TASK_CHASING_ENABLE_FALSE if last
                else hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TASK_CHASING_ENABLE_TRUE)
        sig = dev.signal(0)
        q.signal(sig, 1).submit()
        sig.wait(1, timeout=30)
    finally:
        dev.close()


def test_chained_launches_prefetch_the_next_constant_bank():
    """Each chained QMD binds the next launch's constant bank 0 as its bank 5 with PREFETCH_POST
    and the next launch keeps its bank 0 (no invalidate), as libcuda's CUDA-graph QMDs do; the
    queue's first launch (started by a method after the cache invalidation) still invalidates.
    A program that binds bank 5 itself keeps the plain chain. Results stay right."""
    import numpy as np
    import hwdrv
    from hwdrv.ioctl import hostmem
    from hwdrv.nvidia.qmd import QMD_SIZE, QMD_WORDS
    ptx = (".version 8.0\n.target sm_90\n.address_size 64\n"
           ".visible .entry add_one(.param .u64 p)\n{\n    .reg .b32 %r<3>;\n    .reg .b64 %rd<2>;\n"
           "    ld.param.u64 %rd1, [p];\n    cvta.to.global.u64 %rd1, %rd1;\n    ld.global.u32 %r1, [%rd1];\n"
           "    add.u32 %r2, %r1, 1;\n    st.global.u32 [%rd1], %r2;\n    ret;\n}\n")
    dev = hwdrv.open_device("mock:nvidia")
    try:
        prog = dev.program(dev.compiler.compile(ptx), "add_one")
        x = dev.alloc(64)
        dev.upload(x, np.zeros(16, np.uint32))
        q = dev.compute_queue()
        for _ in range(4):
            q.exec(prog, grid=(1,), block=(1,), args=[x])
        qmds = [hostmem.view(va, QMD_WORDS * 4).view(np.uint32) for *_, va in q.launches]
        for i, w in enumerate(qmds):
            assert _config(w, "CONSTANT_BUFFER_INVALIDATE", 0) == (1 if i == 0 else 0)
            if i == len(qmds) - 1:
                assert _config(w, "CONSTANT_BUFFER_VALID", 5) == 0
                continue
            nxt = qmds[i + 1]
            assert _config(w, "CONSTANT_BUFFER_VALID", 5) == 1
            assert _config(w, "CONSTANT_BUFFER_PREFETCH", 5) == \
                hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_PREFETCH_PREFETCH_POST
            for f in ("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6", "CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6",
                      "CONSTANT_BUFFER_SIZE_SHIFTED4"):
                assert _config(w, f, 5) == _config(nxt, f, 0)
            cb0 = (_config(nxt, "CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6", 0)
                   | _config(nxt, "CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6", 0) << 32) << 6
            assert cb0 == q.launches[i + 1][3] + QMD_SIZE
        sig = dev.signal(0)
        q.signal(sig, 1).submit()
        sig.wait(1, timeout=30)
        assert int(dev.download(x, size=4, dtype=np.uint32)[0]) == 4
        # a program binding bank 5 itself: the plain chain (its bank 5 stays its own)
        prog.const_banks = {**prog.const_banks, 5: (x.va, 64)}
        q2 = dev.compute_queue()
        for _ in range(2):
            q2.exec(prog, grid=(1,), block=(1,), args=[x])
        w0, w1 = (hostmem.view(va, QMD_WORDS * 4).view(np.uint32) for *_, va in q2.launches)
        assert _config(w0, "CONSTANT_BUFFER_PREFETCH", 5) == 0 and _config(w1, "CONSTANT_BUFFER_INVALIDATE", 0) == 1
    finally:
        dev.close()


def test_launch_patches_leave_the_words_each_launch_writes():
    """Chaining and early start patch a launch's QMD from a host copy of the program's launch
    image (command memory is never read back): the words they touch must not be ones a launch
    writes itself, the constant bank's address and anything in constant bank 0."""
    from hwdrv.nvidia import queue as nq
    from hwdrv.nvidia.qmd import CB0_ADDR_HI, CB0_ADDR_LO, QMD_WORDS
    patched = ({w for w, _, _ in nq._CHAIN + nq._PRE_EXIT + nq._NEXT_CB_ON + nq._KEEP_CB0}
               | {nq._DEP_POINTER[0], nq._NEXT_CB_LO, nq._NEXT_CB_HI})
    assert patched and all(w < QMD_WORDS for w in patched)
    assert not patched & {CB0_ADDR_LO[0], CB0_ADDR_HI[0]}
