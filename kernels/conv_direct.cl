// Direct convolution for small channel counts (LeNet-sized): forward (+bias+activation),
// backward data and backward filter. CPU-shaped: no local memory, no barriers; each
// work-item keeps 8 output columns (float8) for FB filters in registers.
// Defines: C F KH KW SH SW PT PL FB ACT HAS_BIAS.

#ifndef FB
#define FB 4
#endif
#ifndef ACT
#define ACT 0
#endif
#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif
#define KK (KH * KW)

#if ACT == 1
#define ACTIVATE(v) fmax((v), (float8)(0.0f))
#elif ACT == 2
#define ACTIVATE(v) ((float8)(1.0f) / ((float8)(1.0f) + exp(clamp(-(v), -88.0f, 88.0f))))
#elif ACT == 3
#define ACTIVATE(v) tanh(v)
#else
#define ACTIVATE(v) (v)
#endif

// 8 values row[base + l*step] (l = 0..7), 0 where the index falls outside [0, n)
inline float8 gather8(__global const float *row, int base, int step, int n) {
  float t[8];
#pragma unroll
  for (int l = 0; l < 8; ++l) {
    const int k = base + l * step;
    t[l] = (k >= 0 && k < n) ? row[k] : 0.0f;
  }
  return vload8(0, t);
}

// y[b, f, oh, ow0..ow0+7] for f in f0..f0+FB-1; x: (B, C, H, W), w: (F, C, KH, KW);
// global (ceil(OW/8), OH, B * ceil(F/FB))
__kernel void conv2d_forward_direct(__global const float *restrict x,
                                    __global const float *restrict w,
                                    __global const float *restrict bias,
                                    __global float *restrict y, const int B, const int H,
                                    const int W, const int OH, const int OW) {
  const int ow0 = get_global_id(0) * 8;
  const int oh = get_global_id(1);
  const int nfb = (F + FB - 1) / FB;
  const int b = get_global_id(2) / nfb;
  const int f0 = (get_global_id(2) - b * nfb) * FB;
  if (ow0 >= OW || oh >= OH || b >= B) return;
  float8 acc[FB];
#pragma unroll
  for (int f = 0; f < FB; ++f) acc[f] = (float8)(0.0f);
  const int iw0 = ow0 * SW - PL;
  const bool inside = iw0 >= 0 && iw0 + 7 * SW + KW - 1 < W;
  for (int c = 0; c < C; ++c) {
    for (int i = 0; i < KH; ++i) {
      const int ih = oh * SH - PT + i;
      if (ih < 0 || ih >= H) continue;
      __global const float *row = x + (((size_t)b * C + c) * H + ih) * W;
      __global const float *wr = w + (c * KH + i) * KW;
#pragma unroll
      for (int j = 0; j < KW; ++j) {
        const float8 xv = (SW == 1 && inside) ? vload8(0, row + iw0 + j)
                                              : gather8(row, iw0 + j, SW, W);
#pragma unroll
        for (int f = 0; f < FB; ++f)
          acc[f] = wr[min(f0 + f, F - 1) * C * KK + j] * xv + acc[f];
      }
    }
  }
#pragma unroll
  for (int f = 0; f < FB; ++f) {
    if (f0 + f >= F) break;
    float8 v = acc[f];
#if HAS_BIAS
    v += bias[f0 + f];
#endif
    v = ACTIVATE(v);
    __global float *dst = y + (((size_t)b * F + f0 + f) * OH + oh) * OW + ow0;
    if (ow0 + 8 <= OW) {
      vstore8(v, 0, dst);
    } else {
      float t[8];
      vstore8(v, 0, t);
      for (int l = 0; l < OW - ow0; ++l) dst[l] = t[l];
    }
  }
}

// dw[f, c, i, 0..KW-1] = sum over b, oh, ow of dy[b, f, oh, ow] * x[b, c, ih, iw], then
// dw = sum + beta * dw; dy: (B, F, OH, OW); global (KH, C, F)
__kernel void conv2d_backward_filter_direct(__global const float *restrict dy,
                                            __global const float *restrict x,
                                            __global float *restrict dw, const int B,
                                            const int H, const int W, const int OH,
                                            const int OW, const float beta) {
  const int i = get_global_id(0);
  const int c = get_global_id(1);
  const int f = get_global_id(2);
  if (i >= KH || c >= C || f >= F) return;
  float8 acc[KW];
#pragma unroll
  for (int j = 0; j < KW; ++j) acc[j] = (float8)(0.0f);
  for (int b = 0; b < B; ++b) {
    for (int oh = 0; oh < OH; ++oh) {
      const int ih = oh * SH - PT + i;
      if (ih < 0 || ih >= H) continue;
      __global const float *dyr = dy + (((size_t)b * F + f) * OH + oh) * OW;
      __global const float *xr = x + (((size_t)b * C + c) * H + ih) * W;
      for (int ow0 = 0; ow0 < OW; ow0 += 8) {
        const float8 dv = ow0 + 8 <= OW ? vload8(0, dyr + ow0) : gather8(dyr, ow0, 1, OW);
        const int iw0 = ow0 * SW - PL;
        const bool inside = iw0 >= 0 && iw0 + 7 * SW + KW - 1 < W;
#pragma unroll
        for (int j = 0; j < KW; ++j) {
          const float8 xv = (SW == 1 && inside) ? vload8(0, xr + iw0 + j)
                                                : gather8(xr, iw0 + j, SW, W);
          acc[j] = dv * xv + acc[j];
        }
      }
    }
  }
  __global float *dst = dw + ((f * C + c) * KH + i) * KW;
#pragma unroll
  for (int j = 0; j < KW; ++j) {
    const float8 a = acc[j];
    const float4 h4 = a.lo + a.hi;
    const float s = (h4.x + h4.y) + (h4.z + h4.w);
    dst[j] = beta == 0.0f ? s : s + beta * dst[j];
  }
}

// dx[b, c, h, w0..w0+7] = sum over f, i, j of dy[b, f, oh, ow] * w[f, c, i, j] where
// oh*SH = h + PT - i and ow*SW = w + PL - j; global (ceil(W/8), H, B*C)
__kernel void conv2d_backward_data_direct(__global const float *restrict dy,
                                          __global const float *restrict w,
                                          __global float *restrict dx, const int B,
                                          const int H, const int W, const int OH,
                                          const int OW) {
  const int w0 = get_global_id(0) * 8;
  const int h = get_global_id(1);
  const int bc = get_global_id(2);
  if (w0 >= W || h >= H || bc >= B * C) return;
  const int b = bc / C;
  const int c = bc - b * C;
  float8 acc = (float8)(0.0f);
  for (int f = 0; f < F; ++f) {
    for (int i = 0; i < KH; ++i) {
      const int t = h + PT - i;
      if (t < 0 || t % SH) continue;
      const int oh = t / SH;
      if (oh >= OH) continue;
      __global const float *dyr = dy + (((size_t)b * F + f) * OH + oh) * OW;
      __global const float *wr = w + ((f * C + c) * KH + i) * KW;
#pragma unroll
      for (int j = 0; j < KW; ++j) {
        const int u0 = w0 + PL - j;  // ow * SW for lane 0
        float8 dv;
        if (SW == 1) {
          dv = (u0 >= 0 && u0 + 8 <= OW) ? vload8(0, dyr + u0) : gather8(dyr, u0, 1, OW);
        } else {
          float tt[8];
#pragma unroll
          for (int l = 0; l < 8; ++l) {
            const int u = u0 + l;
            tt[l] = (u >= 0 && u % SW == 0 && u / SW < OW) ? dyr[u / SW] : 0.0f;
          }
          dv = vload8(0, tt);
        }
        acc = wr[j] * dv + acc;
      }
    }
  }
  __global float *dst = dx + ((size_t)bc * H + h) * W + w0;
  if (w0 + 8 <= W) {
    vstore8(acc, 0, dst);
  } else {
    float tt[8];
    vstore8(acc, 0, tt);
    for (int l = 0; l < W - w0; ++l) dst[l] = tt[l];
  }
}
