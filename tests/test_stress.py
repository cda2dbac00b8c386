"""Stress suite (issue 10): threads, close/free during in-flight work, a bad-input table over
every public entry point, timeouts, and a PTX/cubin mutation fuzzer whose every case must be a
clean error or a run that completes (never a crash, never a hang). Parametrized over
``stress_kit.DEVICES``; ``-m slow`` runs the longer variants."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import hwdrv
from hwdrv.errors import GPUHang, HwdrvError
from hwdrv.var import Var
from stress_kit import ADD_PTX, DEVICES, run_isolated, stress_binary, stress_program


@pytest.fixture(autouse=True)
def _long_variants_only_with_m_slow(request):
    """The long variants run when asked for (``-m slow``), not in the default CI run."""
    if request.node.get_closest_marker("slow") and "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long variant: run with -m slow")


@pytest.fixture(params=DEVICES)
def dev(request):
    d = hwdrv.open_device(request.param)
    yield d
    d.close()


# ---- threads -----------------------------------------------------------------------------------
def _mixed_worker(dev, prog, t, rounds, wrong, errors):
    try:
        rng = np.random.default_rng(t)
        n = 1024
        src, dst = dev.alloc(n * 4), dev.alloc(n * 4)
        hv = dev.alloc(n * 4, host_visible=True)
        sig = dev.signal(0)
        for i in range(rounds):
            data = rng.integers(0, 1 << 31, n, dtype=np.uint32)
            dev.upload(src, data)
            k = int(rng.integers(0, 1000))
            dev.compute_queue().exec(prog, (n // 256,), (256,), [dst, src, k, n]) \
                .signal(sig, i + 1).submit()
            sig.wait(i + 1, timeout=30)
            if not np.array_equal(dev.download(dst, dtype=np.uint32), data + k):
                wrong.append(("exec", t, i))
            dev.copy_queue().copy(hv, dst, n * 4).submit().synchronize(30)
            if not np.array_equal(hv.view(np.uint32), data + k):
                wrong.append(("copy", t, i))
            tmp = dev.alloc(int(rng.integers(1, 1 << 16)))
            tmp.free()
    except Exception as e:  # noqa: BLE001 - collected and asserted by the caller
        errors.append(repr(e))


def _run_threads(dev, nthreads, rounds):
    prog = stress_program(dev, "add_k")
    wrong, errors = [], []
    ts = [threading.Thread(target=_mixed_worker, args=(dev, prog, t, rounds, wrong, errors))
          for t in range(nthreads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a worker hung"
    assert not errors, errors[:3]
    assert not wrong, wrong[:10]
    return nthreads * rounds, time.perf_counter() - t0


def test_threads_upload_exec_download_copy(dev):
    ops, secs = _run_threads(dev, 4, 15)
    print(f"{ops} rounds (upload+exec+download+copy+alloc/free) in {secs:.2f} s, 0 wrong")


@pytest.mark.slow
def test_threads_upload_exec_download_copy_long(dev):
    ops, secs = _run_threads(dev, 8, 150)
    print(f"{ops} rounds in {secs:.2f} s, 0 wrong")


@pytest.mark.parametrize("name", DEVICES)
def test_close_while_threads_work(name):
    """Threads busy with every kind of call while the main thread closes the device: each
    thread ends with DeviceClosed/BufferFreed (HwdrvError) or success, never a crash."""
    r = run_isolated(f"""
        import threading, time, numpy as np, hwdrv, sys
        sys.path.insert(0, "tests")
        from stress_kit import stress_program
        from hwdrv.errors import HwdrvError
        for rep in range(3):
            dev = hwdrv.open_device({name!r})
            prog = stress_program(dev, "add_k")
            bad = []
            def work(t):
                try:
                    a = dev.alloc(4096); h = dev.alloc(4096, host_visible=True); v = h.view(np.uint32)
                    s = dev.signal(0)
                    for i in range(10**6):
                        dev.upload(a, np.full(1024, i, np.uint32))
                        dev.compute_queue().exec(prog, (4,), (256,), [h, a, 1, 1024]).signal(s, i + 1).submit()
                        s.wait(i + 1, timeout=10)
                        v[:8].sum()
                except HwdrvError:
                    pass
                except Exception as e:
                    bad.append(repr(e))
            ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
            [t.start() for t in ts]
            time.sleep(0.3 + 0.2 * rep)
            dev.close(wait=rep % 2 == 0)
            [t.join(20) for t in ts]
            assert not any(t.is_alive() for t in ts), "a thread hung after close"
            assert not bad, bad
        print("OK")
    """, timeout=120)
    assert r.returncode == 0 and "OK" in r.stdout, (r.returncode, r.stderr[-3000:])


@pytest.mark.parametrize("name", DEVICES)
def test_random_free_during_in_flight_work(name):
    """Buffers freed at random moments while kernels and copies that use them are queued or
    running: no crash, later results correct, every freed buffer released in the end."""
    r = run_isolated(f"""
        import random, numpy as np, hwdrv, sys, gc
        sys.path.insert(0, "tests")
        from stress_kit import stress_program
        dev = hwdrv.open_device({name!r})
        prog = stress_program(dev, "add_k")
        rng = random.Random(5)
        sig = dev.signal(0)
        n = 1024
        for i in range(60):
            a = dev.alloc(n * 4, host_visible=rng.random() < 0.5)
            b = dev.alloc(n * 4, host_visible=rng.random() < 0.5)
            dev.upload(a, np.arange(n, dtype=np.uint32))
            q = dev.compute_queue().exec(prog, (4,), (256,), [b, a, i, n])
            if rng.random() < 0.5:
                q.copy(a, b, n * 4)
            q.signal(sig, i + 1).submit()
            for x in rng.sample([a, b], 2):
                if rng.random() < 0.8:
                    x.free()
            if rng.random() < 0.2:
                keep = b
        dev.synchronize()
        sig.wait(60, timeout=10)
        assert not dev._pending_frees and not dev._pinned, "freed buffers not released after the work"
        out = dev.alloc(n * 4); src = dev.alloc(n * 4)
        dev.upload(src, np.arange(n, dtype=np.uint32))
        dev.compute_queue().exec(prog, (4,), (256,), [out, src, 7, n]).submit().synchronize()
        assert (dev.download(out, dtype=np.uint32) == np.arange(n) + 7).all()
        dev.close()
        print("OK")
    """, timeout=120)
    assert r.returncode == 0 and "OK" in r.stdout, (r.returncode, r.stderr[-3000:])


# ---- the bad-input table ----------------------------------------------------------------------
def _bad_inputs(dev):
    """(label, words the message must contain, call) for every public entry point."""
    prog = stress_program(dev, "add_k")
    buf = dev.alloc(4096)
    hv = dev.alloc(4096, host_visible=True)
    sig = dev.signal(0)
    other = hwdrv.open_device(dev.name)
    obuf, osig = other.alloc(64), other.signal(0)
    freed = dev.alloc(64)
    freed.free()
    cq = lambda: dev.compute_queue()            # noqa: E731
    cases = []

    def add(label, words, fn):
        cases.append((label, words, fn))
    for v in (True, 1.5, "8", None, -1, 0, 2 ** 70, np.float32(4), object()):
        add(f"alloc(size={v!r})", "size", lambda v=v: dev.alloc(v))
    for v in (1, "yes", None, 2):
        add(f"alloc(host_visible={v!r})", "host_visible", lambda v=v: dev.alloc(64, v))
    for d in (None, "text", 5, 1.5, [1, 2], np.array([object()]), np.array(["a"]), {"a": 1}):
        add(f"upload(data={type(d).__name__})", "data", lambda d=d: dev.upload(buf, d))
        add(f"upload host-visible (data={type(d).__name__})", "data", lambda d=d: dev.upload(hv, d))
    for b in (None, 5, "buf", freed, obuf):
        add(f"upload(buf={b!r:.30})", "upload", lambda b=b: dev.upload(b, b"x"))
        add(f"download(buf={b!r:.30})", "download", lambda b=b: dev.download(b))
    for o in (-1, 1.5, "0", None, 5000, True):
        add(f"upload(offset={o!r})", "offset", lambda o=o: dev.upload(buf, b"xyz", o))
        add(f"download(offset={o!r})", "offset", lambda o=o: dev.download(buf, 4, o))
    for s in (-1, 1.5, "4", 5000, True):
        add(f"download(size={s!r})", "size", lambda s=s: dev.download(buf, s))
    for t in ("floatX", np.dtype(object), "U3", 7):
        add(f"download(dtype={t!r})", "dtype", lambda t=t: dev.download(buf, 64, 0, t))
    for t in (math.nan, math.inf, -1, "1", True, [1]):
        add(f"synchronize(timeout={t!r})", "timeout", lambda t=t: dev.synchronize(t))
        add(f"Signal.wait(timeout={t!r})", "timeout", lambda t=t: sig.wait(1, t))
        add(f"Queue.synchronize(timeout={t!r})", "timeout", lambda t=t: cq().submit().synchronize(t))
        add(f"upload(timeout={t!r})", "timeout", lambda t=t: dev.upload(buf, b"x", timeout=t))
    for v in (-1, 2 ** 64, 1.5, "3", None, True):
        add(f"signal(value={v!r})", "value", lambda v=v: dev.signal(v))
        add(f"Signal.value = {v!r}", "value", lambda v=v: setattr(sig, "value", v))
        add(f"Signal.wait(value={v!r})", "value", lambda v=v: sig.wait(v, 0.1))
        add(f"Queue.wait(value={v!r})", "wait value", lambda v=v: cq().wait(sig, v))
        add(f"Queue.signal(value={v!r})", "signal value", lambda v=v: cq().signal(sig, v))
    for s in (None, 5, "sig", buf, osig):
        add(f"Queue.wait(signal={s!r:.30})", "signal", lambda s=s: cq().wait(s, 1))
        add(f"Queue.signal(signal={s!r:.30})", "signal", lambda s=s: cq().signal(s, 1))
        add(f"Queue.timestamp(signal={s!r:.30})", "signal", lambda s=s: cq().timestamp(s))
    for p in (None, "prog", buf, 5):
        add(f"exec(program={p!r:.30})", "program", lambda p=p: cq().exec(p, (1,), (32,), [buf, buf, 0, 1]))
    lim = dev.limits       # one past each of the device's own limits
    for g in ((0,), (-1,), (1.5,), ("1",), (1, 1, 1, 1), (), None, (lim.max_grid_dims[0] + 1,),
              (1, lim.max_grid_dims[1] + 1), True):
        add(f"exec(grid={g!r})", "grid", lambda g=g: cq().exec(prog, g, (32,), [buf, buf, 0, 1]))
    for b in ((0,), (lim.max_block_dims[0] + 1,), (1, 1, lim.max_block_dims[2] + 1), (1.5,), None,
              (32, 32, lim.max_threads_per_block // 1024 + 1), (Var("b"),)):
        add(f"exec(block={b!r})", "block", lambda b=b: cq().exec(prog, (1,), b, [buf, buf, 0, 1]))
    for a in ([], [buf], [buf, buf, 0], [buf, buf, 0, 1, 2], [buf, buf, "x", 1], [buf, buf, 2 ** 40, 1],
              [None, buf, 0, 1], [freed, buf, 0, 1], [obuf, buf, 0, 1], [buf, buf, b"abc", 1], None, 5):
        add(f"exec(args={a!r:.40})", "arg", lambda a=a: cq().exec(prog, (1,), (32,), a))
    for sh in (-1, 1.5, "0", 1 << 20, None):
        add(f"exec(shared={sh!r})", "shared", lambda sh=sh: cq().exec(prog, (1,), (32,), [buf, buf, 0, 1], shared=sh))
    for d, s, n in ((None, buf, 64), (buf, None, 64), (buf, buf, 0), (buf, buf, -1), (buf, buf, 1.5),
                    (buf, buf, 8192), (freed, buf, 8), (buf, obuf, 8), ("x", buf, 8), (buf, buf, None)):
        add(f"copy({d!r:.20}, {s!r:.20}, {n!r})", "copy", lambda d=d, s=s, n=n: dev.copy_queue().copy(d, s, n))
        add(f"compute copy({d!r:.20}, {s!r:.20}, {n!r})", "copy", lambda d=d, s=s, n=n: cq().copy(d, s, n))
    add("submit(unknown Var)", "submit", lambda: cq().submit(x=1))
    nv = Var("n")
    for v in (-1, 2 ** 64, 1.5, "1", None):
        add(f"submit(n={v!r})", "n", lambda v=v: cq().signal(sig, nv).submit(n=v))
    add("submit(missing Var)", "n", lambda: cq().signal(sig, nv).submit())
    add("verb after submit", "submitted", lambda: cq().submit().signal(sig, 1))
    if "copy" in dev.engines:   # without a copy engine a copy queue is a compute queue (Device.copy_queue)
        add("exec on a copy queue", "compute", lambda: dev.copy_queue().exec(prog, (1,), (32,), [buf, buf, 0, 1]))
    for n in ("", None, 5, "a b", "1x"):
        add(f"Var({n!r})", "name", lambda n=n: Var(n))
    for v in (None, 1.5, "x"):
        add(f"Var + {v!r}", "Var", lambda v=v: Var("q") + v)
    for b in (None, "ptx text", 5, b"", b"\x7fELF" + bytes(60), b"garbage" * 10):
        add(f"program(binary={b!r:.20})", "", lambda b=b: dev.program(b, "add_k"))
    for n in (None, 5, "", "no_such_kernel"):
        add(f"program(name={n!r})", "", lambda n=n: dev.program(stress_binary(dev), n))
    for src in (None, 5, b"\xff\xfe", "", ".version 8.0\n.target sm_90\n.entry x( { ret; }", ADD_PTX[:200]):
        add(f"compile+program({src!r:.20})", "", lambda src=src: dev.program(dev.compiler.compile(src), "x"))
    for name in (None, 5, "", "nope:0", "mock:none", "nvidia:x", "nvidia:99"):
        add(f"open_device({name!r})", "", lambda name=name: hwdrv.open_device(name))
    for dt, off, n in ((np.float64, 0, 4), ("u4", 2, None), (np.uint8, -1, None), (np.uint8, 0, 5000), (object, 0, 8)):
        add(f"Buffer.view({dt!r}, {off}, {n})", "view", lambda dt=dt, off=off, n=n: hv.view(dt, off, n))
    add("Buffer.view of device memory", "host", lambda: buf.view())
    add("Buffer.free twice", "freed", lambda: freed.free())
    add("Buffer.va after free", "freed", lambda: freed.va)
    from hwdrv.hang import HangReport
    for text in ("", "{", "[]", "null", '{"device": 5}', '{"cause": []}', json.dumps({"queues": 5}),
                 json.dumps({"device": "d", "cause": "x", "launches": [{"grid": "bad"}]}), b"\xff"):
        add(f"HangReport.from_json({text!r:.30})", "", lambda text=text: HangReport.from_json(text))
    closed = hwdrv.open_device(dev.name)
    cb, cs, cqq = closed.alloc(64), closed.signal(0), closed.compute_queue().signal(closed.signal(0), 1).bind()
    closed.close()
    for label, fn in (("alloc", lambda: closed.alloc(64)), ("signal", lambda: closed.signal()),
                      ("upload", lambda: closed.upload(cb, b"x")), ("download", lambda: closed.download(cb)),
                      ("compute_queue", closed.compute_queue), ("copy_queue", closed.copy_queue),
                      ("program", lambda: closed.program(b"x", "k")), ("synchronize", closed.synchronize),
                      ("recover", closed.recover), ("diagnose", closed.diagnose),
                      ("Signal.value", lambda: cs.value), ("Signal.wait", lambda: cs.wait(1, 0.1)),
                      ("Queue.submit", cqq.submit), ("Queue.words", lambda: cqq.words)):
        add(f"closed device: {label}", "", fn)
    return cases, other


def _classify(cases):
    clean, unclean = [], []
    for label, words, fn in cases:
        try:
            fn()
        except HwdrvError as e:
            msg = str(e)
            if words and words.lower() not in msg.lower():
                unclean.append(f"{label}: {type(e).__name__} does not name {words!r}: {msg[:160]}")
            else:
                clean.append(label)
        except Exception as e:  # noqa: BLE001 - this is what the table counts
            unclean.append(f"{label}: {type(e).__name__}: {str(e)[:160]}")
        else:
            unclean.append(f"{label}: accepted")
    return clean, unclean


def test_bad_input_table(dev):
    cases, other = _bad_inputs(dev)
    try:
        clean, unclean = _classify(cases)
    finally:
        other.close()
    print(f"bad-input table: {len(cases)} tried, {len(clean)} clean HwdrvError naming the argument")
    assert not unclean, "\n".join(unclean)
    assert len(cases) >= 250


def test_cli_bad_arguments_exit_cleanly(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (["decode", str(bad)], ["decode", str(tmp_path / "missing.json")],
                 ["diagnose", "--device", "nope:0"], ["frobnicate"]):
        r = subprocess.run([sys.executable, "-m", "hwdrv", *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (args, r.stderr[-1500:])


# ---- a mutation fuzzer, each case watched ------------------------------------------------------
_FUZZ_WORKER = r"""
import sys, random, numpy as np, hwdrv
sys.path.insert(0, "tests")
from stress_kit import ADD_PTX, AMD_STRESS, QCOM_STRESS, stress_program
from hwdrv.errors import HwdrvError
kind, seed, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
dev = hwdrv.open_device(sys.argv[5])
n = 256
src, dst = dev.alloc(n * 4), dev.alloc(n * 4)
dev.upload(src, np.arange(n, dtype=np.uint32))
if kind == "cubin":
    import pathlib
    base = bytearray(pathlib.Path("tests/data/nvidia/globals_rdc.cubin").read_bytes()); entry = "use_globals"
elif kind == "hsaco":
    base = bytearray(open(AMD_STRESS, "rb").read()); entry = "add_k"
elif kind == "ir3":
    base = bytearray(QCOM_STRESS.encode()); entry = "add_k"
elif kind == "ir3bin":
    base = bytearray(dev.compiler.compile(QCOM_STRESS)); entry = "add_k"
else:
    base = bytearray(ADD_PTX.encode()); entry = "add_k"
TOKENS = [b"%r1", b"%rd9", b"u32", b"s64", b"[%rd4+4096]", b"bra", b"@%p1", b"ret;", b"}", b"{", b";",
          b"0xffffffff", b".shared", b".local", b"-1", b"ld.global.u64", b"%tid.y"]
import re
SWAPS = [(rb"\badd\.s32", [b"sub.s32", b"mul.lo.s32", b"and.b32", b"xor.b32", b"shl.b32", b"div.u32", b"rem.u32"]),
         (rb"\bu32\b", [b"s32", b"u64", b"b32", b"u16", b"f32"]),
         (rb"%r\d", [b"%r0", b"%r7", b"%r9", b"%rd1", b"%p1"]),
         (rb"%rd\d", [b"%rd0", b"%rd7", b"%r1", b"%rd9"]),
         (rb"\b\d+\b", [b"0", b"1", b"3", b"4096", b"65536", b"4294967295", b"-1"]),
         (rb"%(tid|ctaid|ntid)\.x", [b"%tid.y", b"%nctaid.x", b"%laneid", b"%clock"]),
         (rb"ld\.global", [b"ld.shared", b"ld.local", b"ld.param", b"ld.const", b"ld"]),
         (rb"st\.global", [b"st.shared", b"st.local", b"st"]),
         (rb"@%p1 bra DONE;", [b"bra DONE;", b"@!%p1 bra DONE;", b"", b"bra.uni LOOP;"])]
# ir3 (Mesa syntax): opcodes, registers, consts, branch targets, repeats, sync flags, directives
IR3_TOKENS = [b"r0.x", b"hr2.y", b"c9.w", b"(sy)", b"(ss)", b"(rpt3)", b"(jp)", b"nop", b"end", b"#-2", b"p0.x",
              b"a0.x", b"\n", b",", b"g[", b"]", b".param", b".kernel", b"br p0.x, #0\n", b"ldl.u32 r2.x, l[r0.x], 1\n"]
IR3_SWAPS = [(rb"\badd\.u\b", [b"sub.u", b"mul.u24", b"and.b", b"xor.b", b"shl.b", b"max.u", b"absneg.s", b"bary.f"]),
             (rb"\br\d+\.[xyzw]", [b"r0.x", b"r1.w", b"r47.w", b"r63.w", b"hr1.x", b"r48.x", b"p0.x", b"a0.x"]),
             (rb"\bc\d+\.[xyzw]", [b"c0.x", b"c1.w", b"c255.w", b"c9.y", b"c2.x"]),
             (rb"#-?\d+", [b"#0", b"#1", b"#-1", b"#-6", b"#100", b"#-100"]),
             (rb"\(rpt\d\)", [b"(rpt0)", b"(rpt1)", b"(rpt5)", b"(rpt7)", b""]),
             (rb"\((sy|jp)\)", [b"", b"(ss)", b"(sy)(ss)"]),
             (rb"ldg\.a\.u32", [b"ldg.u32", b"ldl.u32", b"ldp.u32", b"ldg.a.u16", b"ldg.a.f32", b"ldc.u32"]),
             (rb"stg\.a\.u32", [b"stg.u32", b"stl.u32", b"stp.u32", b"stg.a.u8", b"stg.a.f16"]),
             (rb"cmps\.u\.lt", [b"cmps.u.ge", b"cmps.s.lt", b"cmps.f.lt", b"cmpv.u.lt"]),
             (rb"\.param \w+ \d", [b".param x 4", b".param x 8", b".param x 0", b".param x 16"]),
             (rb"\b\d+\b", [b"0", b"1", b"3", b"63", b"256", b"4294967295"]),
             (rb"\n(\(jp\))?end\n", [b"\n", b"\nnop\n"])]
if kind == "ir3":
    TOKENS, SWAPS = IR3_TOKENS, IR3_SWAPS
def semantic(rng, d):
    pat, repl = rng.choice(SWAPS)
    hits = list(re.finditer(pat, d))
    if not hits:
        return d
    m = rng.choice(hits)
    return d[:m.start()] + rng.choice(repl) + d[m.end():]
def mutate(rng):
    if kind in ("ptx", "ir3") and rng.random() < 0.6:
        d = bytes(base)
        for _ in range(rng.randint(1, 3)):
            d = semantic(rng, d)
        return d
    d = bytearray(base)
    if kind == "ir3bin" and rng.random() < 0.7:   # the machine code (after the JSON metadata): flip bits
        code = 16 + int.from_bytes(base[12:16], "little")
        for _ in range(rng.randint(1, 4)):
            d[rng.randrange(code, len(d))] ^= 1 << rng.randrange(8)
        return bytes(d)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        i = rng.randrange(len(d))
        if kind in ("ptx", "ir3") and op < 0.4:
            t = rng.choice(TOKENS); d[i:i] = t
        elif op < 0.7:
            d[i] = rng.randrange(256)
        elif op < 0.85:
            del d[i:i + rng.randint(1, 16)]
        else:
            j = rng.randrange(len(d)); d[i:i] = d[j:j + rng.randint(1, 32)]
    return bytes(d)
for k in range(start, start + count):
    rng = random.Random(seed * 1000003 + k)
    data = mutate(rng)
    print("BEGIN", k, flush=True)
    outcome = "ok"
    stage = "compile"
    try:
        binary = dev.compiler.compile(data.decode("latin-1")) if kind in ("ptx", "ir3") else data
        stage = "program"
        prog = dev.program(binary, entry)
        stage = "exec"
        sig = dev.signal(0)
        args = [dst] if kind == "cubin" else [dst, src, 3, n]
        dev.compute_queue().exec(prog, (1,), (n,), args).signal(sig, 1).submit()
        sig.wait(1, timeout=5)
    except HwdrvError as e:
        outcome = "clean " + stage
        if "GPUHang" in type(e).__name__ or dev._recover_pending:
            dev.recover()
    except Exception as e:
        outcome = "UNCLEAN " + type(e).__name__ + ": " + str(e)[:200].replace("\n", " ")
    # the device must still compute correctly afterwards
    try:
        good = stress_program(dev, "add_k")
        dev.compute_queue().exec(good, (1,), (n,), [dst, src, 1, n]).submit().synchronize(10)
        if not (dev.download(dst, dtype=np.uint32) == np.arange(n) + 1).all():
            outcome = "WRONG after-check"
    except Exception as e:
        outcome = "BROKEN " + type(e).__name__ + ": " + str(e)[:200].replace("\n", " ")
    print("END", k, outcome, flush=True)
print("DONE", flush=True)
"""


#: per device, environment for the fuzz workers: the mock Adreno's shader watchdog (its stand-in for
#: hang detection, 5 s by default) at 1 s, so a mutated program that never ends is stopped well inside
#: the case's 5 s wait
FUZZ_ENV = {"mock:qcom": {"HWDRV_MOCK_QCOM_SHADER_TIMEOUT": "1"}}


def fuzz(kind: str, name: str, count: int, seed: int, case_timeout: float = 30.0,
         worker: str = _FUZZ_WORKER) -> dict:
    """Run ``count`` mutations in worker processes; a worker that dies (signal) or stops making
    progress for ``case_timeout`` seconds is a crash or hang of the case it was running, and a
    new worker continues after it."""
    stats = {"ok": 0, "clean": 0, "crash": 0, "hang": 0, "unclean": []}
    k = 0
    while k < count:
        p = subprocess.Popen([sys.executable, "-c", worker, kind, str(seed), str(k), str(count - k), name],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, **FUZZ_ENV.get(name, {})))
        current = None
        timer = threading.Timer(case_timeout, p.kill)
        timer.start()
        try:
            for line in p.stdout:
                timer.cancel()
                timer = threading.Timer(case_timeout, p.kill)
                timer.start()
                parts = line.split(maxsplit=2)
                if parts[0] == "BEGIN":
                    current = int(parts[1])
                elif parts[0] == "END":
                    out = parts[2].strip()
                    if out == "ok" or out.startswith("clean "):
                        stats[out.split()[0]] += 1
                        if out.startswith("clean "):
                            stats.setdefault("at " + out.split()[1], 0)
                            stats["at " + out.split()[1]] += 1
                    else:
                        stats["unclean"].append((int(parts[1]), out))
                    current, k = None, int(parts[1]) + 1
            p.wait()
        finally:
            timer.cancel()
        if current is not None:
            stats["hang" if p.returncode == -9 else "crash"] += 1
            stats["unclean"].append((current, f"worker exit {p.returncode}"))
            k = current + 1
        elif p.returncode != 0:
            raise AssertionError(f"fuzz worker failed outside a case: exit {p.returncode}")
    return stats


def test_fuzz_watchdog_counts_crashes_and_hangs():
    """The runner itself: a case that segfaults and a case that never ends are counted (and the
    cases after them still run), they do not take pytest down."""
    worker = r"""
import os, signal, sys, time
start, count = int(sys.argv[3]), int(sys.argv[4])
for k in range(start, start + count):
    print("BEGIN", k, flush=True)
    if k == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    if k == 3:
        time.sleep(60)
    print("END", k, "ok", flush=True)
"""
    s = fuzz("ptx", "mock:nvidia", 5, seed=0, case_timeout=2.0, worker=worker)
    assert (s["ok"], s["crash"], s["hang"]) == (3, 1, 1), s


#: (device, what is mutated): PTX text and cubins on NVIDIA, code objects on AMD, ir3 assembly
#: and hwdrv's ir3 binaries (metadata and machine code) on Qualcomm
FUZZ_KINDS = [("mock:nvidia", "ptx"), ("mock:nvidia", "cubin"), ("mock:amd", "hsaco"), ("mock:qcom", "ir3"),
              ("mock:qcom", "ir3bin")]


@pytest.mark.parametrize("name,kind", FUZZ_KINDS)
@pytest.mark.parametrize("count", [60])
def test_mutation_fuzz(name, kind, count):
    s = fuzz(kind, name, count, seed=1)
    where = ", ".join(f"{k[3:]} {v}" for k, v in s.items() if k.startswith("at "))
    print(f"{kind} fuzz on {name}: {count} mutations: {s['ok']} ran, {s['clean']} clean errors "
          f"({where}), {s['crash']} crashes, {s['hang']} hangs")
    assert s["ok"] + s["clean"] == count, s["unclean"][:5]


@pytest.mark.slow
@pytest.mark.parametrize("name,kind", FUZZ_KINDS)
@pytest.mark.parametrize("count", [1500])
def test_mutation_fuzz_long(name, kind, count):
    s = fuzz(kind, name, count, seed=2)
    where = ", ".join(f"{k[3:]} {v}" for k, v in s.items() if k.startswith("at "))
    print(f"{kind} fuzz on {name}: {count} mutations: {s['ok']} ran, {s['clean']} clean errors "
          f"({where}), {s['crash']} crashes, {s['hang']} hangs")
    assert s["ok"] + s["clean"] == count, s["unclean"][:5]


# ---- timeouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("timeout,ok", [(None, True), (0, False), (0.2, False), (math.nan, None),
                                        (math.inf, None), (-0.5, None), (-math.inf, None)])
def test_timeouts_on_a_wait_that_never_ends(dev, timeout, ok):
    """A signal nobody sets: finite timeouts end in GPUHang on time, bad ones are refused at
    once (nan never returned before), None is the default (a set signal returns at once)."""
    sig = dev.signal(1 if ok else 0)
    t = time.perf_counter()
    if ok:
        sig.wait(1, timeout=timeout)
    elif ok is None:
        with pytest.raises(HwdrvError, match="timeout"):
            sig.wait(1, timeout=timeout)
    else:
        with pytest.raises(GPUHang):
            sig.wait(1, timeout=timeout)
    assert time.perf_counter() - t < 2.0
