"""Hopper SM warp-ESR error codes, the one hardware fact the mock needs that no pinned source
carries: their header (`dev_graphics` hwref: NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_*) is not in the
pinned upstream snapshot (open-gpu-kernel-modules 580.142 ships only the SM-error-state control
structs in ctrl83dedebug.h). Values: the warp-ESR error codes of the SM as public sources give
them (nouveau `gf100_mp_warp_error`, unchanged through Hopper); 0x10 INVALID_ADDR_SPACE is
confirmed on an H100 by the report quoted in reference/nvidia.md section 5.1 ("ESR value 0x10").

Names follow the hardware header's spelling, so a generated module can replace this one if a
pinned source ever carries the header.
"""
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_NONE = 0x00
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_PC_OVERFLOW = 0x06
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_ILLEGAL_INSTR_ENCODING = 0x09
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_ILLEGAL_INSTR_PARAM = 0x0B
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_INVALID_CONST_ADDR = 0x0C
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_OOR_ADDR = 0x0E
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_MISALIGNED_ADDR = 0x0F
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_INVALID_ADDR_SPACE = 0x10
NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_MMU_NACK = 0x20
