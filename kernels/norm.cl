// Batch normalization over (B, C) or (B, C, S) with S = H*W: per-channel statistics (one
// work-item per channel, running stats updated in place), then elementwise kernels.

// mean/var of channel c over B*S values (two passes), inv_std = 1/sqrt(var + eps),
// running = momentum * running + (1 - momentum) * batch; global (C,)
__kernel void batchnorm_forward_stats(__global const float *restrict x,
                                      __global float *restrict mean,
                                      __global float *restrict inv_std,
                                      __global float *restrict run_mean,
                                      __global float *restrict run_var, const int B,
                                      const int C, const int S, const float momentum,
                                      const float eps) {
  const int c = get_global_id(0);
  if (c >= C) return;
  float s = 0.0f;
  for (int b = 0; b < B; ++b) {
    __global const float *p = x + ((size_t)b * C + c) * S;
    float t = 0.0f;
    for (int k = 0; k < S; ++k) t += p[k];
    s += t;
  }
  const float m = s / (float)(B * S);
  float v = 0.0f;
  for (int b = 0; b < B; ++b) {
    __global const float *p = x + ((size_t)b * C + c) * S;
    float t = 0.0f;
    for (int k = 0; k < S; ++k) {
      const float d = p[k] - m;
      t = d * d + t;
    }
    v += t;
  }
  v /= (float)(B * S);
  mean[c] = m;
  inv_std[c] = 1.0f / sqrt(v + eps);
  run_mean[c] = momentum * run_mean[c] + (1.0f - momentum) * m;
  run_var[c] = momentum * run_var[c] + (1.0f - momentum) * v;
}

// xhat = (x - mean) * inv_std; y = xhat * gamma + beta; one work-item per row (b, c)
__kernel void batchnorm_forward(__global const float *restrict x,
                                __global const float *restrict mean,
                                __global const float *restrict inv_std,
                                __global const float *restrict gamma,
                                __global const float *restrict beta, __global float *restrict y,
                                __global float *restrict xhat, const int rows, const int C,
                                const int S) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int c = r % C;
  const float m = mean[c], k = inv_std[c], g = gamma[c], bt = beta[c];
  for (size_t i = (size_t)r * S; i < (size_t)(r + 1) * S; ++i) {
    const float h = (x[i] - m) * k;
    xhat[i] = h;
    y[i] = h * g + bt;
  }
}

// inference: y = (x - running_mean) * (gamma / sqrt(running_var + eps)) + beta, per row
__kernel void batchnorm_forward_infer(__global const float *restrict x,
                                      __global const float *restrict rmean,
                                      __global const float *restrict rvar,
                                      __global const float *restrict gamma,
                                      __global const float *restrict beta,
                                      __global float *restrict y, const int rows,
                                      const int C, const int S, const float eps) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int c = r % C;
  const float m = rmean[c], k = gamma[c] / sqrt(rvar[c] + eps), bt = beta[c];
  for (size_t i = (size_t)r * S; i < (size_t)(r + 1) * S; ++i) y[i] = (x[i] - m) * k + bt;
}

// per channel: sdy = sum(dy), sdyx = sum(dy * xhat); dgamma += sdyx, dbeta += sdy
__kernel void batchnorm_backward_sums(__global const float *restrict dy,
                                      __global const float *restrict xhat,
                                      __global float *restrict sums,
                                      __global float *restrict dgamma,
                                      __global float *restrict dbeta, const int B,
                                      const int C, const int S) {
  const int c = get_global_id(0);
  if (c >= C) return;
  float a = 0.0f, g = 0.0f;
  for (int b = 0; b < B; ++b) {
    const size_t o = ((size_t)b * C + c) * S;
    float ta = 0.0f, tg = 0.0f;
    for (int k = 0; k < S; ++k) {
      ta += dy[o + k];
      tg = dy[o + k] * xhat[o + k] + tg;
    }
    a += ta;
    g += tg;
  }
  sums[c] = a;
  sums[C + c] = g;
  dgamma[c] += g;
  dbeta[c] += a;
}

// dx = gamma * inv_std / m * (m * dy - sdy - xhat * sdyx), m = B*S; one work-item per row
__kernel void batchnorm_backward(__global const float *restrict dy,
                                 __global const float *restrict xhat,
                                 __global const float *restrict sums,
                                 __global const float *restrict gamma,
                                 __global const float *restrict inv_std,
                                 __global float *restrict dx, const int rows, const int C,
                                 const int S, const float m) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const int c = r % C;
  const float k = gamma[c] * inv_std[c] / m, sdy = sums[c], sdyx = sums[C + c];
  for (size_t i = (size_t)r * S; i < (size_t)(r + 1) * S; ++i)
    dx[i] = k * (m * dy[i] - sdy - xhat[i] * sdyx);
}
