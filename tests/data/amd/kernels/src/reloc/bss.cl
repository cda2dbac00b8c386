/* Loader input only (built as a relocatable object, bss.o): a zero-initialised program-scope array
 * in .bss (SHT_NOBITS) written by the kernel, so the image's data must be mapped writable. */
#include "../common.h"

__global int staging[64];

/* one work-group: each work-item stores into the .bss array, then reads its mirror element */
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void bss_reverse(__global const int *in, __global int *out) {
  uint l = lid(0);
  staging[l] = in[l] * 3;
  lbarrier();
  out[l] = staging[63 - l];
}
