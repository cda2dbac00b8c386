"""Inputs and numpy-expected outputs for the kernel cases in kernels.json.

Used by the mock-GPU kernel tests: ``load()`` gives the cases; for one case, ``make_inputs`` builds
every argument (numpy arrays for buffers, numpy scalars for by-value arguments), ``expected``
evaluates the numpy formulas on those inputs, and ``compare`` checks the buffers a run produced.
The formulas are plain numpy (plus the reference helpers below); they never use hwdrv.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent


def load() -> list[dict]:
    """All cases of kernels.json, each a dict (see the file's "about")."""
    return json.loads((HERE / "kernels.json").read_text())["cases"]


def case_id(case: dict) -> str:
    return f"{case['file'][:-6]}:{case['kernel']}"


# ---- reference helpers (independent of the kernels; numpy / Python integers) ----
def _popcount32(a):
    return np.array([bin(int(v)).count("1") for v in a.ravel()], dtype=np.uint32)


def _clz32(a):
    return np.array([32 - int(v).bit_length() for v in a.ravel()], dtype=np.uint32)


def _c_div(a, b):
    return np.array([_trunc_div(int(x), int(y)) for x, y in zip(a, b)], dtype=np.int64)


def _trunc_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _c_rem(a, b):
    return np.array([int(x) - _trunc_div(int(x), int(y)) * int(y) for x, y in zip(a, b)], dtype=np.int64)


def _ballot32(pred):
    bits = pred.reshape(-1, 32).astype(np.uint64) << np.arange(32, dtype=np.uint64)
    return bits.sum(axis=1).astype(np.uint32)


def _collatz_steps(a):
    out = []
    for v in a:
        x, s = int(v), 0
        while x != 1:
            x = 3 * x + 1 if x & 1 else x >> 1
            s += 1
        out.append(s)
    return np.array(out, dtype=np.uint32)


def _powmod(base, exp, mod):
    return np.array([pow(int(b), int(e), int(mod)) for b, e in zip(base, exp)], dtype=np.uint64)


def _csr_matvec(rowptr, col, val, x):
    y = np.zeros(len(rowptr) - 1, dtype=np.float64)
    for r in range(len(y)):
        k = slice(int(rowptr[r]), int(rowptr[r + 1]))
        y[r] = np.dot(val[k].astype(np.float64), x[col[k]].astype(np.float64))
    return y.astype(np.float32)


def _grid3d_index(size):
    z, y, x = np.indices(size[::-1], dtype=np.uint32)
    return (x + 1000 * y + 1000000 * z).ravel()


def _grid_queries(glob, loc):
    """OpenCL get_local_size/get_num_groups/get_global_size per work-item (x fastest)."""
    out = []
    for z in range(glob[2]):
        for y in range(glob[1]):
            for x in range(glob[0]):
                idx = (x, y, z)
                ls = [loc[d] if idx[d] // loc[d] < glob[d] // loc[d] else glob[d] % loc[d] for d in range(3)]
                out += ls + [math.ceil(glob[d] / loc[d]) for d in range(3)] + list(glob)
    return np.array(out, dtype=np.uint32)


def _box3d(inp, W, H, D):
    v = np.pad(inp.reshape(int(D), int(H), int(W)).astype(np.float64), 1, mode="edge")
    s = sum(v[1 + dz:1 + dz + int(D), 1 + dy:1 + dy + int(H), 1 + dx:1 + dx + int(W)]
            for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    return s.ravel().astype(np.float32)


def _row_mode(rows, bins):
    return np.array([np.bincount(r, minlength=bins).argmax() for r in rows], dtype=np.uint32)


ref = SimpleNamespace(popcount32=_popcount32, clz32=_clz32, c_div=_c_div, c_rem=_c_rem, ballot32=_ballot32,
                      collatz_steps=_collatz_steps, powmod=_powmod, csr_matvec=_csr_matvec,
                      grid3d_index=_grid3d_index, grid_queries=_grid_queries, box3d=_box3d, row_mode=_row_mode)


# ---- inputs / expectations ----
def _init(spec: str, dtype: np.dtype, count: int | None, rng: np.random.Generator, env: dict) -> np.ndarray:
    kind, _, rest = spec.partition(":")
    if kind == "expr":
        return np.ascontiguousarray(eval(rest, {"np": np, "rng": rng, **env}), dtype=dtype)
    if kind == "zeros":
        return np.zeros(count, dtype)
    if kind == "values":
        return np.array([int(v) for v in rest.split(",")], dtype=dtype)
    if kind == "randbits":
        return rng.integers(0, 256, count * dtype.itemsize, dtype=np.uint8).view(dtype)
    if kind == "uniform":
        lo, hi = (float(v) for v in rest.split(":"))
        return rng.uniform(lo, hi, count).astype(dtype)
    if kind in ("randint", "randint_nonzero"):
        lo, hi = (int(v) for v in rest.split(":"))
        idt = dtype if dtype.kind in "iu" else np.int64
        v = rng.integers(lo, hi, count, dtype=idt)
        if kind == "randint_nonzero":
            v[v == 0] = 1
        return v.astype(dtype)
    raise ValueError(f"unknown init rule {spec!r}")


def make_inputs(case: dict, seed: int | None = None) -> dict:
    """Name -> numpy array (buffers, in their initial state) or numpy scalar (values)."""
    rng = np.random.default_rng(seed if seed is not None else 12)
    env: dict = {}
    for a in case["args"]:
        if a["kind"] == "value":
            env[a["name"]] = np.dtype(a["dtype"]).type(a["value"])
    for a in case["args"]:
        if a["kind"] == "buffer":
            env[a["name"]] = _init(a["init"], np.dtype(a["dtype"]), a.get("count"), rng, env)
    return {a["name"]: env[a["name"]] for a in case["args"]}


def expected(case: dict, inputs: dict) -> dict:
    """Output buffer name -> expected numpy array."""
    env = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}
    with np.errstate(over="ignore"):
        return {name: np.asarray(eval(expr, {"np": np, "ref": ref, **env}))
                for name, expr in case["expect"].items()}


def compare(case: dict, inputs: dict, outputs: dict) -> None:
    """Assert every expected buffer matches ``outputs`` (name -> array after the run)."""
    want = expected(case, inputs)
    for name, exp in want.items():
        got = outputs[name]
        if name in case.get("post", {}):
            got = np.asarray(eval(case["post"][name], {"np": np, **outputs}))
        assert got.shape == exp.shape, f"{case_id(case)} {name}: shape {got.shape} != {exp.shape}"
        if case["rtol"] or case["atol"]:
            np.testing.assert_allclose(got.astype(np.float64), exp.astype(np.float64), rtol=case["rtol"],
                                       atol=case["atol"], err_msg=f"{case_id(case)} {name}")
        else:
            np.testing.assert_array_equal(got, exp.astype(got.dtype), err_msg=f"{case_id(case)} {name}")
