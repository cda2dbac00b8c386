"""PTX building blocks shared by the matmul generators (``matmul_mma.py``, ``matmul_simt.py``):
a line collector that also declares registers, the kernel header, and the grouped block
raster that maps a 1-D grid onto output tiles."""
from __future__ import annotations

from dataclasses import dataclass

from .render.ptx import PTX_VERSION


@dataclass(frozen=True)
class TensorMapSpec:
    """A tiled tensor map the host encodes for a kernel launch (hwdrv.nvidia.tensormap's
    ``encode_tiled``) over ``operand`` ("a" or "b"), once its address is known."""
    operand: str
    dtype: str                          # PTX element type name
    dims: tuple[int, ...]               # dimension 0 (contiguous) first
    strides: tuple[int, ...]            # bytes, dimensions 1..rank-1
    box: tuple[int, ...]
    swizzle: int = 0                    # bytes
    l2_promotion: int = 0               # bytes


@dataclass(frozen=True)
class MatmulKernel:
    """A generated matmul: its PTX, entry name and launch geometry (``shared``: dynamic shared
    bytes to launch with). Parameters: C, A, B - or, when ``tensor_maps`` is not empty, C and
    the address of those maps (128 bytes each, in that order, 64-byte aligned) in global
    memory. ``target``: the SM name ptxas must assemble it for when it differs from the
    device's (``sm_90a`` for wgmma)."""
    name: str
    ptx: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared: int = 0
    target: str | None = None
    tensor_maps: tuple[TensorMapSpec, ...] = ()


class Ptx:
    """Collects a kernel body and the registers it declares."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.regs: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line if line.endswith(":") else "\t" + line)

    def reg(self, kind: str, *names: str) -> None:
        """Declare registers ``names`` (without the ``%``) of PTX type ``kind``."""
        self.regs.append(f".reg .{kind} " + ", ".join("%" + n for n in names) + ";")

    def text(self, arch: str, name: str, threads: int, shared: list[str], ctas: int = 1,
             extra: tuple[str, ...] = ()) -> str:
        """The whole module: shared arrays (module scope: ``.extern`` ones must be), the entry
        with its register declarations and body. ``ctas`` > 1 asks ptxas to fit that many
        blocks per SM (capping registers at 64K / (ctas * threads)). ``extra``: parameters
        after C, A and B (a fused epilogue's buffers)."""
        params = ("pc", "pa", "pb") + tuple(extra)
        head = [f".version {PTX_VERSION}", f".target {arch}", ".address_size 64", ""] + shared + [
                "", f".visible .entry {name}("] + \
            [f"\t.param .u64 {p}" + ("," if j + 1 < len(params) else "") for j, p in enumerate(params)] + \
            [")", f".maxntid {threads}, 1, 1"] + \
            ([f".minnctapersm {ctas}"] if ctas > 1 else []) + ["{"]
        return "\n".join(head + ["\t" + r for r in self.regs] + self.lines +
                         ["\tret;", "}", ""])


def load_params(e: Ptx) -> None:
    """%pc, %pa, %pb: global addresses of C, A and B."""
    e.reg("b64", "pc", "pa", "pb")
    for p in ("pc", "pa", "pb"):
        e(f"ld.param.u64 %{p}, [{p}];")
        e(f"cvta.to.global.u64 %{p}, %{p};")


def raster(e: Ptx, grid_m: int, grid_n: int, group: int) -> None:
    """%tile_m, %tile_n: this block's output tile, from the 1-D block index. Blocks run in
    groups of ``group`` tile rows walked column by column, so the A panels of a group and the
    B panel of a column stay in L2 while the group runs (a plain row-major raster streams all
    of B once per tile row)."""
    g = max(1, min(group, grid_m))
    width = g * grid_n
    e.reg("b32", "pid", "grp", "gin", "gsz", "tile_m", "tile_n")
    e("mov.u32 %pid, %ctaid.x;")
    e(f"div.u32 %grp, %pid, {width};")
    e(f"rem.u32 %gin, %pid, {width};")
    e(f"mul.lo.u32 %tile_m, %grp, {g};")             # the group's first tile row
    e(f"sub.u32 %gsz, {grid_m}, %tile_m;")
    e(f"min.u32 %gsz, %gsz, {g};")                   # the last group may be shorter
    e("rem.u32 %tile_n, %gin, %gsz;")
    e("add.u32 %tile_m, %tile_m, %tile_n;")
    e("div.u32 %tile_n, %gin, %gsz;")


def zero_fill_copy(e: Ptx, guard: str, cache: str, size: int, s: str, soff: int, g: str, goff: int,
                   base: str) -> None:
    """A cp.async of ``size`` bytes from ``g``+``goff`` to shared ``s``+``soff`` under predicate
    %p: where %p is false it reads 0 bytes from the matrix's ``base`` (a valid address) and
    zero-fills the destination (the ragged edge of a tile)."""
    e(f"add.s64 %ptr, {g}, {goff};")
    e(f"selp.b64 %ptr, %ptr, {base}, %p;")
    e(f"selp.u32 %sz, {size}, 0, %p;")
    e(f"{guard}cp.async.{cache}.shared.global [{s}+{soff}], [%ptr], {size}, %sz;")


def cdiv(a: int, b: int) -> int:
    return -(-a // b)
