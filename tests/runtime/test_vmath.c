/*
 * test_vmath.c - the runtime's vectorised float32 transcendentals (rt_vexp,
 * rt_vlog, rt_verf, rt_vtanh, rt_vsigmoid, rt_vgelu, rt_vgelu_tanh) against libm in double
 * precision rounded to float: a sweep over every 1021st float bit pattern of
 * the function's domain plus the special values (0, -0, +-inf, NaN, the
 * overflow and underflow edges, subnormals). Error in units in the last place
 * of the correctly rounded result (gelu: of max(|result|, |x|), since
 * 0.5 x (1 + erf) cancels for large negative x in any float32 evaluation, ONNX
 * Runtime's included); the maxima are printed and bounded. rt_verf512 (on a
 * CPU with AVX-512) must give rt_verf's bytes over the same sweep.
 */
#include "runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static double f_exp(double x) { return exp(x); }
static double f_log(double x) { return log(x); }
static double f_erf(double x) { return erf(x); }
static double f_tanh(double x) { return tanh(x); }
static double f_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double f_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double f_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

typedef struct fn {
    const char *name;
    void (*v)(const float *, float *, int64_t);
    double (*ref)(double);
    double max_ulp;
    bool input_scale; /* error in ulps of max(|result|, |x|) */
} fn;

/* |got - want| in ulps of want (want rounded to float; ulp of the smallest
 * normal below it, so subnormal results count absolute error). */
static double ulps(float got, double want, double scale)
{
    float w = (float)want;
    if (isnan(w))
        return isnan(got) ? 0 : INFINITY;
    if (isinf(w) || isinf(got))
        return got == w ? 0 : INFINITY;
    int e;
    double a = fabs((double)w) > scale ? fabs((double)w) : scale;
    frexp(a > 1.1754943508222875e-38 ? a : 1.1754943508222875e-38, &e);
    double ulp = ldexp(1.0, e - 24);
    return fabs((double)got - want) / ulp;
}

#define N_SPECIAL 16

static void check(const fn *f)
{
    const uint32_t step = 1021;
    size_t n = (size_t)(0xffffffffu / step) + 1 + N_SPECIAL;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    if (!x || !y) {
        printf("FAIL %s: out of memory\n", f->name);
        failures++;
        free(x);
        free(y);
        return;
    }
    size_t k = 0;
    for (uint64_t b = 0; b <= 0xffffffffu; b += step) {
        uint32_t u = (uint32_t)b;
        memcpy(&x[k++], &u, 4);
    }
    const float special[N_SPECIAL] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.72f, 88.73f,
                                      -87.33f, -103.9f, -104.5f, 1e-40f, -1e-40f, 1e-30f,
                                      0.927734375f, 0.625f, 3.9f};
    for (int i = 0; i < N_SPECIAL; i++)
        x[k++] = special[i];
    f->v(x, y, (int64_t)k);
    double worst = 0;
    float worst_x = 0;
    for (size_t i = 0; i < k; i++) {
        double e = ulps(y[i], f->ref((double)x[i]), f->input_scale ? fabs((double)x[i]) : 0);
        if (e > worst) {
            worst = e;
            worst_x = x[i];
        }
    }
    /* in place (y == x) gives the same values */
    float in[4] = {-2.5f, -0.1f, 0.3f, 7.0f}, out[4];
    f->v(in, out, 4);
    f->v(in, in, 4);
    bool same = !memcmp(in, out, sizeof in);
    printf("%s %-8s max error %.3f ulp at %.9g (%zu values)%s\n",
           worst <= f->max_ulp && same ? "ok  " : "FAIL", f->name, worst, (double)worst_x, k,
           same ? "" : ", in place differs");
    if (worst > f->max_ulp || !same)
        failures++;
    free(x);
    free(y);
}

/* rt_verf512 against rt_verf, bit for bit, over every 1021st bit pattern. */
static void check_erf512(void)
{
    if (!rt_cpu_avx512()) {
        printf("skip erf512: no AVX-512 (or HPCZ_CPU_NO_AVX512 set)\n");
        return;
    }
    const uint32_t step = 1021;
    size_t n = (size_t)(0xffffffffu / step) + 1;
    float *x = malloc(n * sizeof *x), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    bool same = x && a && b;
    for (size_t k = 0; same && k < n; k++) {
        uint32_t u = (uint32_t)(k * step);
        memcpy(&x[k], &u, 4);
    }
    if (same) {
        rt_verf(x, a, (int64_t)n);
        rt_verf512(x, b, (int64_t)n);
        same = !memcmp(a, b, n * sizeof *a);
    }
    printf("%s erf512   the bytes of rt_verf (%zu values)\n", same ? "ok  " : "FAIL", n);
    failures += !same;
    free(x);
    free(a);
    free(b);
}

int main(void)
{
    const fn fns[] = {
        {"exp", rt_vexp, f_exp, 2, false},
        {"log", rt_vlog, f_log, 2, false},
        {"erf", rt_verf, f_erf, 2, false},
        {"tanh", rt_vtanh, f_tanh, 3, false},
        {"sigmoid", rt_vsigmoid, f_sigmoid, 3, false},
        {"gelu", rt_vgelu, f_gelu, 4, true},
        {"gelu_tanh", rt_vgelu_tanh, f_gelu_tanh, 4, true},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        check(&fns[i]);
    check_erf512();
    if (failures)
        printf("%d function(s) out of bounds\n", failures);
    return failures ? 1 : 0;
}
