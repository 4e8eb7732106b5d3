// Packing for gemm.cl: op(A) into MR-row panels, op(B) into NR-column panels, zero padded.
// Any element strides, so transposes and strided views cost nothing extra. Each work-item
// packs KC consecutive k of one panel; 1x1 work-groups keep one compiled variant per kernel.

#ifndef MR
#define MR 8
#endif
#ifndef NR
#define NR 32
#endif
#define KC 32
typedef float16 __attribute__((aligned(4))) float16_u; // unaligned float16 (inline vmovups)

// op(A)[m, k] = A[off + m * sm + k * sk]  ->  Ap[(i * Kp + k) * MR + r], m = i * MR + r.
// Global size (ceil(Kp / KC), ceil(M / MR)).
__kernel void gemm_pack_a(__global const float *restrict A, const long off, const long sm,
                          const long sk, const int M, const int K, const int Kp,
                          __global float *restrict Ap) {
  const int k0 = get_global_id(0) * KC;
  const int i = get_global_id(1);
  const int m0 = i * MR;
  const int kend = min(k0 + KC, Kp);
  const int kin = min(kend, K); // k < kin are real columns, kin <= k < kend are padding
  __global float *dst = Ap + (size_t)i * Kp * MR;
  if (sm == 1 && m0 + MR <= M) { // columns of A (trans_a): contiguous loads and stores
    for (int k = k0; k < kin; ++k) {
      __global const float *src = A + off + k * sk + m0;
      for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r];
    }
    for (int k = max(k0, kin); k < kend; ++k)
      for (int r = 0; r < MR; ++r) dst[k * MR + r] = 0.0f;
    return;
  }
  for (int r = 0; r < MR; ++r) {
    const int m = m0 + r;
    if (m < M) {
      __global const float *src = A + off + m * sm;
      for (int k = k0; k < kin; ++k) dst[k * MR + r] = src[k * sk];
      for (int k = max(k0, kin); k < kend; ++k) dst[k * MR + r] = 0.0f;
    } else {
      for (int k = k0; k < kend; ++k) dst[k * MR + r] = 0.0f;
    }
  }
}

// op(B)[k, n] = B[off + k * sk + n * sn]  ->  Bp[(j * Kp + k) * NR + c], n = j * NR + c.
// Global size (ceil(Kp / KC), ceil(N / NR)).
__kernel void gemm_pack_b(__global const float *restrict B, const long off, const long sk,
                          const long sn, const int N, const int K, const int Kp,
                          __global float *restrict Bp) {
  const int k0 = get_global_id(0) * KC;
  const int j = get_global_id(1);
  const int n0 = j * NR;
  const int kend = min(k0 + KC, Kp);
  const int kin = min(kend, K);
  const int nin = min(NR, N - n0); // real columns in this panel
  __global float *dst = Bp + (size_t)j * Kp * NR;
  if (sn == 1 && nin == NR) { // rows of B: contiguous loads and stores
    for (int k = k0; k < kin; ++k) {
      __global const float *src = B + off + k * sk + n0;
      for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[c];
    }
  }
#if NR % 16 == 0
  else if (sk == 1 && nin == NR && kin - k0 == KC) {
    // columns of op(B) are rows of B (trans_b): 16 x 16 tiles transposed in registers,
    // 16 vector loads and 16 vector stores each (scalar copies: ~2x slower)
    for (int c0 = 0; c0 < NR; c0 += 16) {
      for (int kk = k0; kk < kin; kk += 16) {
        float16 v[16];
#pragma unroll
        for (int c = 0; c < 16; ++c)
          v[c] = *(__global const float16_u *)(B + off + (long)(n0 + c0 + c) * sn + kk);
#pragma unroll
        for (int k = 0; k < 16; ++k) {
          float16 w;
#pragma unroll
          for (int c = 0; c < 16; ++c) w[c] = v[c][k];
          *(__global float16_u *)(dst + (size_t)(kk + k) * NR + c0) = w;
        }
      }
    }
  }
#endif
  else {
    for (int c = 0; c < NR; ++c) {
      __global const float *src = B + off + (n0 + c) * sn;
      if (c < nin)
        for (int k = k0; k < kin; ++k) dst[k * NR + c] = src[k * sk];
      else
        for (int k = k0; k < kin; ++k) dst[k * NR + c] = 0.0f;
    }
  }
  for (int k = max(k0, kin); k < kend; ++k)
    for (int c = 0; c < NR; ++c) dst[k * NR + c] = 0.0f;
}
