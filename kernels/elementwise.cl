// Elementwise kernels: add, mul, scale, axpy and the counter-based dropout mask.
// One work-item per element; global sizes are rounded up to the work-group, so every
// kernel checks i < n. Operands are contiguous float32; b may broadcast as a trailing suffix.

// y = a + b; b has nb elements and repeats along a (nb == n when shapes are equal)
__kernel void add(__global const float *a, __global const float *b,
                  __global float *y, const int n, const int nb) {
  const int i = get_global_id(0);
  if (i < n) y[i] = a[i] + b[nb == n ? i : i % nb];
}

// y = a * b (b broadcasts like in add)
__kernel void mul(__global const float *a, __global const float *b,
                  __global float *y, const int n, const int nb) {
  const int i = get_global_id(0);
  if (i < n) y[i] = a[i] * b[nb == n ? i : i % nb];
}

// y = alpha * a (y may alias a)
__kernel void scale(__global const float *a, __global float *y, const int n,
                    const float alpha) {
  const int i = get_global_id(0);
  if (i < n) y[i] = alpha * a[i];
}

// y += alpha * x, in place
__kernel void axpy(__global const float *x, __global float *y, const int n,
                   const float alpha) {
  const int i = get_global_id(0);
  if (i < n) y[i] = alpha * x[i] + y[i];
}

// Inverted-dropout mask, bit-identical to base.dropout_uniform: murmur3's finalizer of
// (index * 0x9E3779B9 + seed) mod 2^32 with index = offset + i; u = top 24 bits / 2^24 and
// u >= rate  <=>  (h >> 8) >= threshold (the host computes threshold exactly).
__kernel void dropout_mask(__global float *y, const int n, const uint seed,
                           const uint offset, const uint threshold, const float keep_scale) {
  const int i = get_global_id(0);
  if (i >= n) return;
  uint h = ((uint)i + offset) * 0x9E3779B9u + seed;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  y[i] = (h >> 8) >= threshold ? keep_scale : 0.0f;
}
