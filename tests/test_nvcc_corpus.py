"""The nvcc corpus on the mock: 73 ordinary CUDA kernels (tests/data/nvcc_corpus/*.cu), compiled
by nvcc 13 to PTX (committed with build.sh), run on ``mock:nvidia`` through the public API and
checked against numpy. ``tests/hardware/test_nvcc_corpus_hw.py`` runs the committed sm_90 cubins
of the same sources on the GPU with the same checks (``run_case`` below).

Every expected value is a numpy expression in corpus.json, or one of the reference helpers here,
each written from the CUDA/PTX documentation's definition, never from the interpreter."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import hwdrv

CORPUS = Path(__file__).parent / "data" / "nvcc_corpus"
CASES = json.loads((CORPUS / "corpus.json").read_text())["kernels"]
SIGNAL_TIMEOUT = 120.0


# ---- reference helpers (from the documented definitions) --------------------------------------
def byte_perm(x, y, s):
    """CUDA __byte_perm: byte i of the result is byte (selector nibble i) of the 8 bytes y:x."""
    x, y = np.asarray(x, np.uint64), np.asarray(y, np.uint64)
    s = np.broadcast_to(np.asarray(s, np.uint64), x.shape)
    both = (y << np.uint64(32)) | x
    out = np.zeros(x.shape, np.uint64)
    for i in range(4):
        sel = (s >> np.uint64(4 * i)) & np.uint64(7)
        out |= ((both >> (sel * np.uint64(8))) & np.uint64(0xFF)) << np.uint64(8 * i)
    return out


def collatz_steps(v: int) -> int:
    steps = 0
    while v != 1:
        v = 3 * v + 1 if v & 1 else v // 2
        steps += 1
    return steps


def fibonacci(k: int) -> int:
    a, b = 0, 1
    for _ in range(k):
        a, b = b, a + b
    return a


def bf16_value(bits) -> np.ndarray:
    """bfloat16 bits -> float64: they are the top half of an IEEE single."""
    return (np.asarray(bits, np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)


def bf16_rn(x) -> np.ndarray:
    """Round to bfloat16, to nearest even (finite, non-NaN inputs): through the float64's own bits
    so that no intermediate float32 rounding happens."""
    x = np.asarray(x, np.float64)
    out = np.empty(x.shape, np.uint16)
    for k, v in enumerate(x.ravel().tolist()):
        bits = struct.unpack("<Q", struct.pack("<d", v))[0]
        sign, mag = bits >> 63, bits & ((1 << 63) - 1)
        exp = mag >> 52
        if exp == 0 and mag == 0:
            out.flat[k] = sign << 15
            continue
        # bfloat16 normal: 8 significant bits (exponent >= -126); below, subnormal steps of 2**-133
        e = exp - 1023
        step = max(e - 7, -133)
        q = abs(v) / 2.0 ** step                       # exact: a power-of-two scaling
        n = int(q)
        frac = q - n
        if frac > 0.5 or (frac == 0.5 and n & 1):
            n += 1
        r = n * 2.0 ** step
        f32 = struct.unpack("<I", struct.pack("<f", r))[0]  # r has <= 8 significant bits: exact
        out.flat[k] = (sign << 15) | (f32 >> 16)
    return out


def pack_bits(values, bits: int) -> np.ndarray:
    """Pack integers of ``bits`` bits (1 or 4) into bytes, element 0 in the low bits of byte 0."""
    v = np.asarray(values, np.int64) & ((1 << bits) - 1)
    per = 8 // bits
    v = v.reshape(-1, per) << (np.arange(per) * bits)
    return v.sum(1).astype(np.uint8)


def unpack_bits(packed, bits: int, signed: bool) -> np.ndarray:
    """The inverse of pack_bits (sign-extending when ``signed``)."""
    per = 8 // bits
    v = (np.asarray(packed, np.int64)[:, None] >> (np.arange(per) * bits)) & ((1 << bits) - 1)
    v = v.ravel()
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v) if signed else v


def _fp8_table(fmt: str) -> np.ndarray:
    """The value of each of the 256 codes of an OCP fp8 format, from the format's definition:
    sign, exponent field (bias 7 for e4m3, 15 for e5m2), mantissa; e4m3 has no infinities and
    S.1111.111 is NaN; e5m2 is IEEE-like (all-ones exponent: inf or NaN)."""
    ebits, mbits, bias = (4, 3, 7) if fmt == "e4m3" else (5, 2, 15)
    vals = []
    for c in range(256):
        e, f = (c >> mbits) & ((1 << ebits) - 1), c & ((1 << mbits) - 1)
        if e == (1 << ebits) - 1 and (fmt == "e5m2" or f == (1 << mbits) - 1):
            v = float("nan") if (fmt == "e4m3" or f) else float("inf")
        elif e == 0:
            v = f * 2.0 ** (1 - bias - mbits)
        else:
            v = (1 + f / 2 ** mbits) * 2.0 ** (e - bias)
        vals.append(-v if c & 0x80 else v)
    return np.array(vals)


def fp8_ref_decode(codes, fmt: str) -> np.ndarray:
    return _fp8_table(fmt)[np.asarray(codes, np.uint8)]


def fp8_ref_encode(x, fmt: str) -> np.ndarray:
    """Nearest fp8 code by search over the table (ties: even code), saturating at the largest
    finite value: what cvt.rn.satfinite does."""
    table = _fp8_table(fmt)
    pos = [c for c in range(128) if np.isfinite(table[c])]
    pv = table[pos]
    out = []
    for v in np.asarray(x, np.float64).tolist():
        a = min(abs(v), pv.max())
        d = np.abs(pv - a)
        best = [c for c, dd in zip(pos, d) if dd == d.min()]
        code = min(best, key=lambda c: (c & 1, c))
        out.append(code | (0x80 if np.signbit(v) else 0))
    return np.array(out, np.uint8)


HELPERS = {"fp8_ref_encode": fp8_ref_encode, "fp8_ref_decode": fp8_ref_decode, "pack_bits": pack_bits, "unpack_bits": unpack_bits, "byte_perm": byte_perm, "collatz_steps": collatz_steps, "fibonacci": fibonacci,
           "bf16_value": bf16_value, "bf16_rn": bf16_rn}


# ---- running one case --------------------------------------------------------------------------
def _scalar(type_: str, value):
    return float(value) if type_.startswith("f") else int(value)


def prepare(case: dict) -> tuple[dict, list]:
    """The initial values (consts, scalars, buffers by name) and the argument list spec."""
    rng = np.random.default_rng(sum(case["kernel"].encode()))
    env = {"np": np, "rng": rng, **HELPERS}
    for name, expr in case.get("consts", {}).items():
        env[name] = eval(expr, env) if isinstance(expr, str) else expr
    for a in case["args"]:
        if "scalar" in a:
            env[a["scalar"]] = _scalar(a["type"], a["value"])
    for a in case["args"]:
        if "buf" in a:
            with np.errstate(over="ignore"):
                env[a["buf"]] = np.ascontiguousarray(np.asarray(eval(a["init"], env)).astype(a["dtype"]))
    return env, case["args"]


def expected(case: dict, env: dict) -> dict[str, np.ndarray]:
    dtypes = {a["buf"]: a["dtype"] for a in case["args"] if "buf" in a}
    out = {}
    for name, expr in case["expect"].items():
        with np.errstate(over="ignore"):        # expected overflows to inf (float16 cases) are meant
            val = np.asarray(eval(expr, dict(env)))
            if "rtol" not in case and "atol" not in case:
                val = val.astype(dtypes[name]) if np.issubdtype(np.dtype(dtypes[name]), np.floating) else \
                    (val.astype(np.int64) if val.dtype.kind in "iub" else val).astype(dtypes[name])
        out[name] = val
    return out


def run_case(dev, program, case: dict) -> None:
    """Run ``case`` with ``program`` on ``dev`` and compare every output with numpy."""
    env, args = prepare(case)
    bufs, argv = {}, []
    for a in args:
        if "buf" in a:
            arr = env[a["buf"]]
            b = dev.alloc(max(arr.nbytes, 4))
            dev.upload(b, arr)
            bufs[a["buf"]] = b
            argv.append(b)
        else:
            argv.append(env[a["scalar"]])
    sig = dev.signal(0)
    dev.compute_queue().exec(program, grid=case["grid"], block=case["block"], args=argv,
                             shared=case.get("shared", 0)).signal(sig, 1).submit()
    sig.wait(1, timeout=SIGNAL_TIMEOUT)
    for name, want in expected(case, env).items():
        arr = env[name]
        got = dev.download(bufs[name], size=arr.nbytes, dtype=arr.dtype)
        assert got.shape == np.shape(want) or np.size(want) == got.size, (name, got.shape, np.shape(want))
        want = np.asarray(want).reshape(got.shape)
        if "rtol" in case or "atol" in case:
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       rtol=case.get("rtol", 0), atol=case.get("atol", 0),
                                       err_msg=f"{case['kernel']}: {name}")
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{case['kernel']}: {name}")
    for b in bufs.values():
        b.free()


# ---- the mock ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mock_dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


@pytest.fixture(scope="module")
def mock_images(mock_dev):
    """One image per .cu module: every kernel of a module loads from the same PTX."""
    return {m: mock_dev.compiler.compile((CORPUS / f"{m}.ptx").read_text())
            for m in sorted({c["module"] for c in CASES})}


def test_corpus_has_every_family():
    assert len(CASES) >= 40
    assert len({c["kernel"] for c in CASES}) == len(CASES)
    for c in CASES:
        assert (CORPUS / f"{c['module']}.cu").exists() and (CORPUS / f"{c['module']}.cubin").exists()
        assert f".entry {c['kernel']}(" in (CORPUS / f"{c['module']}.ptx").read_text()


@pytest.mark.parametrize("case", CASES, ids=[c["kernel"] for c in CASES])
def test_corpus_kernel_on_mock(mock_dev, mock_images, case):
    prog = mock_dev.program(mock_images[case["module"]], case["kernel"])
    run_case(mock_dev, prog, case)


def test_reference_helpers_against_known_values():
    # byte_perm examples from the CUDA Math API's definition (selector nibbles pick bytes of y:x)
    assert int(byte_perm(0x33221100, 0x77665544, 0x3210)) == 0x33221100
    assert int(byte_perm(0x33221100, 0x77665544, 0x7654)) == 0x77665544
    assert int(byte_perm(0x33221100, 0x77665544, 0x0123)) == 0x00112233
    assert [fibonacci(k) for k in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]
    assert collatz_steps(27) == 111 and collatz_steps(1) == 0
    # bfloat16: 1 + 2**-8 is a tie between 1 and 1 + 2**-7 -> even (1.0); 1 + 3*2**-8 -> 1 + 2**-6
    assert bf16_rn([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, -2.0, 0.1]).tolist() == [0x3F80, 0x3F80, 0x3F82, 0xC000, 0x3DCD]
    assert bf16_value([0x3F80, 0xC040]).tolist() == [1.0, -3.0]
    assert pack_bits([1, -1, 7, -8], 4).tolist() == [0xF1, 0x87]
    assert pack_bits([1, 0, 0, 0, 0, 0, 0, 1], 1).tolist() == [0x81]
    assert unpack_bits([0xF1, 0x87], 4, True).tolist() == [1, -1, 7, -8]
    # fp8 (OCP): e4m3 max 448 = 0x7E, 1.0 = 0x38, min subnormal 2**-9 = 0x01; e5m2 max 57344 = 0x7B
    assert fp8_ref_encode([448.0, 1e9, 1.0, 2.0**-9, -2.0], "e4m3").tolist() == [0x7E, 0x7E, 0x38, 0x01, 0xC0]
    assert fp8_ref_encode([57344.0, 1.0, 1.125], "e5m2").tolist() == [0x7B, 0x3C, 0x3C]   # 1.125: tie -> even
