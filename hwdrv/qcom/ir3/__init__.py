"""ir3, the Adreno a6xx/a7xx shader ISA: an assembler and a disassembler in Mesa's syntax, both
driven by the tables generated from Mesa's isaspec XML (``hwdrv.qcom.gen.ir3_isa``).

    from hwdrv.qcom import ir3
    code = ir3.assemble("mov.u32u32 r0.y, r0.x\n(rpt5)nop\nend\nnop\n")   # 8 bytes per instruction
    ir3.disassemble(code)   # ['mov.u32u32 r0.y, r0.x', '(rpt5)nop', 'end', 'nop']
"""
from .asm import assemble
from .disasm import DEFAULT_GPU_ID, disassemble

__all__ = ["assemble", "disassemble", "DEFAULT_GPU_ID"]
