"""NVIDIA programs: a cubin uploaded to the GPU, with the QMD template and constant-bank-0
template of each launch shape precomputed. The mock's binaries are cubins too (PTX text as code),
so the GPU and the mock load the same way."""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ProgramError
from ..program import Param, Program
from .cluster import CB0_NCLUSTERID, NO_CLUSTER, QmdClusterVariant, encode_qmd, fill_cb0_shape
from .cubin import CubinImage
from .qmd import (CB0_ADDR_HI, CBUF_ALIGN, GRID_X, GRID_Y, GRID_Z, QMD_WORDS, RESERVED_SHARED, build_template,
                  put_word_field, set_const_bank)

if TYPE_CHECKING:
    from .device import NVDevice

# Constant bank 0, driver area as sm_90 code reads it (reference nvidia.md 3.8).
CB0_BLOCK_DIM = 0x00        # u32 x3: blockDim
CB0_GRID_DIM = 0x0C         # u32 x3: gridDim
CB0_SHARED_WINDOW = 0x18    # u64: generic address of shared memory
CB0_LOCAL_WINDOW = 0x20     # u64: generic address of local memory
CB0_STACK_POINTER = 0x28    # u32: initial stack pointer inside the local window
#: the stack starts this far below the top of the 16 MiB local window (space the ABI reserves)
STACK_RESERVE = 0x240
LOCAL_WINDOW_SIZE = 16 << 20
#: launch images a program keeps (one per block, shared size and grid it was launched with)
MAX_LAUNCH_IMAGES = 64
#: registers one sm_90 thread may use (CUDA C Programming Guide, compute capability 9.0)
MAX_REGISTERS = 255


class NVProgram(Program):
    """A kernel loaded on an NVIDIA device: a cubin from ptxas on the GPU, or the mock's cubin of
    PTX text (:mod:`hwdrv.nvidia.mockcubin`) on ``mock:nvidia`` -- both through this one path."""

    def __init__(self, device: "NVDevice", binary: bytes, name: str):
        image = CubinImage(binary)
        info = image.kernel(name)
        self.image, self.info = image, info
        max_threads = info.max_threads or device.limits.max_threads_per_block
        super().__init__(device, name, [Param(p.offset, p.size, p.name) for p in info.params],
                         info.param_size, max_threads=max_threads,
                         shared_static=info.shared_static, max_shared=device.limits.max_shared_per_block)
        self.local_per_thread = info.local_per_thread
        self.regs = info.regs
        # refused here, not at the first launch (where the QMD would take the value)
        if not 1 <= (self.regs or 0) <= MAX_REGISTERS:
            raise ProgramError(f"{name}: the binary says {self.regs} registers per thread; "
                               f"{device.arch} kernels use 1..{MAX_REGISTERS}")
        if not 0 <= self.local_per_thread <= LOCAL_WINDOW_SIZE - STACK_RESERVE:
            raise ProgramError(f"{name}: {self.local_per_thread} bytes of local memory per thread "
                               f"exceed the {LOCAL_WINDOW_SIZE >> 20} MiB local window "
                               f"(less {STACK_RESERVE} reserved bytes)")
        # Code (and .nv.global) goes to video memory the CPU writes directly: loading a program
        # never queues behind work the user has put on the copy engine.
        self._globals = None
        self._code = device._alloc_command_chunk(image.image_size)  # prefetch slack included
        gva = None
        if image.global_size:
            self._globals = device._alloc_command_chunk(image.global_size)
            self._globals.view()[:] = 0
            gva = self._globals.va
        device.upload(self._code, image.link(self._code.va, gva))
        self.program_va = image.text_address(name, self._code.va)
        self.const_banks = {n: (image.constant_bank_address(name, n, self._code.va), len(b.data))
                            for n, b in image.kernel_banks(name).items()}
        cb0 = image.constant_bank(name, 0).data
        self.program_size = info.text_size
        # constant bank 0 template: the compiler's contents, then the fixed driver words
        self.cb0_size = -(-max(info.param_base + info.param_size, len(cb0), 0x210) // CBUF_ALIGN) * CBUF_ALIGN
        tmpl = bytearray(self.cb0_size)
        tmpl[:len(cb0)] = cb0
        struct.pack_into("<QQI", tmpl, CB0_SHARED_WINDOW, device.shared_window, device.local_window,
                         LOCAL_WINDOW_SIZE - STACK_RESERVE)
        self.cb0_template = np.frombuffer(bytes(tmpl), np.uint8).copy()
        self.param_base = info.param_base
        # A kernel that calls device functions gets a call stack below its frame, as CUDA gives
        # one: ptxas reports 0 stack for recursion (and for calls that pass arguments in
        # registers), so the device's stack limit is the floor, as cudaLimitStackSize is.
        self.stack_bytes = device.stack_limit if info.calls else 0
        per_thread = max(self.local_per_thread, info.frame_size + self.stack_bytes)
        self.slm_per_thread = -(-(per_thread + STACK_RESERVE) // 16) * 16 if per_thread else 0
        self._templates: dict[tuple, np.ndarray] = {}
        self._images: dict[tuple, tuple[bytes, int]] = {}
        #: byte offset of the parameters in a launch template
        self.args_offset = QMD_WORDS * 4 + self.param_base

    def launch_template(self, block: tuple, shared: int) -> np.ndarray:
        """QMD words followed by constant bank 0 for this launch shape (cached): everything but
        the grid, the arguments and the constant bank's address is already in place (the
        cluster words say 1x1x1: a cluster launch rewrites them, nvidia/cluster.py)."""
        key = (block, shared)
        t = self._templates.get(key)
        if t is None:
            smem = (self.shared_static if self.shared_static else RESERVED_SHARED) + shared
            q = build_template(block=block, regs=self.regs, shared_bytes=smem,
                               local_bytes=self.slm_per_thread, program_va=self.program_va,
                               program_size=self.program_size, barriers=self.info.barriers,
                               const_banks=self.const_banks)
            set_const_bank(q, 0, 0, self.cb0_size)      # size and valid bits; address per launch
            cb = self.cb0_template.copy()
            struct.pack_into("<III", cb, CB0_BLOCK_DIM, *block)
            fill_cb0_shape(cb, NO_CLUSTER)
            t = np.concatenate([q, cb.view(np.uint32)])
            t.flags.writeable = False
            self._templates[key] = t
        return t

    def launch_image(self, block: tuple, shared: int, grid: tuple, cluster: tuple | None = None,
                     variant: "QmdClusterVariant | None" = None) -> tuple[bytes, int]:
        """The launch template with a concrete ``grid`` (and ``cluster`` shape, encoded as
        ``variant`` says) filled in, QMD and constant bank 0, as bytes, and the other bits of
        the word holding the high half of constant bank 0's address: a launch copies the bytes
        and writes that address and the arguments. Cached: an eager runtime repeats a few shapes."""
        key = (block, shared, grid) if cluster is None else (block, shared, grid, cluster, variant)
        img = self._images.get(key)
        if img is None:
            t = self.launch_template(block, shared).copy()
            for v, field in zip(grid, (GRID_X, GRID_Y, GRID_Z)):
                put_word_field(t, field, v)
            grid_word, ncluster_word = QMD_WORDS + CB0_GRID_DIM // 4, QMD_WORDS + CB0_NCLUSTERID // 4
            t[grid_word:grid_word + 3] = grid
            t[ncluster_word:ncluster_word + 3] = grid if cluster is None else [g // c for g, c in zip(grid, cluster)]
            if cluster is not None:
                fill_cb0_shape(t[QMD_WORDS:].view(np.uint8), cluster)
                encode_qmd(t, grid, cluster, variant)
            word, _shift, mask = CB0_ADDR_HI
            img = (t.tobytes(), int(t[word]) & ~mask)
            if len(self._images) >= MAX_LAUNCH_IMAGES:
                self._images.clear()
            self._images[key] = img
        return img

    def _memory(self) -> list:
        return [b for b in (self._code, self._globals) if b is not None]

    def _ptx_source(self) -> str | None:
        """This kernel's code as PTX text (the mock's binaries), None for SASS."""
        text = self.image.section(f".text.{self.name}")
        if text is None or not text.data.endswith(b"\0"):
            return None
        try:
            return text.data[:-1].decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def is_ptx(self) -> bool:
        """Whether this kernel's code is PTX text (the mock's cubins) rather than SASS."""
        return self._ptx_source() is not None

    def source_line(self, pc: int) -> str:
        """The PTX line at GPU address ``pc`` when this kernel's code is PTX text (the mock's
        binaries: its SM error PCs point at the faulting line); "" otherwise."""
        src = self._ptx_source()
        off = pc - self.program_va
        if src is None or not 0 <= off < len(src):
            return ""
        line_no = src.count("\n", 0, off) + 1
        return f"PTX line {line_no}: {src.splitlines()[line_no - 1].strip()}"
