// Max and average pooling, forward and backward, NCHW. One work-item per output row
// (forward) or input row (avgpool backward, a gather); maxpool backward scatters through
// the flat indices of the forward with an atomic float add (windows may overlap).
// Runtime geometry: N H W OH OW PH PW SH SW PT PL; 1-D launches.

// y[n, oh, ow] = max of the window, idx = flat index into x of its first maximum
// (padding never wins); x: (N=B*C, H, W); one work-item per output row (n, oh)
__kernel void maxpool2d_forward(__global const float *restrict x, __global float *restrict y,
                                __global int *restrict idx, const int N, const int H,
                                const int W, const int OH, const int OW, const int PH,
                                const int PW, const int SH, const int SW, const int PT,
                                const int PL) {
  const int r = get_global_id(0);
  if (r >= N * OH) return;
  const int n = r / OH;
  const int oh = r - n * OH;
  __global const float *xp = x + (size_t)n * H * W;
  const int h0 = max(oh * SH - PT, 0), h1 = min(oh * SH - PT + PH, H);
  for (int ow = 0; ow < OW; ++ow) {
    const int w0 = max(ow * SW - PL, 0), w1 = min(ow * SW - PL + PW, W);
    const bool any = h0 < h1 && w0 < w1;  // false only for a window inside the padding
    float best = any ? xp[h0 * W + w0] : -INFINITY;
    int bi = any ? h0 * W + w0 : 0;
    for (int ih = h0; ih < h1; ++ih) {
      for (int iw = w0; iw < w1; ++iw) {
        const float v = xp[ih * W + iw];
        if (v > best) {
          best = v;
          bi = ih * W + iw;
        }
      }
    }
    y[(size_t)r * OW + ow] = best;
    idx[(size_t)r * OW + ow] = n * H * W + bi;
  }
}

// dx = 0 (before the scatter); n elements
__kernel void maxpool2d_backward_zero(__global float *dx, const int n) {
  const int i = get_global_id(0);
  if (i < n) dx[i] = 0.0f;
}

inline void atomic_add_float(volatile __global float *p, const float v) {
  union {
    unsigned int u;
    float f;
  } old, upd;
  do {
    old.f = *p;
    upd.f = old.f + v;
  } while (atomic_cmpxchg((volatile __global unsigned int *)p, old.u, upd.u) != old.u);
}

// dx[idx[k]] += dy[k] for every output element k; m outputs
__kernel void maxpool2d_backward(__global const float *restrict dy,
                                 __global const int *restrict idx, __global float *dx,
                                 const int m) {
  const int k = get_global_id(0);
  if (k < m) atomic_add_float(dx + idx[k], dy[k]);
}

// dx[idx[k]] = dy[k] when no two windows overlap (stride >= pool): each input element is
// the max of at most one window, so plain stores replace the atomic adds
__kernel void maxpool2d_backward_disjoint(__global const float *restrict dy,
                                          __global const int *restrict idx,
                                          __global float *restrict dx, const int m) {
  const int k = get_global_id(0);
  if (k < m) dx[idx[k]] = dy[k];
}

// dx[n, h, w] = sum of dy over the windows covering (h, w) whose maximum is x[n, h, w]
// (idx from maxpool2d_forward), in window order: a gather, so overlapping windows give the
// same sums on every run (atomic adds would not); one work-item per input row (n, h)
__kernel void maxpool2d_backward_gather(__global const float *restrict dy,
                                        __global const int *restrict idx,
                                        __global float *restrict dx, const int N, const int H,
                                        const int W, const int OH, const int OW, const int PH,
                                        const int PW, const int SH, const int SW,
                                        const int PT, const int PL) {
  const int r = get_global_id(0);
  if (r >= N * H) return;
  const int n = r / H;
  const int h = r - n * H;
  const int oh0 = max(0, (h + PT - PH + SH) / SH), oh1 = min(OH - 1, (h + PT) / SH);
  const size_t base = (size_t)n * OH * OW;
  const int self0 = n * H * W + h * W;
  for (int w = 0; w < W; ++w) {
    const int ow0 = max(0, (w + PL - PW + SW) / SW), ow1 = min(OW - 1, (w + PL) / SW);
    float s = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const size_t k = base + oh * OW + ow;
        if (idx[k] == self0 + w) s += dy[k];
      }
    dx[(size_t)r * W + w] = s;
  }
}

// y = mean over the window's cells inside x (padding excluded from the count); one
// work-item per output row (n, oh)
__kernel void avgpool2d_forward(__global const float *restrict x, __global float *restrict y,
                                const int N, const int H, const int W, const int OH,
                                const int OW, const int PH, const int PW, const int SH,
                                const int SW, const int PT, const int PL) {
  const int r = get_global_id(0);
  if (r >= N * OH) return;
  const int n = r / OH;
  const int oh = r - n * OH;
  __global const float *xp = x + (size_t)n * H * W;
  const int h0 = max(oh * SH - PT, 0), h1 = min(oh * SH - PT + PH, H);
  for (int ow = 0; ow < OW; ++ow) {
    const int w0 = max(ow * SW - PL, 0), w1 = min(ow * SW - PL + PW, W);
    float s = 0.0f;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) s += xp[ih * W + iw];
    y[(size_t)r * OW + ow] = s / (float)((h1 - h0) * (w1 - w0));
  }
}

// dx[n, h, w] = sum over the windows covering (h, w) of dy / (cells of that window); one
// work-item per input row (n, h)
__kernel void avgpool2d_backward(__global const float *restrict dy, __global float *restrict dx,
                                 const int N, const int H, const int W, const int OH,
                                 const int OW, const int PH, const int PW, const int SH,
                                 const int SW, const int PT, const int PL) {
  const int r = get_global_id(0);
  if (r >= N * H) return;
  const int n = r / H;
  const int h = r - n * H;
  // windows oh with oh*SH - PT <= h < oh*SH - PT + PH
  const int oh0 = max(0, (h + PT - PH + SH) / SH), oh1 = min(OH - 1, (h + PT) / SH);
  __global const float *gy = dy + (size_t)n * OH * OW;
  for (int w = 0; w < W; ++w) {
    const int ow0 = max(0, (w + PL - PW + SW) / SW), ow1 = min(OW - 1, (w + PL) / SW);
    float s = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
      const int ch = min(oh * SH - PT + PH, H) - max(oh * SH - PT, 0);
      for (int ow = ow0; ow <= ow1; ++ow) {
        const int cw = min(ow * SW - PL + PW, W) - max(ow * SW - PL, 0);
        s += gy[oh * OW + ow] / (float)(ch * cw);
      }
    }
    dx[(size_t)r * W + w] = s;
  }
}
