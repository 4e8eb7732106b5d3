// Losses: softmax cross-entropy (class ids or probability targets) and MSE, forward and
// backward. Row kernels use one work-item per sample. Defines: TARGETS (0 = class ids of
// type LABEL_T, 1 = (B, K) float probabilities), LABEL_T (int or long).

#ifndef TARGETS
#define TARGETS 0
#endif
#ifndef LABEL_T
#define LABEL_T int
#endif
#if TARGETS == 0
#define TGT_T LABEL_T
#else
#define TGT_T float
#endif

// z: (B, K) logits -> probs (B, K), loss (B,) = -sum(t * log_softmax(z)).
// An out-of-range class id gives a NaN loss (the numpy reference raises IndexError).
__kernel void softmax_cross_entropy_forward(__global const float *restrict z,
                                            __global const TGT_T *restrict t,
                                            __global float *restrict probs,
                                            __global float *restrict loss, const int B,
                                            const int K) {
  const int r = get_global_id(0);
  if (r >= B) return;
  __global const float *zr = z + (size_t)r * K;
  __global float *pr = probs + (size_t)r * K;
  float m = zr[0];
  for (int k = 1; k < K; ++k) m = fmax(m, zr[k]);
  float s = 0.0f;
  for (int k = 0; k < K; ++k) s += exp(zr[k] - m);
  const float lse = m + log(s);
  for (int k = 0; k < K; ++k) pr[k] = exp(zr[k] - lse);
#if TARGETS == 0
  const long c = (long)t[r];
  loss[r] = (c >= 0 && c < K) ? lse - zr[c] : NAN;
#else
  __global const float *tr = t + (size_t)r * K;
  float l = 0.0f;
  for (int k = 0; k < K; ++k) l += tr[k] * (lse - zr[k]);
  loss[r] = l;
#endif
}

// dz = (probs - targets) * scale; probs, dz: (B, K), one work-item per row
__kernel void softmax_cross_entropy_backward(__global const float *restrict probs,
                                             __global const TGT_T *restrict t,
                                             __global float *restrict dz, const int B,
                                             const int K, const float scale) {
  const int r = get_global_id(0);
  if (r >= B) return;
  const size_t o = (size_t)r * K;
#if TARGETS == 0
  const long c = (long)t[r];
  for (int k = 0; k < K; ++k) dz[o + k] = (probs[o + k] - (k == c ? 1.0f : 0.0f)) * scale;
#else
  for (int k = 0; k < K; ++k) dz[o + k] = (probs[o + k] - t[o + k]) * scale;
#endif
}

// Per-sample sum of squared errors: y, t: (B, N) -> loss (B,)
__kernel void mse_forward(__global const float *restrict y, __global const float *restrict t,
                          __global float *restrict loss, const int B, const int N) {
  const int r = get_global_id(0);
  if (r >= B) return;
  const size_t o = (size_t)r * N;
  float s = 0.0f;
  for (int k = 0; k < N; ++k) {
    const float d = y[o + k] - t[o + k];
    s = d * d + s;
  }
  loss[r] = s;
}

// dy = 2 * scale * (y - t), elementwise over n values
__kernel void mse_backward(__global const float *restrict y, __global const float *restrict t,
                           __global float *restrict dy, const int n, const float scale2) {
  const int i = get_global_id(0);
  if (i < n) dy[i] = (y[i] - t[i]) * scale2;
}
