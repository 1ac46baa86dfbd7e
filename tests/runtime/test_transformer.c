/*
 * test_transformer.c - the transformer paths of the cpu backend on a small
 * BERT-like block built with initializers: MatMul + bias Add (fused into the
 * GEMM epilogue), the two GELU chains PyTorch exports (Div by sqrt 2 ... Mul
 * x, Mul 0.5; Mul by 1/sqrt 2 ... Mul 0.5, Mul x; each fused into one pass),
 * batched attention products, Softmax and LayerNormalization:
 *   - fused cpu result against the ref backend (bounded normalised error),
 *   - the same bytes with 1 and 2 threads,
 *   - the same bytes as the unfused cpu run (HPCZ_NO_TRANSFORMER_FUSION=1),
 *     and the fusion really happened (a smaller activation arena),
 *   - the same block in float16 (initializers and input) against float32:
 *     within float16 rounding, against ref, and 1 vs 2 threads.
 */
#include "hpcz.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float frand(void) /* [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* float -> IEEE half, round to nearest even (normal range: what the test uses) */
static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, m = x & 0x7fffff;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    if (e <= 0)
        return (uint16_t)sign;
    uint32_t r = (uint32_t)(e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

static float from_half(uint16_t h)
{
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e ? ldexpf((float)(m | 0x400), (int)e - 25) : ldexpf((float)m, -24);
    return h & 0x8000 ? -v : v;
}

enum { B = 3, S = 10, H = 2, DH = 12, D = H * DH, F = 200 };

typedef struct block {
    hpcz_model *m;
    hpcz_graph *g;
    int dt;
    int n_nodes;
} block;

static hpcz_value *val(block *b, const char *name)
{
    return hpcz_graph_value(b->g, name);
}

/* An initializer of random values in [lo, lo + span) (or one value lo when span is 0). */
static void init(block *b, const char *name, int ndim, const int64_t *dims, float lo, float span)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(b->m, name, b->dt, ndim, dims);
    void *d = hpcz_tensor_alloc(t);
    for (int64_t k = 0; k < t->numel; k++) {
        float v = span ? lo + (frand() * 0.5f + 0.5f) * span : lo;
        if (b->dt == HPCZ_DTYPE_FLOAT16)
            ((uint16_t *)d)[k] = to_half(v);
        else
            ((float *)d)[k] = v;
    }
    hpcz_graph_add_initializer(b->g, t, &err);
}

/* The int64 shape [B, S, H, DH] (heads split off the last dimension). */
static void init_heads(block *b, const char *name)
{
    hpcz_error err = {0};
    const int64_t n = 4, v[4] = {B, S, H, DH};
    hpcz_tensor *t = hpcz_tensor_new(b->m, name, HPCZ_DTYPE_INT64, 1, &n);
    memcpy(hpcz_tensor_alloc(t), v, sizeof v);
    hpcz_graph_add_initializer(b->g, t, &err);
}

static void node(block *b, const char *op, const char *in0, const char *in1, const char *in2,
                 const char *out, const char *attr_name, const int64_t *ints, int n_ints)
{
    char name[16];
    snprintf(name, sizeof name, "n%d", b->n_nodes++);
    size_t n_in = in2 ? 3 : in1 ? 2 : 1;
    hpcz_node *n = hpcz_graph_add_node(b->g, op, name, n_in, 1);
    n->inputs[0] = val(b, in0);
    if (in1)
        n->inputs[1] = val(b, in1);
    if (in2)
        n->inputs[2] = val(b, in2);
    hpcz_node_set_output(n, 0, val(b, out));
    if (attr_name) {
        n->attrs = hpcz_model_alloc(b->m, sizeof *n->attrs);
        hpcz_attr *a = &n->attrs[n->n_attrs++];
        a->name = hpcz_model_strdup(b->m, attr_name);
        if (n_ints == 1) {
            a->type = HPCZ_ATTR_INT;
            a->i = ints[0];
        } else {
            a->type = HPCZ_ATTR_INTS;
            int64_t *v = hpcz_model_alloc(b->m, (size_t)n_ints * sizeof *v);
            memcpy(v, ints, (size_t)n_ints * sizeof *v);
            a->ints = v;
            a->n = (size_t)n_ints;
        }
    }
}

/* x [B, S, D] -> dense + GELU (form 1) -> dense + GELU (form 2) -> LayerNorm ->
 * per-head attention softmax(Q K^T) V with Q = K = V = the normed x -> y. */
static hpcz_model *build(int dt)
{
    rng_state = 0x2545f4914f6cdd1dull; /* the same weights for both dtypes */
    block b = {hpcz_model_new(), NULL, dt, 0};
    b.g = b.m->graph;
    hpcz_opset *ops = hpcz_model_alloc(b.m, sizeof *ops);
    ops[0] = (hpcz_opset){"", 17};
    b.m->opsets = ops;
    b.m->n_opsets = 1;
    hpcz_graph *g = b.g;
    g->inputs = hpcz_model_alloc(b.m, sizeof *g->inputs);
    g->outputs = hpcz_model_alloc(b.m, sizeof *g->outputs);
    hpcz_value *x = val(&b, "x");
    x->dtype = dt;
    x->ndim = 3;
    x->dims = hpcz_model_alloc(b.m, 4 * sizeof *x->dims);
    x->dims[0].size = B;
    x->dims[1].size = S;
    x->dims[2].size = D;
    x->is_input = 1;
    g->inputs[g->n_inputs++] = x;
    const int64_t w1[2] = {D, F}, w2[2] = {F, D}, bf[1] = {F}, bd[1] = {D}, sc[1] = {0};
    init(&b, "w1", 2, w1, -0.3f, 0.6f);
    init(&b, "b1", 1, bf, -0.5f, 1.0f);
    init(&b, "w2", 2, w2, -0.3f, 0.6f);
    init(&b, "b2", 1, bd, -0.5f, 1.0f);
    init(&b, "sqrt2", 0, sc, 1.4142135623730951f, 0);
    init(&b, "rsqrt2", 0, sc, 0.7071067811865476f, 0);
    init(&b, "one", 0, sc, 1.0f, 0);
    init(&b, "half", 0, sc, 0.5f, 0);
    init(&b, "gamma", 1, bd, 0.5f, 1.0f);
    init(&b, "beta", 1, bd, -0.2f, 0.4f);
    init_heads(&b, "shape");
    node(&b, "MatMul", "x", "w1", NULL, "h", NULL, NULL, 0);
    node(&b, "Add", "h", "b1", NULL, "hb", NULL, NULL, 0);
    node(&b, "Div", "hb", "sqrt2", NULL, "d", NULL, NULL, 0);
    node(&b, "Erf", "d", NULL, NULL, "e", NULL, NULL, 0);
    node(&b, "Add", "e", "one", NULL, "a", NULL, NULL, 0);
    node(&b, "Mul", "hb", "a", NULL, "m", NULL, NULL, 0);
    node(&b, "Mul", "m", "half", NULL, "g", NULL, NULL, 0);
    node(&b, "MatMul", "g", "w2", NULL, "o", NULL, NULL, 0);
    node(&b, "Add", "b2", "o", NULL, "ob", NULL, NULL, 0);
    node(&b, "Mul", "rsqrt2", "ob", NULL, "q2", NULL, NULL, 0);
    node(&b, "Erf", "q2", NULL, NULL, "e2", NULL, NULL, 0);
    node(&b, "Add", "one", "e2", NULL, "a2", NULL, NULL, 0);
    node(&b, "Mul", "half", "a2", NULL, "m2", NULL, NULL, 0);
    node(&b, "Mul", "ob", "m2", NULL, "g2", NULL, NULL, 0);
    node(&b, "LayerNormalization", "g2", "gamma", "beta", "ln", NULL, NULL, 0);
    node(&b, "Reshape", "ln", "shape", NULL, "r", NULL, NULL, 0);
    node(&b, "Transpose", "r", NULL, NULL, "qh", "perm", (const int64_t[]){0, 2, 1, 3}, 4);
    node(&b, "Transpose", "r", NULL, NULL, "kt", "perm", (const int64_t[]){0, 2, 3, 1}, 4);
    node(&b, "MatMul", "qh", "kt", NULL, "sc", NULL, NULL, 0);
    node(&b, "Softmax", "sc", NULL, NULL, "p", "axis", (const int64_t[]){-1}, 1);
    node(&b, "MatMul", "p", "qh", NULL, "y", NULL, NULL, 0);
    hpcz_value *y = val(&b, "y");
    y->is_output = 1;
    g->outputs[g->n_outputs++] = y;
    return b.m;
}

static bool run(hpcz_model *m, const char *backend, int threads, const hpcz_array *x,
                hpcz_array *y, uint64_t *arena, hpcz_error *err)
{
    hpcz_plan_opts po = {.threads = threads, .backend = backend};
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p)
        return false;
    bool ok = hpcz_plan_run(p, x, y, err) == HPCZ_OK;
    if (ok && arena) {
        hpcz_plan_stats st;
        hpcz_plan_get_stats(p, &st);
        *arena = st.arena_bytes;
    }
    hpcz_plan_free(p);
    return ok;
}

static float at(const hpcz_array *a, int64_t k)
{
    return a->dtype == HPCZ_DTYPE_FLOAT16 ? from_half(((const uint16_t *)a->data)[k])
                                          : ((const float *)a->data)[k];
}

/* max |a - r| / max |r| (infinite when shapes or NaNs differ) */
static double nerr(const hpcz_array *a, const hpcz_array *r)
{
    if (a->numel != r->numel || !a->numel)
        return INFINITY;
    double mx = 0, me = 0;
    for (int64_t k = 0; k < a->numel; k++) {
        double u = at(a, k), v = at(r, k);
        if (isnan(u) || isnan(v))
            return INFINITY;
        mx = fmax(mx, fabs(v));
        me = fmax(me, fabs(u - v));
    }
    return me / fmax(mx, 1e-3);
}

static bool same(const hpcz_array *a, const hpcz_array *b)
{
    return a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
}

static void expect(bool ok, const char *what, double e, double bound, const hpcz_error *err)
{
    if (!ok)
        failures++;
    printf("%s %-52s", ok ? "PASS" : "FAIL", what);
    if (bound > 0)
        printf(" normalized error %.2e (bound %.0e)", e, bound);
    printf("%s%s\n", err && err->msg[0] ? ": " : "", err && err->msg[0] ? err->msg : "");
}

int main(void)
{
    hpcz_error err = {0};
    const int64_t xd[3] = {B, S, D};
    hpcz_array x32 = {0}, x16 = {0};
    hpcz_array_alloc(&x32, HPCZ_DTYPE_FLOAT, 3, xd, &err);
    hpcz_array_alloc(&x16, HPCZ_DTYPE_FLOAT16, 3, xd, &err);
    for (int64_t k = 0; k < x32.numel; k++) {
        uint16_t h = to_half(frand() * 2.0f);
        ((uint16_t *)x16.data)[k] = h;
        ((float *)x32.data)[k] = from_half(h); /* the same values in both */
    }
    hpcz_model *m32 = build(HPCZ_DTYPE_FLOAT), *m16 = build(HPCZ_DTYPE_FLOAT16);
    hpcz_array a = {0}, b = {0}, r = {0}, u = {0}, h1 = {0}, h2 = {0}, hr = {0};
    uint64_t arena_fused = 0, arena_unfused = 0;

    bool ok = run(m32, "cpu", 1, &x32, &a, &arena_fused, &err) &&
              run(m32, "cpu", 2, &x32, &b, NULL, &err) && run(m32, "ref", 1, &x32, &r, NULL, &err);
    double e = ok ? nerr(&a, &r) : INFINITY;
    expect(ok && e <= 1e-5, "float32 fused block vs ref", e, 1e-5, &err);
    expect(ok && same(&a, &b), "float32 fused block: 1 and 2 threads, same bytes", 0, 0, NULL);

    setenv("HPCZ_NO_TRANSFORMER_FUSION", "1", 1);
    ok = run(m32, "cpu", 1, &x32, &u, &arena_unfused, &err);
    unsetenv("HPCZ_NO_TRANSFORMER_FUSION");
    expect(ok && same(&a, &u), "float32 fused vs unfused (HPCZ_NO_TRANSFORMER_FUSION): same bytes",
           0, 0, &err);
    printf("     activation arena: %llu bytes fused, %llu unfused\n",
           (unsigned long long)arena_fused, (unsigned long long)arena_unfused);
    expect(ok && arena_fused < arena_unfused, "fusion drops the intermediate buffers", 0, 0, NULL);

    ok = run(m16, "cpu", 1, &x16, &h1, NULL, &err) && run(m16, "cpu", 2, &x16, &h2, NULL, &err) &&
         run(m16, "ref", 1, &x16, &hr, NULL, &err);
    expect(ok && h1.dtype == HPCZ_DTYPE_FLOAT16, "float16 block runs, float16 output", 0, 0, &err);
    e = ok ? nerr(&h1, &a) : INFINITY;
    expect(ok && e <= 1e-2, "float16 block vs float32", e, 1e-2, NULL);
    e = ok ? nerr(&h1, &hr) : INFINITY;
    expect(ok && e <= 1e-2, "float16 block cpu vs ref", e, 1e-2, NULL);
    expect(ok && same(&h1, &h2), "float16 block: 1 and 2 threads, same bytes", 0, 0, NULL);

    hpcz_array *all[] = {&x32, &x16, &a, &b, &r, &u, &h1, &h2, &hr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hpcz_array_release(all[i]);
    hpcz_model_free(m32);
    hpcz_model_free(m16);
    if (failures)
        printf("%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
