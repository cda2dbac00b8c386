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
# kgsl.c kgsl_read(): what read() on the device node returns
READ_TEXT = b"OH HAI GPU\n"

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
