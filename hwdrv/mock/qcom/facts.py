"""Facts of the mock kgsl device that are not in the UAPI header: kernel-internal limits and the A630's
parameters, each with the kgsl source it comes from (qualcomm-linux/kgsl, commit pinned in
autogen/manifest.py as "kgsl"). Values the UAPI defines come from hwdrv.qcom.gen.kgsl instead.
"""
from __future__ import annotations

# kgsl.h: "#define KGSL_MAX_NUMIBS 2000" / "#define KGSL_MAX_SYNCPOINTS 32" (_process_command_input)
MAX_NUMIBS = 2000
MAX_SYNCPOINTS = 32
# kgsl.h: KGSL_MEMSTORE_SIZE = PAGE_SIZE * 8 (one kgsl_devmemstore record per context id)
MEMSTORE_SIZE = 8 * 4096
# kgsl.h KGSL_MAX_CONTEXTS_PER_PROC; contexts also need a memstore record (KGSL_MEMSTORE_MAX)
MAX_CONTEXTS_PER_PROC = 200
# kgsl_iommu.h: KGSL_MEMSTORE_TOKEN_ADDRESS = KGSL_IOMMU_SECURE_BASE32 (0x100000000 - 256 MiB) - SZ_4K
MEMSTORE_TOKEN_ADDRESS = 0xEFFFF000
# kgsl_iommu.h: KGSL_IOMMU_SVM_BASE64/END64 and KGSL_IOMMU_VA_BASE64/END64
SVM_BASE64, SVM_END64 = 0x10_0000_0000, 0x40_0000_0000
VA_BASE64, VA_END64 = 0x40_0000_0000, 0x80_0000_0000
# adreno_dispatch.c: "static unsigned int _context_drawqueue_size = 50"; adreno_dispatcher_queue_cmds accepts
# at most _context_drawqueue_size - 1 queued commands per context.
CONTEXT_DRAWQUEUE_SIZE = 50
# adreno.c _verify_ib: "The maximum allowable size for an IB in the CP is 0xFFFFF dwords"
IB_MAX_DWORDS = 0xFFFFF
# adreno.h KGSL_RB_SIZE (SZ_32K): the ringbuffer the kernel writes its wrappers into
RB_SIZE = 32 * 1024
# kgsl.c kgsl_prop_version: dev_major / dev_minor returned beside KGSL_VERSION_MAJOR/MINOR
DEV_VERSION = (3, 1)

# adreno-gpulist.h, adreno_gpu_core_a630v2: DEFINE_ADRENO_REV(ADRENO_REV_A630, 6, 3, 0, ANY_ID) (patch byte 1,
# the value tinygrad and Mesa's freedreno_devices.py use for the SDM845 A630), gmem_size SZ_1M,
# uche_gmem_alignment SZ_1M, highest_bank_bit 15. adreno_prop_device_info answers device_id = device->id + 1,
# mmu_enabled = 1 and leaves gpu_id 0; adreno_prop_u32 gives DEVICE_BITNESS 48 on 64-bit capable cores.
A630 = {
    "chip_id": 0x06030001,
    "device_id": 1,
    "gmem_size": 1 << 20,
    "uche_gmem_alignment": 1 << 20,
    "highest_bank_bit": 15,
    "bitness": 48,
}
# The CP's always-on counter ticks at 19.2 MHz (the SoC's XO clock; tinygrad divides by 19.2 for us).
ALWAYS_ON_HZ = 19_200_000

# adreno.h "Command identifiers": CP_NOP payloads the kernel puts in its ring around each command
CMD_IDENTIFIER = 0x2EEDFACE
CMD_INTERNAL_IDENTIFIER = 0x2EEDD00D
START_IB_IDENTIFIER = 0x2EADEABE
END_IB_IDENTIFIER = 0x2ABEDEAD

# adreno-gpulist.h a630_protected_regs: (start, end inclusive, noaccess) per CP_PROTECT_REG slot, which
# a6xx_protect_init programs as start | (end - start) << 18 | noaccess << 31 with CP_PROTECT_CNTL =
# ACCESS_PROT_EN | ACCESS_FAULT_ON_VIOL_EN | LAST_SPAN_INF_RANGE. Every span blocks writes; noaccess
# spans block reads too.
A630_PROTECTED_REGS = [
    (0x00000, 0x004ff, 0), (0x00501, 0x00506, 0), (0x0050b, 0x007ff, 0), (0x0050e, 0x0050e, 1),
    (0x00510, 0x00510, 1), (0x00534, 0x00534, 1), (0x00800, 0x00882, 1), (0x008a0, 0x008a8, 1),
    (0x008ab, 0x008cf, 1), (0x008d0, 0x0098c, 0), (0x00900, 0x0094d, 1), (0x0098d, 0x00bff, 1),
    (0x00e00, 0x00e01, 1), (0x00e03, 0x00e0f, 1), (0x03c00, 0x03cc3, 1), (0x03cc4, 0x05cc3, 0),
    (0x08630, 0x087ff, 1), (0x08e00, 0x08e00, 1), (0x08e08, 0x08e08, 1), (0x08e50, 0x08e6f, 1),
    (0x09624, 0x097ff, 1), (0x09e70, 0x09e71, 1), (0x09e78, 0x09fff, 1), (0x0a630, 0x0a7ff, 1),
    (0x0ae02, 0x0ae02, 1), (0x0ae50, 0x0b17f, 1), (0x0b604, 0x0b604, 1), (0x0be02, 0x0be03, 1),
    (0x0be20, 0x0d5ff, 1), (0x0f000, 0x0fbff, 1), (0x0fc00, 0x11bff, 0), (0x11c00, 0x11c00, 1),
]
# a6xx_cp_hw_err_callback decodes CP_PROTECT_STATUS as: bits 17:0 the register, bit 20 set for a read
PROTECT_STATUS_READ = 1 << 20
