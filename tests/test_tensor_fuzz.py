"""A hypothesis fuzzer: random small graphs of elementwise ops, broadcasts, reductions and
movement, run on the test device and compared with the same ops in numpy."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensor import Tensor
from test_tensor_helpers import device  # noqa: F401

UNARY = [("neg", lambda t: -t, lambda x: -x), ("relu", lambda t: t.relu(), lambda x: np.maximum(x, 0)),
         ("abs", lambda t: t.abs(), np.abs), ("sigmoid", lambda t: t.sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
         ("exp", lambda t: (t * 0.25).exp(), lambda x: np.exp(x * np.float32(0.25)))]
BINARY = [("add", lambda a, b: a + b, np.add), ("mul", lambda a, b: a * b, np.multiply),
          ("sub", lambda a, b: a - b, np.subtract), ("max", lambda a, b: a.maximum(b), np.maximum)]


@st.composite
def programs(draw):
    """(tensor builder, numpy builder): both take the same list of input arrays."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    inputs = [draw(st.sampled_from([shape, tuple(1 if draw(st.booleans()) else s for s in shape)]))
              for _ in range(2)]
    steps = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10**6)), min_size=1, max_size=6))
    return shape, inputs, steps


def build(lib: str, arrays, steps):
    vals = list(arrays)
    for kind, r in steps:
        x = vals[r % len(vals)]
        shp = x.shape
        if kind == 0:
            _, f, g = UNARY[r % len(UNARY)]
            y = f(x) if lib == "t" else g(x)
        elif kind == 1:
            _, f, g = BINARY[r % len(BINARY)]
            z = vals[(r // 7) % len(vals)]
            try:
                np.broadcast_shapes(shp, z.shape)
            except ValueError:
                continue
            y = f(x, z) if lib == "t" else g(x, z)
        elif kind == 2 and len(shp):
            ax = r % len(shp)
            keep = bool(r & 8)
            if r & 16:
                y = x.sum(axis=ax, keepdim=keep) if lib == "t" else x.sum(axis=ax, keepdims=keep, dtype=np.float32)
            else:
                y = x.max(axis=ax, keepdim=keep) if lib == "t" else x.max(axis=ax, keepdims=keep)
        elif kind == 3 and len(shp) >= 2:
            order = list(range(len(shp)))[::-1] if r & 1 else list(range(1, len(shp))) + [0]
            y = x.permute(order) if lib == "t" else x.transpose(order)
        elif kind == 4 and len(shp):
            pads = tuple(((r >> (2 * i)) & 1, (r >> (2 * i + 1)) & 1) for i in range(len(shp)))
            y = x.pad(pads) if lib == "t" else np.pad(x, pads)
        elif kind == 5 and len(shp) and shp[0] > 1:
            lo = r % shp[0]
            y = x[lo:] if r & 2 else x[::2]
            y = y.reshape(-1)
        else:
            continue
        vals.append(y)
    return vals[-1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(programs(), st.integers(0, 2**32 - 1))
def test_random_graphs_match_numpy(device, prog, seed):
    shape, inputs, steps = prog
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in inputs]
    want = build("np", arrays, steps)
    got = build("t", [Tensor(a, device=device) for a in arrays], steps).numpy()
    np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-4, atol=1e-5)
