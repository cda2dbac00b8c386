"""Make tests/data/amd/isa/vectors.txt: gfx11 instruction encodings and LLVM's disassembly of them.

For every (format, opcode) the emulator executes (hwdrv.mock.amd.rdna3.support.supported()) this
builds several encodings with random operand fields (registers, inline constants, literals,
modifiers, offsets, cache bits), hands all of them to

    llvm-mc-19 -arch=amdgcn -mcpu=gfx1100 --disassemble -show-encoding

and keeps each encoding LLVM decodes (one input line per encoding; LLVM prints the bytes it
consumed, so an encoding is kept only when those bytes are exactly the candidate). Output lines:
``<dwords in hex, space separated>\\t<LLVM's text>``. The words the emulator's decoder consumes
are LLVM's encoding bytes, nothing else.

Regenerate (needs Debian llvm-19):  python tests/data/amd/isa/make_vectors.py [--per-op 4] [--seed 1]
"""
from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from hwdrv.amd.gen import rdna3_isa as isa  # noqa: E402
from hwdrv.mock.amd.rdna3.optypes import valu_types  # noqa: E402
from hwdrv.mock.amd.rdna3.support import encode, supported  # noqa: E402
from hwdrv.mock.amd.rdna3.valu_ops import arity  # noqa: E402

SIXTEEN = ("f16", "i16", "u16", "b16", "bf16")

OP = isa.OPERANDS
VG = OP["VGPR_MIN"]
LLVM_MC = "llvm-mc-19"


def sgpr(r: random.Random, even: bool = True) -> int:
    v = r.choice(list(range(0, 104, 2)) + [OP["VCC_LO"]] * 4 + [OP["EXEC_LO"]] * 2)
    return v if even or r.random() < 0.5 else min(v + 1, 105) if v < 104 else v


def ssrc(r: random.Random, wide: bool) -> int:
    k = r.random()
    if k < 0.5:
        return sgpr(r, wide)
    if k < 0.75:
        return r.randint(OP["INLINE_INT_ZERO"], OP["INLINE_INT_NEG_MAX"])
    if k < 0.9:
        return r.randint(OP["INLINE_F_0_5"], OP["INLINE_INV_2PI"])
    return OP["LITERAL"]


def vsrc(r: random.Random, wide: bool, allow_lit: bool = True) -> int:
    k = r.random()
    if k < 0.55:
        return VG + r.randint(0, 254)
    if k < 0.7:
        return sgpr(r, True)
    if k < 0.85:
        return r.randint(OP["INLINE_INT_ZERO"], OP["INLINE_INT_NEG_MAX"])
    if k < 0.95 or not allow_lit:
        return r.randint(OP["INLINE_F_0_5"], OP["INLINE_INV_2PI"])
    return OP["LITERAL"]


def fields_for(fmt: str, op: int, name: str, r: random.Random) -> dict:
    f: dict = {"op": op}
    if fmt in ("SOP1", "SOP2", "SOPC", "SOPK"):
        wide = bool(re.search(r"64", name))
        f.update(sdst=sgpr(r, wide), ssrc0=ssrc(r, wide), ssrc1=ssrc(r, wide), simm16=r.randint(0, 0xFFFF))
        if name in ("s_getpc_b64",):
            f["ssrc0"] = 0
        if name in ("s_setpc_b64",):
            f["sdst"] = 0
        if name == "s_version":
            f["sdst"] = 0
        if "movrel" in name:                  # M0-relative operands are registers
            f.update(ssrc0=r.randrange(0, 100, 2), sdst=r.randrange(0, 100, 2))
        return {k: v for k, v in f.items() if k in isa.FORMATS[fmt][3]}
    if fmt == "SOPP":
        if name == "s_waitcnt" and r.random() < 0.15:
            v = 0xFC07 | r.choice([0x3F0, 0x8])        # all fields at their no-wait values
        elif name == "s_waitcnt":
            v = (r.randint(0, 63) << 10) | (r.randint(0, 63) << 4) | r.randint(0, 7)
        elif name == "s_delay_alu":
            v = r.randint(0, 11) | (r.randint(0, 5) << 4) | (r.randint(0, 11) << 7)
        elif name in ("s_endpgm", "s_barrier", "s_icache_inv", "s_wait_idle", "s_wakeup", "s_code_end",
                      "s_endpgm_saved", "s_ttracedata"):
            v = 0
        elif name == "s_sendmsg":
            v = 3
        else:
            v = r.randint(0, 0x3F)
        return {"op": op, "simm16": v}
    if fmt == "SMEM":
        if name in ("s_dcache_inv", "s_gl1_inv"):
            return {"op": op}
        return {"op": op, "sdata": r.randrange(0, 96, 16), "sbase": r.randrange(0, 50),
                "soffset": r.choice([OP["NULL"], OP["NULL"], sgpr(r, False)]), "offset": r.randint(0, 0xFFFF),
                "glc": r.randint(0, 1), "dlc": r.randint(0, 1)}
    if fmt in ("VOP1", "VOP2", "VOPC"):
        dt, sts = valu_types(name)
        wide = any(t.endswith("64") for t in sts if t)
        # 16-bit operands of VOP1/2/C are v0-v127 (bit 7 selects the high half on gfx11, which
        # LLVM 19 models only partly)
        lim = 127 if any(t in SIXTEEN for t in (dt,) + tuple(sts)) else 254
        src0 = vsrc(r, wide)
        if src0 >= VG:
            src0 = VG + (src0 - VG) % (lim + 1)
        f.update(src0=src0, vdst=r.randint(0, lim), vsrc1=r.randint(0, lim))
        if name in ("v_nop", "v_pipeflush"):
            f.update(src0=0, vdst=0)
        if name == "v_readfirstlane_b32":            # VGPR source, SGPR destination
            f.update(src0=VG + r.randint(0, 254), vdst=r.randint(0, 105))
        return {k: v for k, v in f.items() if k in isa.FORMATS[fmt][3]}
    if fmt == "VOP3":
        dt, sts = valu_types(name)
        flt = dt.startswith("f") or bool(sts and sts[0].startswith("f"))
        wide = any(t.endswith("64") for t in sts if t)
        promoted = op < 0x200
        n = (2 if op < 0x100 else 1 if op >= 0x180 else arity(name)) if promoted else arity(name)
        if name in ("v_nop", "v_pipeflush"):
            n = 0
        f.update(vdst=r.randint(0, 254) if not name.startswith("v_cmp") else sgpr(r, False),
                 src0=vsrc(r, wide), src1=vsrc(r, wide), src2=vsrc(r, wide))
        if name in ("v_readlane_b32", "v_writelane_b32", "v_permlane16_b32", "v_permlanex16_b32"):
            f.update(src1=sgpr(r, False), src2=sgpr(r, False) if "permlane" in name else 0)
            f["src0"] = VG + r.randint(0, 254) if name != "v_writelane_b32" else sgpr(r, False)
            if name == "v_readlane_b32":
                f["vdst"] = sgpr(r, False)
        if name in ("v_cndmask_b32", "v_cndmask_b16", "v_add_co_ci_u32", "v_sub_co_ci_u32", "v_subrev_co_ci_u32"):
            f["src2"] = sgpr(r, False)
        if sum(f[k] == OP["LITERAL"] for k in ("src0", "src1", "src2")) > 1:
            f["src1"] = f["src2"] = VG + r.randint(0, 254)
        if flt and r.random() < 0.5:
            # neg/abs only on float sources (on integer ones the bit means sext, which the emulator refuses)
            fmask = sum(1 << k for k, t in enumerate(sts[:3]) if t.startswith(("f", "bf")))
            f.update(neg=r.randint(0, 7) & fmask, abs=r.randint(0, 7) & fmask, clamp=r.randint(0, 1),
                     omod=r.randint(0, 3) if dt.startswith("f") else 0)
        for k in range(n, 3):                 # unused source fields and their modifiers are 0
            f[f"src{k}"] = 0
            for m in ("neg", "abs"):
                f[m] = f.get(m, 0) & ~(1 << k)
        if name in ("v_add_co_u32", "v_sub_co_u32", "v_subrev_co_u32", "v_add_co_ci_u32", "v_sub_co_ci_u32",
                    "v_subrev_co_ci_u32", "v_mad_u64_u32", "v_mad_i64_i32", "v_div_scale_f32", "v_div_scale_f64"):
            f.pop("abs", None)
            f["sdst"] = sgpr(r, False)
        return f
    if fmt == "VOP3P":
        n = arity(name) or 3
        f.update(vdst=r.randrange(0, 240, 8), src0=VG + r.randrange(0, 240, 8), src1=VG + r.randrange(0, 240, 8),
                 src2=VG + r.randrange(0, 240, 8))
        if name.startswith("v_wmma"):
            f.update(opsel_hi=3, opsel_hi2=1)
            return f
        f.update(src0=vsrc(r, False, False), opsel=r.randint(0, 7), opsel_hi=r.randint(0, 3),
                 opsel_hi2=r.randint(0, 1))
        if "f16" in name or "mix" in name:
            f.update(neg=r.randint(0, 7), neg_hi=r.randint(0, 7))
        if n < 3:
            f.update(src2=0, opsel=f["opsel"] & 3, neg=f.get("neg", 0) & 3, neg_hi=f.get("neg_hi", 0) & 3,
                     opsel_hi2=1)
        return f
    if fmt == "DS":
        if name == "ds_nop":
            return {"op": op}
        # LLVM decodes a DS word only when the operand fields the instruction does not use are 0
        rtn = "_rtn" in name or name.startswith(("ds_load", "ds_swizzle", "ds_permute", "ds_bpermute"))
        nd = 0 if name.startswith(("ds_load", "ds_swizzle")) else \
            2 if ("2addr" in name or "cmpstore" in name or "mskor" in name) else 1
        return {"op": op, "vdst": r.randint(0, 250) if rtn else 0, "addr": r.randint(0, 255),
                "data0": r.randint(0, 250) if nd >= 1 else 0, "data1": r.randint(0, 250) if nd == 2 else 0,
                "offset0": r.randint(0, 255), "offset1": r.randint(0, 255)}
    if fmt in ("FLAT", "GLOBAL", "SCRATCH"):
        store = "_store" in name
        atomic = "_atomic" in name
        f.update(addr=r.randint(0, 250), data=r.randint(0, 250) if store or atomic else 0,
                 offset=r.randint(0, 0x7FF) if fmt == "FLAT" else r.randint(0, 0x1FFF),
                 glc=r.randint(0, 1), slc=r.randint(0, 1), dlc=r.randint(0, 1))
        f["vdst"] = 0 if store or (atomic and not f["glc"]) else r.randint(0, 250)
        if fmt == "GLOBAL":
            f["saddr"] = r.choice([OP["NULL"], r.randrange(0, 100, 2)])
        elif fmt == "SCRATCH":
            f["saddr"] = r.choice([OP["NULL"], r.randrange(0, 100)])
            f["sve"] = r.randint(0, 1) if f["saddr"] != OP["NULL"] else 1
            if not f["sve"]:
                f["addr"] = 0
        else:
            f["saddr"] = OP["NULL"]
        return f
    if fmt == "MUBUF":
        if name in ("buffer_gl0_inv", "buffer_gl1_inv"):
            return {"op": op}
        idxen, offen = r.randint(0, 1), r.randint(0, 1)
        return {"op": op, "vdata": r.randint(0, 250), "vaddr": r.randint(0, 250) if idxen or offen else 0,
                "srsrc": r.randint(0, 24), "soffset": r.choice([128, sgpr(r, False)]), "offset": r.randint(0, 0xFFF),
                "idxen": idxen, "offen": offen, "glc": r.randint(0, 1), "slc": r.randint(0, 1), "dlc": r.randint(0, 1)}
    raise ValueError(fmt)


def vopd_fields(opx: int, opy: int, r: random.Random) -> dict:
    names = isa.OPCODES["VOPD"]
    return {"opx": opx, "opy": opy, "srcx0": vsrc(r, False), "vdstx": r.randint(0, 254),
            "vsrcx1": 0 if names[opx] == "v_dual_mov_b32" else r.randint(0, 255),
            "vdsty": r.randint(0, 126), "srcy0": VG + r.randint(0, 255),
            "vsrcy1": 0 if names[opy] == "v_dual_mov_b32" else r.randint(0, 255)}


def candidates(per_op: int, seed: int) -> list[list[int]]:
    r = random.Random(seed)
    out = []
    sup = supported()
    for fmt, ops in sup.items():
        for op, name in ops.items():
            if fmt == "VOPD":
                if op >= 16:      # OPX is 4 bits: v_dual_add_nc_u32 and later exist only as OPY
                    continue
                for opy in sup["VOPD"]:
                    out.append(encode("VOPD", vopd_fields(op, opy, r)) + [r.getrandbits(32)])
                continue
            for _ in range(per_op):
                # one trailing dword: the literal / DPP word when the encoding takes one
                out.append(encode(fmt, fields_for(fmt, op, name, r)) + [r.getrandbits(32)])
                if fmt in ("VOP1", "VOP2", "VOPC") and r.random() < 0.3:
                    f = fields_for(fmt, op, name, r)
                    f["src0"] = r.choice([OP["DPP16"], OP["DPP8"]])
                    dpp = r.getrandbits(32) & ~0x80    # DPP src0 register in v0-v127
                    if f["src0"] == OP["DPP16"]:
                        ctrl = r.choice([r.randint(0, 0xFF), 0x100 + r.randint(1, 15), 0x110 + r.randint(1, 15),
                                         0x120 + r.randint(1, 15), 0x140, 0x141, 0x150 + r.randint(0, 15),
                                         0x160 + r.randint(0, 15)])
                        dpp = (dpp & ~(0x1FF << 8)) | (ctrl << 8)
                        sts = valu_types(name)[1]
                        for k, (nb, ab) in enumerate(((20, 21), (22, 23))):
                            if k >= len(sts) or not sts[k].startswith(("f", "bf")):
                                dpp &= ~((1 << nb) | (1 << ab))
                    out.append(encode(fmt, f) + [dpp])
    return out


def llvm_disassemble(cands: list[list[int]]) -> list[tuple[list[int], str]]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        for words in cands:
            fh.write(" ".join(f"0x{b:02x}" for w in words for b in w.to_bytes(4, "little")) + "\n")
        path = fh.name
    res = subprocess.run([LLVM_MC, "-arch=amdgcn", "-mcpu=gfx1100", "--disassemble", "-show-encoding", path],
                         capture_output=True, text=True, check=True)
    by_bytes: dict[bytes, str] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(.*?)\s*; encoding: \[(.*)\]", line)
        if m:
            by_bytes[bytes(int(b, 16) for b in m.group(2).split(","))] = m.group(1)
    out, seen = [], set()
    for words in cands:
        raw = b"".join(w.to_bytes(4, "little") for w in words)
        for n in (len(words), len(words) - 1):   # with or without the trailing dword
            key = raw[:4 * n]
            # LLVM annotates operands it decodes but considers invalid ("/*Invalid register...*/"),
            # and prints gfx11 true16 high halves (v1.h) that the emulator refuses: such encodings
            # are not kept.
            if key in by_bytes and key not in seen and "Invalid" not in by_bytes[key] \
                    and not re.search(r"\bv\d+\.h\b", by_bytes[key]):
                seen.add(key)
                out.append((list(words[:n]), by_bytes[key]))
                break
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-op", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "vectors.txt"))
    a = p.parse_args()
    vecs = llvm_disassemble(candidates(a.per_op, a.seed))
    version = subprocess.run([LLVM_MC, "--version"], capture_output=True, text=True).stdout
    ver = re.search(r"LLVM version (\S+)", version).group(1)
    with open(a.out, "w") as fh:
        fh.write(f"# gfx1100 encodings and their llvm-mc {ver} disassembly (made by make_vectors.py "
                 f"--per-op {a.per_op} --seed {a.seed})\n")
        for words, text in vecs:
            fh.write(" ".join(f"{w:08x}" for w in words) + "\t" + text + "\n")
    print(f"{len(vecs)} vectors -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
