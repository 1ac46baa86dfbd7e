/*
 * qmath.h - quantization arithmetic shared by the quantization passes, the
 * runtime's int8 kernels and GPTQ-style reconstruction.
 *
 * A quantizer maps x to q = clamp(round(x / scale) + zp, qmin, qmax) and back
 * to scale * (q - zp). Rounding is to nearest, ties to even (what
 * QuantizeLinear does), so hpcz's quantized weights equal what ONNX Runtime
 * would compute from the same scales.
 */
#ifndef HPCZ_QMATH_H
#define HPCZ_QMATH_H

#include "internal.h"

typedef struct hpcz_qrange {
    int qmin, qmax;
    int dtype; /* HPCZ_DTYPE_INT8/UINT8/INT4/UINT4 */
} hpcz_qrange;

/* The integer range of dtype: symmetric signed types drop the lowest value
 * (int8: [-127, 127]) so that zero-point-free scales are exact; reduce_range
 * takes one bit off (int8 [-64, 63], symmetric [-64, 64] as ONNX Runtime's
 * quantizer; uint8 [0, 127]) for engines that accumulate u8*s8 pairs in 16
 * bits (|w| <= 64 keeps them below 32767). */
hpcz_qrange hpcz_qrange_of(int dtype, int symmetric, int reduce_range);

/* Scale and zero point for the range [lo, hi] (which always includes 0). */
void hpcz_qparams_for(float lo, float hi, hpcz_qrange r, int symmetric, float *scale, int *zp);

/* Quantizes n floats with one scale/zp, stride `stride` between elements:
 * q[i*stride] (as int) = ... Returns the squared error sum. */
double hpcz_quantize_span(const float *x, size_t n, size_t stride, float scale, int zp,
                          hpcz_qrange r, int *q_out);

/* Chooses scale/zp for the values x[i*stride], i < n: the min/max range,
 * shrunk by the factor in a grid of 1.0, 0.95, ... 0.5 that minimises the
 * squared quantization error (mse != 0), or plain min/max (mse == 0). */
void hpcz_choose_qparams(const float *x, size_t n, size_t stride, hpcz_qrange r, int symmetric,
                         int mse, float *scale, int *zp);

/* Stores integer q as dtype into a packed buffer at element index i
 * (int4/uint4: two per byte, element 0 in the low nibble). */
void hpcz_qstore(void *buf, int dtype, size_t i, int q);
int hpcz_qload(const void *buf, int dtype, size_t i);

/* float <-> IEEE half (round to nearest even; F16C where available). */
uint16_t hpcz_f32_to_f16(float f);
float hpcz_f16_to_f32(uint16_t h);

#endif
