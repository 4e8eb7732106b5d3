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

// SGD on up to 8 tensors in one launch (a training step updates every parameter; a launch
// per tensor cost ~20 us of host time each). Tensor t has n<t> elements and owns the
// work-items [e<t-1>, e<t>) (e<-1> = 0), each updating SGD_CHUNK consecutive elements;
// unused slots have n = 0 and an empty range. One-item work-groups: a chunk is a loop.
#define SGD_CHUNK 1024
#define SGD_TENSOR(t)                                                                      \
  __global float *restrict p##t, __global const float *restrict g##t,                     \
      __global float *restrict v##t, const int n##t, const int e##t
#define SGD_PICK(t, prev)                                                                  \
  if (w < e##t) {                                                                          \
    p = p##t;                                                                              \
    g = g##t;                                                                              \
    v = v##t;                                                                              \
    n = n##t;                                                                              \
    first = prev;                                                                          \
  } else
__kernel void sgd_update_many(SGD_TENSOR(0), SGD_TENSOR(1), SGD_TENSOR(2), SGD_TENSOR(3),
                              SGD_TENSOR(4), SGD_TENSOR(5), SGD_TENSOR(6), SGD_TENSOR(7),
                              const float lr, const float momentum, const int nesterov,
                              const float wd) {
  const int w = get_global_id(0);
  __global float *p;
  __global const float *g;
  __global float *v;
  int n, first;
  SGD_PICK(0, 0) SGD_PICK(1, e0) SGD_PICK(2, e1) SGD_PICK(3, e2) SGD_PICK(4, e3)
  SGD_PICK(5, e4) SGD_PICK(6, e5) SGD_PICK(7, e6) return;
  const int start = (w - first) * SGD_CHUNK;
  const int end = min(n, start + SGD_CHUNK);
  for (int i = start; i < end; ++i) {
    float gi = g[i];
    if (wd != 0.0f) gi = wd * p[i] + gi;
    float step = gi;
    if (momentum != 0.0f) {
      const float vi = momentum * v[i] + gi;
      v[i] = vi;
      step = nesterov ? momentum * vi + gi : vi;
    }
    p[i] -= lr * step;
  }
}
