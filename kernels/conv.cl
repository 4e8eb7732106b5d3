// Convolution plumbing with run-time geometry (memory-bound kernels): im2col/col2im and the
// layout transposes around the GEMM, and the zero-padding and weight flip of the direct path.

// cols[(b*OH + oh)*OW + ow, (c*KH + i)*KW + j] = x[b, c, oh*SH - PT + i, ow*SW - PL + j]
// (0 outside x); one work-item per (output pixel, channel): B*OH*OW*C of them
__kernel void conv2d_im2col(__global const float *restrict x, __global float *restrict cols,
                            const int B, const int C, const int H, const int W, const int KH,
                            const int KW, const int SH, const int SW, const int PT,
                            const int PL, const int OH, const int OW) {
  const int g = get_global_id(0);
  if (g >= B * OH * OW * C) return;
  const int row = g / C;
  const int c = g - row * C;
  const int b = row / (OH * OW);
  const int p = row - b * OH * OW;
  const int oh = p / OW;
  const int ow = p - oh * OW;
  __global const float *xc = x + ((size_t)b * C + c) * H * W;
  __global float *dst = cols + (size_t)row * C * KH * KW + (size_t)c * KH * KW;
  for (int i = 0; i < KH; ++i) {
    const int ih = oh * SH - PT + i;
    const bool rok = ih >= 0 && ih < H;
    for (int j = 0; j < KW; ++j) {
      const int iw = ow * SW - PL + j;
      dst[i * KW + j] = (rok && iw >= 0 && iw < W) ? xc[ih * W + iw] : 0.0f;
    }
  }
}

// dx[b, c, h, w] = sum of the dcols entries that im2col copied x[b, c, h, w] into (a
// gather, so no atomics); one work-item per element of dx
__kernel void conv2d_col2im(__global const float *restrict dcols, __global float *restrict dx,
                            const int B, const int C, const int H, const int W, const int KH,
                            const int KW, const int SH, const int SW, const int PT,
                            const int PL, const int OH, const int OW) {
  const int g = get_global_id(0);
  if (g >= B * C * H * W) return;
  const int w = g % W;
  const int h = (g / W) % H;
  const int bc = g / (W * H);
  const int b = bc / C;
  const int c = bc - b * C;
  const int ckk = C * KH * KW;
  float s = 0.0f;
  for (int i = 0; i < KH; ++i) {
    const int t = h + PT - i;
    if (t < 0 || t % SH) continue;
    const int oh = t / SH;
    if (oh >= OH) continue;
    for (int j = 0; j < KW; ++j) {
      const int u = w + PL - j;
      if (u < 0 || u % SW) continue;
      const int ow = u / SW;
      if (ow >= OW) continue;
      s += dcols[((size_t)(b * OH + oh) * OW + ow) * ckk + (c * KH + i) * KW + j];
    }
  }
  dx[((size_t)bc * H + h) * W + w] = s;
}

// y[a, q, p] = x[a, p, q]: x (A, P, Q) -> y (A, Q, P); one work-item per row (a, q) of y
__kernel void conv2d_transpose021(__global const float *restrict x, __global float *restrict y,
                                  const int A, const int P, const int Q) {
  const int r = get_global_id(0);
  if (r >= A * Q) return;
  const int a = r / Q;
  const int q = r - a * Q;
  __global const float *s = x + (size_t)a * P * Q + q;
  __global float *d = y + (size_t)r * P;
  for (int p = 0; p < P; ++p) d[p] = s[(size_t)p * Q];
}

// y[a, p, q] = x[p, a, q]: x (P, A, Q) -> y (A, P, Q); one work-item per row (a, p) of y
__kernel void conv2d_transpose102(__global const float *restrict x, __global float *restrict y,
                                  const int A, const int P, const int Q) {
  const int r = get_global_id(0);
  if (r >= A * P) return;
  const int a = r / P;
  const int p = r - a * P;
  __global const float *s = x + ((size_t)p * A + a) * Q;
  __global float *d = y + (size_t)r * Q;
  for (int q = 0; q < Q; ++q) d[q] = s[q];
}

// dst[n, h, w] = src[n, h - PT, w - PL] inside src, else 0; src (N, H, W) -> dst (N, Hp, Wp);
// one work-item per row (n, h) of dst (no division per element)
__kernel void conv2d_pad(__global const float *restrict src, __global float *restrict dst,
                         const int N, const int H, const int W, const int Hp, const int Wp,
                         const int PT, const int PL) {
  const int r = get_global_id(0);
  if (r >= N * Hp) return;
  const int n = r / Hp;
  const int sh = r - n * Hp - PT;
  __global float *d = dst + (size_t)r * Wp;
  if (sh < 0 || sh >= H) {
    for (int w = 0; w < Wp; ++w) d[w] = 0.0f;
    return;
  }
  __global const float *s = src + ((size_t)n * H + sh) * W;
  for (int w = 0; w < PL; ++w) d[w] = 0.0f;
  for (int w = 0; w < W; ++w) d[PL + w] = s[w];
  for (int w = PL + W; w < Wp; ++w) d[w] = 0.0f;
}

// wf[c, f, i, j] = w[f, c, KH-1-i, KW-1-j]: the weights of the transposed convolution
__kernel void conv2d_flip_weights(__global const float *restrict w, __global float *restrict wf,
                                  const int F_, const int C_, const int KH_, const int KW_) {
  const int e = get_global_id(0);
  if (e >= F_ * C_ * KH_ * KW_) return;
  const int j = e % KW_, i = (e / KW_) % KH_, f = (e / (KW_ * KH_)) % F_;
  const int c = e / (KW_ * KH_ * F_);
  wf[e] = w[((f * C_ + c) * KH_ + KH_ - 1 - i) * KW_ + KW_ - 1 - j];
}
