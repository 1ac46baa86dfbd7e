/*
 * test_act.c - the float32 SiLU, LeakyRelu and HardSwish epilogues of rt_act_apply (the
 * activations fused into Conv, Gemm and Add), and a Max by a scalar after
 * them (rt_act.max), against a scalar copy of their vector kernels'
 * operations (the Max op's own for Max), bit for bit, NaN for NaN: over every 4099th
 * float bit pattern and the special values. rt_act_apply takes its AVX-512
 * form for the first multiple of 16 and the AVX2 one for the last 8 here;
 * HPCZ_CPU_NO_AVX512=1 the AVX2 one for all (a second meson test), so both
 * give the same bytes.
 */
#include "runtime/rt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

/* vmaxps / vminps: the second operand when either is NaN */
static float vmax(float a, float b)
{
    return a > b ? a : b;
}

static float vmin(float a, float b)
{
    return a < b ? a : b;
}

/* silu_avx2's operations on one lane (backend.c) */
static float silu_ref(float v)
{
    float x = vmin(vmax(0.0f - v, -88.0f), 88.0f);
    float fx = floorf(fmaf(x, 1.44269504088896341f, 0.5f));
    x = fmaf(-fx, 0.693359375f, x);
    x = fmaf(-fx, -2.12194440e-4f, x);
    float z = x * x;
    float p = fmaf(1.9875691500e-4f, x, 1.3981999507e-3f);
    p = fmaf(p, x, 8.3334519073e-3f);
    p = fmaf(p, x, 4.1665795894e-2f);
    p = fmaf(p, x, 1.6666665459e-1f);
    p = fmaf(p, x, 5.0000001201e-1f);
    p = fmaf(p, z, x + 1.0f);
    uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23;
    float e;
    memcpy(&e, &bits, sizeof e);
    return v / (1.0f + p * e);
}

static float leaky_ref(float v, float a)
{
    return v < 0 ? a * v : v;
}

/* hswish_avx2's operations on one lane (mul then add, no FMA) */
static float hswish_ref(float v)
{
    float t = vmin(1.0f, vmax(0.0f, v * (1.0f / 6) + 0.5f));
    return v * t;
}

/* the activation, then Max(y, mx) as the Max op computes it (fb_max) */
static float act_ref(const rt_act *act, float v)
{
    float r = act->kind == RT_ACT_SILU     ? silu_ref(v)
              : act->kind == RT_ACT_HSWISH ? hswish_ref(v)
                                           : leaky_ref(v, act->a);
    if (act->max)
        r = r != r ? r : (r > act->mx ? r : act->mx);
    return r;
}

static void check(const char *label, const rt_act *act, const float *x, int64_t n)
{
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    rt_act_apply(act, y, n);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        float r = act_ref(act, x[i]);
        if (memcmp(&r, &y[i], sizeof r) && !(isnan(r) && isnan(y[i]))) {
            if (first < 0)
                first = i;
            bad++;
        }
    }
    if (bad) {
        failures++;
        printf("FAIL %-18s %lld of %lld differ, first x = %a: %a, expected %a\n", label,
               (long long)bad, (long long)n, x[first], y[first], act_ref(act, x[first]));
    } else {
        printf("PASS %-18s %lld values, the same bits as the kernels' operations\n", label,
               (long long)n);
    }
    free(y);
}

int main(void)
{
    /* 2^32 / 4099 patterns and 16 special values, rounded to 16 m + 8 */
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 88.0f, -88.0f,
                             88.5f, -88.5f, 1e-40f, -1e-40f, 0x1p-126f, -0x1p-126f, 3.0f, -3.0f};
    int64_t n = (int64_t)(UINT64_C(0x100000000) / 4099) + 16;
    n = n / 16 * 16 + 8;
    float *x = malloc((size_t)n * sizeof *x);
    memcpy(x, special, sizeof special);
    for (int64_t i = 16; i < n; i++) {
        uint32_t bits = (uint32_t)((uint64_t)(i - 16) * 4099);
        memcpy(&x[i], &bits, sizeof bits);
    }
    const rt_act silu = {.kind = RT_ACT_SILU}, leaky = {.kind = RT_ACT_LEAKY, .a = 0.2f},
                 leaky_neg = {.kind = RT_ACT_LEAKY, .a = -1.5f};
    check("silu", &silu, x, n);
    check("leakyrelu 0.2", &leaky, x, n);
    check("leakyrelu -1.5", &leaky_neg, x, n);
    const rt_act hswish = {.kind = RT_ACT_HSWISH};
    check("hardswish", &hswish, x, n);
    const rt_act leaky_max = {.kind = RT_ACT_LEAKY, .a = 0.2f, .max = true, .mx = -0.4f},
                 silu_max0 = {.kind = RT_ACT_SILU, .max = true, .mx = 0.0f},
                 leaky_max_neg0 = {.kind = RT_ACT_LEAKY, .a = 0.2f, .max = true, .mx = -0.0f};
    check("leakyrelu, max -0.4", &leaky_max, x, n);
    check("silu, max 0", &silu_max0, x, n);
    check("leakyrelu, max -0", &leaky_max_neg0, x, n);
    free(x);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures != 0;
}
