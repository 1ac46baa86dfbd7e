/*
 * test_act_f16.c - the float16 Conv epilogue (rt_act.f16: a scalar Mul and
 * Add, Relu, Clip, HardSwish written out as x * Clip(x + 3, 0, 6) / 6, a Mul
 * and Add after it, each rounded to float16) against the same operations done
 * one by one with a float16 rounding after each and a true division by 6: on
 * every float16 value and on float32 values between them (a Conv's sums),
 * bit for bit, NaN for NaN. rt_act_apply takes its AVX512-FP16, AVX-512 or
 * AVX2 form here (HPCZ_CPU_NO_AVX512FP16=1: the float32 AVX-512 one,
 * HPCZ_CPU_NO_AVX512=1: the AVX2 one) and its scalar form for the AVX2 tail.
 */
#include "runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static float r16(float v)
{
    return rt_h2f(rt_f2h(v));
}

static float clip(float v, float a, float b)
{
    float c = v < a ? a : v;
    return c > b ? b : c;
}

/* The unfused float16 ops, one rounding each. */
static float ref(const rt_act *act, float v)
{
    v = r16(v);
    if (act->pre) {
        v = r16(v * act->qm);
        v = r16(v + act->qa);
    }
    switch (act->kind) {
    case RT_ACT_RELU: v = v > 0 ? v : 0; break;
    case RT_ACT_CLIP: v = clip(v, act->a, act->b); break;
    case RT_ACT_HSWISH: { /* the HardSwish op's float32 kernel (f_hswish) */
        float h = v * (1.0f / 6) + 0.5f;
        h = h > 0 ? h : 0;
        h = h < 1 ? h : 1;
        v = r16(v * h);
        break;
    }
    case RT_ACT_HSWISH_X: {
        float t = clip(r16(v + 3.0f), 0.0f, 6.0f);
        v = r16(r16(v * t) / 6.0f);
        break;
    }
    default: break;
    }
    if (act->post) {
        v = r16(v * act->pm);
        v = r16(v + act->pa);
    }
    return v;
}

static void check(const char *label, const rt_act *act, const float *x, int64_t n)
{
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    rt_act_apply(act, y, n);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        float want = ref(act, x[i]);
        bool same = (isnan(want) && isnan(y[i])) || !memcmp(&want, &y[i], sizeof want);
        if (!same && bad++ == 0)
            first = i;
    }
    printf("%s %-44s %lld values, %lld differ", bad ? "FAIL" : "PASS", label, (long long)n,
           (long long)bad);
    if (bad)
        printf(" (first: x %a -> %a, want %a)", x[first], y[first], ref(act, x[first]));
    printf("\n");
    failures += bad != 0;
    free(y);
}

int main(void)
{
    /* every float16 value, then each nudged up and down by float32 ulps
     * (sums that round to it or to a neighbour, halfway cases included), and
     * an odd count so that the scalar tail runs too */
    int64_t n = 3 * 65536 + 7;
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < 65536; i++) {
        float v = rt_h2f((uint16_t)i);
        x[i] = v;
        x[65536 + i] = nextafterf(v, INFINITY);
        x[2 * 65536 + i] = isfinite(v) && v != 0 ? v * (1 + 0x1p-12f) : -v; /* near halfway */
    }
    for (int64_t i = 3 * 65536; i < n; i++)
        x[i] = 0.1f * (float)(i - 3 * 65536) - 0.3f;
    const rt_act acts[] = {
        {.kind = RT_ACT_RELU, .f16 = true},
        {.kind = RT_ACT_CLIP, .a = 0, .b = 6, .f16 = true},
        {.kind = RT_ACT_CLIP, .a = -0.25f, .b = 0.5f, .f16 = true},
        {.kind = RT_ACT_HSWISH, .f16 = true},
        {.kind = RT_ACT_HSWISH_X, .f16 = true},
        {.kind = RT_ACT_HSWISH_X, .f16 = true, .pre = true, .qm = 0.2998f, .qa = -0.7f,
         .post = true, .pm = 1.7f, .pa = 0.05f},
        {.kind = RT_ACT_NONE, .f16 = true, .pre = true, .qm = 1.25f, .qa = -0.0f},
        {.kind = RT_ACT_RELU, .f16 = true, .post = true, .pm = 3.0f, .pa = -0.0f},
    };
    const char *labels[] = {"relu", "clip [0, 6]", "clip [-0.25, 0.5]", "hardswish (op)",
                            "hardswish (written out)",
                            "mul, add, hardswish, mul, add", "mul only (add -0)", "relu, mul only"};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        rt_act a = acts[i];
        /* the scalars as the float16 constants of a model hold them */
        a.qm = r16(a.qm), a.qa = r16(a.qa), a.pm = r16(a.pm), a.pa = r16(a.pa);
        a.a = r16(a.a), a.b = r16(a.b);
        check(labels[i], &a, x, n);
    }
    free(x);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures != 0;
}
