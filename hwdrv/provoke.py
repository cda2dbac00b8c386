"""``python -m hwdrv diagnose`` and ``python -m hwdrv decode``: provoke each fault kind on a device
and print the hang reports; print a saved report or a raw command-stream dump decoded.

The provocations run the backend's own sample kernels (``Device.samples``), so the real GPU
and the mock run the same code: an out-of-bounds store (to an address whose buffer was freed:
no mapping behind it), an illegal instruction, an endless loop (spins on a flag nobody sets)
and a queue that waits on a signal nobody sets. After each, the device recovers and a vecadd
checks that later work runs correctly.

Sample argument conventions (every backend's ``samples`` follows them):
``vecadd(a, b, c, n)`` c[i] = a[i] + b[i] over float32; ``oob_store(addr, value)`` stores a
32-bit value at addr; ``illegal_instruction(out)`` writes 1 to out[0] then executes an illegal
instruction / trap; ``endless_loop(flag)`` spins until the 32-bit word at flag is non-zero.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import GPUHang, HwdrvError, InvalidArgument
from .hang import HangReport

#: seconds each provocation waits before it counts as hung
WAIT_S = 3.0


@dataclass
class Outcome:
    """One provoked fault: its report (None if nothing failed) and whether later work ran."""
    kind: str
    report: HangReport | None
    message: str
    after_ok: bool


def sample(dev, name: str):
    """The device's sample kernel ``name`` compiled and loaded."""
    if name not in dev.samples:
        raise InvalidArgument(f"{dev.name} has no sample kernel {name!r}; it has {sorted(dev.samples)}")
    source, kernel = dev.samples[name]
    return dev.program(dev.compiler.compile(source), kernel)


def vecadd_check(dev, n: int = 4096) -> bool:
    """Run a vecadd and compare with numpy (the "later work runs correctly" check)."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    ba, bb, bc = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
    try:
        dev.upload(ba, a)
        dev.upload(bb, b)
        prog = sample(dev, "vecadd")
        s = dev.signal(0)
        dev.compute_queue().exec(prog, grid=((n + 255) // 256,), block=(256,),
                                 args=[ba, bb, bc, n]).signal(s, 1).submit()
        s.wait(1, timeout=30)
        return bool(np.array_equal(dev.download(bc, dtype=np.float32), a + b))
    finally:
        for x in (ba, bb, bc):
            x.free()


def _expect_hang(fn: Callable[[], None]) -> tuple[HangReport | None, str]:
    try:
        fn()
    except GPUHang as e:
        return e.report, str(e).splitlines()[0]
    return None, "no error was reported"


def provoke_oob_store(dev) -> tuple[HangReport | None, str, dict]:
    """A store to an address with nothing mapped behind it (a freed buffer's range)."""
    from .var import Var
    prog = sample(dev, "oob_store")
    s = dev.signal(0)
    # build (and allocate for) the queue first, so that nothing allocated between freeing the
    # buffer and the launch can land on its address range
    q = dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[Var("bad"), 0xDEAD]).signal(s, 1)
    gone = dev.alloc(2 << 20)
    bad = gone.va + (1 << 20)
    # free() releases the memory once all earlier work has finished: with the device idle that
    # is at once, so nothing is mapped at ``bad`` when the kernel runs
    dev.synchronize()
    gone.free()
    q.submit(bad=bad)
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    return rep, msg, {"address": bad, "kernel": "oob_store"}


def provoke_illegal_instruction(dev) -> tuple[HangReport | None, str, dict]:
    """A trap / illegal instruction (NVIDIA: PTX ``trap;``, SASS BPT.TRAP on the GPU)."""
    prog = sample(dev, "illegal_instruction")
    out = dev.alloc(4096, host_visible=True)
    s = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[out]).signal(s, 1).submit()
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    return rep, msg, {"kernel": dev.samples["illegal_instruction"][1]}


def provoke_endless_loop(dev) -> tuple[HangReport | None, str, dict]:
    """A kernel that spins on a flag nobody sets: the wait times out with the kernel running;
    then the device abandons it (recover)."""
    prog = sample(dev, "endless_loop")
    flag = dev.alloc(4096, host_visible=True)
    flag.view(np.uint32)[:] = 0
    s = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[flag]).signal(s, 1).submit()
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    dev.recover()
    return rep, msg, {"kernel": dev.samples["endless_loop"][1]}


def provoke_unset_signal(dev) -> tuple[HangReport | None, str, dict]:
    """A queue that waits on a signal nobody sets: the channel stops at the acquire."""
    never, s = dev.signal(0), dev.signal(0)
    dev.compute_queue().wait(never, 1).signal(s, 1).submit()
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    dev.recover()
    return rep, msg, {"signal": never.va}


PROVOCATIONS: dict[str, Callable] = {
    "out-of-bounds store": provoke_oob_store,
    "illegal instruction": provoke_illegal_instruction,
    "endless loop": provoke_endless_loop,
    "wait on a signal nobody sets": provoke_unset_signal,
}


def diagnose_all(dev) -> list[Outcome]:
    """Provoke every fault kind on ``dev`` (which this caller owns), each followed by a vecadd."""
    out = []
    for kind, fn in PROVOCATIONS.items():
        rep, msg, _ = fn(dev)
        try:
            ok = vecadd_check(dev)
        except HwdrvError as e:
            ok, msg = False, f"{msg}; the vecadd afterwards failed: {e}"
        out.append(Outcome(kind, rep, msg, ok))
    return out


def run_diagnose(device: str | None, as_json: bool) -> int:
    """CLI: provoke each fault kind on ``device`` (default: a real GPU, else the mock) and print
    the reports (text, or one JSON document). Exit status 0 when every fault produced a report
    and the device ran a correct vecadd after each."""
    from .cli import _default_device
    dev = _default_device(device)
    with dev:
        outcomes = diagnose_all(dev)
    if as_json:
        print(json.dumps([{"kind": o.kind, "message": o.message, "after_ok": o.after_ok,
                           "report": json.loads(o.report.to_json()) if o.report else None}
                          for o in outcomes], indent=1))
    else:
        for o in outcomes:
            print(f"=== {o.kind}: {o.message}")
            print(o.report.to_text() if o.report else "  (no report)")
            print(f"  next vecadd: {'correct' if o.after_ok else 'WRONG or failed'}\n")
    return 0 if all(o.report is not None and o.after_ok for o in outcomes) else 1


def decode_file(path: str, vendor: str = "nvidia") -> int:
    """CLI: print a saved HangReport (JSON), or a raw command-stream dump of ``vendor``'s
    format decoded (NVIDIA: pushbuffer words)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InvalidArgument(f"cannot read {path}: {e.strerror}") from None
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"{path}: not a HangReport JSON document: {e}") from None
        docs = doc if isinstance(doc, list) else [doc]
        for d in docs:
            rep = d.get("report") if isinstance(d, dict) and "report" in d else d
            if rep is None:
                continue
            print(HangReport.from_json(json.dumps(rep)).to_text())
        return 0
    from .registry import dump_decoder
    for line in dump_decoder(vendor)(data, path):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_diagnose(None, False))
