// Conv2D followed by a non-overlapping MaxPool2D as one pass: the direct stride-1 conv of
// conv_direct.cl computes the PH conv rows of one pooled row in registers, adds the bias,
// takes each window's first maximum (window order, as maxpool2d_forward), then applies the
// activation (relu or linear: both commute with max) to the pooled value only. The full
// conv map is never written. The backward scatter writes the pooled gradient back to the
// window maxima (every other element 0) in one pass, without atomics.
// Defines: PH PW ACT, and for the forward C F KH KW FB HAS_BIAS (PW divides 8).

#ifndef FB
#define FB 1
#endif
#ifndef ACT
#define ACT 0
#endif
#ifndef HAS_BIAS
#define HAS_BIAS 0
#endif
#define KK (KH * KW)
#define QC (8 / PW)  // pooled columns per 8-column chunk

typedef float8 __attribute__((aligned(4))) float8u;
typedef float4 __attribute__((aligned(4))) float4u;
typedef uchar4 __attribute__((aligned(1))) uchar4u;
#define LOAD8(p) (*(const __global float8u *)(p))
#define STORE8(p, v) (*(__global float8u *)(p) = (v))

typedef union {
  float8 v;
  float a[8];
} f8u;

#ifdef KH  // the forward (the scatter needs only PH PW ACT)
// y[b, f, p, q], code[b, f, p, q] (window position of the max) for f in f0..f0+FB-1 and
// every pooled column q of pooled row p. xp: zero-padded x (B, C, Hp, Wp) with
// Wp >= ceil(OW2*PW/8)*8 + KW - 1; global (OH2, B*F/FB)
__kernel void conv2d_maxpool_forward(__global const float *restrict xp,
                                     __global const float *restrict w,
                                     __global const float *restrict bias,
                                     __global float *restrict y,
                                     __global uchar *restrict code, const int Hp,
                                     const int Wp, const int OH2, const int OW2) {
  const int p = get_global_id(0);
  const int b = get_global_id(1) / (F / FB);
  const int f0 = (get_global_id(1) % (F / FB)) * FB;
  if (p >= OH2) return;
  __global const float *wf = w + f0 * C * KK;
  __global const float *xb = xp + (size_t)b * C * Hp * Wp + (size_t)p * PH * Wp;
  const int ncols = OW2 * PW;
  for (int ow0 = 0; ow0 < ncols; ow0 += 8) {
    float8 acc[PH][FB];
#pragma unroll
    for (int r = 0; r < PH; ++r)
#pragma unroll
      for (int f = 0; f < FB; ++f) acc[r][f] = (float8)(0.0f);
    for (int c = 0; c < C; ++c) {
#pragma unroll
      for (int i = 0; i < KH; ++i) {
        __global const float *row = xb + ((size_t)c * Hp + i) * Wp + ow0;
        __global const float *wr = wf + (c * KH + i) * KW;
#pragma unroll
        for (int j = 0; j < KW; ++j) {
          float8 xv[PH];
#pragma unroll
          for (int r = 0; r < PH; ++r) xv[r] = LOAD8(row + r * Wp + j);
#pragma unroll
          for (int f = 0; f < FB; ++f) {
            const float wv = wr[f * C * KK + j];
#pragma unroll
            for (int r = 0; r < PH; ++r) acc[r][f] = wv * xv[r] + acc[r][f];
          }
        }
      }
    }
#pragma unroll
    for (int f = 0; f < FB; ++f) {
#if HAS_BIAS
      const float bf = bias[f0 + f];
#pragma unroll
      for (int r = 0; r < PH; ++r) acc[r][f] += bf;
#endif
      const size_t out = (((size_t)b * F + f0 + f) * OH2 + p) * OW2;
#if PW == 2
      // 4 pooled columns at once: even and odd conv columns by swizzle, so the
      // accumulators stay in vector registers (no per-lane array access)
      float4 best = acc[0][f].s0246;
      int4 at = (int4)(0);
#pragma unroll
      for (int r = 0; r < PH; ++r)
#pragma unroll
        for (int d = 0; d < 2; ++d) {
          if (r == 0 && d == 0) continue;
          const float4 v = d ? acc[r][f].s1357 : acc[r][f].s0246;
          // blend by mask with the relational operator and bit operations: select(),
          // isgreater() and fmax() on vectors are per-lane library calls in PoCL builds
          const int4 gt = v > best;
          best = as_float4((as_int4(v) & gt) | (as_int4(best) & ~gt));
          at = ((int4)(r * 2 + d) & gt) | (at & ~gt);
        }
#if ACT == 1
      best = as_float4(as_int4(best) & ~(as_int4(best) >> 31));  // relu by the sign bit
#endif
      const int q0 = ow0 / 2;
      if (q0 + 4 <= OW2) {
        *(__global float4u *)(y + out + q0) = best;
        *(__global uchar4u *)(code + out + q0) = convert_uchar4(at);
      } else {
        union { float4 v; float a[4]; } tb;
        union { int4 v; int a[4]; } ta;
        tb.v = best;
        ta.v = at;
        for (int l = 0; l < OW2 - q0; ++l) {
          y[out + q0 + l] = tb.a[l];
          code[out + q0 + l] = (uchar)ta.a[l];
        }
      }
#else
      f8u t[PH];
#pragma unroll
      for (int r = 0; r < PH; ++r) t[r].v = acc[r][f];
#pragma unroll
      for (int qq = 0; qq < QC; ++qq) {
        const int q = ow0 / PW + qq;
        if (q >= OW2) break;
        float best = t[0].a[qq * PW];
        uchar at = 0;
#pragma unroll
        for (int r = 0; r < PH; ++r)
#pragma unroll
          for (int d = 0; d < PW; ++d) {
            const float v = t[r].a[qq * PW + d];
            if (v > best) {
              best = v;
              at = (uchar)(r * PW + d);
            }
          }
#if ACT == 1
        best = best > 0.0f ? best : 0.0f;
#endif
        y[out + q] = best;
        code[out + q] = at;
      }
#endif
    }
  }
}
#endif

// d[0..n) = 0, 8 floats per store
inline void zero_span(__global float *d, const int n) {
  int e = 0;
  for (; e + 8 <= n; e += 8) STORE8(d + e, (float8)(0.0f));
  for (; e < n; ++e) d[e] = 0.0f;
}

// dz[b, f, p*PH + r, q*PW + d] = (r*PW + d == code) ? g : 0 with g = dy (relu: 0 where the
// pooled output y is not positive), written into a zero-padded buffer: plane (b, f) of
// dzp is HZ x WZ with the conv map at row ZT, column ZL and zeros everywhere else (ragged
// last rows and columns too), the layout the direct data and filter gradients read, so
// they need no padding pass. gsum[b, f] = sum of g over the plane (the bias gradient's
// partial sums). One work-item per plane, rows written front to back; nplanes = B*F
__kernel void conv2d_maxpool_scatter(__global const float *restrict dy,
                                     __global const float *restrict y,
                                     __global const uchar *restrict code,
                                     __global float *restrict dzp,
                                     __global float *restrict gsum, const int nplanes,
                                     const int OH2, const int OW2, const int HZ, const int WZ,
                                     const int ZT, const int ZL) {
  const int plane = get_global_id(0);
  if (plane >= nplanes) return;
  __global const float *dyp = dy + (size_t)plane * OH2 * OW2;
  __global const float *yp = y + (size_t)plane * OH2 * OW2;
  __global const uchar *cp = code + (size_t)plane * OH2 * OW2;
  __global float *dst = dzp + (size_t)plane * HZ * WZ;
  const int right = ZL + OW2 * PW;  // first column after the last window
  zero_span(dst, ZT * WZ);
  float s = 0.0f;
  for (int p = 0; p < OH2; ++p) {
    __global float *rows = dst + (size_t)(ZT + p * PH) * WZ;
#pragma unroll
    for (int r = 0; r < PH; ++r) {
      zero_span(rows + r * WZ, ZL);
      zero_span(rows + r * WZ + right, WZ - right);
    }
    int q = 0;
#if PW == 2
    // 4 windows at a time: two masked float4 of g interleaved into one float8 per row
    for (; q + 4 <= OW2; q += 4) {
      float4 g = *(const __global float4u *)(dyp + p * OW2 + q);
#if ACT == 1
      g = as_float4(as_int4(g) & (*(const __global float4u *)(yp + p * OW2 + q) > 0.0f));
#endif
      s += (g.x + g.y) + (g.z + g.w);
      const int4 at = convert_int4(*(const __global uchar4u *)(cp + p * OW2 + q));
#pragma unroll
      for (int r = 0; r < PH; ++r) {
        const float4 v0 = as_float4(as_int4(g) & (at == (int4)(2 * r)));
        const float4 v1 = as_float4(as_int4(g) & (at == (int4)(2 * r + 1)));
        STORE8(rows + r * WZ + ZL + 2 * q,
               (float8)(v0.s0, v1.s0, v0.s1, v1.s1, v0.s2, v1.s2, v0.s3, v1.s3));
      }
    }
#endif
    for (; q < OW2; ++q) {
      float g = dyp[p * OW2 + q];
#if ACT == 1
      g = yp[p * OW2 + q] > 0.0f ? g : 0.0f;
#endif
      s += g;
      const int at = cp[p * OW2 + q];
#pragma unroll
      for (int r = 0; r < PH; ++r)
#pragma unroll
        for (int d = 0; d < PW; ++d)
          rows[r * WZ + ZL + q * PW + d] = (r * PW + d == at) ? g : 0.0f;
    }
  }
  zero_span(dst + (ZT + OH2 * PH) * WZ, (HZ - ZT - OH2 * PH) * WZ);
  gsum[plane] = s;
}
