"""hwdrv's ir3 binary: ir3 machine code plus the metadata a dispatch needs.

Layout (little-endian)::

    0   8 bytes  magic b"HWIR3BIN"
    8   u32      format version (1)
    12  u32      n = length of the metadata
    16  n bytes  metadata: UTF-8 JSON (see KernelMeta), padded with spaces to a 128-byte boundary
    ..           code: each kernel's instructions (8 bytes each) at its ``code_offset`` (relative to the
                 start of the code area), 128-byte aligned and padded with nops to whole 16-instruction
                 units, the unit of SP_CS_INSTRLEN

The const-file layout every kernel shares (the argument ABI):
  c0.xyz = number of workgroups, c1.xyz = workgroup (block) size, c1.w = threads per workgroup,
  written by the queue at launch;
  from c2.x (byte 32) the parameters, each at its ``offset`` (bytes into the const file).
System values arrive in registers: the local invocation id (x, y, z) at ``localid`` and the workgroup
id at ``wgid`` (a high register, r48.x or above), as SP_CS_CONST_CONFIG_0 programs them.
The whole parameter block (launch values included) is also bound as UBO 0, so parameters past the
const file's 256 vec4 are read with ``ldc`` (``ldc.offsetK.N dst, vec4, 0``).
A pointer parameter listed in ``ibos`` is also bound as an IBO (storage buffer) for ldib/stib/atomic.b:
IBO k is the k-th listed parameter, described as 32-bit elements over its whole Buffer (accesses past
the end are dropped / read 0, per the descriptor).
"""
from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field

from ..errors import ProgramError

MAGIC = b"HWIR3BIN"
VERSION = 1
CODE_ALIGN = 128                 # one SP_CS_INSTRLEN unit: 16 instructions of 8 bytes
#: bytes of the const file before the parameters: c0 (workgroup counts) and c1 (workgroup size)
PARAM_BASE = 32
NUMWG_VEC4, LOCALSIZE_VEC4 = 0, 1


@dataclass
class KernelMeta:
    """One kernel of a binary. Register ids are ir3's (n << 2 | component; 0xfc = none)."""
    name: str
    code_offset: int
    code_size: int               # bytes, a multiple of CODE_ALIGN
    params: list[tuple[str, int, int]]    # (name, byte offset in the const file, size)
    const_vec4: int              # vec4s of the const file the kernel reads (multiple of 4, HLSQ_CS_CNTL.CONSTLEN)
    block_vec4: int              # vec4s of the whole parameter block (>= const_vec4: the rest only via UBO 0)
    full_regs: int               # FULLREGFOOTPRINT: vec4 registers r0..r(n-1) (half registers merged in)
    threadsize: int              # 64 or 128 fibers per wave
    shared: int                  # static shared (local) memory in bytes
    branchstack: int             # SP_CS_CTRL_REG0.BRANCHSTACK
    localid: int                 # register receiving the local invocation id
    wgid: int                    # register receiving the workgroup id
    private: int = 0             # private (per-fiber) memory in bytes, reached with ldp/stp
    ibos: list[int] = field(default_factory=list)   # params (by index) also bound as IBO 0, 1, ...

    @property
    def param_size(self) -> int:
        return max((o + s for _, o, s in self.params), default=PARAM_BASE) - PARAM_BASE


def pack(arch: str, kernels: list[tuple[KernelMeta, bytes]]) -> bytes:
    """The binary for ``kernels`` (metadata with code_offset to be filled, code)."""
    code = bytearray()
    metas = []
    for meta, text in kernels:
        meta.code_offset = len(code)
        meta.code_size = len(text)
        code += text
        metas.append(asdict(meta))
    doc = json.dumps({"arch": arch, "kernels": metas}, separators=(",", ":")).encode()
    head = len(MAGIC) + 8
    doc += b" " * (-(head + len(doc)) % CODE_ALIGN)
    return MAGIC + struct.pack("<II", VERSION, len(doc)) + doc + bytes(code)


def unpack(binary: bytes) -> tuple[str, dict[str, KernelMeta], bytes]:
    """(arch, kernels by name, code area) of a binary made by :func:`pack`."""
    if not isinstance(binary, (bytes, bytearray)) or binary[:len(MAGIC)] != MAGIC:
        raise ProgramError("not an hwdrv ir3 binary (no HWIR3BIN magic); build it with dev.compiler.compile()")
    start = len(MAGIC) + 8
    if len(binary) < start:
        raise ProgramError(f"ir3 binary truncated: {len(binary)} bytes, the header alone is {start}")
    version, n = struct.unpack_from("<II", binary, len(MAGIC))
    if version != VERSION:
        raise ProgramError(f"ir3 binary format version {version}; this hwdrv reads version {VERSION}")
    if start + n > len(binary):
        raise ProgramError(f"ir3 binary truncated: metadata of {n} bytes does not fit in {len(binary)} bytes")
    try:
        doc = json.loads(bytes(binary[start:start + n]))
        kernels = {}
        for k in doc["kernels"]:
            meta = KernelMeta(**{**k, "params": [(str(a), int(b), int(c)) for a, b, c in k["params"]]})
            ints = [meta.code_offset, meta.code_size, meta.const_vec4, meta.block_vec4, meta.full_regs,
                    meta.threadsize, meta.shared, meta.branchstack, meta.localid, meta.wgid, meta.private, *meta.ibos]
            if not all(type(v) is int and v >= 0 for v in ints) or not isinstance(meta.name, str):
                raise ValueError(f"kernel {meta.name!r} has a field of the wrong type")
            if any(not 0 <= i < len(meta.params) for i in meta.ibos):
                raise ValueError(f"kernel {meta.name!r} binds a parameter that does not exist as an IBO")
            kernels[meta.name] = meta
        arch = doc["arch"]
        if not isinstance(arch, str):
            raise ValueError("arch is not a string")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ProgramError(f"ir3 binary metadata is damaged: {e}") from None
    code = bytes(binary[start + n:])
    for k in kernels.values():
        if k.code_offset % CODE_ALIGN or k.code_size % CODE_ALIGN or not k.code_size \
                or k.code_offset + k.code_size > len(code):
            raise ProgramError(f"ir3 binary: kernel {k.name!r} code [{k.code_offset}, +{k.code_size}) is not whole "
                               f"{CODE_ALIGN}-byte units inside the {len(code)}-byte code area")
    return arch, kernels, code
