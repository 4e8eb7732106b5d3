// Reductions: reduce_sum over one contiguous group of axes (the host chains passes for
// other axis sets) and argmax along the last axis. One work-item per output value.

// x viewed as (O, R, I); out[o, s, i] = sum of x[o, r, i] for r in chunk s of length L
// (S chunks; S == 1 is a plain sum), then out = sum + beta * out.
__kernel void reduce_sum(__global const float *restrict x, __global float *restrict out,
                         const int O, const int R, const int I, const int S, const int L,
                         const float beta) {
  const int g = get_global_id(0);
  if (g >= O * S * I) return;
  const int o = g / (S * I);
  const int rest = g - o * S * I;
  const int s = rest / I;
  const int i = rest - s * I;
  const int r0 = s * L;
  const int r1 = min(R, r0 + L);
  __global const float *p = x + ((size_t)o * R + r0) * I + i;
  float acc = 0.0f;
  for (int r = r0; r < r1; ++r, p += I) acc += *p;
  out[g] = beta == 0.0f ? acc : acc + beta * out[g];
}

// idx[r] = first position of the largest value of row r; x: (rows, K) -> idx (rows,) int32
__kernel void argmax(__global const float *restrict x, __global int *restrict idx,
                     const int rows, const int K) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  __global const float *xr = x + (size_t)r * K;
  float best = xr[0];
  int bi = 0;
  for (int k = 1; k < K; ++k) {
    if (xr[k] > best) {
      best = xr[k];
      bi = k;
    }
  }
  idx[r] = bi;
}
