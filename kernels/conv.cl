// Convolution by im2col + GEMM: the lowering kernels (im2col, col2im) and the layout
// transposes around the GEMM. Geometry is passed at run time (memory-bound kernels).

// cols[(b*OH + oh)*OW + ow, (c*KH + i)*KW + j] = x[b, c, oh*SH - PT + i, ow*SW - PL + j]
// (0 outside x); one work-item per (output pixel, channel); global (B*OH*OW, C)
__kernel void conv2d_im2col(__global const float *restrict x, __global float *restrict cols,
                            const int B, const int C, const int H, const int W, const int KH,
                            const int KW, const int SH, const int SW, const int PT,
                            const int PL, const int OH, const int OW) {
  const int row = get_global_id(0);
  const int c = get_global_id(1);
  if (row >= B * OH * OW || c >= C) return;
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
// gather, so no atomics); one work-item per element of dx: global (W, H, B*C)
__kernel void conv2d_col2im(__global const float *restrict dcols, __global float *restrict dx,
                            const int B, const int C, const int H, const int W, const int KH,
                            const int KW, const int SH, const int SW, const int PT,
                            const int PL, const int OH, const int OW) {
  const int w = get_global_id(0);
  const int h = get_global_id(1);
  const int bc = get_global_id(2);
  if (w >= W || h >= H || bc >= B * C) return;
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

// y[a, q, p] = x[a, p, q]: x (A, P, Q) -> y (A, Q, P); global (P, Q, A)
__kernel void conv2d_transpose021(__global const float *restrict x, __global float *restrict y,
                                  const int A, const int P, const int Q) {
  const int p = get_global_id(0);
  const int q = get_global_id(1);
  const int a = get_global_id(2);
  if (p >= P || q >= Q || a >= A) return;
  y[((size_t)a * Q + q) * P + p] = x[((size_t)a * P + p) * Q + q];
}

// y[a, p, q] = x[p, a, q]: x (P, A, Q) -> y (A, P, Q); global (Q, P, A)
__kernel void conv2d_transpose102(__global const float *restrict x, __global float *restrict y,
                                  const int A, const int P, const int Q) {
  const int q = get_global_id(0);
  const int p = get_global_id(1);
  const int a = get_global_id(2);
  if (p >= P || q >= Q || a >= A) return;
  y[((size_t)a * P + p) * Q + q] = x[((size_t)p * A + a) * Q + q];
}
