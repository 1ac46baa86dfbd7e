/*
 * test_act_f16.c - the float16 Conv epilogue (rt_act.f16: a scalar Mul and
 * Add, Relu, Clip, LeakyRelu, SiLU (x * Sigmoid(x), from a table of every
 * float16 x), HardSwish written out as x * Clip(x + 3, 0, 6) / 6, a Max by
 * a constant and a Mul and Add after it, each rounded to float16) against the same operations done
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
    case RT_ACT_LEAKY: v = r16(v * (v >= 0 ? 1.0f : act->a)); break; /* f_leaky */
    case RT_ACT_SILU: { /* Mul(x, Sigmoid(x)): the Sigmoid op's kernel */
        float sg;
        rt_vsigmoid(&v, &sg, 1);
        v = r16(v * r16(sg));
        break;
    }
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
    if (act->max) /* the Max op: v when NaN, else the larger */
        v = v != v ? v : v > act->mx ? v : act->mx;
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

/* A float16 initializer of n values (value = v[k % nv]). */
static void init16(hpcz_model *m, const char *name, int ndim, const int64_t *dims, const float *v,
                   int nv)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(m, name, HPCZ_DTYPE_FLOAT16, ndim, dims);
    uint16_t *d = hpcz_tensor_alloc(t);
    for (int64_t k = 0; k < t->numel; k++)
        d[k] = rt_f2h(v[k % nv]);
    hpcz_graph_add_initializer(m->graph, t, &err);
}

static void node2(hpcz_model *m, const char *op, const char *a, const char *b, const char *c,
                  const char *y)
{
    hpcz_graph *g = m->graph;
    hpcz_node *n = hpcz_graph_add_node(g, op, y, c ? 3 : 2, 1);
    n->inputs[0] = hpcz_graph_value(g, a);
    n->inputs[1] = hpcz_graph_value(g, b);
    if (c)
        n->inputs[2] = hpcz_graph_value(g, c);
    hpcz_node_set_output(n, 0, hpcz_graph_value(g, y));
}

/* float16 Conv -> Mul -> Add (the scalar affine taken into the Conv's
 * epilogue) with a symbolic H and W, run at 7x7, 9x9 (a new plan) and 7x7
 * again: the third run has the first one's bytes (the second plan once kept
 * the first plan's affine in the epilogue and ran the Mul and Add too). */
static void replan(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_new();
    hpcz_opset *ops = hpcz_model_alloc(m, sizeof *ops);
    ops[0] = (hpcz_opset){"", 17};
    m->opsets = ops;
    m->n_opsets = 1;
    hpcz_graph *g = m->graph;
    hpcz_value *x = hpcz_graph_value(g, "x");
    x->dtype = HPCZ_DTYPE_FLOAT16;
    x->ndim = 4;
    x->dims = hpcz_model_alloc(m, 4 * sizeof *x->dims);
    x->dims[0].size = 1;
    x->dims[1].size = 2;
    x->dims[2] = (hpcz_dim){-1, "H"};
    x->dims[3] = (hpcz_dim){-1, "W"};
    const int64_t wd[4] = {3, 2, 1, 1}, bd[1] = {3}, sd[1] = {1};
    const float w[] = {0.5f, -0.25f, 1.5f}, b[] = {0.125f, -1}, mul[] = {0.3f}, add[] = {-0.7f};
    init16(m, "w", 4, wd, w, 3);
    init16(m, "b", 1, bd, b, 2);
    init16(m, "m", 1, sd, mul, 1);
    init16(m, "a", 1, sd, add, 1);
    node2(m, "Conv", "x", "w", "b", "c");
    node2(m, "Mul", "c", "m", NULL, "p");
    node2(m, "Add", "p", "a", NULL, "y");
    bool ok = hpcz_graph_add_input(g, x, &err) == HPCZ_OK &&
              hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err) == HPCZ_OK;
    hpcz_plan_opts po = {.threads = 1, .backend = "cpu"};
    hpcz_plan *p = ok ? hpcz_plan_new(m, &po, &err) : NULL;
    hpcz_array y[3];
    memset(y, 0, sizeof y);
    for (int r = 0; r < 3 && p; r++) {
        int64_t hw = r == 1 ? 9 : 7, dims[4] = {1, 2, hw, hw};
        hpcz_array in = {0};
        ok = ok && hpcz_array_alloc(&in, HPCZ_DTYPE_FLOAT16, 4, dims, &err) == HPCZ_OK;
        for (int64_t i = 0; ok && i < in.numel; i++)
            ((uint16_t *)in.data)[i] = rt_f2h((float)(i % 5) - 2);
        ok = ok && hpcz_plan_run(p, &in, &y[r], &err) == HPCZ_OK;
        hpcz_array_release(&in);
    }
    /* the first output: (0.5 * -2 + -0.25 * 2 + 0.125) * 0.3 - 0.7, each rounded */
    float want = r16(r16(-1.375f * r16(0.3f)) + r16(-0.7f));
    ok = p && ok && y[0].nbytes == y[2].nbytes && !memcmp(y[0].data, y[2].data, y[0].nbytes) &&
         rt_h2f(((const uint16_t *)y[2].data)[0]) == want;
    printf("%s %-44s %s\n", ok ? "PASS" : "FAIL", "float16 conv + affine after a new plan",
           ok ? "same bytes as the first plan" : err.msg[0] ? err.msg : "bytes differ");
    failures += !ok;
    for (int r = 0; r < 3; r++)
        hpcz_array_release(&y[r]);
    hpcz_plan_free(p);
    hpcz_model_free(m);
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
        {.kind = RT_ACT_LEAKY, .a = 0.25f, .f16 = true},
        {.kind = RT_ACT_LEAKY, .a = 0.2f, .f16 = true, .max = true, .mx = -0.4f},
        {.kind = RT_ACT_SILU, .f16 = true},
        {.kind = RT_ACT_SILU, .f16 = true, .pre = true, .qm = 0.2998f, .qa = -0.7f, .max = true,
         .mx = -0.125f, .post = true, .pm = 1.7f, .pa = 0.05f},
    };
    const char *labels[] = {"relu", "clip [0, 6]", "clip [-0.25, 0.5]", "hardswish (op)",
                            "hardswish (written out)",
                            "mul, add, hardswish, mul, add", "mul only (add -0)", "relu, mul only",
                            "leakyrelu 0.25", "leakyrelu 0.2 (as float16), max -0.4",
                            "silu (table)", "mul, add, silu, max, mul, add"};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        rt_act a = acts[i];
        /* the scalars as the float16 constants of a model hold them */
        a.qm = r16(a.qm), a.qa = r16(a.qa), a.pm = r16(a.pm), a.pa = r16(a.pa);
        a.a = r16(a.a), a.b = r16(a.b), a.mx = r16(a.mx);
        a.h16 = true; /* as the engine marks them */
        check(labels[i], &a, x, n);
    }
    /* LeakyRelu's alpha is a float32 attribute: 0.2 is not a float16, so the
     * engine leaves h16 off (the float32 forms, one rounding per operation) */
    const rt_act leaky = {.kind = RT_ACT_LEAKY, .a = 0.2f, .f16 = true, .max = true,
                          .mx = r16(-0.4f)};
    check("leakyrelu 0.2 (float32), max -0.4", &leaky, x, n);
    free(x);
    replan();
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures != 0;
}
