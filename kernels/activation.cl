// Activation forward/backward: elementwise kinds chosen by -DACT (0 linear, 1 relu,
// 2 sigmoid, 3 tanh) and softmax over the last axis (one work-item per row of K values).
// Backward takes the forward *output* y, like the numpy reference.

#ifndef ACT
#define ACT 0
#endif

// y = act(x) elementwise; x: (n,)
__kernel void activation_forward(__global const float *x, __global float *y,
                                 const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float v = x[i];
#if ACT == 1
  y[i] = fmax(v, 0.0f);
#elif ACT == 2
  y[i] = 1.0f / (1.0f + exp(clamp(-v, -88.0f, 88.0f)));
#elif ACT == 3
  y[i] = tanh(v);
#else
  y[i] = v;
#endif
}

// dx = dy * act'(y) elementwise; dy, y: (n,)
__kernel void activation_backward(__global const float *dy,
                                  __global const float *y,
                                  __global float *dx, const int n) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float g = dy[i];
  const float v = y[i];
#if ACT == 1
  dx[i] = v > 0.0f ? g : 0.0f;
#elif ACT == 2
  dx[i] = g * v * (1.0f - v);
#elif ACT == 3
  dx[i] = g * (1.0f - v * v);
#else
  dx[i] = g;
#endif
}

// y = softmax(x) over rows of length K; x, y: (rows, K)
__kernel void activation_forward_softmax(__global const float *x,
                                         __global float *y, const int rows,
                                         const int K) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  __global const float *xr = x + (size_t)r * K;
  __global float *yr = y + (size_t)r * K;
  float m = xr[0];
  for (int k = 1; k < K; ++k) m = fmax(m, xr[k]);
  float s = 0.0f;
  for (int k = 0; k < K; ++k) {
    const float e = exp(xr[k] - m);
    yr[k] = e;
    s += e;
  }
  const float inv = 1.0f / s;
  for (int k = 0; k < K; ++k) yr[k] *= inv;
}

// dx = y * (dy - sum(dy * y)) over rows of length K
__kernel void activation_backward_softmax(__global const float *dy,
                                          __global const float *y,
                                          __global float *dx, const int rows,
                                          const int K) {
  const int r = get_global_id(0);
  if (r >= rows) return;
  const size_t o = (size_t)r * K;
  float s = 0.0f;
  for (int k = 0; k < K; ++k) s += dy[o + k] * y[o + k];
  for (int k = 0; k < K; ++k) dx[o + k] = y[o + k] * (dy[o + k] - s);
}
