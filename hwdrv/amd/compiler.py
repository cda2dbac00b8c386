"""AMDCompiler: what ``dev.compiler.compile`` takes on an AMD device.

- An HSA code object (bytes starting with the ELF magic: clang/lld ET_DYN or an ET_REL object)
  is validated (ELF header, kernel descriptors, metadata note, target) and passed through.
- LLVM IR text (``target triple = "amdgcn-amd-amdhsa"`` or none) is compiled to an ET_REL code
  object with llvmlite (optional dependency ``hwdrv[amd]``) for this device's gfx target, after
  the new-pass-manager ``default<O2>`` pipeline, which lets LLVM's AMDGPU attributor drop the
  implicit inputs hwdrv does not provide (reference/amd.md 4.4).
"""
from __future__ import annotations

from ..errors import ProgramError
from . import codeobj

TRIPLE = "amdgcn-amd-amdhsa"


class AMDCompiler:
    """Code objects pass through (validated); LLVM IR compiles with llvmlite when installed."""

    source_kind = "hsaco or llvm-ir"

    def __init__(self, arch: str):
        self.arch = arch

    def compile(self, source: str | bytes) -> bytes:
        """A code object for ``arch``; raises ProgramError naming what is wrong."""
        if isinstance(source, (bytes, bytearray, memoryview)) and bytes(source[:4]) == b"\x7fELF":
            return self._check(bytes(source))
        if isinstance(source, (bytes, bytearray)):
            try:
                source = bytes(source).decode()
            except UnicodeDecodeError:
                raise ProgramError("AMD compiler: input is neither an ELF code object nor LLVM IR text") from None
        if not isinstance(source, str):
            raise ProgramError(f"AMD compiler: cannot compile a {type(source).__name__}; pass a code object (bytes) "
                               "or LLVM IR (str)")
        return self._check(self._llvm_ir(source))

    def _check(self, binary: bytes) -> bytes:
        co = codeobj.load(binary)
        if co.arch != self.arch:
            raise ProgramError(f"code object is for {co.arch}, this device is {self.arch}: rebuild with -mcpu={self.arch}")
        if not co.kernels:
            raise ProgramError("code object has no kernels (no kernel descriptors in its symbol table)")
        return binary

    def _llvm_ir(self, text: str) -> bytes:
        try:
            import llvmlite.binding as llvm
        except ImportError:
            raise ProgramError("compiling LLVM IR for AMD needs llvmlite: pip install 'hwdrv[amd]' (or pass a code "
                               "object built with clang -target amdgcn-amd-amdhsa)") from None
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        try:
            mod = llvm.parse_assembly(text)
            mod.triple = TRIPLE
            mod.verify()
        except RuntimeError as e:
            raise ProgramError(f"LLVM IR does not parse or verify: {e}") from None
        tm = llvm.Target.from_triple(TRIPLE).create_target_machine(cpu=self.arch, opt=2, reloc="pic", codemodel="default")
        mod.data_layout = str(tm.target_data)
        pto = llvm.create_pipeline_tuning_options(speed_level=2)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        return bytes(tm.emit_object(mod))
