"""Matmul kernels for gfx11 as LLVM IR: C[M,N] = A[M,K] @ B[K,N] (row-major, contiguous),
compiled by llvmlite like every AMD tensor kernel. Shapes are baked in (one program per shape).

* f16 / bf16: ``v_wmma_f32_16x16x16_f16/bf16`` (``llvm.amdgcn.wmma.*``, wave32). A workgroup of
  WAVES_M x WAVES_N waves computes a BM x BN tile, each wave FRAG_M x FRAG_N 16x16 fragments
  accumulated in f32. Per BK=16 step the workgroup stages the A tile (rows, k contiguous) and
  the B tile transposed (columns, k contiguous) in LDS, zero-filled past the edges, so each lane
  reads its fragment row / column as one 32-byte LDS vector: lane l holds row (A) / column (B)
  l % 16, and accumulator register r of lane l is element (2r + l // 16, l % 16).
* f32: register tiles of SIMT_TM x SIMT_TN outputs per work-item over LDS tiles of A and B
  (``llvm.fmuladd``)."""
from __future__ import annotations

from .dtype import DType, bfloat16, float16, float32
from .matmul_ptx import MatmulKernel, cdiv
from .render.llvm_amdgpu import Body, kernel_attrs

WAVE = 32
WMMA = 16                       # the m, n and k of one v_wmma_f32_16x16x16
WAVES_M, WAVES_N = 2, 2
FRAG_M, FRAG_N = 2, 2
BM, BN = WAVES_M * FRAG_M * WMMA, WAVES_N * FRAG_N * WMMA
BK = WMMA
LDS_PAD = 8                     # halves past each LDS row (staggers banks; keeps 16 B alignment)

SIMT_T = 16                     # work-items per side of a SIMT workgroup (16 x 16)
SIMT_TM = SIMT_TN = 4           # outputs per work-item per side
SIMT_BM, SIMT_BN, SIMT_BK = SIMT_T * SIMT_TM, SIMT_T * SIMT_TN, 16

_STORE = {float16: "half", bfloat16: "bfloat", float32: "float"}
_WMMA = {float16: ("llvm.amdgcn.wmma.f32.16x16x16.f16", "half"),
         bfloat16: ("llvm.amdgcn.wmma.f32.16x16x16.bf16", "i16")}


def amdgpu_matmul(arch: str, dtype: DType, m: int, n: int, k: int) -> MatmulKernel:
    """The kernel for a (m, k) @ (k, n) matmul of ``dtype`` on gfx11 ``arch`` (WMMA for
    f16/bf16, SIMT for f32). ``MatmulKernel.ptx`` holds the LLVM IR."""
    if not arch.startswith("gfx11"):
        raise ValueError(f"the AMD matmul generators target gfx11 (WMMA wave32), not {arch}")
    if dtype in _WMMA:
        return _wmma(dtype, m, n, k)
    if dtype == float32:
        return _simt(m, n, k)
    raise ValueError(f"no AMD matmul for {dtype.name}")


def _barrier(b: Body) -> None:
    b('fence syncscope("workgroup") release')
    b("call void @llvm.amdgcn.s.barrier()")
    b('fence syncscope("workgroup") acquire')


def _guarded_load(b: Body, ptr: str, ty: str, idx: str, ok: str, zero: str) -> str:
    """``ptr[idx]`` where ``ok``, else ``zero``: out-of-range lanes read element 0 (always in
    the buffer) and select zero, so there is no branch per element."""
    safe, p, raw, v = b.tmp(), b.tmp(), b.tmp(), b.tmp()
    b(f"{safe} = select i1 {ok}, i32 {idx}, i32 0")
    b(f"{p} = getelementptr {ty}, ptr addrspace(1) {ptr}, i32 {safe}")
    b(f"{raw} = load {ty}, ptr addrspace(1) {p}")
    b(f"{v} = select i1 {ok}, {ty} {raw}, {ty} {zero}")
    return v


def _tile_element(b: Body, src: str, row: tuple, col: tuple, lds: str, lrow: str, lcol: str, row_len: int) -> None:
    """Copy element (row, col) of the row-major f16/bf16 matrix ``src`` (``row`` and ``col`` are
    (index, bound) pairs; the row length is col's bound; 0 outside the bounds) to LDS array
    ``lds`` at (lrow, lcol) of rows ``row_len`` long."""
    (r, rows), (c, cols) = row, col
    ok = _in_range(b, [(r, rows), (c, cols)])
    off, idx = b.tmp(), b.tmp()
    b(f"{off} = mul i32 {r}, {cols}")
    b(f"{idx} = add i32 {off}, {c}")
    v = _guarded_load(b, src, "i16", idx, ok, "0")
    so, si, sp = b.tmp(), b.tmp(), b.tmp()
    b(f"{so} = mul i32 {lrow}, {row_len}")
    b(f"{si} = add i32 {so}, {lcol}")
    b(f"{sp} = getelementptr i16, ptr addrspace(3) {lds}, i32 {si}")
    b(f"store i16 {v}, ptr addrspace(3) {sp}")


def _in_range(b: Body, pairs: list[tuple[str, int]]) -> str:
    """i1: every value < its bound."""
    ok = "true"
    for v, bound in pairs:
        c, a = b.tmp(), b.tmp()
        b(f"{c} = icmp slt i32 {v}, {bound}")
        b(f"{a} = and i1 {ok}, {c}")
        ok = a
    return ok


def _tile_origin(b: Body, grid_n: int, bm: int, bn: int) -> tuple[str, str]:
    """First row and column of this workgroup's output tile (row-major raster)."""
    bid, tm, tn, row0, col0 = b.tmp(), b.tmp(), b.tmp(), b.tmp(), b.tmp()
    b(f"{bid} = call i32 @llvm.amdgcn.workgroup.id.x()")
    b(f"{tm} = udiv i32 {bid}, {grid_n}")
    b(f"{tn} = urem i32 {bid}, {grid_n}")
    b(f"{row0} = mul i32 {tm}, {bm}")
    b(f"{col0} = mul i32 {tn}, {bn}")
    return row0, col0


def _store_c(b: Body, dtype: DType, n: int, m: int, row: str, col: str, value: str) -> None:
    """C[row, col] = value (f32, rounded to ``dtype``) when inside the matrix."""
    ok = _in_range(b, [(row, m), (col, n)])
    off, idx, p = b.tmp(), b.tmp(), b.tmp()
    go, join = b.fresh_label("cst"), b.fresh_label("cj")
    b(f"{off} = mul i32 {row}, {n}")
    b(f"{idx} = add i32 {off}, {col}")
    b(f"br i1 {ok}, label %{go}, label %{join}")
    b.label(go)
    v = value
    if dtype != float32:
        v = b.tmp()
        b(f"{v} = fptrunc float {value} to {_STORE[dtype]}")
    b(f"{p} = getelementptr {_STORE[dtype]}, ptr addrspace(1) %c, i32 {idx}")
    b(f"store {_STORE[dtype]} {v}, ptr addrspace(1) {p}")
    b(f"br label %{join}")
    b.label(join)


def _module(name: str, body: Body, lds: list[str], decls: list[str], threads: int) -> str:
    return "\n".join(lds + [f"define amdgpu_kernel void @{name}(ptr addrspace(1) %c, ptr addrspace(1) %a, "
                            "ptr addrspace(1) %b) #0 {"] + body.text() +
                     ["}", "", "declare i32 @llvm.amdgcn.workitem.id.x()",
                      "declare i32 @llvm.amdgcn.workgroup.id.x()", "declare void @llvm.amdgcn.s.barrier()"] +
                     decls + [kernel_attrs(threads), ""])


def _wmma(dtype: DType, m: int, n: int, k: int) -> MatmulKernel:
    threads = WAVES_M * WAVES_N * WAVE
    grid_m, grid_n, ktiles = cdiv(m, BM), cdiv(n, BN), cdiv(k, BK)
    row_len = BK + LDS_PAD                       # halves per LDS row
    fn, ety = _WMMA[dtype]
    b = Body()
    tid, wave, lane, l16, hi = b.tmp(), b.tmp(), b.tmp(), b.tmp(), b.tmp()
    b(f"{tid} = call i32 @llvm.amdgcn.workitem.id.x()")
    b(f"{wave} = lshr i32 {tid}, 5")
    b(f"{lane} = and i32 {tid}, 31")
    b(f"{l16} = and i32 {lane}, 15")
    b(f"{hi} = lshr i32 {lane}, 4")
    row0, col0 = _tile_origin(b, grid_n, BM, BN)
    wm, wn, wrow, wcol = b.tmp(), b.tmp(), b.tmp(), b.tmp()
    b(f"{wm} = udiv i32 {wave}, {WAVES_N}")
    b(f"{wn} = urem i32 {wave}, {WAVES_N}")
    b(f"{wrow} = mul i32 {wm}, {FRAG_M * WMMA}")
    b(f"{wcol} = mul i32 {wn}, {FRAG_N * WMMA}")
    accs = [(i, j) for i in range(FRAG_M) for j in range(FRAG_N)]
    for i, j in accs:
        b.alloca(f"%acc{i}_{j}", "<8 x float>")
        b(f"store <8 x float> zeroinitializer, ptr addrspace(5) %acc{i}_{j}")
    b.alloca("%kt.addr", "i32")
    b("store i32 0, ptr addrspace(5) %kt.addr")
    b("br label %kloop")
    b.label("kloop")
    b("%kt = load i32, ptr addrspace(5) %kt.addr")
    k0 = b.tmp()
    b(f"{k0} = mul i32 %kt, {BK}")
    _barrier(b)                                  # the previous step's LDS reads are done
    # A tile (BM x BK): each work-item copies BM*BK/threads halves of one row
    per = BM * BK // threads
    arow, akk = b.tmp(), b.tmp()
    b(f"{arow} = udiv i32 {tid}, {BK // per}")
    t = b.tmp()
    b(f"{t} = urem i32 {tid}, {BK // per}")
    b(f"{akk} = mul i32 {t}, {per}")
    grow = b.tmp()
    b(f"{grow} = add i32 {row0}, {arow}")
    for q in range(per):
        kq, gk = b.tmp(), b.tmp()
        b(f"{kq} = add i32 {akk}, {q}")
        b(f"{gk} = add i32 {k0}, {kq}")
        _tile_element(b, "%a", (grow, m), (gk, k), "@As", arow, kq, row_len)
    # B tile (BK x BN), stored transposed: LDS row = output column, k contiguous
    per_b = BK * BN // threads
    bk_, bcol = b.tmp(), b.tmp()
    t = b.tmp()
    b(f"{bk_} = udiv i32 {tid}, {BN // per_b}")
    b(f"{t} = urem i32 {tid}, {BN // per_b}")
    b(f"{bcol} = mul i32 {t}, {per_b}")
    gk = b.tmp()
    b(f"{gk} = add i32 {k0}, {bk_}")
    for q in range(per_b):
        cq, gc = b.tmp(), b.tmp()
        b(f"{cq} = add i32 {bcol}, {q}")
        b(f"{gc} = add i32 {col0}, {cq}")
        _tile_element(b, "%b", (gk, k), (gc, n), "@Bs", cq, bk_, row_len)
    _barrier(b)
    frags = {}
    for name, count, base, arr in (("a", FRAG_M, wrow, "@As"), ("b", FRAG_N, wcol, "@Bs")):
        for f in range(count):
            r, so, sp, raw = b.tmp(), b.tmp(), b.tmp(), b.tmp()
            b(f"{r} = add i32 {base}, {f * WMMA}")
            b(f"{so} = add i32 {r}, {l16}")
            b(f"{sp} = getelementptr [{row_len} x i16], ptr addrspace(3) {arr}, i32 {so}")
            b(f"{raw} = load <16 x i16>, ptr addrspace(3) {sp}, align 16")
            if ety == "half":
                h = b.tmp()
                b(f"{h} = bitcast <16 x i16> {raw} to <16 x half>")
                raw = h
            frags[name, f] = raw
    for i, j in accs:
        c, d = b.tmp(), b.tmp()
        b(f"{c} = load <8 x float>, ptr addrspace(5) %acc{i}_{j}")
        b(f"{d} = call <8 x float> @{fn}(<16 x {ety}> {frags['a', i]}, <16 x {ety}> {frags['b', j]}, "
          f"<8 x float> {c})")
        b(f"store <8 x float> {d}, ptr addrspace(5) %acc{i}_{j}")
    b("%ktn = add i32 %kt, 1")
    b("store i32 %ktn, ptr addrspace(5) %kt.addr")
    b(f"%kmore = icmp slt i32 %ktn, {ktiles}")
    b("br i1 %kmore, label %kloop, label %epilogue")
    b.label("epilogue")
    for i, j in accs:
        acc = b.tmp()
        b(f"{acc} = load <8 x float>, ptr addrspace(5) %acc{i}_{j}")
        rbase, cbase, col = b.tmp(), b.tmp(), b.tmp()
        b(f"{rbase} = add i32 {row0}, {wrow}")
        b(f"{cbase} = add i32 {col0}, {wcol}")
        b(f"{col} = add i32 {cbase}, {j * WMMA}")
        cl = b.tmp()
        b(f"{cl} = add i32 {col}, {l16}")
        for r in range(8):
            rr, row, v = b.tmp(), b.tmp(), b.tmp()
            b(f"{rr} = add i32 {rbase}, {i * WMMA + 2 * r}")
            b(f"{row} = add i32 {rr}, {hi}")
            b(f"{v} = extractelement <8 x float> {acc}, i32 {r}")
            _store_c(b, dtype, n, m, row, cl, v)
    b("ret void")
    lds = [f"@As = internal addrspace(3) global [{BM} x [{row_len} x i16]] poison, align 16",
           f"@Bs = internal addrspace(3) global [{BN} x [{row_len} x i16]] poison, align 16", ""]
    decl = f"declare <8 x float> @{fn}(<16 x {ety}>, <16 x {ety}>, <8 x float>)"
    name = f"mm_wmma_{dtype.name}_{m}x{k}x{n}"
    return MatmulKernel(name, _module(name, b, lds, [decl], threads), (grid_m * grid_n, 1, 1), (threads, 1, 1))


def _simt(m: int, n: int, k: int) -> MatmulKernel:
    threads = SIMT_T * SIMT_T
    grid_m, grid_n, ktiles = cdiv(m, SIMT_BM), cdiv(n, SIMT_BN), cdiv(k, SIMT_BK)
    b = Body()
    tid, tx, ty = b.tmp(), b.tmp(), b.tmp()
    b(f"{tid} = call i32 @llvm.amdgcn.workitem.id.x()")
    b(f"{tx} = urem i32 {tid}, {SIMT_T}")
    b(f"{ty} = udiv i32 {tid}, {SIMT_T}")
    row0, col0 = _tile_origin(b, grid_n, SIMT_BM, SIMT_BN)
    outs = [(i, j) for i in range(SIMT_TM) for j in range(SIMT_TN)]
    for i, j in outs:
        b.alloca(f"%acc{i}_{j}", "float")
        b(f"store float 0.0, ptr addrspace(5) %acc{i}_{j}")
    b.alloca("%kt.addr", "i32")
    b("store i32 0, ptr addrspace(5) %kt.addr")
    b("br label %kloop")
    b.label("kloop")
    b("%kt = load i32, ptr addrspace(5) %kt.addr")
    k0 = b.tmp()
    b(f"{k0} = mul i32 %kt, {SIMT_BK}")
    _barrier(b)
    # A tile (BM x BK) and B tile (BK x BN): element e = tid + q * threads of each
    for arr, rows, cols, gbase_r, gbase_c, lim_r, lim_c, ld, src in (
            ("@As", SIMT_BM, SIMT_BK, row0, k0, m, k, k, "%a"),
            ("@Bs", SIMT_BK, SIMT_BN, k0, col0, k, n, n, "%b")):
        for q in range(rows * cols // threads):
            e, r, c, gr, gc, off, idx = (b.tmp() for _ in range(7))
            b(f"{e} = add i32 {tid}, {q * threads}")
            b(f"{r} = udiv i32 {e}, {cols}")
            b(f"{c} = urem i32 {e}, {cols}")
            b(f"{gr} = add i32 {gbase_r}, {r}")
            b(f"{gc} = add i32 {gbase_c}, {c}")
            ok = _in_range(b, [(gr, lim_r), (gc, lim_c)])
            b(f"{off} = mul i32 {gr}, {ld}")
            b(f"{idx} = add i32 {off}, {gc}")
            v = _guarded_load(b, src, "float", idx, ok, "0.0")
            sp = b.tmp()
            b(f"{sp} = getelementptr float, ptr addrspace(3) {arr}, i32 {e}")
            b(f"store float {v}, ptr addrspace(3) {sp}")
    _barrier(b)
    acc = {}
    for i, j in outs:
        acc[i, j] = b.tmp()
        b(f"{acc[i, j]} = load float, ptr addrspace(5) %acc{i}_{j}")
    for kk in range(SIMT_BK):
        av, bv = [], []
        for i in range(SIMT_TM):        # rows ty + 16 i: neighbouring work-items, neighbouring rows
            r, e, ek, p, v = b.tmp(), b.tmp(), b.tmp(), b.tmp(), b.tmp()
            b(f"{r} = add i32 {ty}, {i * SIMT_T}")
            b(f"{e} = mul i32 {r}, {SIMT_BK}")
            b(f"{ek} = add i32 {e}, {kk}")
            b(f"{p} = getelementptr float, ptr addrspace(3) @As, i32 {ek}")
            b(f"{v} = load float, ptr addrspace(3) {p}, align 4")
            av.append(v)
        for j in range(SIMT_TN):
            c, e, p, v = b.tmp(), b.tmp(), b.tmp(), b.tmp()
            b(f"{c} = add i32 {tx}, {j * SIMT_T}")
            b(f"{e} = add i32 {c}, {kk * SIMT_BN}")
            b(f"{p} = getelementptr float, ptr addrspace(3) @Bs, i32 {e}")
            b(f"{v} = load float, ptr addrspace(3) {p}, align 4")
            bv.append(v)
        for i, j in outs:
            t = b.tmp()
            b(f"{t} = call float @llvm.fmuladd.f32(float {av[i]}, float {bv[j]}, float {acc[i, j]})")
            acc[i, j] = t
    for i, j in outs:
        b(f"store float {acc[i, j]}, ptr addrspace(5) %acc{i}_{j}")
    b("%ktn = add i32 %kt, 1")
    b("store i32 %ktn, ptr addrspace(5) %kt.addr")
    b(f"%kmore = icmp slt i32 %ktn, {ktiles}")
    b("br i1 %kmore, label %kloop, label %epilogue")
    b.label("epilogue")
    for i, j in outs:
        r, c, row, col = b.tmp(), b.tmp(), b.tmp(), b.tmp()
        b(f"{r} = add i32 {ty}, {i * SIMT_T}")
        b(f"{row} = add i32 {row0}, {r}")
        b(f"{c} = add i32 {tx}, {j * SIMT_T}")
        b(f"{col} = add i32 {col0}, {c}")
        _store_c(b, float32, n, m, row, col, acc[i, j])
    b("ret void")
    lds = [f"@As = internal addrspace(3) global [{SIMT_BM * SIMT_BK} x float] poison, align 16",
           f"@Bs = internal addrspace(3) global [{SIMT_BK * SIMT_BN} x float] poison, align 16", ""]
    name = f"mm_simt_f32_{m}x{k}x{n}"
    return MatmulKernel(name, _module(name, b, lds, ["declare float @llvm.fmuladd.f32(float, float, float)"], threads),
                        (grid_m * grid_n, 1, 1), (threads, 1, 1))
