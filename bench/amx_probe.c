/* AMX probe for bench/engine_bench.py: asks the kernel for tile permission, runs one int8 tile product
   (TDPBSSD, 16x16x64) and checks it against a scalar reference.  Exit 0: the host AMX unit works. */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
typedef struct { uint8_t palette_id, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } cfg_t;
int main(void) {
  long r = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
  printf("arch_prctl(ARCH_REQ_XCOMP_PERM) = %ld\n", r);
  if (r) return 2;
  static int8_t a[16][64], b[16][64]; static int32_t c[16][16];
  srand(7); for (int i = 0; i < 16; i++) for (int j = 0; j < 64; j++) { a[i][j] = rand() % 255 - 127; b[i][j] = rand() % 255 - 127; }
  cfg_t cfg; memset(&cfg, 0, sizeof cfg); cfg.palette_id = 1;
  for (int t = 0; t < 3; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
  _tile_loadconfig(&cfg);
  _tile_zero(0); _tile_loadd(1, a, 64); _tile_loadd(2, b, 64);
  _tile_dpbssd(0, 1, 2); _tile_stored(0, c, 64); _tile_release();
  int bad = 0;
  for (int m = 0; m < 16; m++) for (int n = 0; n < 16; n++) { int32_t ref = 0;
    for (int k = 0; k < 16; k++) for (int i = 0; i < 4; i++) ref += a[m][4*k+i] * b[k][4*n+i];
    bad += ref != c[m][n]; }
  printf("AMX TDPBSSD 16x16x64 vs scalar reference: %d of 256 differ\n", bad);
  return bad != 0;
}
