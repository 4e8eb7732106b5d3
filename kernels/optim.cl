// Optimizer updates, in place, one work-item per parameter (PyTorch semantics).

// SGD: g = grad + wd * p; v = momentum * v + g; p -= lr * (nesterov ? g + momentum * v : v)
// (without momentum: p -= lr * g; v unused)
__kernel void sgd_update(__global float *restrict p, __global const float *restrict grad,
                         __global float *restrict v, const int n, const float lr,
                         const float momentum, const int nesterov, const float wd) {
  const int i = get_global_id(0);
  if (i >= n) return;
  float g = grad[i];
  if (wd != 0.0f) g = wd * p[i] + g;
  float step = g;
  if (momentum != 0.0f) {
    const float vi = momentum * v[i] + g;
    v[i] = vi;
    step = nesterov ? momentum * vi + g : vi;
  }
  p[i] -= lr * step;
}

// Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m c1) / (sqrt(v c2) + eps)
// with c1 = 1 / (1 - b1^t), c2 = 1 / (1 - b2^t) computed on the host
__kernel void adam_update(__global float *restrict p, __global const float *restrict grad,
                          __global float *restrict m, __global float *restrict v, const int n,
                          const float lr, const float b1, const float b2, const float eps,
                          const float c1, const float c2) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float g = grad[i];
  const float mi = b1 * m[i] + (1.0f - b1) * g;
  const float vi = b2 * v[i] + (1.0f - b2) * (g * g);
  m[i] = mi;
  v[i] = vi;
  p[i] -= lr * (mi * c1) / (sqrt(vi * c2) + eps);
}
