/*
 * tr16.h - a 16 x 16 float transpose in AVX-512 registers, for the kernels
 * that turn planes into pixels of 16 channels and back (conv.c's dwb_task,
 * pool.c's gp16_512). x86-64 with GCC/Clang only; callers need the
 * avx512f target.
 */
#ifndef HPCZ_RT_TR16_H
#define HPCZ_RT_TR16_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* r[i] lane j -> r[j] lane i: unpacks, then 128-bit lane shuffles. */
__attribute__((target("avx512f"), always_inline)) static inline void rt_tr16_512(__m512 *r)
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    /* u[4m + j], 128-bit lane l: rows 4m..4m+3 of column 4l + j */
    for (int j = 0; j < 4; j++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[4 + j] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}
#endif

#endif
