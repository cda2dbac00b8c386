"""Run ir3 machine code written in Mesa computerator's convention on the emulator, without a CP.

Computerator (Mesa src/freedreno/computerator) programs start with header directives that say how
to launch them (summarised in qcom.md §3.4; parsed by Mesa's ir3_parser.y):
``@localsize X, Y, Z``, ``@buf N [(cK.x)] [init values]`` (a storage buffer of N dwords bound as IBO
number = declaration order, its iova optionally also in cK.xy), ``@const(cN.x) a, b, c, d``,
``@invocationid(rN.x)``, ``@wgid(rN.x)``, ``@numwg(cN.x)``, ``@branchstack N``, ``@localmem N``,
``@pvtmem N`` and ``@earlypreamble``. ``parse`` reads them (the instructions are left for an
assembler); ``launch`` builds the CsState computerator's a6xx.cc would program (an IBO descriptor per
buffer as cs_ibo_emit writes it: FMT6_32_UINT, WIDTH/HEIGHT = size in dwords, TYPE BUFFER) in a
fresh mock address space and runs it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from hwdrv.errors import ProgramError
from hwdrv.mock.gpumem import GpuPageTable
from hwdrv.mock.physmem import PhysBlock
from hwdrv.qcom.gen import a6xx as A

from ..cs_state import CONST_VEC4, CsState
from . import run_cs
from .program import load_program

BASE_VA = 0x40_0000_0000
_REG = re.compile(r"^\s*([rc])(\d+)\.([xyzw])\s*$")


@dataclass
class Directives:
    local_size: tuple[int, int, int] = (1, 1, 1)
    bufs: list[tuple[int, list[int] | None, int | None]] = field(default_factory=list)  # (dwords, init, const)
    consts: dict[int, list[int]] = field(default_factory=dict)     # const scalar index -> u32 values
    localid_regid: int = 0xFC
    wgid_regid: int = 0xFC
    numwg_const: int | None = None
    branchstack: int = 0
    localmem: int = 0
    pvtmem: int = 0


def _regid(text: str, kind: str) -> int:
    m = _REG.match(text)
    if not m or m.group(1) != kind:
        raise ProgramError(f"expected a {'register' if kind == 'r' else 'const'} like {kind}0.x, got {text!r}")
    return (int(m.group(2)) << 2) | "xyzw".index(m.group(3))


def _value(tok: str) -> int:
    tok = tok.strip()
    if re.fullmatch(r"-?0[xX][0-9a-fA-F]+", tok):
        return int(tok, 16) & 0xFFFFFFFF
    if re.fullmatch(r"-?\d+", tok):
        return int(tok) & 0xFFFFFFFF
    return int(np.float32(float(tok)).view(np.uint32))


def parse(text: str) -> tuple[Directives, str]:
    """Split a computerator program into its directives and the assembly text (directive lines and
    ``;`` comments removed, line count kept so assembler errors point at the right line)."""
    d = Directives()
    body = []
    for line in text.splitlines():
        code = line.split(";", 1)[0].strip()
        if not code.startswith("@"):
            body.append(code)
            continue
        body.append("")
        m = re.match(r"@(\w+)\s*(?:\(([^)]*)\))?\s*(.*)$", code)
        name, arg, rest = m.group(1), m.group(2), m.group(3).strip()
        vals = [v for v in re.split(r"[,\s]+", rest) if v] if rest else []
        if name == "localsize":
            d.local_size = tuple(int(v) for v in vals)       # type: ignore[assignment]
        elif name == "buf":
            m2 = re.match(r"(\d+)\s*(?:\(([^)]*)\))?\s*(.*)$", rest)
            init = [_value(v) for v in re.split(r"[,\s]+", m2.group(3)) if v] or None
            d.bufs.append((int(m2.group(1)), init, _regid(m2.group(2), "c") if m2.group(2) else None))
        elif name == "const":
            d.consts[_regid(arg, "c")] = [_value(v) for v in vals]
        elif name == "invocationid":
            d.localid_regid = _regid(arg, "r")
        elif name == "wgid":
            d.wgid_regid = _regid(arg, "r")
        elif name == "numwg":
            d.numwg_const = _regid(arg, "c")
        elif name == "branchstack":
            d.branchstack = int(vals[0])
        elif name == "localmem":
            d.localmem = int(vals[0])
        elif name == "pvtmem":
            d.pvtmem = int(vals[0])
        elif name == "earlypreamble":
            raise ProgramError("@earlypreamble needs the early-preamble hardware of a6xx gen3+ "
                               "(freedreno_devices.py has_early_preamble); the mock GPU is an A630 (a6xx gen1)")
        else:
            raise ProgramError(f"unknown computerator directive @{name}")
    return d, "\n".join(body) + "\n"


def footprint(code: bytes, merged: bool = True) -> int:
    """FULLREGFOOTPRINT for ``code``: vec4 registers r0..rN below the high registers, plus merged halves
    (Mesa ir3_collect_info's max_reg + 1)."""
    prog = load_program(0, code, merged)
    regs = [n for n in prog.full_regs if n < 48 * 4] + [h >> 1 for h in prog.half_regs if merged and (h >> 1) < 48 * 4]
    return (max(regs) >> 2) + 1 if regs else 0


def launch(code: bytes, d: Directives, groups=(1, 1, 1), threadsize: int = 64,
           buffers: list[np.ndarray] | None = None, timeout: float = 30.0) -> list[np.ndarray]:
    """Run ``code`` with the launch ``d`` describes; returns every buffer's final contents (uint32)."""
    state, results = prepare(code, d, groups, threadsize, buffers)
    run_cs(state, timeout=timeout)
    return results()


def prepare(code: bytes, d: Directives, groups=(1, 1, 1), threadsize: int = 64,
            buffers: list[np.ndarray] | None = None):
    """The CsState of a launch (in a fresh mock address space) and a function reading the buffers back."""
    inits = []
    for i, (n, init, _) in enumerate(d.bufs):
        b = np.zeros(n, np.uint32)
        if buffers is not None and i < len(buffers) and buffers[i] is not None:
            b[:] = np.asarray(buffers[i]).view(np.uint32)
        elif init is not None:
            b[:len(init)] = init
        inits.append(b)
    code_len = -(-len(code) // 128) * 128 or 128
    offs, pos = [], code_len + 64 * max(len(d.bufs), 1)
    for n, _, _ in d.bufs:
        pos = -(-pos // 256) * 256
        offs.append(pos)
        pos += 4 * n
    block = PhysBlock(pos + 4096, "ir3emu-harness")
    pt = GpuPageTable("ir3emu-harness")
    pt.map(BASE_VA, block.host_addr, block.size)
    mem = block.view(np.uint8)
    mem[:len(code)] = np.frombuffer(code, np.uint8)
    consts = np.zeros((CONST_VEC4, 4), np.uint32)
    flat = consts.reshape(-1)
    for idx, vals in d.consts.items():
        flat[idx:idx + len(vals)] = vals
    if d.numwg_const is not None:
        flat[d.numwg_const:d.numwg_const + 3] = groups
    ibos = {}
    for i, ((n, _, creg), off, b) in enumerate(zip(d.bufs, offs, inits)):
        mem[off:off + 4 * n] = b.view(np.uint8)
        va = BASE_VA + off
        if creg is not None:
            flat[creg], flat[creg + 1] = va & 0xFFFFFFFF, va >> 32
        desc = np.zeros(16, np.uint32)
        desc[0] = A.A6XX_TEX_CONST_0_FMT.encode(A.FMT6_32_UINT) | A.A6XX_TEX_CONST_0_TILE_MODE.encode(A.TILE6_LINEAR)
        desc[1] = A.A6XX_TEX_CONST_1_WIDTH.encode(n & 0x7FFF) | A.A6XX_TEX_CONST_1_HEIGHT.encode(n >> 15)
        desc[2] = A.A6XX_TEX_CONST_2_STRUCTSIZETEXELS.encode(1) | A.A6XX_TEX_CONST_2_TYPE.encode(A.A6XX_TEX_BUFFER)
        desc[4] = A.A6XX_TEX_CONST_4_BASE_LO.encode((va & 0xFFFFFFFF) >> A.A6XX_TEX_CONST_4_BASE_LO_SHR)
        desc[5] = A.A6XX_TEX_CONST_5_BASE_HI.encode(va >> 32)
        ibos[i] = desc
    used_vec4 = max([((k + len(v) + 3) >> 2) for k, v in d.consts.items()]
                    + [((b[2] or 0) >> 2) + 1 for b in d.bufs] + [((d.numwg_const or 0) >> 2) + 1, 1])
    state = CsState(
        memory=pt, shader_iova=BASE_VA, instrlen=code_len // 128, first_exec_offset=0, preloaded=b"",
        threadsize=threadsize, full_regs=footprint(code), half_regs=0, mergedregs=True,
        branchstack=-(-d.branchstack // 2),
        consts=consts, consts_loaded=np.zeros(CONST_VEC4, bool), constlen_vec4=-(-used_vec4 // 4) * 4,
        const_enabled=True, constant_demotion=True, isammode=A.ISAMMODE_GL,
        ibos=ibos, ibo_count=len(ibos), local_size=tuple(d.local_size),
        global_size=tuple(g * l for g, l in zip(groups, d.local_size)), groups=tuple(groups),
        wgid_regid=d.wgid_regid, localid_regid=d.localid_regid,
        shared_size=max(1024, -(-d.localmem // 1024) * 1024), pvt_per_fiber=d.pvtmem,
    )

    def results(_keep=(block, pt)) -> list[np.ndarray]:     # _keep: the memory lives while results() does
        return [mem[off:off + 4 * n].view(np.uint32).copy() for (n, _, _), off in zip(d.bufs, offs)]
    return state, results
