// gemm: C = act(alpha * op(A) @ op(B) + beta * C + bias) for CPU-shaped OpenCL drivers.
// No local memory, no barriers: one work-item keeps an MR x (VW*NV) block of C in registers
// over its K range (row-block index fastest).
// Defines: MR VW NV KU (register block), A_PACKED, B_PACKED (operand layouts).

#ifndef MR
#define MR 8
#endif
#ifndef VW
#define VW 16
#endif
#ifndef NV
#define NV 2
#endif
#ifndef KU
#define KU 4
#endif
#ifndef A_PACKED
#define A_PACKED 0 // 1: A comes as MR-row panels from gemm_pack_a; 0: read in place
#endif
#ifndef B_PACKED
#define B_PACKED 1 // 1: B comes as NR-column panels; 0: row-major B read in place (N >= NR)
#endif
#define NR (VW * NV)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VTYPE CAT(float, VW)
// Unaligned vector access through an under-aligned typedef: inline vmovups, where
// vloadN/vstoreN are out-of-line calls in PoCL (which spill every accumulator).
typedef VTYPE __attribute__((aligned(4))) VTYPE_U;
#define ULOAD(p) (*(__global const VTYPE_U *)(p))
#define USTORE(v, p) (*(__global VTYPE_U *)(p) = (v))

// The epilogue: act(v) for act = 0 linear, 1 relu, 2 sigmoid, 3 tanh (a uniform branch;
// sigmoid clamped like the numpy reference).
#define ACTIVATE(T, v, act)                                                           \
  ((act) == 1   ? fmax((v), (T)(0.0f))                                                \
   : (act) == 2 ? (T)(1.0f) / ((T)(1.0f) + exp(clamp(-(v), (T)(-88.0f), (T)(88.0f)))) \
   : (act) == 3 ? tanh(v)                                                             \
                : (v))

#if B_PACKED
#define LOADB(v) b[v]
#define BSTEP NV
#else
#define LOADB(v) ULOAD(b + (v) * VW)
#define BSTEP ldb
#endif

// One rank-1 update of the register block: a * b + c, never fma()/mad() (library calls
// on vectors in some PoCL builds).
#define RANK1(AR)                                                                        \
  {                                                                                      \
    VTYPE bv[NV];                                                                        \
    _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = LOADB(v);                     \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                     \
      const float ar = AR;                                                               \
      _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = ar * bv[v] + acc[r][v]; \
    }                                                                                    \
    b += BSTEP;                                                                          \
  }

// A: op(A)[m, k] = A[a_off + m * sam + k * sak] (A_PACKED: panels (ceil(M/MR), Kp, MR)).
// Bp: (ceil(N/NR), Kp, NR) column panels (B_PACKED) or op(B)[k, n] = Bp[b_off + k*ldb + n];
// then the last panel is shifted left to end at N and writes only its own columns.
// Work-item (i, j, s) covers row blocks [i*rb, i*rb+rb) and k in [s*kc, s*kc+kc).
// C: (M, N) at C[c_off + m * ldc + n]; with split != 0 the raw partial blocks go to
// C = P[s][ib*MR + r][jb*NR + c] for gemm_splitk_reduce instead.
__kernel void gemm(const int M, const int N, const int K, const int Kp, const int kc,
                   __global const float *restrict A, const long a_off, const long sam,
                   const long sak, __global const float *restrict Bp, const long b_off,
                   const int ldb,
                   __global float *restrict C, const long c_off, const int ldc,
                   const float alpha, const float beta,
                   __global const float *restrict bias, const long bias_off, const int act,
                   const int split, const int rb) {
  const int jb = get_global_id(1);
  const int mb = (M + MR - 1) / MR;
  const int ib_end = min(mb, (int)get_global_id(0) * rb + rb);
  // rb consecutive row blocks per work-item: short-K products amortize the launch of each
  for (int ib = get_global_id(0) * rb; ib < ib_end; ++ib) {
  const int k0 = get_global_id(2) * kc;
  const int k1 = min(K, k0 + kc);
  const int lo = jb * NR; // first column this work-item writes
#if B_PACKED
  const int col0 = lo;
  __global const VTYPE *b = (__global const VTYPE *)(Bp + ((size_t)jb * Kp + k0) * NR);
#else
  const int col0 = min(lo, N - NR);
  __global const float *b = Bp + b_off + (size_t)k0 * ldb + col0;
#endif
  VTYPE acc[MR][NV];
#pragma unroll
  for (int r = 0; r < MR; ++r)
#pragma unroll
    for (int v = 0; v < NV; ++v) acc[r][v] = (VTYPE)(0.0f);
  const int row0 = ib * MR;
#if A_PACKED
  __global const float *a = A + ((size_t)ib * Kp + k0) * MR;
  int k = k0;
  for (; k + KU <= k1; k += KU) {
#pragma unroll
    for (int u = 0; u < KU; ++u) {
      RANK1(a[r]);
      a += MR;
    }
  }
  for (; k < k1; ++k) {
    RANK1(a[r]);
    a += MR;
  }
#else
  __global const float *arow[MR]; // rows past M read row M-1; their results are dropped
#pragma unroll
  for (int r = 0; r < MR; ++r) arow[r] = A + a_off + min(row0 + r, M - 1) * sam + k0 * sak;
  long ka = 0;
  int k = k0;
  if (sam == 1 && row0 + MR <= M) {
    // columns of A (trans_a): the block's MR values of one k are adjacent, as in a
    // packed panel: one pointer, constant displacements
    __global const float *a = arow[0];
    for (; k + KU <= k1; k += KU) {
#pragma unroll
      for (int u = 0; u < KU; ++u) {
        RANK1(a[r]);
        a += sak;
      }
    }
    for (; k < k1; ++k) {
      RANK1(a[r]);
      a += sak;
    }
  } else if (sak == 1) {
    // rows of A: one index into MR row pointers, constant displacements (a general
    // stride needs a pointer per row and k step, which spill)
    int kk = 0;
    for (; k + KU <= k1; k += KU) {
#pragma unroll
      for (int u = 0; u < KU; ++u) RANK1(arow[r][kk + u]);
      kk += KU;
    }
    ka = kk;
  }
  for (; k + KU <= k1; k += KU) {
#pragma unroll
    for (int u = 0; u < KU; ++u) {
      RANK1(arow[r][ka]);
      ka += sak;
    }
  }
  for (; k < k1; ++k) {
    RANK1(arow[r][ka]);
    ka += sak;
  }
#endif

  if (split) {
    const int ldp = get_global_size(1) * NR;
    __global float *p = C + ((size_t)get_global_id(2) * mb * MR + row0) * ldp;
#pragma unroll
    for (int r = 0; r < MR; ++r)
#pragma unroll
      for (int v = 0; v < NV; ++v) USTORE(acc[r][v], p + (size_t)r * ldp + col0 + v * VW);
    continue;
  }
  if (row0 + MR <= M && col0 + NR <= N && (col0 == lo || beta == 0.0f) && act <= 1) {
    // a whole block without sigmoid/tanh: straight-line vector code (the general path
    // below, with its library calls, costs more than a short-K block's products). A
    // shifted last block recomputes the previous block's columns bit for bit: with
    // beta == 0 it may store them again.
    VTYPE add[NV];
#pragma unroll
    for (int v = 0; v < NV; ++v) add[v] = bias ? ULOAD(bias + bias_off + col0 + v * VW) : 0.0f;
    __global float *c = C + c_off + (size_t)row0 * ldc + col0;
    if (beta != 0.0f) {
#pragma unroll
      for (int r = 0; r < MR; ++r)
#pragma unroll
        for (int v = 0; v < NV; ++v)
          acc[r][v] = beta * ULOAD(c + (size_t)r * ldc + v * VW) + (alpha * acc[r][v] + add[v]);
    } else {
#pragma unroll
      for (int r = 0; r < MR; ++r)
#pragma unroll
        for (int v = 0; v < NV; ++v) acc[r][v] = alpha * acc[r][v] + add[v];
    }
#pragma unroll
    for (int r = 0; r < MR; ++r)
#pragma unroll
      for (int v = 0; v < NV; ++v) {
        VTYPE y = acc[r][v];
        if (act) y = y > 0.0f ? y : 0.0f;
        USTORE(y, c + (size_t)r * ldc + v * VW);
      }
    continue;
  }
#pragma unroll
  for (int r = 0; r < MR; ++r) {
    const int row = row0 + r;
    if (row < M) {
      __global float *c = C + c_off + (size_t)row * ldc + col0;
#pragma unroll
      for (int v = 0; v < NV; ++v) {
        const int col = col0 + v * VW;
        VTYPE y = alpha * acc[r][v];
        if (col >= lo && col + VW <= N) {
          if (beta != 0.0f) y = beta * ULOAD(c + v * VW) + y;
          if (bias) y += ULOAD(bias + bias_off + col);
          USTORE(ACTIVATE(VTYPE, y, act), c + v * VW);
        } else if (col < N && col + VW > lo) {
          union {
            VTYPE v;
            float s[VW];
          } t;
          t.v = y;
          const int e0 = max(0, lo - col), e1 = min(VW, N - col);
          if (act <= 1) { // no library calls in the loop (narrow outputs take it per row)
            for (int e = e0; e < e1; ++e) {
              float z = t.s[e];
              if (beta != 0.0f) z = beta * c[v * VW + e] + z;
              if (bias) z += bias[bias_off + col + e];
              c[v * VW + e] = act && z < 0.0f ? 0.0f : z;
            }
          } else {
            for (int e = e0; e < e1; ++e) {
              float z = t.s[e];
              if (beta != 0.0f) z = beta * c[v * VW + e] + z;
              if (bias) z += bias[bias_off + col + e];
              c[v * VW + e] = ACTIVATE(float, z, act);
            }
          }
        }
      }
    }
  }
} // row blocks
}

// Sums the S partial blocks of a split-K gemm (P: (S, Mpad, ldp)) and applies the epilogue
// to row get_global_id(0) of C.
__kernel void gemm_splitk_reduce(const int N, const int S, const int mpad, const int ldp,
                                 __global const float *restrict P, __global float *restrict C,
                                 const long c_off, const int ldc, const float alpha,
                                 const float beta, __global const float *restrict bias,
                                 const long bias_off, const int act) {
  const int m = get_global_id(0);
  __global float *c = C + c_off + (size_t)m * ldc;
  for (int n = 0; n < N; ++n) {
    float s = 0.0f;
    for (int q = 0; q < S; ++q) s += P[((size_t)q * mpad + m) * ldp + n];
    float z = alpha * s;
    if (beta != 0.0f) z = beta * c[n] + z;
    if (bias) z += bias[bias_off + n];
    c[n] = ACTIVATE(float, z, act);
  }
}

// Softmax over each row of C (M, N), in place: the epilogue of activation="softmax".
__kernel void gemm_softmax_rows(__global float *C, const long c_off, const int ldc,
                                const int N) {
  __global float *c = C + c_off + (size_t)get_global_id(0) * ldc;
  float mx = c[0];
  for (int n = 1; n < N; ++n) mx = fmax(mx, c[n]);
  float s = 0.0f;
  for (int n = 0; n < N; ++n) {
    const float e = exp(c[n] - mx);
    c[n] = e;
    s += e;
  }
  const float inv = 1.0f / s;
  for (int n = 0; n < N; ++n) c[n] *= inv;
}
