/*
 * norm.c - Softmax/LogSoftmax/Hardmax, BatchNormalization (inference),
 * InstanceNormalization, LayerNormalization, GroupNormalization,
 * RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization.
 *
 * Every reduction runs serially over its own slice: the partition across
 * threads is over independent slices, so no sum depends on the thread count.
 * Softmax's and LayerNormalization's row sums go 8 lanes wide (lane_sum).
 */
#include "../rt.h"

/* Sum of (v[i] - sub)^2 (sq) or of v[i] - sub over i < n, in 8 partial sums
 * (lane i mod 8) added pairwise at the end: a fixed order, so the same value
 * on every machine, clone and thread count, and 8 adds in flight instead of
 * one add's latency per element (a row's sums were most of LayerNorm's time). */
static inline float lane_sum(const float *v, int64_t n, float sub, bool sq)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float t = v[i + l] - sub;
            acc[l] += sq ? t * t : t;
        }
    for (int l = 0; i < n; i++, l++) {
        float t = v[i] - sub;
        acc[l] += sq ? t * t : t;
    }
    for (int w = 4; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

/* ---------------------------------------------------------------- softmax */

enum { SM_SOFT, SM_LOG, SM_HARD };

typedef struct softmax_job {
    const float *x;
    float *y;
    int64_t len;
    int kind;
    int64_t per; /* rows per task */
    int64_t rows;
} softmax_job;

RT_HOT static void softmax_rows(void *ctx, int64_t t)
{
    const softmax_job *j = ctx;
    int64_t len = j->len;
    for (int64_t r = t * j->per; r < (t + 1) * j->per && r < j->rows; r++) {
        const float *s = j->x + r * len;
        float *d = j->y + r * len;
        /* the row's maximum in 8 lanes (any order gives it; NaNs are skipped) */
        float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                       -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        int64_t i = 0;
        for (; i + 8 <= len; i += 8)
            for (int l = 0; l < 8; l++)
                m8[l] = s[i + l] > m8[l] ? s[i + l] : m8[l];
        float mx = -INFINITY;
        for (; i < len; i++)
            mx = s[i] > mx ? s[i] : mx;
        for (int l = 0; l < 8; l++)
            mx = m8[l] > mx ? m8[l] : mx;
        for (int64_t k = 0; k < len; k++)
            d[k] = s[k] - mx;
        if (j->kind == SM_SOFT) {
            rt_vexp(d, d, len);
            float sum = lane_sum(d, len, 0.0f, false);
            float inv = 1.0f / sum;
            for (int64_t k = 0; k < len; k++)
                d[k] *= inv;
        } else {
            float sum = 0;
            for (int64_t k = 0; k < len; k++)
                sum += expf(d[k]);
            float ls = logf(sum);
            for (int64_t k = 0; k < len; k++)
                d[k] -= ls;
        }
    }
}

static hpcz_status softmax(rt_ctx *c, int kind)
{
    hpcz_array *x = rt_in(c, 0);
    if (!hpcz_dtype_is_float(x->dtype) || (kind != SM_HARD && rt_f16_widen(c)))
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", c->opset < 13 ? 1 : -1), r);
    if (axis < 0 && r > 0)
        return rt_bad(c, "axis out of range");
    if (r == 0)
        axis = 0;
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis)
            outer *= x->dims[d];
        else if (d == axis)
            len *= x->dims[d];
        else if (c->opset < 13)
            len *= x->dims[d]; /* opset < 13: the input is coerced to 2-D at axis */
        else
            inner *= x->dims[d];
    }
    int64_t lines = outer * inner;
    if (x->dtype == HPCZ_DTYPE_FLOAT && inner == 1 && kind != SM_HARD && !c->reference) {
        /* rows along the last axis: max, vectorised exp, one scale; rows in tasks */
        int64_t per = len >= 4096 ? 1 : 4096 / len;
        softmax_job j = {x->data, y->data, len, kind, per, lines};
        rt_parallel_for_work((lines + per - 1) / per, softmax_rows, &j, (double)x->numel * 8);
        return HPCZ_OK;
    }
    for (int64_t l = 0; l < lines; l++) {
        int64_t o = l / inner, i = l % inner, base = o * len * inner + i;
        double mx = -INFINITY;
        int64_t am = 0;
        for (int64_t k = 0; k < len; k++) {
            double v = rt_load_d(x->data, x->dtype, base + k * inner);
            if (v > mx) {
                mx = v;
                am = k;
            }
        }
        double sum = 0;
        for (int64_t k = 0; k < len; k++)
            sum += exp(rt_load_d(x->data, x->dtype, base + k * inner) - mx);
        for (int64_t k = 0; k < len; k++) {
            double v = rt_load_d(x->data, x->dtype, base + k * inner);
            double out = kind == SM_SOFT  ? exp(v - mx) / sum
                         : kind == SM_LOG ? v - mx - log(sum)
                                          : (double)(k == am);
            rt_store_d(y->data, y->dtype, base + k * inner, out);
        }
    }
    return HPCZ_OK;
}

static hpcz_status k_softmax(rt_ctx *c) { return softmax(c, SM_SOFT); }
static hpcz_status k_logsoftmax(rt_ctx *c) { return softmax(c, SM_LOG); }
static hpcz_status k_hardmax(rt_ctx *c) { return softmax(c, SM_HARD); }

/* ---------------------------------------------------------------- BatchNorm */

static bool bn_ok(const hpcz_node *n)
{
    return hpcz_node_attr_int(n, "training_mode", 0) == 0 && n->n_outputs <= 1 &&
           hpcz_node_attr_int(n, "spatial", 1) == 1;
}

static hpcz_status k_batchnorm(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *sc = rt_in(c, 1), *bi = rt_in(c, 2), *mean = rt_in(c, 3),
               *var = rt_in(c, 4);
    /* float16: the float32 path on widened copies (the generic loop converts per element) */
    if (!hpcz_dtype_is_float(x->dtype) || !sc || !bi || !mean || !var || rt_f16_widen(c))
        return rt_unsupported(c);
    if (x->ndim < 2)
        return rt_bad(c, "input rank below 2");
    int64_t C = x->dims[1];
    if (sc->numel != C || bi->numel != C || mean->numel != C || var->numel != C)
        return rt_bad(c, "parameters must have C entries");
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    double eps = rt_attr_f(c, "epsilon", 1e-5f);
    int64_t N = x->dims[0], S = x->numel / (N * C);
    float *mul = malloc((size_t)C * 2 * sizeof *mul);
    if (!mul)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    float *add = mul + C;
    for (int64_t ch = 0; ch < C; ch++) {
        float s = (float)rt_load_d(sc->data, sc->dtype, ch);
        float m = (float)rt_load_d(mean->data, mean->dtype, ch);
        float v = (float)rt_load_d(var->data, var->dtype, ch);
        float b = (float)rt_load_d(bi->data, bi->dtype, ch);
        mul[ch] = s / sqrtf(v + (float)eps);
        add[ch] = b - m * mul[ch];
    }
    bool f32 = x->dtype == HPCZ_DTYPE_FLOAT && !c->reference;
    for (int64_t p = 0; p < N * C; p++) {
        int64_t ch = p % C;
        if (f32) {
            const float *s = (const float *)x->data + p * S;
            float *d = (float *)y->data + p * S;
            for (int64_t i = 0; i < S; i++)
                d[i] = s[i] * mul[ch] + add[ch];
        } else {
            for (int64_t i = 0; i < S; i++)
                rt_store_d(y->data, y->dtype, p * S + i,
                           rt_load_d(x->data, x->dtype, p * S + i) * mul[ch] + add[ch]);
        }
    }
    free(mul);
    return HPCZ_OK;
}

/* ------------------------------------------------ instance/group/layer norms */

/* Normalises each of `groups` contiguous slices of length len in place of y;
 * then y = y * scale[ch] + bias[ch] where ch = (slice index) / per. */
static hpcz_status k_instancenorm(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *sc = rt_in(c, 1), *bi = rt_in(c, 2);
    if (!hpcz_dtype_is_float(x->dtype) || x->ndim < 3)
        return rt_unsupported(c);
    int64_t N = x->dims[0], C = x->dims[1];
    if (sc->numel != C || bi->numel != C)
        return rt_bad(c, "scale and B must have C entries");
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    double eps = rt_attr_f(c, "epsilon", 1e-5f);
    int64_t S = x->numel / (N * C);
    for (int64_t p = 0; p < N * C; p++) {
        int64_t ch = p % C;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < S; i++)
            mean += rt_load_d(x->data, x->dtype, p * S + i);
        mean /= (double)S;
        for (int64_t i = 0; i < S; i++) {
            double d = rt_load_d(x->data, x->dtype, p * S + i) - mean;
            var += d * d;
        }
        var /= (double)S;
        double inv = 1.0 / sqrt(var + eps);
        double s = rt_load_d(sc->data, sc->dtype, ch), b = rt_load_d(bi->data, bi->dtype, ch);
        for (int64_t i = 0; i < S; i++)
            rt_store_d(y->data, y->dtype, p * S + i,
                       (rt_load_d(x->data, x->dtype, p * S + i) - mean) * inv * s + b);
    }
    return HPCZ_OK;
}

static hpcz_status k_groupnorm(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *sc = rt_in(c, 1), *bi = rt_in(c, 2);
    if (!hpcz_dtype_is_float(x->dtype) || x->ndim < 3)
        return rt_unsupported(c);
    int64_t G = rt_attr_i(c, "num_groups", 0);
    int64_t N = x->dims[0], C = x->dims[1];
    if (G <= 0 || C % G)
        return rt_bad(c, "num_groups must divide the channels");
    /* opset 18 had per-group scale/bias; 21 per-channel */
    bool per_group = sc->numel == G && G != C;
    if (c->opset < 21 && sc->numel != G)
        return rt_bad(c, "scale must have num_groups entries");
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    double eps = rt_attr_f(c, "epsilon", 1e-5f);
    int64_t S = x->numel / (N * C), Cg = C / G, len = Cg * S;
    for (int64_t p = 0; p < N * G; p++) {
        int64_t base = p * len;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < len; i++)
            mean += rt_load_d(x->data, x->dtype, base + i);
        mean /= (double)len;
        for (int64_t i = 0; i < len; i++) {
            double d = rt_load_d(x->data, x->dtype, base + i) - mean;
            var += d * d;
        }
        var /= (double)len;
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < len; i++) {
            int64_t ch = (p % G) * Cg + i / S;
            int64_t pi = per_group ? p % G : ch;
            double s = rt_load_d(sc->data, sc->dtype, pi), b = rt_load_d(bi->data, bi->dtype, pi);
            rt_store_d(y->data, y->dtype, base + i,
                       (rt_load_d(x->data, x->dtype, base + i) - mean) * inv * s + b);
        }
    }
    return HPCZ_OK;
}

/* LayerNormalization and RMSNormalization: normalise over dims [axis, r).
 * SimplifiedLayerNormalization (ONNX Runtime's RMSNorm, ai.onnx domain in its
 * graphs) is the RMS form with inv_std_var as output 1 (inv_out). */
typedef struct ln_job {
    const float *x;
    float *y;
    const float *sb; /* scale, then bias, len each */
    int64_t len;
    bool rms;
    float eps;
    float *mean_out, *inv_out;
} ln_job;

/* One row of a float32 LayerNormalization / RMSNorm (rows in tasks). */
RT_HOT static void ln_row(void *ctx, int64_t o)
{
    const ln_job *j = ctx;
    int64_t len = j->len;
    const float *s = j->x + o * len, *sb = j->sb;
    float *d = j->y + o * len;
    float mean = j->rms ? 0.0f : lane_sum(s, len, 0.0f, false) / (float)len;
    float var = lane_sum(s, len, mean, true) / (float)len;
    float inv = 1.0f / sqrtf(var + j->eps);
    for (int64_t i = 0; i < len; i++)
        d[i] = (s[i] - mean) * inv * sb[i] + sb[len + i];
    if (j->mean_out)
        j->mean_out[o] = mean;
    if (j->inv_out)
        j->inv_out[o] = inv;
}

static hpcz_status layer_norm(rt_ctx *c, bool rms, int inv_out)
{
    hpcz_array *x = rt_in(c, 0), *sc = rt_in(c, 1), *bi = rt_in(c, 2);
    if (!hpcz_dtype_is_float(x->dtype) || !sc || sc->dtype != x->dtype || rt_f16_widen(c))
        return rt_unsupported(c);
    if (rt_attr_i(c, "stash_type", 1) != 1)
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", -1), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    int64_t outer = 1, len = 1;
    for (int d = 0; d < r; d++)
        if (d < axis)
            outer *= x->dims[d];
        else
            len *= x->dims[d];
    /* scale and bias broadcast to the normalised shape */
    hpcz_array norm_shape = {.ndim = r - axis};
    for (int d = axis; d < r; d++)
        norm_shape.dims[d - axis] = x->dims[d];
    const hpcz_array *chk[2] = {&norm_shape, sc};
    int nd;
    int64_t bd[RT_MAX_RANK];
    if (!rt_broadcast_shape(chk, 2, &nd, bd) || rt_numel(nd, bd) != len)
        return rt_bad(c, "scale does not broadcast to the normalised shape");
    if (bi) {
        chk[1] = bi;
        if (!rt_broadcast_shape(chk, 2, &nd, bd) || rt_numel(nd, bd) != len)
            return rt_bad(c, "bias does not broadcast to the normalised shape");
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y)
        return c->err->status;
    int64_t sdims[RT_MAX_RANK];
    for (int d = 0; d < r; d++)
        sdims[d] = d < axis ? x->dims[d] : 1;
    hpcz_array *mo = NULL, *io = NULL;
    if (!rms && c->n_out > 1 && c->out[1] && !(mo = rt_out(c, 1, HPCZ_DTYPE_FLOAT, r, sdims)))
        return c->err->status;
    if (inv_out > 0 && c->n_out > (size_t)inv_out && c->out[inv_out] &&
        !(io = rt_out(c, (size_t)inv_out, HPCZ_DTYPE_FLOAT, r, sdims)))
        return c->err->status;
    if (c->infer || x->numel == 0)
        return HPCZ_OK;
    /* expand scale/bias to len entries once */
    float *sb = malloc((size_t)len * 2 * sizeof *sb);
    if (!sb)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_array full = norm_shape;
    full.numel = len;
    const hpcz_array *one[1] = {sc};
    rt_bcast bc;
    rt_bcast_init(&bc, &full, one, 1);
    for (int64_t rr = 0; rr < bc.rows; rr++) {
        int64_t off[1];
        rt_bcast_row(&bc, rr, off);
        for (int64_t i = 0; i < bc.inner; i++)
            sb[rr * bc.inner + i] = (float)rt_load_d(sc->data, sc->dtype, off[0] + i * bc.istr[0]);
    }
    for (int64_t i = 0; i < len; i++)
        sb[len + i] = 0;
    if (bi) {
        one[0] = bi;
        rt_bcast_init(&bc, &full, one, 1);
        for (int64_t rr = 0; rr < bc.rows; rr++) {
            int64_t off[1];
            rt_bcast_row(&bc, rr, off);
            for (int64_t i = 0; i < bc.inner; i++)
                sb[len + rr * bc.inner + i] =
                    (float)rt_load_d(bi->data, bi->dtype, off[0] + i * bc.istr[0]);
        }
    }
    double eps = rt_attr_f(c, "epsilon", 1e-5f);
    if (x->dtype == HPCZ_DTYPE_FLOAT && !c->reference) {
        ln_job j = {x->data, y->data, sb, len, rms, (float)eps, mo ? mo->data : NULL,
                    io ? io->data : NULL};
        rt_parallel_for_work(outer, ln_row, &j, (double)x->numel * 4);
        free(sb);
        return HPCZ_OK;
    }
    for (int64_t o = 0; o < outer; o++) {
        int64_t base = o * len;
        double mean = 0, var = 0;
        if (!rms) {
            for (int64_t i = 0; i < len; i++)
                mean += rt_load_d(x->data, x->dtype, base + i);
            mean /= (double)len;
        }
        for (int64_t i = 0; i < len; i++) {
            double t = rt_load_d(x->data, x->dtype, base + i) - mean;
            var += t * t;
        }
        var /= (double)len;
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < len; i++)
            rt_store_d(y->data, y->dtype, base + i,
                       (rt_load_d(x->data, x->dtype, base + i) - mean) * inv * sb[i] + sb[len + i]);
        if (mo)
            ((float *)mo->data)[o] = (float)mean;
        if (io)
            ((float *)io->data)[o] = (float)inv;
    }
    free(sb);
    return HPCZ_OK;
}

static hpcz_status k_layernorm(rt_ctx *c) { return layer_norm(c, false, 2); }
static hpcz_status k_rmsnorm(rt_ctx *c) { return layer_norm(c, true, -1); }
static hpcz_status k_simplifiedln(rt_ctx *c) { return layer_norm(c, true, 1); }

/* ---------------------------------------------------------------- LRN */

static hpcz_status k_lrn(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!hpcz_dtype_is_float(x->dtype) || x->ndim < 2)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    double alpha = rt_attr_f(c, "alpha", 1e-4f), beta = rt_attr_f(c, "beta", 0.75f),
           bias = rt_attr_f(c, "bias", 1.0f);
    int64_t size = rt_attr_i(c, "size", 1);
    int64_t N = x->dims[0], C = x->dims[1], S = x->numel / (N * C);
    int64_t lo_off = (size - 1) / 2, hi_off = size - 1 - lo_off; /* floor, ceil */
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t s = 0; s < S; s++) {
                double sq = 0;
                for (int64_t k = ch - lo_off; k <= ch + hi_off; k++) {
                    if (k < 0 || k >= C)
                        continue;
                    double v = rt_load_d(x->data, x->dtype, (n * C + k) * S + s);
                    sq += v * v;
                }
                int64_t i = (n * C + ch) * S + s;
                rt_store_d(y->data, y->dtype, i,
                           rt_load_d(x->data, x->dtype, i) /
                               pow(bias + alpha / (double)size * sq, beta));
            }
    return HPCZ_OK;
}

/* ------------------------------------------------ LpNormalization, MVN */

static hpcz_status k_lpnorm(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!hpcz_dtype_is_float(x->dtype))
        return rt_unsupported(c);
    int axis = rt_axis(rt_attr_i(c, "axis", -1), x->ndim);
    int64_t p = rt_attr_i(c, "p", 2);
    if (axis < 0 || (p != 1 && p != 2))
        return rt_bad(c, "invalid axis or p");
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    int64_t len = x->dims[axis], inner = 1;
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    int64_t outer = x->numel / (len * inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            double s = 0;
            for (int64_t k = 0; k < len; k++) {
                double v = rt_load_d(x->data, x->dtype, base + k * inner);
                s += p == 1 ? fabs(v) : v * v;
            }
            if (p == 2)
                s = sqrt(s);
            for (int64_t k = 0; k < len; k++)
                rt_store_d(y->data, y->dtype, base + k * inner,
                           s == 0 ? 0 : rt_load_d(x->data, x->dtype, base + k * inner) / s);
        }
    return HPCZ_OK;
}

static hpcz_status k_mvn(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!hpcz_dtype_is_float(x->dtype))
        return rt_unsupported(c);
    size_t na;
    const int64_t *axes = rt_attr_ints(c, "axes", &na);
    int64_t dflt[3] = {0, 2, 3};
    if (!axes) {
        axes = dflt;
        na = 3;
    }
    bool red[RT_MAX_RANK] = {0};
    for (size_t i = 0; i < na; i++) {
        int a = rt_axis(axes[i], x->ndim);
        if (a < 0)
            return rt_bad(c, "axis out of range");
        red[a] = true;
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer || x->numel == 0)
        return y ? HPCZ_OK : c->err->status;
    /* group elements by their coordinates on the kept axes */
    int64_t groups = 1, len = 1;
    for (int d = 0; d < x->ndim; d++)
        if (red[d])
            len *= x->dims[d];
        else
            groups *= x->dims[d];
    double *sum = calloc((size_t)groups * 2, sizeof *sum);
    if (!sum)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    double *sq = sum + groups;
    int64_t *gidx = malloc((size_t)x->numel * sizeof *gidx);
    if (!gidx) {
        free(sum);
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t rem = i, g = 0, mulg = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
            int64_t co = rem % x->dims[d];
            rem /= x->dims[d];
            if (!red[d]) {
                g += co * mulg;
                mulg *= x->dims[d];
            }
        }
        gidx[i] = g;
        double v = rt_load_d(x->data, x->dtype, i);
        sum[g] += v;
        sq[g] += v * v;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t g = gidx[i];
        double mean = sum[g] / (double)len, var = sq[g] / (double)len - mean * mean;
        rt_store_d(y->data, y->dtype, i,
                   (rt_load_d(x->data, x->dtype, i) - mean) / (sqrt(var) + 1e-9));
    }
    free(gidx);
    free(sum);
    return HPCZ_OK;
}

static const rt_op ops[] = {
    {"", "Softmax", 1, 0, 0, k_softmax, NULL},
    {"", "LogSoftmax", 1, 0, 0, k_logsoftmax, NULL},
    {"", "Hardmax", 1, 0, 0, k_hardmax, NULL},
    {"", "BatchNormalization", 7, 0, 0, k_batchnorm, bn_ok},
    {"", "InstanceNormalization", 6, 0, 0, k_instancenorm, NULL},
    /* ONNX Runtime's LayerNormalization for opsets before 17 (same semantics) */
    {"", "LayerNormalization", 1, 0, 0, k_layernorm, NULL},
    {"", "LayerNormalization", 17, 0, 0, k_layernorm, NULL},
    {"", "SimplifiedLayerNormalization", 1, 0, 0, k_simplifiedln, NULL},
    {"", "RMSNormalization", 23, 0, 0, k_rmsnorm, NULL},
    {"", "GroupNormalization", 18, 0, 0, k_groupnorm, NULL},
    {"", "LRN", 1, 0, 0, k_lrn, NULL},
    {"", "LpNormalization", 1, 0, 0, k_lpnorm, NULL},
    {"", "MeanVarianceNormalization", 9, 0, 0, k_mvn, NULL},
};

const rt_op_table rt_ops_norm = {ops, HPCZ_ARRAY_SIZE(ops)};
