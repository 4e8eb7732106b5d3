// Direct convolution for small channel counts (LeNet-sized), stride 1: forward
// (+bias+activation; backward data is this forward on padded dy with flipped weights) and
// backward filter. CPU-shaped: no local memory, no barriers; the host zero-pads inputs so
// the inner loops are unchecked unaligned float8 loads; R rows x FB filters x 8 columns
// stay in registers.
// Defines: C F KH KW FB R ACT HAS_BIAS.

#ifndef FB
#define FB 1
#endif
#ifndef R
#define R 2
#endif
#ifndef ACT
#define ACT 0
#endif
#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif
#define KK (KH * KW)

// unaligned vector access by pointer: vload8/vstore8 are library calls in some PoCL builds
typedef float8 __attribute__((aligned(4))) float8u;
#define LOAD8(p) (*(const __global float8u *)(p))
#define STORE8(p, v) (*(__global float8u *)(p) = (v))

#if ACT == 1  // relu by the sign bit (vector fmax is a library call too)
#define ACTIVATE(v) as_float8(as_int8(v) & ~(as_int8(v) >> 31))
#elif ACT == 2
#define ACTIVATE(v) ((float8)(1.0f) / ((float8)(1.0f) + exp(clamp(-(v), -88.0f, 88.0f))))
#elif ACT == 3
#define ACTIVATE(v) tanh(v)
#else
#define ACTIVATE(v) (v)
#endif

// y[b, f, oh0..oh0+R-1, :] for f in f0..f0+FB-1, 8 columns at a time (each weight load
// feeds R rows); xp: zero-padded x (B, C, Hp, Wp) with Wp >= ceil(OW/8)*8 + KW - 1 and rows
// for ceil(OH/R)*R outputs, zero outside rows [ROW0, ROW1); w: (F, C, KH, KW); global
// (ceil(OH/R), B*F/FB)
__kernel void conv2d_forward_direct(__global const float *restrict xp,
                                    __global const float *restrict w,
                                    __global const float *restrict bias,
                                    __global float *restrict y, const int Hp, const int Wp,
                                    const int OH, const int OW, const int SH, const int ROW0,
                                    const int ROW1) {
  const int oh0 = get_global_id(0) * R;
  const int b = get_global_id(1) / (F / FB);
  const int f0 = (get_global_id(1) % (F / FB)) * FB;
  if (oh0 >= OH) return;
  // only kernel rows that meet a row of xp in [ROW0, ROW1) for one of the R outputs: the
  // rest read zero padding (the data gradient's full correlation is 2x wider than dy)
  const int i_lo = max(0, ROW0 - (oh0 + R - 1) * SH);
  const int i_hi = min(KH, ROW1 - oh0 * SH);
  __global const float *wf = w + f0 * C * KK;
  __global const float *xb = xp + (size_t)b * C * Hp * Wp + (size_t)oh0 * SH * Wp;
  for (int ow0 = 0; ow0 < OW; ow0 += 8) {
    float8 acc[R][FB];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int f = 0; f < FB; ++f) acc[r][f] = (float8)(0.0f);
    for (int c = 0; c < C; ++c) {
      for (int i = i_lo; i < i_hi; ++i) {
        __global const float *row = xb + ((size_t)c * Hp + i) * Wp + ow0;
        __global const float *wr = wf + (c * KH + i) * KW;
#pragma unroll
        for (int j = 0; j < KW; ++j) {
          float8 xv[R];
#pragma unroll
          for (int r = 0; r < R; ++r) xv[r] = LOAD8(row + r * SH * Wp + j);
#pragma unroll
          for (int f = 0; f < FB; ++f) {
            const float wv = wr[f * C * KK + j];
#pragma unroll
            for (int r = 0; r < R; ++r) acc[r][f] = wv * xv[r] + acc[r][f];
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (oh0 + r >= OH) break;
#pragma unroll
      for (int f = 0; f < FB; ++f) {
        float8 v = acc[r][f];
#if HAS_BIAS
        v += bias[f0 + f];
#endif
        v = ACTIVATE(v);
        __global float *dst = y + (((size_t)b * F + f0 + f) * OH + oh0 + r) * OW + ow0;
        if (ow0 + 8 <= OW) {
          STORE8(dst, v);
        } else {
          union { float8 v; float a[8]; } t;
          t.v = v;
          for (int l = 0; l < OW - ow0; ++l) dst[l] = t.a[l];
        }
      }
    }
  }
}

// dw[f, c, i, :] = sum over b, oh, ow of dy[b, f, oh, ow] * x[b, c, oh*SH + i, ow + j] for
// f in f0..f0+FB-1 (each x load feeds FB filters), then dw = sum + beta * dw. xp: zero-padded
// x (B, C, Hp, Wp); dyp: dy inside a zero-padded buffer, element (b, f, oh, ow) at
// DYO + (b*F + f)*DYP + oh*DYR + ow, every row zero from OW up to OWp = ceil(OW/8)*8 (the
// fused conv+pool backward writes dy straight into the padded layout the data gradient
// reads, so one buffer serves both); global (KH, C, F/FB)
__kernel void conv2d_backward_filter_direct(__global const float *restrict dyp,
                                            __global const float *restrict xp,
                                            __global float *restrict dw, const int B,
                                            const int Hp, const int Wp, const int OH,
                                            const int OWp, const int SH, const float beta,
                                            const int DYO, const int DYR, const int DYP) {
  const int i = get_global_id(0);
  const int c = get_global_id(1);
  const int f0 = get_global_id(2) * FB;
  if (i >= KH || c >= C || f0 >= F) return;
  float8 acc[FB][KW];
#pragma unroll
  for (int q = 0; q < FB; ++q)
#pragma unroll
    for (int j = 0; j < KW; ++j) acc[q][j] = (float8)(0.0f);
  const size_t plane = (size_t)DYP;
  for (int b = 0; b < B; ++b) {
    __global const float *dyr = dyp + DYO + ((size_t)b * F + f0) * plane;
    __global const float *xr = xp + (((size_t)b * C + c) * Hp + i) * Wp;
    for (int oh = 0; oh < OH; ++oh, dyr += DYR, xr += SH * Wp) {
      for (int ow0 = 0; ow0 < OWp; ow0 += 8) {
        float8 dv[FB];
#pragma unroll
        for (int q = 0; q < FB; ++q) dv[q] = LOAD8(dyr + q * plane + ow0);
#pragma unroll
        for (int j = 0; j < KW; ++j) {
          const float8 xv = LOAD8(xr + ow0 + j);
#pragma unroll
          for (int q = 0; q < FB; ++q) acc[q][j] = dv[q] * xv + acc[q][j];
        }
      }
    }
  }
#pragma unroll
  for (int q = 0; q < FB; ++q) {
    __global float *dst = dw + (((f0 + q) * C + c) * KH + i) * KW;
#pragma unroll
    for (int j = 0; j < KW; ++j) {
      const float4 h4 = acc[q][j].lo + acc[q][j].hi;
      const float s = (h4.x + h4.y) + (h4.z + h4.w);
      dst[j] = beta == 0.0f ? s : s + beta * dst[j];
    }
  }
}
