// Packing for gemm.cl: op(A) into MR-row panels, op(B) into NR-column panels, zero padded.
// Any element strides, so transposes and strided views cost nothing extra. Defines: MR, NR.

#ifndef MR
#define MR 8
#endif
#ifndef NR
#define NR 32
#endif

// op(A)[m, k] = A[off + m * sm + k * sk]  ->  Ap[(i * Kp + k) * MR + r], m = i * MR + r.
// Global size (Kp, ceil(M / MR)).
__kernel void gemm_pack_a(__global const float *restrict A, const long off, const long sm,
                          const long sk, const int M, const int K, const int Kp,
                          __global float *restrict Ap) {
  const int k = get_global_id(0);
  const int i = get_global_id(1);
  __global float *dst = Ap + ((size_t)i * Kp + k) * MR;
  const int m0 = i * MR;
  if (k < K && m0 + MR <= M) {
    __global const float *src = A + off + m0 * sm + k * sk;
#pragma unroll
    for (int r = 0; r < MR; ++r) dst[r] = src[r * sm];
  } else {
    for (int r = 0; r < MR; ++r) {
      const int m = m0 + r;
      dst[r] = (k < K && m < M) ? A[off + m * sm + k * sk] : 0.0f;
    }
  }
}

// op(B)[k, n] = B[off + k * sk + n * sn]  ->  Bp[(j * Kp + k) * NR + c], n = j * NR + c.
// Global size (NR, Kp, ceil(N / NR)): the column index is fastest, so loads run along rows.
__kernel void gemm_pack_b(__global const float *restrict B, const long off, const long sk,
                          const long sn, const int N, const int K, const int Kp,
                          __global float *restrict Bp) {
  const int c = get_global_id(0);
  const int k = get_global_id(1);
  const int j = get_global_id(2);
  const int n = j * NR + c;
  Bp[((size_t)j * Kp + k) * NR + c] = (k < K && n < N) ? B[off + k * sk + n * sn] : 0.0f;
}
