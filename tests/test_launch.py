"""Device.launch on the mock NVIDIA GPU: the fast path's slot ring (reuse only after the GPU
finished a slot's launch), its records for hang reports, and a closed device."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import hwdrv
import hwdrv.device as core
from hwdrv import Var

_PTX = (pathlib.Path(__file__).parent / "data" / "conformance" / "kernels.ptx").read_text()


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def test_slots_are_reused_only_after_their_launch_finished(dev, monkeypatch):
    """Four slots and 25 dependent launches: the ring wraps six times, each reuse waiting for
    the launch that held the slot; every launch's addition lands."""
    monkeypatch.setattr(core, "LAUNCH_RING_BYTES", 4 * core.LAUNCH_SLOT_BYTES)
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    n = 256
    ones, acc = dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(ones, np.ones(n, np.float32))
    dev.upload(acc, np.zeros(n, np.float32))
    for _ in range(25):
        dev.launch(p, (1,), (256,), [ones, acc, acc, n])
    dev.synchronize(30)
    np.testing.assert_array_equal(dev.download(acc, dtype=np.float32), np.full(n, 25, np.float32))
    slots = dev._launch_slots
    assert slots is not None and len(slots.last) == 4
    # 24 launches took the fast path (the first went through a queue): slots 0..3 in turn
    assert slots.next == 24 % 4
    assert sorted(slots.last) == list(range(min(slots.last), min(slots.last) + 4))   # the last four
    # each fast launch is recorded for hang reports with its QMD's address in its slot
    recorded = [launches for _, launches in list(dev.submissions)[-24:]]
    assert all(len(ls) == 1 and ls[0][0] is p and ls[0][1] == (1, 1, 1) for ls in recorded)
    assert {ls[0][3] for ls in recorded} == {slots.va + i * slots.slot_size for i in range(4)}


def test_launch_on_a_closed_device_raises_before_its_slots_exist(dev):
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    buf = dev.alloc(256)
    dev.launch(p, (1,), (64,), [buf, buf, buf, 64])          # a queue: no slot ring yet
    q = dev.compute_queue().exec(p, (1,), (64,), [buf, buf, buf, 64])    # pending
    dev.synchronize(30)
    dev.close()
    assert dev._launch_slots is None
    with pytest.raises(hwdrv.DeviceClosed):
        dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    with pytest.raises(hwdrv.DeviceClosed):
        q.submit()


def test_launch_on_a_closed_device_raises(dev):
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    buf = dev.alloc(256)
    dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    dev.synchronize(30)
    dev.close()
    with pytest.raises(hwdrv.DeviceClosed):
        dev.launch(p, (1,), (64,), [buf, buf, buf, 64])


def test_a_fault_in_a_fast_launch_is_reported_and_recovered(dev):
    """An out-of-bounds store launched through launch()'s fast path: the report names the
    kernel, its argument and the fault address, the stalled command is the slot's launch
    method; after recovery launches run again."""
    from hwdrv import provoke as D
    prog = D.sample(dev, "oob_store")
    good = dev.alloc(4096)
    dev.launch(prog, (1,), (32,), [good, 0xDEAD])          # the shape's first launch: a queue
    dev.launch(prog, (1,), (32,), [good, 0xDEAD])          # the first fast one makes the slot ring
    dev.synchronize(30)
    gone = dev.alloc(2 << 20)
    bad = gone.va + (1 << 20)
    gone.free()                                              # the device is idle: unmapped now
    dev.launch(prog, (1,), (32,), [bad, 0xDEAD])             # the fast path
    s = dev.signal(0)
    dev.compute_queue().signal(s, 1).submit()
    with pytest.raises(hwdrv.GPUHang) as e:
        s.wait(1, timeout=5)
    rep = e.value.report
    assert rep is not None and rep.cause == "mmu_fault"
    assert [ln.kernel for ln in rep.launches] == ["oob_store"] and rep.launches[0].args[0] == hex(bad)
    assert any(f.address == bad and f.access == "write" for f in rep.faults)
    q = next(q for q in rep.queues if q.name == "compute GPFIFO")
    assert [c.text for c in q.commands if c.stalled] and "COMPUTE.SEND_PCAS_A" in \
        next(c.text for c in q.commands if c.stalled)
    assert D.vecadd_check(dev)
    dev.launch(prog, (1,), (32,), [good, 0xDEAD])
    dev.synchronize(30)
    assert int(dev.download(good, size=4, dtype=np.uint32)[0]) == 0xDEAD


def test_launches_from_several_threads_all_land(dev):
    """launch() is thread-safe: four threads launching into their own buffers (the fast path's
    slots taken under the device lock) each see every one of their additions."""
    import threading
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    n = 64
    ones = dev.alloc(n * 4)
    dev.upload(ones, np.ones(n, np.float32))
    accs = [dev.alloc(n * 4) for _ in range(4)]
    for a in accs:
        dev.upload(a, np.zeros(n, np.float32))
    errors = []

    def work(acc):
        try:
            for _ in range(30):
                dev.launch(p, (1,), (64,), [ones, acc, acc, n])
        except Exception as e:          # noqa: BLE001 -- reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(a,)) for a in accs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    dev.synchronize(60)
    assert not errors
    for a in accs:
        np.testing.assert_array_equal(dev.download(a, dtype=np.float32), np.full(n, 30, np.float32))


def test_a_program_of_another_device_is_refused(dev):
    other = hwdrv.open_device("mock:nvidia")
    try:
        p = other.program(other.compiler.compile(_PTX), "vecadd")
        theirs = other.alloc(256)
        other.launch(p, (1,), (64,), [theirs, theirs, theirs, 64])    # the shape is remembered
        other.synchronize(30)
        buf = dev.alloc(256)
        with pytest.raises(hwdrv.InvalidArgument, match="belongs to"):
            dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
        with pytest.raises(hwdrv.InvalidArgument, match="belongs to"):
            dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    finally:
        other.close()


def test_a_launch_waiting_for_a_busy_slot_times_out_with_a_report(dev, monkeypatch):
    """Two slots, both held by launches queued behind a spinning kernel: the next launch waits
    for its slot at most submit_timeout, then raises GPUHang (the device lock is held while it
    waits, as a push waiting for ring space holds it); once the kernel is let go, launches run."""
    import time
    from hwdrv import provoke as D
    monkeypatch.setattr(core, "LAUNCH_RING_BYTES", 2 * core.LAUNCH_SLOT_BYTES)
    prog = D.sample(dev, "endless_loop")
    flag = dev.alloc(4096, host_visible=True)
    flag.view(np.uint32)[:] = 0
    dev.submit_timeout = 0.5
    for _ in range(3):                      # a queue, then slots 0 and 1: all behind the spin
        dev.launch(prog, (1,), (32,), [flag])
    t = time.perf_counter()
    with pytest.raises(hwdrv.GPUHang, match="timed out"):
        dev.launch(prog, (1,), (32,), [flag])        # slot 0 again: its launch has not run
    assert time.perf_counter() - t < 5
    flag.view(np.uint32)[:] = 1                      # let the kernels end
    dev.synchronize(30)
    dev.launch(prog, (1,), (32,), [flag])
    dev.synchronize(30)


def _add_ones(dev):
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    n = 64
    ones, acc = dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(ones, np.ones(n, np.float32))
    dev.upload(acc, np.zeros(n, np.float32))
    return p, ones, acc, n


def _acc(dev, acc):
    dev.synchronize(30)
    return dev.download(acc, dtype=np.float32)


def test_a_one_exec_queue_submits_through_the_slot_ring_and_resubmits(dev):
    """A fresh queue's only exec is kept pending and submitted like dev.launch (its QMD in a
    launch slot); resubmitting the queue writes the exec into the queue's own command memory
    first, so it runs again however long after."""
    p, ones, acc, n = _add_ones(dev)
    dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]).submit()     # remembers the shape
    q = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n])
    assert q._pending is not None and not q.launches
    q.submit()
    slots = dev._launch_slots
    va = dev.submissions[-1][1][0][3]
    assert slots.va <= va < slots.va + len(slots.last) * slots.slot_size
    assert _acc(dev, acc)[0] == 2
    for _ in range(3):
        q.submit()
    assert q._pending is None and q.launches and not slots.va <= q.launches[0][3] < slots.va + (4 << 20)
    assert _acc(dev, acc)[0] == 5
    with pytest.raises(hwdrv.InvalidArgument, match="already submitted"):
        q.signal(dev.signal(0), 1)


def test_a_pending_exec_is_written_before_anything_else_uses_the_queue(dev):
    """Another verb, bind(), the words, a second exec: each writes the pending exec first, in
    order, and the queue runs as written."""
    p, ones, acc, n = _add_ones(dev)
    dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]).submit()
    sig = dev.signal(0)
    q = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]).signal(sig, 1)
    assert q._pending is None and len(q.launches) == 1
    q.submit()
    sig.wait(1, timeout=30)
    q2 = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n])
    assert len(q2.words) == 6 and q2._pending is None                 # the launch's words
    q2.submit()
    q3 = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]).bind()
    q3.submit()
    q4 = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]) \
        .exec(p, (1,), (64,), [ones, acc, acc, n])                         # chained to the first
    assert len(q4.launches) == 2
    q4.submit()
    assert _acc(dev, acc)[0] == 1 + 1 + 1 + 1 + 2


def test_a_pending_exec_checks_its_arguments_at_exec(dev):
    """Arguments are packed (and so checked) when exec is called, pending or not; a Var
    argument is written at once (its patch site needs the words)."""
    p, ones, acc, n = _add_ones(dev)
    dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]).submit()
    with pytest.raises(hwdrv.InvalidArgument, match="takes 4 arguments"):
        dev.compute_queue().exec(p, (1,), (64,), [ones, acc])
    with pytest.raises(hwdrv.InvalidArgument, match="does not fit"):
        dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, 1 << 40])
    k = Var("k")
    q = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, k])
    assert q._pending is None and q.launches
    q.submit(k=n)
    assert _acc(dev, acc)[0] == 2
    dropped = dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n])
    del dropped                                   # never submitted: nothing ran, nothing held
    assert _acc(dev, acc)[0] == 2


def test_a_pending_exec_keeps_the_arguments_it_was_given(dev):
    """The arguments are taken when exec is called: changing the caller's list afterwards
    changes nothing, whether the exec goes out pending or is written later."""
    p, ones, acc, n = _add_ones(dev)
    dev.compute_queue().exec(p, (1,), (64,), [ones, acc, acc, n]).submit()
    other = dev.alloc(n * 4)
    dev.upload(other, np.zeros(n, np.float32))
    args = [ones, acc, acc, n]
    q = dev.compute_queue().exec(p, (1,), (64,), args)
    args[2] = other
    q.submit()
    args2 = [ones, acc, acc, n]
    q2 = dev.compute_queue().exec(p, (1,), (64,), args2)
    args2[2] = other
    q2.signal(dev.signal(0), 1).submit()                  # written when the signal is added
    assert _acc(dev, acc)[0] == 3 and not _acc(dev, other).any()
