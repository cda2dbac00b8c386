"""The Qualcomm backend's sample kernels in ir3 assembly (Mesa's syntax, assembled by
hwdrv.qcom.ir3): the demo's vecadd, the provocations ``python -m hwdrv diagnose`` runs (argument
conventions: hwdrv.provoke), and the compute blits a copy runs as (there is no copy engine).

The const-file ABI is binary.py's: c0.xyz workgroup counts, c1.xyz workgroup size, parameters from
c2.x. The scheduling follows ir3's rules (an ALU result is read 3 instructions later at the
earliest, memory loads are waited for with (sy)); the mock GPU rejects a program that breaks them.
"""
from __future__ import annotations

from ..errors import InvalidArgument

_PARAM_SCALAR = 8       # const-file scalar of the first parameter (c2.x)
_POINTER_SCALAR = 4     # register scalar the first pointer is copied to (r1.x)


def _scalar(file: str, i: int) -> str:
    """Scalar ``i`` of an ir3 register file, as the assembler names it (``c``, 9 -> c2.y)."""
    return f"{file}{i // 4}.{'xyzw'[i % 4]}"


def guarded_kernel(name: str, params: list[tuple[str, int]], count: str, body: list[str]) -> str:
    """An element-wise kernel: i = wgid.x * size.x + lid.x in r0.y, then ``body`` where
    i < ``count`` (a 4-byte parameter). ``params`` are (name, bytes) in order; the 8-byte ones
    (pointers) are copied, two scalars each, into r1.x, r1.y, ... in that order. ``body`` is one
    ir3 instruction per line, scheduled by the caller for the hazard rules."""
    sizes = dict(params)
    if sizes.get(count) != 4 or any(size not in (4, 8) for size in sizes.values()):
        raise InvalidArgument(f"guarded_kernel {name}: parameters {params} must be 4 or 8 bytes and the "
                              f"bound {count!r} one of the 4-byte ones")
    head = [f".kernel {name}"] + [f".param {p} {size}" for p, size in params] + [".branchstack 1"]
    consts, scalar, reg = {}, _PARAM_SCALAR, _POINTER_SCALAR
    for p, size in params:
        consts[p] = _scalar("c", scalar)
        if size == 8:
            head += [f"mov.u32u32 {_scalar('r', reg)}, {_scalar('c', scalar)}",
                     f"mov.u32u32 {_scalar('r', reg + 1)}, {_scalar('c', scalar + 1)}"]
            reg += 2
        scalar += size // 4
    head += ["mad.u24 r0.y, c1.x, r48.x, r0.x",
             "(rpt2)nop",
             f"cmps.u.lt p0.x, r0.y, {consts[count]}",
             "(rpt5)nop",
             f"br !p0.x, #{len(body) + 1}"]             # to the (jp)end after the body
    return "\n".join(head + body + ["(jp)end", "nop", ""])


# i = wgid.x * size.x + lid.x, then if (i < n) c[i] = a[i] + b[i]
VECADD = "\n" + guarded_kernel("vecadd", [("a", 8), ("b", 8), ("c", 8), ("n", 4)], "n", [
    "ldg.a.f32 r3.x, g[r1.x+(r0.y)<<2], 1",
    "ldg.a.f32 r3.y, g[r1.z+(r0.y)<<2], 1",
    "(sy)add.f r3.z, r3.x, r3.y",
    "(rpt2)nop",
    "stg.a.f32 g[r2.x+(r0.y)<<2], r3.z, 1"])

# *(u32 *)addr = value (every fiber stores the same value)
OOB_STORE = """
.kernel oob_store
.param addr 8
.param value 4
mov.u32u32 r1.x, c2.x
mov.u32u32 r1.y, c2.y
mov.u32u32 r1.z, c2.z
(rpt2)nop
stg.u32 g[r1.x], r1.z, 1
end
nop
"""

# out[0] = 1, then an encoding no ir3 instruction has (all ones: cat7 with no valid opcode)
ILLEGAL = """
.kernel illegal_instruction
.param out 8
mov.u32u32 r1.x, c2.x
mov.u32u32 r1.y, c2.y
mov.u32u32 r1.z, 1
(rpt2)nop
stg.u32 g[r1.x], r1.z, 1
raw 0xFFFFFFFFFFFFFFFF
end
nop
"""

# spin until *(u32 *)flag != 0
ENDLESS = """
.kernel endless_loop
.param flag 8
mov.u32u32 r1.x, c2.x
mov.u32u32 r1.y, c2.y
(rpt2)nop
(jp)ldg.u32 r1.z, g[r1.x], 1
(sy)cmps.u.eq p0.x, r1.z, 0
(rpt5)nop
br p0.x, #-3
end
nop
"""

# Compute blits (copy = dst, src, count): dwords when both addresses and the size are 4-byte
# aligned, else bytes (the 8-bit type goes through a half register; the byte address is a 64-bit
# add with the carry made by a compare, since ldg.a/stg.a scale their index by at least 4).
_COPY_PARAMS = [("dst", 8), ("src", 8), ("count", 4)]
COPY = "\n" + guarded_kernel("hwdrv_copy4", _COPY_PARAMS, "count", [
    "ldg.a.u32 r2.x, g[r1.z+(r0.y)<<2], 1",
    "(sy)nop",
    "stg.a.u32 g[r1.x+(r0.y)<<2], r2.x, 1"]) + "\n" + guarded_kernel("hwdrv_copy1", _COPY_PARAMS, "count", [
    "add.u r2.x, r1.z, r0.y",
    "add.u r3.x, r1.x, r0.y",
    "(rpt2)nop",
    "cmps.u.lt r2.z, r2.x, r0.y",
    "cmps.u.lt r3.z, r3.x, r0.y",
    "(rpt2)nop",
    "add.u r2.y, r1.w, r2.z",
    "add.u r3.y, r1.y, r3.z",
    "(rpt5)nop",
    "ldg.u8 hr12.x, g[r2.x], 1",
    "(sy)nop",
    "stg.u8 g[r3.x], hr12.x, 1"])

#: name -> (source, kernel name), the convention of hwdrv.provoke
SAMPLES = {
    "vecadd": (VECADD, "vecadd"),
    "oob_store": (OOB_STORE, "oob_store"),
    "illegal_instruction": (ILLEGAL, "illegal_instruction"),
    "endless_loop": (ENDLESS, "endless_loop"),
}
#: threads per workgroup of the copy blits
COPY_THREADS = 256
