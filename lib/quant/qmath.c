/*
 * qmath.c - quantization arithmetic.
 */
#include "qmath.h"

#include <math.h>

hpcz_qrange hpcz_qrange_of(int dtype, int symmetric, int reduce_range)
{
    hpcz_qrange r = {0, 0, dtype};
    switch (dtype) {
    case HPCZ_DTYPE_INT8:
        r.qmin = reduce_range ? -64 : -128;
        r.qmax = reduce_range ? 63 : 127;
        break;
    case HPCZ_DTYPE_UINT8:
        r.qmin = 0;
        r.qmax = reduce_range ? 127 : 255;
        break;
    case HPCZ_DTYPE_INT4:
        r.qmin = -8;
        r.qmax = 7;
        break;
    case HPCZ_DTYPE_UINT4:
        r.qmin = 0;
        r.qmax = 15;
        break;
    default:
        HPCZ_ASSERT(!"not an integer quantization type");
    }
    if (symmetric && r.qmin < 0) {
        /* [-127, 127]: zero is exact and the range is balanced; reduced int8
         * [-64, 64], what ONNX Runtime's quantizer uses: u8 x s8 pair sums
         * stay within int16 (2 * 255 * 64 = 32640) */
        if (reduce_range && dtype == HPCZ_DTYPE_INT8)
            r.qmax = 64;
        r.qmin = -r.qmax;
    }
    return r;
}

void hpcz_qparams_for(float lo, float hi, hpcz_qrange r, int symmetric, float *scale, int *zp)
{
    if (lo > 0)
        lo = 0;
    if (hi < 0)
        hi = 0;
    if (symmetric) {
        float m = fmaxf(-lo, hi);
        if (r.qmin < 0) {
            *scale = m / (float)r.qmax;
            *zp = 0;
        } else {
            /* unsigned symmetric: zero in the middle */
            *scale = 2 * m / (float)(r.qmax - r.qmin);
            *zp = (r.qmax + r.qmin + 1) / 2;
        }
    } else {
        *scale = (hi - lo) / (float)(r.qmax - r.qmin);
        if (*scale > 0) {
            float z = (float)r.qmin - lo / *scale;
            int zi = (int)nearbyintf(z);
            *zp = zi < r.qmin ? r.qmin : zi > r.qmax ? r.qmax : zi;
        } else {
            *zp = r.qmin < 0 ? 0 : r.qmin;
        }
    }
    if (!(*scale > 0) || !isfinite(*scale)) {
        /* an all-zero channel: any positive scale represents it exactly */
        *scale = 1.0f;
        if (symmetric || r.qmin < 0)
            *zp = r.qmin < 0 ? 0 : *zp;
    }
}

double hpcz_quantize_span(const float *x, size_t n, size_t stride, float scale, int zp,
                          hpcz_qrange r, int *q_out)
{
    /* QuantizeLinear divides; x / scale and x * (1/scale) can differ in the
     * last bit, so divide like the reference does. */
    double err = 0;
    for (size_t i = 0; i < n; i++) {
        float xv = x[i * stride];
        float v = nearbyintf(xv / scale) + (float)zp;
        if (v < (float)r.qmin)
            v = (float)r.qmin;
        if (v > (float)r.qmax)
            v = (float)r.qmax;
        int q = (int)v;
        if (q_out)
            q_out[i] = q;
        double d = (double)xv - (double)scale * (double)(q - zp);
        err += d * d;
    }
    return err;
}

void hpcz_choose_qparams(const float *x, size_t n, size_t stride, hpcz_qrange r, int symmetric,
                         int mse, float *scale, int *zp)
{
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i * stride];
        if (v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    hpcz_qparams_for(lo, hi, r, symmetric, scale, zp);
    if (!mse || n < 2 || (lo == 0 && hi == 0))
        return;
    double best = hpcz_quantize_span(x, n, stride, *scale, *zp, r, NULL);
    for (int k = 1; k <= 10; k++) {
        float f = 1.0f - 0.05f * (float)k;
        float s;
        int z;
        hpcz_qparams_for(lo * f, hi * f, r, symmetric, &s, &z);
        double e = hpcz_quantize_span(x, n, stride, s, z, r, NULL);
        if (e < best) {
            best = e;
            *scale = s;
            *zp = z;
        }
    }
}

void hpcz_qstore(void *buf, int dtype, size_t i, int q)
{
    uint8_t *b = buf;
    switch (dtype) {
    case HPCZ_DTYPE_INT8:
    case HPCZ_DTYPE_UINT8:
        b[i] = (uint8_t)q;
        break;
    case HPCZ_DTYPE_INT4:
    case HPCZ_DTYPE_UINT4: {
        uint8_t nib = (uint8_t)(q & 0xf);
        if (i & 1)
            b[i / 2] = (uint8_t)((b[i / 2] & 0x0f) | (nib << 4));
        else
            b[i / 2] = (uint8_t)((b[i / 2] & 0xf0) | nib);
        break;
    }
    default:
        HPCZ_ASSERT(!"qstore dtype");
    }
}

int hpcz_qload(const void *buf, int dtype, size_t i)
{
    const uint8_t *b = buf;
    switch (dtype) {
    case HPCZ_DTYPE_INT8:
        return (int8_t)b[i];
    case HPCZ_DTYPE_UINT8:
        return b[i];
    case HPCZ_DTYPE_INT4: {
        int v = (b[i / 2] >> (4 * (i & 1))) & 0xf;
        return v >= 8 ? v - 16 : v;
    }
    case HPCZ_DTYPE_UINT4:
        return (b[i / 2] >> (4 * (i & 1))) & 0xf;
    default:
        HPCZ_ASSERT(!"qload dtype");
    }
    return 0;
}

uint16_t hpcz_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mant = x & 0x007fffffu;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    if (exp == 0xff) /* inf / nan */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f)
        return (uint16_t)(sign | 0x7c00u); /* overflow to inf */
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign; /* underflow to signed zero */
        mant |= 0x00800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent: still correct */
    return (uint16_t)half;
}

float hpcz_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (!mant) {
            x = sign;
        } else {
            /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}
