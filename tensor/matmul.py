"""Hand-structured matmul kernels, generated as PTX for C[M,N] = A[M,K] @ B[K,N] (row-major,
contiguous): shapes are baked in, so each (shape, dtype) is its own cached program.

* ``mma`` (f16/bf16 on sm_80+): 128x128x32 block tiles staged in shared memory, 8 warps each
  owning a 64x32 tile, fragments loaded with ``ldmatrix`` and multiplied with
  ``mma.sync.m16n8k16`` into f32 accumulators. Needs K and N multiples of 8 (16-byte rows).
* ``simt`` (f32, and narrow floats of other shapes): 128x128x8 block tiles, each thread
  accumulating an 8x8 tile with f32 FMAs."""
from __future__ import annotations

from dataclasses import dataclass

from .dtype import DType, bfloat16, float16, float32
from .render.ptx import PTX_VERSION

THREADS = 256


@dataclass(frozen=True)
class MatmulKernel:
    """A generated matmul: its PTX, entry name, and launch geometry. Parameters: C, A, B."""
    name: str
    ptx: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared: int = 0


def uses_tensor_cores(arch: str, dtype: DType, k: int, n: int) -> bool:
    """Whether ``matmul_kernel`` picks mma.sync for this case."""
    sm = int(arch.removeprefix("sm_").rstrip("a") or 0)
    return dtype in (float16, bfloat16) and sm >= 80 and k % 8 == 0 and n % 8 == 0


def matmul_kernel(arch: str, dtype: DType, m: int, n: int, k: int) -> MatmulKernel:
    """The kernel for a (m, k) @ (k, n) matmul of ``dtype`` on ``arch``."""
    if uses_tensor_cores(arch, dtype, k, n):
        return _mma_kernel(arch, dtype, m, n, k)
    return _simt_kernel(arch, dtype, m, n, k)


class _Ptx:
    """Line collector for a kernel body."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line if line.endswith(":") else "\t" + line)


def _header(arch: str, name: str, regs: list[str], shared: list[str]) -> list[str]:
    return [f".version {PTX_VERSION}", f".target {arch}", ".address_size 64", "",
            f".visible .entry {name}(", "\t.param .u64 pc,", "\t.param .u64 pa,", "\t.param .u64 pb", ")",
            f".maxntid {THREADS}, 1, 1", "{"] + ["\t" + r for r in regs] + ["\t" + s for s in shared]


def _load_elem(e: _Ptx, dtype: DType, dst: str, addr: str, pred: str) -> None:
    """dst (f32) = element at addr if pred, else 0."""
    e(f"mov.f32 {dst}, 0f00000000;")
    if dtype == float32:
        e(f"@{pred} ld.global.f32 {dst}, [{addr}];")
    else:
        e(f"@{pred} ld.global.b16 %h0, [{addr}];")
        e(f"@{pred} cvt.f32.{dtype.ptx} {dst}, %h0;")


def _store_elem(e: _Ptx, dtype: DType, src: str, addr: str, pred: str) -> None:
    if dtype == float32:
        e(f"@{pred} st.global.f32 [{addr}], {src};")
    else:
        e(f"cvt.rn.{dtype.ptx}.f32 %h0, {src};")
        e(f"@{pred} st.global.b16 [{addr}], %h0;")


def _simt_kernel(arch: str, dtype: DType, m: int, n: int, k: int) -> MatmulKernel:
    bm = bn = 128
    bk, tm, tn = 8, 8, 8
    sa = bm + 4                 # As is [bk][bm] (transposed) padded: fewer bank conflicts on store
    name = f"matmul_simt_{dtype.name}_{m}_{n}_{k}"
    size = dtype.itemsize
    e = _Ptx()
    e("mov.u32 %r0, %tid.x;")
    e("and.b32 %r1, %r0, 15;")               # tx: column group
    e("shr.u32 %r2, %r0, 4;")                # ty: row group
    e("mov.u32 %r3, %ctaid.x;")
    e(f"mul.lo.s32 %r3, %r3, {bn};")        # block's first column
    e("mov.u32 %r4, %ctaid.y;")
    e(f"mul.lo.s32 %r4, %r4, {bm};")        # block's first row
    for p in ("pc", "pa", "pb"):
        e(f"ld.param.u64 %rd_{p}, [{p}];")
        e(f"cvta.to.global.u64 %rd_{p}, %rd_{p};")
    for i in range(tm * tn):
        e(f"mov.f32 %acc{i}, 0f00000000;")
    e("mov.u32 %r5, As;")
    e("mov.u32 %r6, Bs;")
    e("mov.s32 %r7, 0;")                    # k0
    e("$KLOOP:")
    # A tile (bm x bk): element l = tid + 256*i -> row tid/8 + 32*i, col tid%8
    e("and.b32 %r8, %r0, 7;")
    e("shr.u32 %r9, %r0, 3;")
    e("add.s32 %r10, %r7, %r8;")             # global k of this thread's A column
    e(f"setp.lt.s32 %pk, %r10, {k};")
    for i in range(bm * bk // THREADS):
        e(f"add.s32 %r11, %r9, {32 * i};")
        e("add.s32 %r12, %r4, %r11;")         # global row
        e(f"setp.lt.and.s32 %pv, %r12, {m}, %pk;")
        e(f"mad.lo.s32 %r13, %r12, {k}, %r10;")
        e(f"mul.wide.s32 %rd0, %r13, {size};")
        e("add.s64 %rd0, %rd_pa, %rd0;")
        _load_elem(e, dtype, "%fv", "%rd0", "%pv")
        e(f"mad.lo.s32 %r13, %r8, {sa}, %r11;")
        e("shl.b32 %r13, %r13, 2;")
        e("add.s32 %r13, %r13, %r5;")
        e("st.shared.f32 [%r13], %fv;")
    # B tile (bk x bn): element l -> row tid/128 + 2*i, col tid%128
    e(f"and.b32 %r8, %r0, {bn - 1};")
    e("shr.u32 %r9, %r0, 7;")
    e("add.s32 %r10, %r3, %r8;")             # global column
    e(f"setp.lt.s32 %pk, %r10, {n};")
    for i in range(bk * bn // THREADS):
        e(f"add.s32 %r11, %r9, {2 * i};")
        e("add.s32 %r12, %r7, %r11;")         # global k
        e(f"setp.lt.and.s32 %pv, %r12, {k}, %pk;")
        e(f"mad.lo.s32 %r13, %r12, {n}, %r10;")
        e(f"mul.wide.s32 %rd0, %r13, {size};")
        e("add.s64 %rd0, %rd_pb, %rd0;")
        _load_elem(e, dtype, "%fv", "%rd0", "%pv")
        e(f"mad.lo.s32 %r13, %r11, {bn}, %r8;")
        e("shl.b32 %r13, %r13, 2;")
        e("add.s32 %r13, %r13, %r6;")
        e("st.shared.f32 [%r13], %fv;")
    e("bar.sync 0;")
    e(f"mul.lo.s32 %r14, %r2, {tm * 4};")
    e("add.s32 %r14, %r14, %r5;")            # &As[0][ty*tm]
    e(f"mul.lo.s32 %r15, %r1, {tn * 4};")
    e("add.s32 %r15, %r15, %r6;")            # &Bs[0][tx*tn]
    for kk in range(bk):
        for q in range(tm // 4):
            a = ", ".join(f"%fa{4 * q + j}" for j in range(4))
            e(f"ld.shared.v4.f32 {{{a}}}, [%r14+{(kk * sa + 4 * q) * 4}];")
        for q in range(tn // 4):
            b = ", ".join(f"%fb{4 * q + j}" for j in range(4))
            e(f"ld.shared.v4.f32 {{{b}}}, [%r15+{(kk * bn + 4 * q) * 4}];")
        for i in range(tm):
            for j in range(tn):
                e(f"fma.rn.f32 %acc{i * tn + j}, %fa{i}, %fb{j}, %acc{i * tn + j};")
    e("bar.sync 0;")
    e(f"add.s32 %r7, %r7, {bk};")
    e(f"setp.lt.s32 %pl, %r7, {k};")
    e("@%pl bra $KLOOP;")
    # epilogue: C[row, col] for this thread's tm x tn tile
    for i in range(tm):
        e(f"mad.lo.s32 %r12, %r2, {tm}, %r4;")
        e(f"add.s32 %r12, %r12, {i};")
        e(f"setp.lt.s32 %pk, %r12, {m};")
        for j in range(tn):
            e(f"mad.lo.s32 %r10, %r1, {tn}, %r3;")
            e(f"add.s32 %r10, %r10, {j};")
            e(f"setp.lt.and.s32 %pv, %r10, {n}, %pk;")
            e(f"mad.lo.s32 %r13, %r12, {n}, %r10;")
            e(f"mul.wide.s32 %rd0, %r13, {size};")
            e("add.s64 %rd0, %rd_pc, %rd0;")
            _store_elem(e, dtype, f"%acc{i * tn + j}", "%rd0", "%pv")
    regs = [".reg .pred %pk, %pv, %pl;", ".reg .b16 %h0;", ".reg .b32 %r<16>;", ".reg .f32 %fv;",
            f".reg .f32 %acc<{tm * tn}>;", f".reg .f32 %fa<{tm}>;", f".reg .f32 %fb<{tn}>;",
            ".reg .b64 %rd0, %rd_pc, %rd_pa, %rd_pb;"]
    shared = [f".shared .align 16 .f32 As[{bk * sa}];", f".shared .align 16 .f32 Bs[{bk * bn}];"]
    text = "\n".join(_header(arch, name, regs, shared) + e.lines + ["\tret;", "}", ""])
    return MatmulKernel(name, text, (-(-n // bn), -(-m // bm), 1), (THREADS, 1, 1))


def _mma_kernel(arch: str, dtype: DType, m: int, n: int, k: int) -> MatmulKernel:
    bm, bn, bk = 128, 128, 32
    sa, sb = bk + 8, bn + 8     # shared row strides in halves: ldmatrix rows hit distinct banks
    wm, wn = 64, 32             # warp tile: 2 x 4 warps
    mt, nt = wm // 16, wn // 8
    t = dtype.ptx
    name = f"matmul_mma_{dtype.name}_{m}_{n}_{k}"
    e = _Ptx()
    e("mov.u32 %r0, %tid.x;")
    e("shr.u32 %r1, %r0, 5;")                # warp
    e("and.b32 %r2, %r0, 31;")               # lane
    e("shr.u32 %r20, %r1, 2;")
    e(f"mul.lo.s32 %r20, %r20, {wm};")      # warp's first row in the block tile
    e("and.b32 %r21, %r1, 3;")
    e(f"mul.lo.s32 %r21, %r21, {wn};")      # warp's first column in the block tile
    e("mov.u32 %r3, %ctaid.x;")
    e(f"mul.lo.s32 %r3, %r3, {bn};")
    e("mov.u32 %r4, %ctaid.y;")
    e(f"mul.lo.s32 %r4, %r4, {bm};")
    for p in ("pc", "pa", "pb"):
        e(f"ld.param.u64 %rd_{p}, [{p}];")
        e(f"cvta.to.global.u64 %rd_{p}, %rd_{p};")
    for i in range(mt * nt * 4):
        e(f"mov.f32 %acc{i}, 0f00000000;")
    e("mov.u32 %r5, As;")
    e("mov.u32 %r6, Bs;")
    # ldmatrix row addresses (bytes, relative to the k-step's start) for this lane
    e("and.b32 %r22, %r2, 7;")
    e("shr.u32 %r23, %r2, 3;")               # which 8x8 matrix this lane addresses
    # A (x4): row = lane%8 + 8*(mat%2), col = 8*(mat/2)
    e("and.b32 %r24, %r23, 1;")
    e("mad.lo.s32 %r24, %r24, 8, %r22;")
    e("add.s32 %r24, %r24, %r20;")
    e("shr.u32 %r25, %r23, 1;")
    e(f"mul.lo.s32 %r24, %r24, {sa};")
    e("mad.lo.s32 %r24, %r25, 8, %r24;")
    e("shl.b32 %r24, %r24, 1;")
    e("add.s32 %r24, %r24, %r5;")            # &As[wrow + ...][8*(mat/2)]
    # B (x4.trans, two n-tiles): k = lane%8 + 8*(mat%2), n = 8*(mat/2)
    e("and.b32 %r26, %r23, 1;")
    e("mad.lo.s32 %r26, %r26, 8, %r22;")
    e(f"mul.lo.s32 %r26, %r26, {sb};")
    e("shr.u32 %r27, %r23, 1;")
    e("mad.lo.s32 %r26, %r27, 8, %r26;")
    e("add.s32 %r26, %r26, %r21;")
    e("shl.b32 %r26, %r26, 1;")
    e("add.s32 %r26, %r26, %r6;")            # &Bs[k][wcol + 8*(mat/2)]
    e("mov.s32 %r7, 0;")
    e("$KLOOP:")
    # A tile 128 x 32: 16-byte chunks c = tid + 256*i: row c/4, col 8*(c%4)
    for i in range(bm * bk // 8 // THREADS):
        e(f"add.s32 %r8, %r0, {THREADS * i};")
        e("shr.u32 %r9, %r8, 2;")
        e("and.b32 %r10, %r8, 3;")
        e("shl.b32 %r10, %r10, 3;")
        e("add.s32 %r11, %r4, %r9;")
        e("add.s32 %r12, %r7, %r10;")
        e(f"setp.lt.s32 %pk, %r12, {k};")
        e(f"setp.lt.and.s32 %pv, %r11, {m}, %pk;")
        e(f"mad.lo.s32 %r13, %r11, {k}, %r12;")
        _chunk_copy(e, "%rd_pa", sa, "%r5")
    # B tile 32 x 128: chunks c: row c/16, col 8*(c%16)
    for i in range(bk * bn // 8 // THREADS):
        e(f"add.s32 %r8, %r0, {THREADS * i};")
        e("shr.u32 %r9, %r8, 4;")
        e("and.b32 %r10, %r8, 15;")
        e("shl.b32 %r10, %r10, 3;")
        e("add.s32 %r11, %r7, %r9;")
        e("add.s32 %r12, %r3, %r10;")
        e(f"setp.lt.s32 %pk, %r12, {n};")
        e(f"setp.lt.and.s32 %pv, %r11, {k}, %pk;")
        e(f"mad.lo.s32 %r13, %r11, {n}, %r12;")
        _chunk_copy(e, "%rd_pb", sb, "%r6")
    e("bar.sync 0;")
    for ks in range(bk // 16):
        for i in range(mt):
            regs = ", ".join(f"%a{i}_{j}" for j in range(4))
            e(f"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{regs}}}, [%r24+{(i * 16 * sa + ks * 16) * 2}];")
        for j in range(0, nt, 2):
            regs = f"%b{j}_0, %b{j}_1, %b{j + 1}_0, %b{j + 1}_1"
            e(f"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {{{regs}}}, [%r26+{(ks * 16 * sb + j * 8) * 2}];")
        for i in range(mt):
            for j in range(nt):
                c = ", ".join(f"%acc{(i * nt + j) * 4 + q}" for q in range(4))
                a = ", ".join(f"%a{i}_{q}" for q in range(4))
                e(f"mma.sync.aligned.m16n8k16.row.col.f32.{t}.{t}.f32 {{{c}}}, {{{a}}}, "
                  f"{{%b{j}_0, %b{j}_1}}, {{{c}}};")
    e("bar.sync 0;")
    e(f"add.s32 %r7, %r7, {bk};")
    e(f"setp.lt.s32 %pl, %r7, {k};")
    e("@%pl bra $KLOOP;")
    # epilogue: c_q of tile (i, j) is at row g + 8*(q/2), col 2*t4 + q%2
    e("shr.u32 %r14, %r2, 2;")               # g
    e("and.b32 %r15, %r2, 3;")
    e("shl.b32 %r15, %r15, 1;")              # 2*t4
    e("add.s32 %r14, %r14, %r20;")
    e("add.s32 %r14, %r14, %r4;")            # global row of c_0
    e("add.s32 %r15, %r15, %r21;")
    e("add.s32 %r15, %r15, %r3;")            # global column of c_0
    for i in range(mt):
        for half in range(2):
            e(f"add.s32 %r11, %r14, {i * 16 + 8 * half};")
            e(f"setp.lt.s32 %pk, %r11, {m};")
            for j in range(nt):
                for q in range(2):
                    e(f"add.s32 %r12, %r15, {j * 8 + q};")
                    e(f"setp.lt.and.s32 %pv, %r12, {n}, %pk;")
                    e(f"mad.lo.s32 %r13, %r11, {n}, %r12;")
                    e(f"mul.wide.s32 %rd0, %r13, {dtype.itemsize};")
                    e("add.s64 %rd0, %rd_pc, %rd0;")
                    _store_elem(e, dtype, f"%acc{(i * nt + j) * 4 + 2 * half + q}", "%rd0", "%pv")
    regs = [".reg .pred %pk, %pv, %pl;", ".reg .b16 %h0;", ".reg .b32 %r<28>;",
            ".reg .b32 %v<4>;", f".reg .f32 %acc<{mt * nt * 4}>;",
            ".reg .b64 %rd0, %rd_pc, %rd_pa, %rd_pb;"]
    regs += [f".reg .b32 %a{i}_<4>;" for i in range(mt)] + [f".reg .b32 %b{j}_<2>;" for j in range(nt)]
    shared = [f".shared .align 16 .b16 As[{bm * sa}];", f".shared .align 16 .b16 Bs[{bk * sb}];"]
    text = "\n".join(_header(arch, name, regs, shared) + e.lines + ["\tret;", "}", ""])
    return MatmulKernel(name, text, (-(-n // bn), -(-m // bm), 1), (THREADS, 1, 1))


def _chunk_copy(e: _Ptx, base: str, stride: int, smem: str) -> None:
    """Copy 8 halves from global element %r13 of ``base`` (zeros unless %pv) to shared at
    row %r9, column %r10 of a [.][stride] array at ``smem``."""
    for q in range(4):
        e(f"mov.b32 %v{q}, 0;")
    e("mul.wide.s32 %rd0, %r13, 2;")
    e(f"add.s64 %rd0, {base}, %rd0;")
    e("@%pv ld.global.v4.b32 {%v0, %v1, %v2, %v3}, [%rd0];")
    e(f"mad.lo.s32 %r13, %r9, {stride}, %r10;")
    e("shl.b32 %r13, %r13, 1;")
    e(f"add.s32 %r13, %r13, {smem};")
    e("st.shared.v4.b32 [%r13], {%v0, %v1, %v2, %v3};")
