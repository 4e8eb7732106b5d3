// gemm: C = act(alpha * op(A) @ op(B) + beta * C + bias) from panels packed by pack.cl.
// CPU-shaped: no local memory, no barriers; one work-item keeps an MR x (VW*NV) block of C
// in registers over all of K (row-block index fastest). Defines: MR VW NV KU ACT HAS_BIAS.

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
#ifndef ACT
#define ACT 0 // 0 linear, 1 relu, 2 sigmoid, 3 tanh
#endif
#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif

#define NR (VW * NV)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VTYPE CAT(float, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)

// The epilogue activation, for a scalar or a vector (clamped like the numpy reference).
#if ACT == 1
#define ACTIVATE(T, v) fmax((v), (T)(0.0f))
#elif ACT == 2
#define ACTIVATE(T, v) ((T)(1.0f) / ((T)(1.0f) + exp(clamp(-(v), (T)(-88.0f), (T)(88.0f)))))
#elif ACT == 3
#define ACTIVATE(T, v) tanh(v)
#else
#define ACTIVATE(T, v) (v)
#endif

// Ap: (ceil(M/MR), Kp, MR) row panels; Bp: (ceil(N/NR), Kp, NR) column panels; Kp % KU == 0.
// C: (M, N) at C[c_off + m * ldc + n]; bias: (N,) at bias[bias_off + n] (unused if !HAS_BIAS).
__kernel void gemm(const int M, const int N, const int Kp,
                   __global const float *restrict Ap, __global const float *restrict Bp,
                   __global float *restrict C, const int c_off, const int ldc,
                   const float alpha, const float beta,
                   __global const float *restrict bias, const int bias_off) {
  const int ib = get_global_id(0);
  const int jb = get_global_id(1);
  __global const float *a = Ap + (size_t)ib * Kp * MR;
  __global const VTYPE *b = (__global const VTYPE *)(Bp + (size_t)jb * Kp * NR);

  VTYPE acc[MR][NV];
#pragma unroll
  for (int r = 0; r < MR; ++r)
#pragma unroll
    for (int v = 0; v < NV; ++v) acc[r][v] = (VTYPE)(0.0f);

  for (int k = 0; k < Kp; k += KU) {
#pragma unroll
    for (int u = 0; u < KU; ++u) {
      VTYPE bv[NV];
#pragma unroll
      for (int v = 0; v < NV; ++v) bv[v] = b[v];
#pragma unroll
      for (int r = 0; r < MR; ++r) {
        const float ar = a[r];
        // a * b + c, never fma()/mad(): those are library calls on vectors in some PoCLs
#pragma unroll
        for (int v = 0; v < NV; ++v) acc[r][v] = ar * bv[v] + acc[r][v];
      }
      a += MR;
      b += NV;
    }
  }

  const int row0 = ib * MR;
  const int col0 = jb * NR;
#pragma unroll
  for (int r = 0; r < MR; ++r) {
    const int row = row0 + r;
    if (row < M) {
      __global float *c = C + c_off + (size_t)row * ldc + col0;
#pragma unroll
      for (int v = 0; v < NV; ++v) {
        const int col = col0 + v * VW;
        VTYPE y = alpha * acc[r][v];
        if (col + VW <= N) {
          if (beta != 0.0f) y = beta * VLOAD(0, c + v * VW) + y;
#if HAS_BIAS
          y += VLOAD(0, bias + bias_off + col);
#endif
          VSTORE(ACTIVATE(VTYPE, y), 0, c + v * VW);
        } else if (col < N) {
          float t[VW];
          VSTORE(y, 0, t);
          for (int e = 0; e < N - col; ++e) {
            float z = t[e];
            if (beta != 0.0f) z = beta * c[v * VW + e] + z;
#if HAS_BIAS
            z += bias[bias_off + col + e];
#endif
            c[v * VW + e] = ACTIVATE(float, z);
          }
        }
      }
    }
  }
}

// Softmax over each row of C (M, N), in place: the epilogue of activation="softmax".
__kernel void gemm_softmax_rows(__global float *C, const int c_off, const int ldc,
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
