"""Shared helpers of the PTX interpreter tests: a mock GPU address space (the real
GpuPageTable over PhysBlocks) with a bump allocator, parameter packing from a kernel's own
metadata, and a one-instruction-per-thread harness. The tests at the bottom check the helpers."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from hwdrv.mock import GpuPageTable, PhysBlock
from hwdrv.mock.nvidia import ptx

DATA = Path(__file__).parent / "data" / "ptx"
VA_BASE = 0x20_0000_0000


class Gpu:
    """A GPU address space for tests: ``alloc``/``upload``/``download`` and ``run``."""

    def __init__(self, size: int = 64 << 20):
        self.block = PhysBlock(size, "ptx-test")
        self.pt = GpuPageTable()
        self.pt.map(VA_BASE, self.block.host_addr, size)
        self.size, self.top = size, 0

    def close(self) -> None:
        self.block.close()

    def alloc(self, nbytes: int, align: int = 256) -> int:
        self.top = (self.top + align - 1) // align * align
        if self.top + nbytes > self.size:     # a ring: one test never needs the whole space
            self.top = 0
        assert nbytes <= self.size, "test GPU out of memory"
        va = VA_BASE + self.top
        self.top += max(nbytes, 1)
        self.pt.write(va, bytes(max(nbytes, 1)))
        return va

    def upload(self, arr: np.ndarray) -> int:
        arr = np.ascontiguousarray(arr)
        va = self.alloc(arr.nbytes)
        self.pt.write(va, arr.tobytes())
        return va

    def download(self, va: int, dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.pt.read(va, dt.itemsize * count), dt).copy()

    def run(self, module: ptx.Module, name: str, grid, block, args: list, **kw) -> ptx.LaunchResult:
        return ptx.launch(module, name, grid, block, pack_params(module.entries[name], args), self.pt, **kw)


def pack_params(entry: ptx.Entry, args: list) -> bytes:
    """Pack ``args`` (ints, floats or bytes) at the offsets the entry's parameter layout gives."""
    assert len(args) == len(entry.params), f"{entry.name} takes {len(entry.params)} args"
    buf = bytearray(entry.param_size)
    for p, a in zip(entry.params, args):
        if isinstance(a, (bytes, bytearray)):
            raw = bytes(a)
        elif p.type in ("f32", "f64"):
            raw = struct.pack("<f" if p.type == "f32" else "<d", a)
        else:
            raw = (int(a) & ((1 << (8 * p.size)) - 1)).to_bytes(p.size, "little")
        assert len(raw) == p.size, (p, len(raw))
        buf[p.offset:p.offset + p.size] = raw
    return bytes(buf)


@pytest.fixture(scope="module")
def gpu():
    g = Gpu()
    yield g
    g.close()


def assert_launch_refused(module: ptx.Module, kernel: str, line: int, word: str) -> ptx.IllegalInstruction:
    """``kernel`` of a module that loaded holds an instruction the mock cannot run: its launch
    faults with IllegalInstruction (not an InterpreterDefect) naming the kernel, the PTX line
    and ``word``, and the reason is listed on the entry."""
    entry = module.entries[kernel]
    assert entry.unsupported and entry.unsupported[0].line == line, [str(u) for u in entry.unsupported]
    g = Gpu(1 << 20)
    try:
        with pytest.raises(ptx.IllegalInstruction) as ei:
            params = [g.alloc(64) if p.size == 8 else 0 for p in entry.params]
            g.run(module, kernel, 1, 32, params)
    finally:
        g.close()
    e = ei.value
    assert not isinstance(e, ptx.InterpreterDefect)
    assert e.line == line and e.entry == kernel and word in str(e) and f"PTX line {line}" in str(e), str(e)
    assert f"kernel {kernel}" in str(e)
    return e


def load_ptx(name: str) -> ptx.Module:
    return ptx.parse((DATA / f"{name}.ptx").read_text())


_REG = {1: "b16", 2: "b16", 4: "b32", 8: "b64"}
_LDST = {1: "u8", 2: "b16", 4: "b32", 8: "b64"}


def run_op(gpu: Gpu, instr: str, inputs: list[np.ndarray], out_dtypes: list, *, reg_types=None,
           out_reg_types=None, block: int = 128, extra_decl: str = "") -> list[np.ndarray]:
    """Run ``instr`` once per element: inputs %a %b %c (loaded from arrays), outputs %d %e
    (stored to arrays). ``reg_types`` overrides the register types of the inputs."""
    n = len(inputs[0]) if inputs else block
    names_in, names_out = ["a", "b", "c", "x"], ["d", "e"]
    decl, body, params = [], [], []
    for k, arr in enumerate(inputs):
        sz = arr.dtype.itemsize
        rt = (reg_types or {}).get(k) or ("pred" if arr.dtype == np.bool_ else _REG[sz])
        params.append(f".param .u64 p{names_in[k]}")
        decl.append(f".reg .{rt} %{names_in[k]};")
        if rt == "pred":
            decl.append(f".reg .b16 %t{names_in[k]};")
            body += [f"ld.param.u64 %ad, [p{names_in[k]}];", "cvta.to.global.u64 %ad, %ad;",
                     f"mad.wide.u32 %ad, %i, 1, %ad;", f"ld.global.u8 %t{names_in[k]}, [%ad];",
                     f"setp.ne.b16 %{names_in[k]}, %t{names_in[k]}, 0;"]
        else:
            ld = _LDST[sz] if rt != "b16" or sz == 2 else "u8"
            body += [f"ld.param.u64 %ad, [p{names_in[k]}];", "cvta.to.global.u64 %ad, %ad;",
                     f"mad.wide.u32 %ad, %i, {sz}, %ad;", f"ld.global.{ld} %{names_in[k]}, [%ad];"]
    body.append(instr)
    for k, dt in enumerate(out_dtypes):
        dt = np.dtype(dt)
        sz = dt.itemsize
        rt = (out_reg_types or {}).get(k) or ("pred" if dt == np.bool_ else _REG[sz])
        params.append(f".param .u64 p{names_out[k]}")
        decl.append(f".reg .{rt} %{names_out[k]};")
        body += [f"ld.param.u64 %ad, [p{names_out[k]}];", "cvta.to.global.u64 %ad, %ad;",
                 f"mad.wide.u32 %ad, %i, {sz}, %ad;"]
        if rt == "pred":
            decl.append(f".reg .b16 %t{names_out[k]};")
            body += [f"selp.u16 %t{names_out[k]}, 1, 0, %{names_out[k]};", f"st.global.u8 [%ad], %t{names_out[k]};"]
        else:
            st = _LDST[sz] if not (rt == "b16" and sz == 1) else "u8"
            body += [f"st.global.{st} [%ad], %{names_out[k]};"]
    text = f"""
.version 8.0
.target sm_90
.address_size 64
.visible .entry k({", ".join(params)})
{{
    .reg .b32 %i, %nt, %ct, %ti;
    .reg .b64 %ad;
    .reg .pred %inb;
    {" ".join(decl)}
    {extra_decl}
    mov.u32 %ct, %ctaid.x;
    mov.u32 %nt, %ntid.x;
    mov.u32 %ti, %tid.x;
    mad.lo.u32 %i, %ct, %nt, %ti;
    setp.ge.u32 %inb, %i, {n};
    @%inb bra DONE;
    {chr(10).join(body)}
DONE:
    ret;
}}
"""
    mod = ptx.parse(text)
    ins_va = [gpu.upload(a.astype(np.uint8) if a.dtype == np.bool_ else a) for a in inputs]
    outs = [gpu.alloc(np.dtype(dt).itemsize * n) for dt in out_dtypes]
    gpu.run(mod, "k", ((n + block - 1) // block,), (block,), ins_va + outs)
    res = []
    for va, dt in zip(outs, out_dtypes):
        dt = np.dtype(dt)
        if dt == np.bool_:
            res.append(gpu.download(va, np.uint8, n).astype(bool))
        else:
            res.append(gpu.download(va, dt, n))
    return res


def bits(a: np.ndarray) -> np.ndarray:
    """Raw bits of a float array (for exact comparisons that include NaN and -0)."""
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


# ---- tests of the helpers themselves ------------------------------------------------------------
def test_gpu_roundtrip(gpu):
    va = gpu.upload(np.arange(10, dtype=np.int32))
    assert gpu.download(va, np.int32, 10).tolist() == list(range(10))
    assert gpu.alloc(4) % 256 == 0


def test_run_op_identity(gpu):
    x = np.arange(300, dtype=np.uint32) * 7
    (d,) = run_op(gpu, "mov.b32 %d, %a;", [x], [np.uint32])
    assert (d == x).all()
