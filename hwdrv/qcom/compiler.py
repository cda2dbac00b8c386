"""Ir3Compiler: ir3 assembly text (Mesa's syntax) -> an hwdrv ir3 binary (hwdrv/qcom/binary.py).

A source holds one or more kernels. Each starts with directives, then its instructions::

    .kernel vecadd                 ; starts a kernel
    .param a 8                     ; a parameter: name and size in bytes, in argument order
    .localid r0.x                  ; where the local invocation id lands (default r0.x)
    .wgid r48.x                    ; where the workgroup id lands (default r48.x; a high register)
    .shared 1024                   ; static shared memory in bytes (default 0)
    .threadsize 64                 ; 64 or 128 (default 64)
    .branchstack 1                 ; divergence depth (SP_CS_CTRL_REG0.BRANCHSTACK, default 0)
    .private 256                   ; private memory per fiber in bytes, for ldp/stp (default 0)
    .ibo a                         ; bind pointer parameter a as the next IBO (ldib/stib index 0, 1, ...)
    mov.u32u32 r1.x, c2.x          ; instructions, assembled by hwdrv.qcom.ir3.assemble
    ...

Parameters are laid out from c2.x in order, each aligned to its natural size (at most 8); c0.xyz
holds the workgroup counts and c1.xyz the workgroup size (binary.py). The const file holds the first
256 vec4 of that block; the whole block is also UBO 0. The register footprint is read
from the assembled code: the highest register below the high registers (r48), half registers merged.
"""
from __future__ import annotations

import re

from ..errors import ProgramError
from . import binary as B
from .gen import a6xx as A
from .ir3 import assemble, disassemble

#: the first high register (r48.x): system values live from here up, outside the footprint
HIGH_REG = 48
#: const-file vec4s a compute shader may use on a6xx (freedreno max_const_compute); parameters
#: past them are reached through UBO 0 (binary.py)
MAX_CONST_VEC4 = 256
#: the largest UBO an A6XX_UBO descriptor can describe (SIZE field, in vec4)
MAX_UBO_VEC4 = (1 << A.A6XX_UBO_1_SIZE.width) - 1
_NOP = bytes(8)                  # cat0 nop: all zero bits
_REG = re.compile(r"^r(\d+)\.([xyzw])$")
_USE = re.compile(r"(?<![\w<])(h?)r(\d+)\.([xyzw])")


def regid(text: str) -> int:
    """ir3 register id of ``text`` (e.g. "r48.x" -> 0xc0)."""
    m = _REG.match(text.strip())
    if not m:
        raise ProgramError(f"expected a register like r0.x, got {text!r}")
    return (int(m.group(1)) << 2) | "xyzw".index(m.group(2))


def footprint(code: bytes) -> int:
    """FULLREGFOOTPRINT for ``code`` (merged registers: hrN.c is half of r(N/2))."""
    top = -1
    for line in disassemble(code):
        if "r<" in line:
            raise ProgramError(f"relative register addressing ({line.strip()}) needs an explicit footprint, which "
                               "this compiler does not take")
        for half, n, c in _USE.findall(line):
            scalar = (int(n) << 2) | "xyzw".index(c)
            full = scalar >> 1 if half else scalar
            if full < HIGH_REG * 4:
                top = max(top, full >> 2)
    return top + 1


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


class _Kernel:
    def __init__(self, name: str, line: int):
        self.name, self.line = name, line
        self.params: list[tuple[str, int, int]] = []
        self.pos = B.PARAM_BASE
        self.localid, self.wgid = regid("r0.x"), regid("r48.x")
        self.shared, self.threadsize, self.branchstack, self.private = 0, 64, 0, 0
        self.ibos: list[int] = []
        self.body: list[str] = []

    def directive(self, word: str, args: list[str], where: str) -> None:
        try:
            if word == ".param":
                name, size = args[0], int(args[1], 0)
                if size <= 0:
                    raise ValueError("size must be positive")
                align = min(8, size & -size)
                self.pos = _align(self.pos, align)
                self.params.append((name, self.pos, size))
                self.pos += size
            elif word == ".localid":
                self.localid = regid(args[0])
            elif word == ".wgid":
                self.wgid = regid(args[0])
                if self.wgid < HIGH_REG * 4:
                    raise ProgramError(f"{where}: .wgid must be a high register (r{HIGH_REG}.x or above), got {args[0]}")
            elif word == ".shared":
                self.shared = int(args[0], 0)
            elif word == ".threadsize":
                self.threadsize = int(args[0], 0)
                if self.threadsize not in (64, 128):
                    raise ProgramError(f"{where}: .threadsize is 64 or 128, got {self.threadsize}")
            elif word == ".branchstack":
                self.branchstack = int(args[0], 0)
            elif word == ".private":
                self.private = int(args[0], 0)
            elif word == ".ibo":
                idx = [i for i, (n, _, size) in enumerate(self.params) if n == args[0]]
                if not idx or self.params[idx[0]][2] != 8:
                    raise ProgramError(f"{where}: .ibo {args[0]} must name an 8-byte (pointer) .param declared before it")
                self.ibos.append(idx[0])
            else:
                raise ProgramError(f"{where}: unknown directive {word}; known: .kernel .param .localid .wgid .shared "
                                   ".threadsize .branchstack .private .ibo")
        except (IndexError, ValueError) as e:
            raise ProgramError(f"{where}: bad {word} directive ({e})") from None

    def build(self) -> tuple[B.KernelMeta, bytes]:
        # keep line numbers: assembler errors point at the source line
        text = "\n" * self.line + "\n".join(self.body) + "\n"
        try:
            code = assemble(text)
        except ProgramError as e:
            raise ProgramError(f"kernel {self.name!r}: {e}") from None
        if not code:
            raise ProgramError(f"kernel {self.name!r} has no instructions")
        code += _NOP * (-(len(code) // 8) % (B.CODE_ALIGN // 8))
        block_vec4 = _align(-(-self.pos // 16), 4)
        if block_vec4 > MAX_UBO_VEC4:
            raise ProgramError(f"kernel {self.name!r}: {self.pos - B.PARAM_BASE} bytes of parameters exceed what a UBO "
                               f"descriptor can size ({MAX_UBO_VEC4} vec4)")
        meta = B.KernelMeta(self.name, 0, 0, self.params, min(block_vec4, MAX_CONST_VEC4), block_vec4,
                            footprint(code), self.threadsize,
                            self.shared, self.branchstack, self.localid, self.wgid, self.private, self.ibos)
        return meta, code


class Ir3Compiler:
    """ir3 assembly -> hwdrv ir3 binary for one Adreno ``arch`` (e.g. "a630")."""

    source_kind = "ir3-asm"

    def __init__(self, arch: str = "a630"):
        self.arch = arch

    def compile(self, source: str | bytes) -> bytes:
        if isinstance(source, (bytes, bytearray, memoryview)):
            try:
                source = bytes(source).decode()
            except UnicodeDecodeError as e:
                raise ProgramError(f"ir3 compiler: the source is not UTF-8 text (byte {e.start}); pass ir3 "
                                   "assembly") from None
        if not isinstance(source, str):
            raise ProgramError(f"ir3 compiler: cannot compile a {type(source).__name__}; pass ir3 assembly (str)")
        text = source
        kernels: list[_Kernel] = []
        for n, raw in enumerate(text.splitlines()):
            line = raw.split(";", 1)[0].strip()
            where = f"line {n + 1}"
            if line.startswith("."):
                word, *args = line.split()
                if word == ".kernel":
                    if len(args) != 1:
                        raise ProgramError(f"{where}: .kernel takes one name")
                    kernels.append(_Kernel(args[0], n + 1))
                elif not kernels:
                    raise ProgramError(f"{where}: {word} before the first .kernel")
                else:
                    kernels[-1].directive(word, args, where)
                    kernels[-1].body.append("")
                continue
            if line and not kernels:
                raise ProgramError(f"{where}: instruction before the first .kernel directive")
            if kernels:
                kernels[-1].body.append(line)
        if not kernels:
            raise ProgramError("no kernel in the source (start each with .kernel NAME)")
        names = [k.name for k in kernels]
        if len(set(names)) != len(names):
            raise ProgramError(f"kernel names repeat: {names}")
        return B.pack(self.arch, [k.build() for k in kernels])
