"""``python -m hwdrv diagnose`` and ``python -m hwdrv decode``: provoke each fault kind on a device
and print the hang reports; print a saved report or a raw pushbuffer dump decoded.

The provocations are ordinary PTX kernels, so the real GPU and the mock run the same code:
an out-of-bounds store (to an address whose buffer was freed: no mapping behind it), an
illegal instruction (PTX ``trap;``), an endless loop (spins on a flag nobody sets) and a
queue that waits on a signal nobody sets. After each, the device recovers and a vecadd checks
that later work runs correctly.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import GPUHang, HwdrvError, InvalidArgument
from .hang import HangReport

_HEADER = """.version 8.0
.target sm_90
.address_size 64
"""
OOB_STORE_PTX = _HEADER + r"""
.visible .entry oob_store(.param .u64 bad, .param .u32 v)
{
  .reg .b32 %r<2>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [bad]; ld.param.u32 %r1, [v];
  st.global.u32 [%rd1], %r1;
  ret;
}
"""
TRAP_PTX = _HEADER + r"""
.visible .entry illegal_trap(.param .u64 out)
{
  .reg .b32 %r<2>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [out]; mov.u32 %r1, 1;
  st.global.u32 [%rd1], %r1;
  trap;
  ret;
}
"""
SPIN_PTX = _HEADER + r"""
.visible .entry spin_forever(.param .u64 flag)
{
  .reg .pred %p; .reg .b32 %r<2>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [flag];
spin:
  ld.volatile.global.u32 %r1, [%rd1];
  setp.eq.u32 %p, %r1, 0;
  @%p bra spin;
  ret;
}
"""
#: seconds each provocation waits before it counts as hung
WAIT_S = 3.0


@dataclass
class Outcome:
    """One provoked fault: its report (None if nothing failed) and whether later work ran."""
    kind: str
    report: HangReport | None
    message: str
    after_ok: bool


def vecadd_check(dev, n: int = 4096) -> bool:
    """Run a vecadd and compare with numpy (the "later work runs correctly" check)."""
    from .cli import VECADD_PTX
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    ba, bb, bc = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
    try:
        dev.upload(ba, a)
        dev.upload(bb, b)
        prog = dev.program(dev.compiler.compile(VECADD_PTX), "vecadd")
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
    prog = dev.program(dev.compiler.compile(OOB_STORE_PTX), "oob_store")
    s = dev.signal(0)
    # build (and allocate for) the queue first, so that nothing allocated between freeing the
    # buffer and the launch can land on its address range
    q = dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[Var("bad"), 0xDEAD]).signal(s, 1)
    gone = dev.alloc(2 << 20)
    bad = gone.va + (1 << 20)
    gone.free()
    q.submit(bad=bad)
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    return rep, msg, {"address": bad, "kernel": "oob_store"}


def provoke_illegal_instruction(dev) -> tuple[HangReport | None, str, dict]:
    """PTX ``trap;`` (SASS BPT.TRAP on the GPU, an illegal instruction on the mock)."""
    prog = dev.program(dev.compiler.compile(TRAP_PTX), "illegal_trap")
    out = dev.alloc(4096, host_visible=True)
    s = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[out]).signal(s, 1).submit()
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    return rep, msg, {"kernel": "illegal_trap"}


def provoke_endless_loop(dev) -> tuple[HangReport | None, str, dict]:
    """A kernel that spins on a flag nobody sets: the wait times out with the kernel running;
    then the device abandons it (recover)."""
    prog = dev.program(dev.compiler.compile(SPIN_PTX), "spin_forever")
    flag = dev.alloc(4096, host_visible=True)
    flag.view(np.uint32)[:] = 0
    s = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[flag]).signal(s, 1).submit()
    rep, msg = _expect_hang(lambda: s.wait(1, timeout=WAIT_S))
    dev.recover()
    return rep, msg, {"kernel": "spin_forever"}


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


def decode_file(path: str) -> int:
    """CLI: print a saved HangReport (JSON) or a raw pushbuffer dump (little-endian 32-bit words)
    decoded."""
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
    from .nvidia import pbdecode
    if len(data) % 4:
        raise InvalidArgument(f"{path}: {len(data)} bytes is not a whole number of 32-bit words; a "
                              f"pushbuffer dump is raw little-endian words (or a HangReport JSON)")
    words = np.frombuffer(data, "<u4")
    for line in pbdecode.format_methods(pbdecode.decode(words)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_diagnose(None, False))
