/*
 * elementwise.c - unary and binary (broadcasting) ops, comparisons, logic,
 * Where, Clip and the variadic Min/Max/Sum/Mean.
 *
 * float32 takes fast loops the compiler vectorizes (each row of a broadcast
 * is a contiguous run with stride 0 or 1 per input); other dtypes take a
 * generic path that computes in int64 (integers, exact) or double.
 */
#include "../rt.h"

/* ================================================================ unary */

typedef struct uparam {
    double alpha, beta, gamma;
    int mode;
} uparam;

typedef double (*ufn_d)(double x, const uparam *p);
typedef int64_t (*ufn_i)(int64_t x);
typedef void (*ufn_fast)(const float *x, float *y, int64_t n, const uparam *p);

static double u_abs(double x, const uparam *p) { (void)p; return fabs(x); }
static double u_neg(double x, const uparam *p) { (void)p; return -x; }
static double u_sqrt(double x, const uparam *p) { (void)p; return sqrt(x); }
static double u_exp(double x, const uparam *p) { (void)p; return exp(x); }
static double u_log(double x, const uparam *p) { (void)p; return log(x); }
static double u_erf(double x, const uparam *p) { (void)p; return erf(x); }
static double u_recip(double x, const uparam *p) { (void)p; return 1.0 / x; }
static double u_floor(double x, const uparam *p) { (void)p; return floor(x); }
static double u_ceil(double x, const uparam *p) { (void)p; return ceil(x); }
static double u_round(double x, const uparam *p) { (void)p; return nearbyint(x); }
static double u_relu(double x, const uparam *p) { (void)p; return x > 0 ? x : 0; }
static double u_sigmoid(double x, const uparam *p) { (void)p; return 1.0 / (1.0 + exp(-x)); }
static double u_tanh(double x, const uparam *p) { (void)p; return tanh(x); }
static double u_sin(double x, const uparam *p) { (void)p; return sin(x); }
static double u_cos(double x, const uparam *p) { (void)p; return cos(x); }
static double u_tan(double x, const uparam *p) { (void)p; return tan(x); }
static double u_asin(double x, const uparam *p) { (void)p; return asin(x); }
static double u_acos(double x, const uparam *p) { (void)p; return acos(x); }
static double u_atan(double x, const uparam *p) { (void)p; return atan(x); }
static double u_sinh(double x, const uparam *p) { (void)p; return sinh(x); }
static double u_cosh(double x, const uparam *p) { (void)p; return cosh(x); }
static double u_asinh(double x, const uparam *p) { (void)p; return asinh(x); }
static double u_acosh(double x, const uparam *p) { (void)p; return acosh(x); }
static double u_atanh(double x, const uparam *p) { (void)p; return atanh(x); }
static double u_softplus(double x, const uparam *p) { (void)p; return x > 30 ? x : log1p(exp(x)); }
static double u_softsign(double x, const uparam *p) { (void)p; return x / (1.0 + fabs(x)); }
static double u_sign(double x, const uparam *p) { (void)p; return x > 0 ? 1 : x < 0 ? -1 : 0 * x; }
static double u_leaky(double x, const uparam *p) { return x >= 0 ? x : p->alpha * x; }
static double u_elu(double x, const uparam *p) { return x >= 0 ? x : p->alpha * (exp(x) - 1); }
static double u_selu(double x, const uparam *p)
{
    return p->gamma * (x > 0 ? x : p->alpha * (exp(x) - 1));
}
static double u_celu(double x, const uparam *p)
{
    return fmax(0, x) + fmin(0, p->alpha * (exp(x / p->alpha) - 1));
}
static double u_hsig(double x, const uparam *p) { return fmax(0, fmin(1, p->alpha * x + p->beta)); }
static double u_hswish(double x, const uparam *p)
{
    (void)p;
    return x * fmax(0, fmin(1, x / 6 + 0.5));
}
static double u_thrrelu(double x, const uparam *p) { return x > p->alpha ? x : 0; }
static double u_shrink(double x, const uparam *p)
{
    return x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0;
}
static double u_gelu(double x, const uparam *p)
{
    if (p->mode) /* tanh approximation */
        return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1 + erf(x * 0.7071067811865476));
}
static double u_mish(double x, const uparam *p) { return x * tanh(u_softplus(x, p)); }
static double u_swish(double x, const uparam *p) { return x / (1.0 + exp(-p->alpha * x)); }

static int64_t ui_abs(int64_t x) { return x < 0 ? -x : x; }
static int64_t ui_neg(int64_t x) { return -x; }
static int64_t ui_sign(int64_t x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static int64_t ui_relu(int64_t x) { return x > 0 ? x : 0; }
static int64_t ui_id(int64_t x) { return x; }

/* Fast float loops for the ops that dominate CNNs and transformers. The
 * selects only vectorise without -ftrapping-math (GCC does not if-convert a
 * compare that may trap): these loops raise no FP exceptions anyone reads. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
RT_HOT static void f_relu(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}
RT_HOT static void f_abs(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = fabsf(x[i]);
}
RT_HOT static void f_neg(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = -x[i];
}
RT_HOT static void f_sqrt(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = sqrtf(x[i]);
}
RT_HOT static void f_recip(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++)
        y[i] = 1.0f / x[i];
}
/* Branch-free forms that vectorise (a select on a compare): the branchy
 * ones ran a mispredicted branch per value on real activations (LeakyRelu
 * 10x Relu's time); the same values, x * 1 being x. */
RT_HOT static void f_leaky(const float *x, float *y, int64_t n, const uparam *p)
{
    float a = (float)p->alpha;
    for (int64_t i = 0; i < n; i++) {
        float s = x[i] >= 0 ? 1.0f : a;
        y[i] = x[i] * s;
    }
}
RT_HOT static void f_hsig(const float *x, float *y, int64_t n, const uparam *p)
{
    float a = (float)p->alpha, b = (float)p->beta;
    for (int64_t i = 0; i < n; i++) {
        float v = a * x[i] + b;
        v = v > 0 ? v : 0;
        y[i] = v < 1 ? v : 1;
    }
}
RT_HOT static void f_hswish(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * (1.0f / 6) + 0.5f;
        v = v > 0 ? v : 0;
        v = v < 1 ? v : 1;
        y[i] = x[i] * v;
    }
}
#pragma GCC pop_options
/* the transcendentals: vectorised polynomials (vmath.c) */
static void f_exp(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    rt_vexp(x, y, n);
}
static void f_log(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    rt_vlog(x, y, n);
}
static void f_sigmoid(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    rt_vsigmoid(x, y, n);
}
static void f_tanh(const float *x, float *y, int64_t n, const uparam *p)
{
    (void)p;
    rt_vtanh(x, y, n);
}
static void f_erf(const float *x, float *y, int64_t n, const uparam *p)
{
    (p->mode ? rt_verf512 : rt_verf)(x, y, n);
}
static void f_gelu(const float *x, float *y, int64_t n, const uparam *p)
{
    if (p->mode)
        rt_vgelu_tanh(x, y, n);
    else
        rt_vgelu(x, y, n);
}

typedef struct uop {
    const char *name;
    ufn_d fd;
    ufn_i fi;      /* integer inputs (NULL: float only) */
    ufn_fast ff;   /* float32 fast loop (NULL: through fd) */
} uop;

static const uop uops[] = {
    {"Abs", u_abs, ui_abs, f_abs},
    {"Neg", u_neg, ui_neg, f_neg},
    {"Sqrt", u_sqrt, NULL, f_sqrt},
    {"Exp", u_exp, NULL, f_exp},
    {"Log", u_log, NULL, f_log},
    {"Erf", u_erf, NULL, f_erf},
    {"Reciprocal", u_recip, NULL, f_recip},
    {"Floor", u_floor, NULL, NULL},
    {"Ceil", u_ceil, NULL, NULL},
    {"Round", u_round, NULL, NULL},
    {"Relu", u_relu, ui_relu, f_relu},
    {"Sigmoid", u_sigmoid, NULL, f_sigmoid},
    {"Tanh", u_tanh, NULL, f_tanh},
    {"Sin", u_sin, NULL, NULL},
    {"Cos", u_cos, NULL, NULL},
    {"Tan", u_tan, NULL, NULL},
    {"Asin", u_asin, NULL, NULL},
    {"Acos", u_acos, NULL, NULL},
    {"Atan", u_atan, NULL, NULL},
    {"Sinh", u_sinh, NULL, NULL},
    {"Cosh", u_cosh, NULL, NULL},
    {"Asinh", u_asinh, NULL, NULL},
    {"Acosh", u_acosh, NULL, NULL},
    {"Atanh", u_atanh, NULL, NULL},
    {"Softplus", u_softplus, NULL, NULL},
    {"Softsign", u_softsign, NULL, NULL},
    {"Sign", u_sign, ui_sign, NULL},
    {"LeakyRelu", u_leaky, NULL, f_leaky},
    {"Elu", u_elu, NULL, NULL},
    {"Selu", u_selu, NULL, NULL},
    {"Celu", u_celu, NULL, NULL},
    {"HardSigmoid", u_hsig, NULL, f_hsig},
    {"HardSwish", u_hswish, NULL, f_hswish},
    {"ThresholdedRelu", u_thrrelu, NULL, NULL},
    {"Shrink", u_shrink, ui_id, NULL},
    {"Gelu", u_gelu, NULL, f_gelu},
    {"Mish", u_mish, NULL, NULL},
    {"Swish", u_swish, NULL, NULL},
};

static const uop *uop_find(const char *name)
{
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(uops); i++)
        if (!strcmp(uops[i].name, name))
            return &uops[i];
    return NULL;
}

static void uparams(const rt_ctx *c, uparam *p)
{
    const char *op = c->node->op_type;
    memset(p, 0, sizeof *p);
    if (!strcmp(op, "LeakyRelu"))
        p->alpha = rt_attr_f(c, "alpha", 0.01f);
    else if (!strcmp(op, "Elu") || !strcmp(op, "Celu") || !strcmp(op, "ThresholdedRelu") ||
             !strcmp(op, "Swish"))
        p->alpha = rt_attr_f(c, "alpha", 1.0f);
    else if (!strcmp(op, "Selu")) {
        p->alpha = rt_attr_f(c, "alpha", 1.67326319217681884765625f);
        p->gamma = rt_attr_f(c, "gamma", 1.05070102214813232421875f);
    } else if (!strcmp(op, "HardSigmoid")) {
        p->alpha = rt_attr_f(c, "alpha", 0.2f);
        p->beta = rt_attr_f(c, "beta", 0.5f);
    } else if (!strcmp(op, "Shrink")) {
        p->alpha = rt_attr_f(c, "lambd", 0.5f);
        p->beta = rt_attr_f(c, "bias", 0.0f);
    } else if (!strcmp(op, "Gelu")) {
        p->mode = rt_attr_is(c, "approximate", "none", "tanh");
    } else if (!strcmp(op, "Erf")) {
        p->mode = rt_cpu_avx512(); /* rt_verf512: the same values, 16 lanes */
    }
    /* float attributes are float32: round the same way the reference does */
    p->alpha = (float)p->alpha;
    p->beta = (float)p->beta;
    p->gamma = (float)p->gamma;
}

/* Elementwise work is cut in chunks of a fixed size (independent of the
 * thread count). */
#define EW_CHUNK 16384

/* float16 data through a float32 loop: tiles of EW_TILE values widened on
 * the stack, computed, rounded back (one rounding per value) */
#define EW_TILE 512

typedef struct unary_job {
    ufn_fast ff;
    const void *x;
    void *y;
    int64_t n;
    const uparam *p;
    bool half;
    bool round16; /* float32 data: round y to float16 in the chunk (rt_ctx.round16) */
} unary_job;

static void unary_chunk(void *ctx, int64_t b)
{
    const unary_job *j = ctx;
    int64_t lo = b * EW_CHUNK, len = j->n - lo < EW_CHUNK ? j->n - lo : EW_CHUNK;
    if (!j->half) {
        j->ff((const float *)j->x + lo, (float *)j->y + lo, len, j->p);
        if (j->round16)
            rt_round_f16_n((float *)j->y + lo, len);
        return;
    }
    float t[EW_TILE];
    for (int64_t k = lo; k < lo + len; k += EW_TILE) {
        int64_t m = lo + len - k < EW_TILE ? lo + len - k : EW_TILE;
        rt_h2f_n((const uint16_t *)j->x + k, t, m);
        j->ff(t, t, m, j->p);
        rt_f2h_n(t, (uint16_t *)j->y + k, m);
    }
}

static hpcz_status k_unary(rt_ctx *c)
{
    const hpcz_array *x = rt_in(c, 0);
    const uop *u = uop_find(c->node->op_type);
    if (!x || !u)
        return rt_unsupported(c);
    bool isint = rt_is_int(x->dtype);
    if ((isint && !u->fi) || x->dtype == HPCZ_DTYPE_BOOL)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    uparam p;
    uparams(c, &p);
    int64_t n = x->numel;
    bool half = x->dtype == HPCZ_DTYPE_FLOAT16 && u->ff && !c->reference;
    if ((x->dtype == HPCZ_DTYPE_FLOAT || half) && !c->reference) {
        const float *xs = x->data;
        float *ys = y->data;
        if (u->ff) {
            unary_job j = {u->ff, xs, ys, n, &p, half, c->round16 && !half};
            rt_parallel_for_work((n + EW_CHUNK - 1) / EW_CHUNK, unary_chunk, &j, (double)n);
            c->rounded = j.round16;
        } else {
            for (int64_t i = 0; i < n; i++)
                ys[i] = (float)u->fd(xs[i], &p);
        }
        return HPCZ_OK;
    }
    if (isint) {
        for (int64_t i = 0; i < n; i++)
            rt_store_i(y->data, y->dtype, i, u->fi(rt_load_i(x->data, x->dtype, i)));
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < n; i++)
        rt_store_d(y->data, y->dtype, i, u->fd(rt_load_d(x->data, x->dtype, i), &p));
    return HPCZ_OK;
}

/* The exported GELU chain Div (or Mul) -> Erf -> Add -> Mul -> Mul on input 0,
 * put in place of its last Mul at plan time (engine.c, fuse_transformer):
 * one pass over tiles instead of five over the tensor, each step the
 * chain's own float operation in its order, so the same bytes. */
typedef struct gelu_job {
    const rt_gelu_chain *g;
    const float *x;
    float *y;
    int64_t n;
    bool avx512; /* rt_cpu_avx512(), read once per op (it reads the environment) */
} gelu_job;

RT_HOT static void gelu_chunk(void *ctx, int64_t b)
{
    const gelu_job *j = ctx;
    const rt_gelu_chain *g = j->g;
    int64_t lo = b * EW_CHUNK, hi = j->n - lo < EW_CHUNK ? j->n : lo + EW_CHUNK;
    float t[EW_TILE];
    for (int64_t k = lo; k < hi; k += EW_TILE) {
        int64_t m = hi - k < EW_TILE ? hi - k : EW_TILE;
        const float *x = j->x + k;
        float *y = j->y + k;
        for (int64_t i = 0; i < m; i++)
            t[i] = g->div ? x[i] / g->scale : x[i] * g->scale;
        (j->avx512 ? rt_verf512 : rt_verf)(t, t, m);
        for (int64_t i = 0; i < m; i++) {
            float a = t[i] + g->one;
            y[i] = g->x_first ? (x[i] * a) * g->half : x[i] * (g->half * a);
        }
    }
}

static hpcz_status k_gelu_fused(rt_ctx *c)
{
    const hpcz_array *x = rt_in(c, 0);
    if (!x || x->dtype != HPCZ_DTYPE_FLOAT || !c->state || !*c->state)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    gelu_job j = {*c->state, x->data, y->data, x->numel, rt_cpu_avx512()};
    rt_parallel_for_work((x->numel + EW_CHUNK - 1) / EW_CHUNK, gelu_chunk, &j, (double)x->numel);
    return HPCZ_OK;
}

const rt_op rt_op_gelu_fused = {"", "Gelu", 20, RT_TF32, 0, k_gelu_fused, NULL};

/* Unary ops with a bool output or bool/bit semantics. */
RT_HOT static void isnan_f32(const float *x, uint8_t *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        b[i] = x[i] != x[i];
}

static hpcz_status k_unary_pred(rt_ctx *c)
{
    const hpcz_array *x = rt_in(c, 0);
    const char *op = c->node->op_type;
    bool is_not = !strcmp(op, "Not"), is_bnot = !strcmp(op, "BitwiseNot");
    if (is_not && x->dtype != HPCZ_DTYPE_BOOL)
        return rt_unsupported(c);
    if (!is_not && !is_bnot && !hpcz_dtype_is_float(x->dtype))
        return rt_unsupported(c);
    if (is_bnot && !(RT_TINTS & RT_T(x->dtype)))
        return rt_unsupported(c);
    int odt = is_bnot ? x->dtype : HPCZ_DTYPE_BOOL;
    hpcz_array *y = rt_out(c, 0, odt, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int64_t n = x->numel;
    if (is_not) {
        const uint8_t *a = x->data;
        uint8_t *b = y->data;
        for (int64_t i = 0; i < n; i++)
            b[i] = !a[i];
        return HPCZ_OK;
    }
    if (is_bnot) {
        for (int64_t i = 0; i < n; i++)
            rt_store_i(y->data, odt, i, ~rt_load_i(x->data, x->dtype, i));
        return HPCZ_OK;
    }
    bool isnan_op = !strcmp(op, "IsNaN");
    int pos = (int)rt_attr_i(c, "detect_positive", 1), neg = (int)rt_attr_i(c, "detect_negative", 1);
    uint8_t *b = y->data;
    if (isnan_op && x->dtype == HPCZ_DTYPE_FLOAT) {
        isnan_f32(x->data, b, n); /* MiniLM exports' softmax guard: one per layer */
        return HPCZ_OK;
    }
    if (isnan_op && x->dtype == HPCZ_DTYPE_FLOAT16) { /* all exponent bits, a mantissa */
        const uint16_t *h = x->data;
        for (int64_t i = 0; i < n; i++)
            b[i] = (h[i] & 0x7fff) > 0x7c00;
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = rt_load_d(x->data, x->dtype, i);
        b[i] = isnan_op ? v != v : (isinf(v) && ((v > 0 && pos) || (v < 0 && neg)));
    }
    return HPCZ_OK;
}

/* ================================================================ binary */

typedef void (*bfn_fast)(const float *a, const float *b, float *o, int64_t n, int sa, int sb);
typedef double (*bfn_d)(double a, double b);
typedef int64_t (*bfn_i)(int64_t a, int64_t b);

#define FBIN(NAME, EXPR)                                                                           \
    RT_HOT static void NAME(const float *restrict a, const float *restrict b, float *restrict o,        \
                     int64_t n, int sa, int sb)                                                    \
    {                                                                                              \
        if (sa && sb) {                                                                            \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float x = a[i], y = b[i];                                                          \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (sa) {                                                                           \
            float y = b[0];                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float x = a[i];                                                                    \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (sb) {                                                                           \
            float x = a[0];                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float y = b[i];                                                                    \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            float x = a[0], y = b[0];                                                              \
            float v = (EXPR);                                                                      \
            for (int64_t i = 0; i < n; i++)                                                        \
                o[i] = v;                                                                          \
        }                                                                                          \
    }

FBIN(fb_add, x + y)
FBIN(fb_sub, x - y)
FBIN(fb_mul, x * y)
FBIN(fb_div, x / y)
FBIN(fb_prelu, x < 0 ? x * y : x)
FBIN(fb_max, x != x ? x : (y != y ? y : (x > y ? x : y)))
FBIN(fb_min, x != x ? x : (y != y ? y : (x < y ? x : y)))

static double bd_add(double a, double b) { return a + b; }
static double bd_sub(double a, double b) { return a - b; }
static double bd_mul(double a, double b) { return a * b; }
static double bd_div(double a, double b) { return a / b; }
static double bd_pow(double a, double b) { return pow(a, b); }
static double bd_prelu(double a, double b) { return a < 0 ? a * b : a; }
static double bd_max(double a, double b) { return a != a ? a : b != b ? b : a > b ? a : b; }
static double bd_min(double a, double b) { return a != a ? a : b != b ? b : a < b ? a : b; }
static double bd_eq(double a, double b) { return a == b; }
static double bd_lt(double a, double b) { return a < b; }
static double bd_gt(double a, double b) { return a > b; }
static double bd_le(double a, double b) { return a <= b; }
static double bd_ge(double a, double b) { return a >= b; }
static double bd_fmod(double a, double b) { return fmod(a, b); }
static double bd_mod(double a, double b)
{
    double r = fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

static int64_t bi_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t bi_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t bi_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t bi_div(int64_t a, int64_t b)
{
    if (b == 0 || (b == -1 && a == INT64_MIN))
        return 0;
    return a / b; /* C truncates toward zero, as ONNX Runtime and the reference do */
}
static int64_t bi_mod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}
static int64_t bi_fmod(int64_t a, int64_t b)
{
    return b == 0 || b == -1 ? 0 : a % b;
}
static int64_t bi_pow(int64_t a, int64_t b)
{
    if (b < 0)
        return a == 1 ? 1 : a == -1 ? (b & 1 ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)a;
    while (b) {
        if (b & 1)
            r *= x;
        x *= x;
        b >>= 1;
    }
    return (int64_t)r;
}
static int64_t bi_max(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t bi_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t bi_prelu(int64_t a, int64_t b) { return a < 0 ? a * b : a; }
static int64_t bi_eq(int64_t a, int64_t b) { return a == b; }
static int64_t bi_lt(int64_t a, int64_t b) { return a < b; }
static int64_t bi_gt(int64_t a, int64_t b) { return a > b; }
static int64_t bi_le(int64_t a, int64_t b) { return a <= b; }
static int64_t bi_ge(int64_t a, int64_t b) { return a >= b; }
static int64_t bi_and(int64_t a, int64_t b) { return a & b; }
static int64_t bi_or(int64_t a, int64_t b) { return a | b; }
static int64_t bi_xor(int64_t a, int64_t b) { return a ^ b; }
static int64_t bi_land(int64_t a, int64_t b) { return (a != 0) & (b != 0); }
static int64_t bi_lor(int64_t a, int64_t b) { return (a != 0) | (b != 0); }
static int64_t bi_lxor(int64_t a, int64_t b) { return (a != 0) ^ (b != 0); }

enum { B_ARITH, B_CMP, B_LOGIC, B_BITS };

typedef struct bop {
    const char *name;
    int kind;
    bfn_fast ff;
    bfn_d fd;
    bfn_i fi;
} bop;

static const bop bops[] = {
    {"Add", B_ARITH, fb_add, bd_add, bi_add},
    {"Sub", B_ARITH, fb_sub, bd_sub, bi_sub},
    {"Mul", B_ARITH, fb_mul, bd_mul, bi_mul},
    {"Div", B_ARITH, fb_div, bd_div, bi_div},
    {"Pow", B_ARITH, NULL, bd_pow, bi_pow},
    {"PRelu", B_ARITH, fb_prelu, bd_prelu, bi_prelu},
    {"Max", B_ARITH, fb_max, bd_max, bi_max},
    {"Min", B_ARITH, fb_min, bd_min, bi_min},
    {"Sum", B_ARITH, fb_add, bd_add, bi_add},
    {"Mean", B_ARITH, fb_add, bd_add, bi_add},
    {"Mod", B_ARITH, NULL, bd_mod, bi_mod},
    {"Equal", B_CMP, NULL, bd_eq, bi_eq},
    {"Less", B_CMP, NULL, bd_lt, bi_lt},
    {"Greater", B_CMP, NULL, bd_gt, bi_gt},
    {"LessOrEqual", B_CMP, NULL, bd_le, bi_le},
    {"GreaterOrEqual", B_CMP, NULL, bd_ge, bi_ge},
    {"And", B_LOGIC, NULL, NULL, bi_land},
    {"Or", B_LOGIC, NULL, NULL, bi_lor},
    {"Xor", B_LOGIC, NULL, NULL, bi_lxor},
    {"BitwiseAnd", B_BITS, NULL, NULL, bi_and},
    {"BitwiseOr", B_BITS, NULL, NULL, bi_or},
    {"BitwiseXor", B_BITS, NULL, NULL, bi_xor},
};

static const bop *bop_find(const char *name)
{
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(bops); i++)
        if (!strcmp(bops[i].name, name))
            return &bops[i];
    return NULL;
}

typedef struct binary_job {
    const bop *op;
    bfn_d fd;
    bfn_i fi;
    const hpcz_array *a, *b;
    hpcz_array *o;
    rt_bcast bc;
    bool fast, ints, half;
    bool round16; /* float32 data: round o to float16 as it is written (rt_ctx.round16) */
    int64_t rows_per_task;
} binary_job;

/* The float32 loop over n outputs at element offsets oa, ob (input strides
 * sa, sb: 0 or 1) and oo; float16 data in tiles widened on the stack. */
static void binary_ff(const binary_job *j, int64_t oa, int64_t ob, int64_t oo, int64_t n, int sa,
                      int sb)
{
    if (!j->half) {
        j->op->ff((const float *)j->a->data + oa, (const float *)j->b->data + ob,
                  (float *)j->o->data + oo, n, sa, sb);
        if (j->round16)
            rt_round_f16_n((float *)j->o->data + oo, n);
        return;
    }
    const uint16_t *a = (const uint16_t *)j->a->data + oa, *b = (const uint16_t *)j->b->data + ob;
    uint16_t *o = (uint16_t *)j->o->data + oo;
    float ta[EW_TILE], tb[EW_TILE], to[EW_TILE];
    for (int64_t k = 0; k < n; k += EW_TILE) {
        int64_t m = n - k < EW_TILE ? n - k : EW_TILE;
        rt_h2f_n(a + (sa ? k : 0), ta, sa ? m : 1);
        rt_h2f_n(b + (sb ? k : 0), tb, sb ? m : 1);
        j->op->ff(ta, tb, to, m, sa, sb);
        rt_f2h_n(to, o + k, m);
    }
}

static void binary_rows(void *ctx, int64_t t)
{
    const binary_job *j = ctx;
    const rt_bcast *bc = &j->bc;
    const hpcz_array *a = j->a, *b = j->b;
    hpcz_array *o = j->o;
    int64_t L = bc->inner;
    int64_t r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task;
    if (r1 > bc->rows)
        r1 = bc->rows;
    if (j->rows_per_task == 0) { /* one long float row, cut in chunks */
        int64_t lo = t * EW_CHUNK, len = L - lo < EW_CHUNK ? L - lo : EW_CHUNK;
        binary_ff(j, bc->istr[0] ? lo : 0, bc->istr[1] ? lo : 0, lo, len, bc->istr[0],
                  bc->istr[1]);
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        int64_t off[2];
        rt_bcast_row(bc, r, off);
        int64_t ob = r * L;
        if (j->fast) {
            binary_ff(j, off[0], off[1], ob, L, bc->istr[0], bc->istr[1]);
        } else if (j->ints && j->fi) {
            for (int64_t i = 0; i < L; i++)
                rt_store_i(o->data, o->dtype, ob + i,
                           j->fi(rt_load_i(a->data, a->dtype, off[0] + i * bc->istr[0]),
                                 rt_load_i(b->data, b->dtype, off[1] + i * bc->istr[1])));
        } else {
            for (int64_t i = 0; i < L; i++)
                rt_store_d(o->data, o->dtype, ob + i,
                           j->fd(rt_load_d(a->data, a->dtype, off[0] + i * bc->istr[0]),
                                 rt_load_d(b->data, b->dtype, off[1] + i * bc->istr[1])));
        }
    }
}

/* Applies o = a (op) b over a broadcast. Inputs and output may alias when
 * shapes are equal (variadic accumulation). Tasks are fixed groups of rows
 * (or fixed chunks of a single row). round16: float32 data is rounded to
 * float16 as it is written; returns whether it was. */
static bool binary_apply(const rt_ctx *c, const bop *op, bfn_d fd, bfn_i fi,
                         const hpcz_array *a, const hpcz_array *b, hpcz_array *o, bool round16)
{
    binary_job j = {.op = op, .fd = fd, .fi = fi, .a = a, .b = b, .o = o};
    const hpcz_array *ins[2] = {a, b};
    rt_bcast_init(&j.bc, o, ins, 2);
    j.fast = op && op->ff && !c->reference && a->dtype == HPCZ_DTYPE_FLOAT &&
             b->dtype == HPCZ_DTYPE_FLOAT && o->dtype == HPCZ_DTYPE_FLOAT;
    j.half = op && op->ff && !c->reference && op->kind == B_ARITH &&
             a->dtype == HPCZ_DTYPE_FLOAT16 && b->dtype == HPCZ_DTYPE_FLOAT16 &&
             o->dtype == HPCZ_DTYPE_FLOAT16;
    j.round16 = round16 && j.fast;
    j.fast |= j.half;
    j.ints = rt_is_int(a->dtype) && rt_is_int(b->dtype);
    int64_t L = j.bc.inner;
    if (j.bc.rows == 1 && j.fast) {
        rt_parallel_for((L + EW_CHUNK - 1) / EW_CHUNK, binary_rows, &j);
        return j.round16;
    }
    j.rows_per_task = L >= EW_CHUNK ? 1 : EW_CHUNK / (L ? L : 1);
    if (!j.fast) /* generic paths are for small tensors: one task */
        j.rows_per_task = j.bc.rows;
    if (j.rows_per_task < 1)
        j.rows_per_task = 1;
    rt_parallel_for_work((j.bc.rows + j.rows_per_task - 1) / j.rows_per_task, binary_rows, &j,
                         (double)o->numel);
    return j.round16;
}

/* Pow by a constant 2 or 0.5 (an STFT's power spectrum, a magnitude):
 * vectorized clones (the loops inside k_binary stayed scalar). */
RT_HOT static void pow_square(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * x[i];
}

RT_HOT static void pow_sqrt(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = sqrtf(x[i]);
}

static hpcz_status k_binary(rt_ctx *c)
{
    const bop *op = bop_find(c->node->op_type);
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1);
    if (!op || !a || !b)
        return rt_unsupported(c);
    bfn_d fd = op->fd;
    bfn_i fi = op->fi;
    if (!strcmp(op->name, "Mod") && rt_attr_i(c, "fmod", 0)) {
        fd = bd_fmod;
        fi = bi_fmod;
    }
    bool aint = rt_is_int(a->dtype), bint = rt_is_int(b->dtype);
    switch (op->kind) {
    case B_LOGIC:
        if (a->dtype != HPCZ_DTYPE_BOOL || b->dtype != HPCZ_DTYPE_BOOL)
            return rt_unsupported(c);
        break;
    case B_BITS:
        if (!(RT_TINTS & RT_T(a->dtype)) || a->dtype != b->dtype)
            return rt_unsupported(c);
        break;
    default:
        if (!strcmp(op->name, "Pow")) {
            if (aint && !bint)
                return rt_unsupported(c);
        } else if (a->dtype != b->dtype) {
            return rt_unsupported(c);
        }
        if (a->dtype == HPCZ_DTYPE_BOOL && op->kind != B_CMP)
            return rt_unsupported(c);
        if (a->dtype == HPCZ_DTYPE_BOOL && strcmp(op->name, "Equal"))
            return rt_unsupported(c);
        if (!(RT_TALL & RT_T(a->dtype)))
            return rt_unsupported(c);
        break;
    }
    const hpcz_array *ins[2] = {a, b};
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (a->ndim > RT_MAX_RANK || b->ndim > RT_MAX_RANK || !rt_broadcast_shape(ins, 2, &nd, dims))
        return rt_bad(c, "shapes cannot be broadcast");
    if (!strcmp(op->name, "PRelu") && nd != a->ndim)
        return rt_bad(c, "slope does not broadcast to x");
    int odt = op->kind == B_CMP || op->kind == B_LOGIC ? HPCZ_DTYPE_BOOL : a->dtype;
    hpcz_array *o = rt_out(c, 0, odt, nd, dims);
    if (!o || c->infer)
        return o ? HPCZ_OK : c->err->status;
    if (o->numel == 0)
        return HPCZ_OK;
    /* integer Pow with a float exponent computes in double */
    if (!strcmp(op->name, "Pow") && !(aint && bint))
        fi = NULL;
    if (!strcmp(op->name, "Pow") && !c->reference && a->dtype == HPCZ_DTYPE_FLOAT && b->numel == 1 &&
        hpcz_dtype_is_float(b->dtype)) {
        double e = rt_load_d(b->data, b->dtype, 0);
        const float *x = a->data;
        float *y = o->data;
        int64_t n = o->numel;
        if (e == 2) {
            pow_square(x, y, n);
            return HPCZ_OK;
        }
        if (e == 0.5) {
            pow_sqrt(x, y, n);
            return HPCZ_OK;
        }
        float ef = (float)e;
        for (int64_t i = 0; i < n; i++)
            y[i] = powf(x[i], ef);
        return HPCZ_OK;
    }
    if (!strcmp(op->name, "Pow") && !c->reference && a->dtype == HPCZ_DTYPE_FLOAT16 &&
        b->numel == 1 && hpcz_dtype_is_float(b->dtype) &&
        (rt_load_d(b->data, b->dtype, 0) == 2 || rt_load_d(b->data, b->dtype, 0) == 0.5)) {
        /* squares and square roots of float16 in float32 tiles: x * x is exact
         * there and sqrtf rounds as sqrt does before the float16 rounding, so
         * the same bits as the generic double path (silero's STFT magnitude:
         * a libm pow per element was a sixth of its run) */
        bool sq = rt_load_d(b->data, b->dtype, 0) == 2;
        const uint16_t *x = a->data;
        uint16_t *y = o->data;
        float t[EW_TILE];
        for (int64_t k = 0; k < o->numel; k += EW_TILE) {
            int64_t m = o->numel - k < EW_TILE ? o->numel - k : EW_TILE;
            rt_h2f_n(x + k, t, m);
            for (int64_t i = 0; i < m; i++)
                t[i] = sq ? t[i] * t[i] : sqrtf(t[i]);
            rt_f2h_n(t, y + k, m);
        }
        return HPCZ_OK;
    }
    if (a->dtype == HPCZ_DTYPE_FLOAT && b->dtype == HPCZ_DTYPE_FLOAT && !op->ff &&
        op->kind == B_ARITH) {
        /* float ops without a fast loop (Pow, Mod) still go through float math */
        const hpcz_array *ii[2] = {a, b};
        rt_bcast bc;
        rt_bcast_init(&bc, o, ii, 2);
        for (int64_t r = 0; r < bc.rows; r++) {
            int64_t off[2];
            rt_bcast_row(&bc, r, off);
            const float *pa = (const float *)a->data + off[0], *pb = (const float *)b->data + off[1];
            float *po = (float *)o->data + r * bc.inner;
            for (int64_t i = 0; i < bc.inner; i++)
                po[i] = (float)fd(pa[i * bc.istr[0]], pb[i * bc.istr[1]]);
        }
        return HPCZ_OK;
    }
    c->rounded = binary_apply(c, op, fd, (aint && bint) ? fi : NULL, a, b, o, c->round16);
    if (c->act && o->dtype == HPCZ_DTYPE_FLOAT)
        rt_act_apply(c->act, o->data, o->numel);
    return HPCZ_OK;
}

static hpcz_status k_bitshift(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1);
    if (!(RT_TINTS & RT_T(a->dtype)) || a->dtype != b->dtype)
        return rt_unsupported(c);
    const hpcz_array *ins[2] = {a, b};
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (!rt_broadcast_shape(ins, 2, &nd, dims))
        return rt_bad(c, "shapes cannot be broadcast");
    hpcz_array *o = rt_out(c, 0, a->dtype, nd, dims);
    if (!o || c->infer)
        return o ? HPCZ_OK : c->err->status;
    bool right = rt_attr_is(c, "direction", "", "RIGHT");
    rt_bcast bc;
    rt_bcast_init(&bc, o, ins, 2);
    int bits = hpcz_dtype_bits(a->dtype);
    for (int64_t r = 0; r < bc.rows; r++) {
        int64_t off[2];
        rt_bcast_row(&bc, r, off);
        for (int64_t i = 0; i < bc.inner; i++) {
            uint64_t x = (uint64_t)rt_load_i(a->data, a->dtype, off[0] + i * bc.istr[0]);
            int64_t s = rt_load_i(b->data, b->dtype, off[1] + i * bc.istr[1]);
            uint64_t v = s >= bits ? 0 : right ? x >> s : x << s;
            rt_store_i(o->data, o->dtype, r * bc.inner + i, (int64_t)v);
        }
    }
    return HPCZ_OK;
}

/* Min, Max, Sum, Mean over any number of broadcast inputs. */
static hpcz_status k_variadic(rt_ctx *c)
{
    const bop *op = bop_find(c->node->op_type);
    size_t n = c->n_in;
    if (!op || n == 0 || n > 64)
        return rt_unsupported(c);
    const hpcz_array *ins[64];
    for (size_t i = 0; i < n; i++) {
        ins[i] = c->in[i];
        if (!ins[i] || ins[i]->dtype != ins[0]->dtype)
            return rt_unsupported(c);
    }
    if (ins[0]->dtype == HPCZ_DTYPE_BOOL)
        return rt_unsupported(c);
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (!rt_broadcast_shape(ins, n, &nd, dims))
        return rt_bad(c, "shapes cannot be broadcast");
    hpcz_array *o = rt_out(c, 0, ins[0]->dtype, nd, dims);
    if (!o || c->infer)
        return o ? HPCZ_OK : c->err->status;
    if (o->numel == 0)
        return HPCZ_OK;
    bool ints = rt_is_int(ins[0]->dtype);
    /* o = broadcast(in0), then o = o (op) in_k */
    {
        const hpcz_array *one[1] = {ins[0]};
        rt_bcast bc;
        rt_bcast_init(&bc, o, one, 1);
        size_t es = rt_esize(o->dtype);
        for (int64_t r = 0; r < bc.rows; r++) {
            int64_t off[1];
            rt_bcast_row(&bc, r, off);
            uint8_t *dst = (uint8_t *)o->data + (size_t)(r * bc.inner) * es;
            const uint8_t *src = (const uint8_t *)ins[0]->data + (size_t)off[0] * es;
            if (bc.istr[0])
                memcpy(dst, src, (size_t)bc.inner * es);
            else
                for (int64_t i = 0; i < bc.inner; i++)
                    memcpy(dst + (size_t)i * es, src, es);
        }
    }
    for (size_t k = 1; k < n; k++)
        binary_apply(c, op, op->fd, ints ? op->fi : NULL, o, ins[k], o, false);
    if (!strcmp(op->name, "Mean")) {
        for (int64_t i = 0; i < o->numel; i++)
            rt_store_d(o->data, o->dtype, i, rt_load_d(o->data, o->dtype, i) / (double)n);
    }
    return HPCZ_OK;
}

/* ================================================================ Where, Clip */

/* o[i] = c[i] ? x[i * xs] : y[i * ys] for 4-byte elements, xs and ys 0 (a
 * broadcast scalar) or 1: both sides loaded and blended by a mask, so that
 * it vectorises (MiniLM's masks and softmax guards). */
static inline void where_blend(const uint8_t *c, const uint32_t *x, int64_t xs, const uint32_t *y,
                               int64_t ys, uint32_t *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t m = -(uint32_t)(c[i] != 0), xv = x[i * xs], yv = y[i * ys];
        o[i] = (xv & m) | (yv & ~m);
    }
}

RT_HOT static void where_row32(const uint8_t *c, const uint32_t *x, int64_t xs, const uint32_t *y,
                               int64_t ys, uint32_t *o, int64_t n)
{
    if (xs && ys)
        where_blend(c, x, 1, y, 1, o, n);
    else if (xs)
        where_blend(c, x, 1, y, 0, o, n);
    else if (ys)
        where_blend(c, x, 0, y, 1, o, n);
    else
        where_blend(c, x, 0, y, 0, o, n);
}

static hpcz_status k_where(rt_ctx *c)
{
    hpcz_array *cond = rt_in(c, 0), *x = rt_in(c, 1), *y = rt_in(c, 2);
    if (!cond || !x || !y || cond->dtype != HPCZ_DTYPE_BOOL || x->dtype != y->dtype ||
        !rt_esize(x->dtype))
        return rt_unsupported(c);
    const hpcz_array *ins[3] = {cond, x, y};
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (!rt_broadcast_shape(ins, 3, &nd, dims))
        return rt_bad(c, "shapes cannot be broadcast");
    hpcz_array *o = rt_out(c, 0, x->dtype, nd, dims);
    if (!o || c->infer || o->numel == 0)
        return o ? HPCZ_OK : c->err->status;
    rt_bcast bc;
    rt_bcast_init(&bc, o, ins, 3);
    size_t es = rt_esize(x->dtype);
    const uint8_t *pc = cond->data;
    for (int64_t r = 0; r < bc.rows; r++) {
        int64_t off[3];
        rt_bcast_row(&bc, r, off);
        uint8_t *dst = (uint8_t *)o->data + (size_t)(r * bc.inner) * es;
        if (es == 4) {
            const uint32_t *px = (const uint32_t *)x->data + off[1],
                           *py = (const uint32_t *)y->data + off[2];
            uint32_t *po = (uint32_t *)dst;
            if (bc.istr[0] == 1 && bc.istr[1] <= 1 && bc.istr[2] <= 1) {
                where_row32(pc + off[0], px, bc.istr[1], py, bc.istr[2], po, bc.inner);
                continue;
            }
            for (int64_t i = 0; i < bc.inner; i++)
                po[i] = pc[off[0] + i * bc.istr[0]] ? px[i * bc.istr[1]] : py[i * bc.istr[2]];
            continue;
        }
        if (es == 2) { /* float16 */
            const uint16_t *px = (const uint16_t *)x->data + off[1],
                           *py = (const uint16_t *)y->data + off[2];
            uint16_t *po = (uint16_t *)dst;
            for (int64_t i = 0; i < bc.inner; i++)
                po[i] = pc[off[0] + i * bc.istr[0]] ? px[i * bc.istr[1]] : py[i * bc.istr[2]];
            continue;
        }
        for (int64_t i = 0; i < bc.inner; i++) {
            const uint8_t *src = pc[off[0] + i * bc.istr[0]]
                                     ? (const uint8_t *)x->data + (size_t)(off[1] + i * bc.istr[1]) * es
                                     : (const uint8_t *)y->data + (size_t)(off[2] + i * bc.istr[2]) * es;
            memcpy(dst + (size_t)i * es, src, es);
        }
    }
    return HPCZ_OK;
}

RT_HOT static void clip_fast(const float *x, float *y, int64_t n, const uparam *p)
{
    float lo = (float)p->alpha, hi = (float)p->beta;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

static hpcz_status k_clip(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!(RT_TNUM & RT_T(x->dtype)))
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    double lo = -INFINITY, hi = INFINITY;
    bool ints = rt_is_int(x->dtype);
    int64_t ilo = INT64_MIN, ihi = INT64_MAX;
    if (c->opset < 11) {
        lo = rt_attr_f(c, "min", -3.402823e+38f);
        hi = rt_attr_f(c, "max", 3.402823e+38f);
    } else {
        hpcz_array *mn = rt_in(c, 1), *mx = rt_in(c, 2);
        if (mn && mn->numel) {
            lo = rt_load_d(mn->data, mn->dtype, 0);
            ilo = rt_load_i(mn->data, mn->dtype, 0);
        }
        if (mx && mx->numel) {
            hi = rt_load_d(mx->data, mx->dtype, 0);
            ihi = rt_load_i(mx->data, mx->dtype, 0);
        }
    }
    int64_t n = x->numel;
    bool half = x->dtype == HPCZ_DTYPE_FLOAT16;
    if ((x->dtype == HPCZ_DTYPE_FLOAT || half) && !c->reference) {
        /* the bounds are floats (attributes) or of x's type: float16 in
         * float32 tiles gives the generic path's bits */
        uparam p = {.alpha = lo, .beta = hi};
        unary_job j = {clip_fast, x->data, y->data, n, &p, half, c->round16 && !half};
        rt_parallel_for_work((n + EW_CHUNK - 1) / EW_CHUNK, unary_chunk, &j, (double)n);
        c->rounded = j.round16;
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        if (ints) {
            int64_t v = rt_load_i(x->data, x->dtype, i);
            v = v < ilo ? ilo : v;
            v = v > ihi ? ihi : v;
            rt_store_i(y->data, y->dtype, i, v);
        } else {
            double v = rt_load_d(x->data, x->dtype, i);
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            rt_store_d(y->data, y->dtype, i, v);
        }
    }
    return HPCZ_OK;
}

/* k_unary and k_binary take float16 through their float32 loops (EW_TILE
 * tiles) or through the generic double path, which rounds to float and then
 * to float16 (rt_store_d) as the float32 path's (float) result rounded to
 * float16 does; k_clip the same. Pow's float32 path differs from its
 * float16 one (powf) except by 2 and 0.5; Mod is left out. */
bool rt_ew_f16_as_f32(const hpcz_node *n, double pow_exp)
{
    static const char *const arith[] = {"Add", "Sub", "Mul", "Div", "PRelu", "Clip"};
    if (n->domain && *n->domain)
        return false;
    if (uop_find(n->op_type))
        return true;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(arith); i++)
        if (!strcmp(n->op_type, arith[i]))
            return true;
    return !strcmp(n->op_type, "Pow") && (pow_exp == 2 || pow_exp == 0.5);
}

/* ================================================================ table */

#define UN(name) {"", name, 1, RT_TNUM, 0, k_unary, NULL}
#define BIN(name) {"", name, 1, 0, 0, k_binary, NULL}

static bool gelu_ok(const hpcz_node *n)
{
    return rt_node_attr_is(n, "approximate", "none", "none") ||
           rt_node_attr_is(n, "approximate", "none", "tanh");
}

static bool broadcast_legacy_ok(const hpcz_node *n)
{
    /* opset < 7 broadcast attribute with axis: not implemented */
    return hpcz_node_attr_int(n, "broadcast", 0) == 0;
}

static const rt_op ops[] = {
    UN("Abs"), UN("Neg"), UN("Sqrt"), UN("Exp"), UN("Log"), UN("Erf"), UN("Reciprocal"),
    UN("Floor"), UN("Ceil"), UN("Round"), UN("Relu"), UN("Sigmoid"), UN("Tanh"), UN("Sin"),
    UN("Cos"), UN("Tan"), UN("Asin"), UN("Acos"), UN("Atan"), UN("Sinh"), UN("Cosh"),
    UN("Asinh"), UN("Acosh"), UN("Atanh"), UN("Softplus"), UN("Softsign"), UN("Sign"),
    UN("LeakyRelu"), UN("Elu"), UN("Selu"), UN("Celu"), UN("HardSigmoid"), UN("HardSwish"),
    UN("ThresholdedRelu"), UN("Shrink"), UN("Mish"), UN("Swish"),
    {"", "Gelu", 20, RT_TNUM, 0, k_unary, gelu_ok},
    /* ONNX Runtime's Gelu: the exact (erf) form, no attributes */
    {"com.microsoft", "Gelu", 1, RT_TFLOATS, 0, k_unary, gelu_ok},
    {"", "Not", 1, RT_TBOOL, 0, k_unary_pred, NULL},
    {"", "IsNaN", 9, 0, 0, k_unary_pred, NULL},
    {"", "IsInf", 10, 0, 0, k_unary_pred, NULL},
    {"", "BitwiseNot", 18, 0, 0, k_unary_pred, NULL},
    {"", "Add", 7, 0, RT_FUSE_ACT, k_binary, broadcast_legacy_ok},
    {"", "Sub", 7, 0, 0, k_binary, broadcast_legacy_ok},
    {"", "Mul", 7, 0, 0, k_binary, broadcast_legacy_ok},
    {"", "Div", 7, 0, 0, k_binary, broadcast_legacy_ok},
    {"", "Pow", 7, 0, 0, k_binary, NULL},
    {"", "PRelu", 7, 0, 0, k_binary, NULL},
    {"", "Mod", 10, 0, 0, k_binary, NULL},
    {"", "Equal", 7, 0, 0, k_binary, NULL},
    {"", "Less", 7, 0, 0, k_binary, NULL},
    {"", "Greater", 7, 0, 0, k_binary, NULL},
    BIN("LessOrEqual"), BIN("GreaterOrEqual"),
    {"", "And", 7, 0, 0, k_binary, NULL},
    {"", "Or", 7, 0, 0, k_binary, NULL},
    {"", "Xor", 7, 0, 0, k_binary, NULL},
    {"", "BitwiseAnd", 18, 0, 0, k_binary, NULL},
    {"", "BitwiseOr", 18, 0, 0, k_binary, NULL},
    {"", "BitwiseXor", 18, 0, 0, k_binary, NULL},
    {"", "BitShift", 11, 0, 0, k_bitshift, NULL},
    {"", "Max", 8, 0, 0, k_variadic, NULL},
    {"", "Min", 8, 0, 0, k_variadic, NULL},
    {"", "Sum", 8, 0, 0, k_variadic, NULL},
    {"", "Mean", 8, 0, 0, k_variadic, NULL},
    {"", "Where", 9, 0, 0, k_where, NULL},
    {"", "Clip", 6, 0, 0, k_clip, NULL},
};

const rt_op_table rt_ops_elementwise = {ops, HPCZ_ARRAY_SIZE(ops)};
