/*
 * resize.c - Resize (nearest, linear, cubic; every coordinate transform but
 * antialiasing) and Upsample. Separable: each output coordinate of each
 * axis gets up to four (index, weight) taps, computed once per axis.
 */
#include "../rt.h"

typedef struct taps {
    int n;
    int64_t *idx;   /* [out][4] */
    float *w;       /* [out][4] */
    bool *outside;  /* tf_crop_and_resize extrapolation */
} taps;

enum { M_NEAREST, M_LINEAR, M_CUBIC };

static bool resize_ok(const hpcz_node *n)
{
    return hpcz_node_attr_int(n, "antialias", 0) == 0;
}

static double cubic_w(double x, double a)
{
    x = fabs(x);
    if (x <= 1)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

static hpcz_status k_resize(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype) || x->dtype == HPCZ_DTYPE_BOOL)
        return rt_unsupported(c);
    int r = x->ndim;
    bool upsample = !strcmp(c->node->op_type, "Upsample");
    hpcz_array *roi = NULL, *sc = NULL, *sz = NULL;
    if (upsample || c->opset < 11)
        sc = rt_in(c, 1);
    else {
        roi = rt_in(c, 1);
        sc = rt_in(c, 2);
        sz = rt_in(c, 3);
    }
    if (sc && !sc->numel)
        sc = NULL;
    if (sz && !sz->numel)
        sz = NULL;
    if (roi && !roi->numel)
        roi = NULL;
    if ((sc && !rt_need(c, upsample || c->opset < 11 ? 1 : 2)) || (sz && !rt_need(c, 3)) ||
        (roi && !rt_need(c, 1)))
        return HPCZ_OK;
    if (!sc && !sz) {
        size_t ns;
        const float *s = rt_attr_floats(c, "scales", &ns);
        if (!upsample || !s)
            return rt_bad(c, "needs scales or sizes");
    }
    int64_t axes[RT_MAX_RANK];
    size_t na;
    const int64_t *ax = rt_attr_ints(c, "axes", &na);
    if (!ax) {
        na = (size_t)r;
        for (int i = 0; i < r; i++)
            axes[i] = i;
    } else {
        for (size_t i = 0; i < na; i++) {
            int a = rt_axis(ax[i], r);
            if (a < 0)
                return rt_bad(c, "invalid axis");
            axes[i] = a;
        }
    }
    double scale[RT_MAX_RANK];
    int64_t out[RT_MAX_RANK];
    double roi_s[RT_MAX_RANK], roi_e[RT_MAX_RANK];
    for (int i = 0; i < r; i++) {
        scale[i] = 1;
        out[i] = x->dims[i];
        roi_s[i] = 0;
        roi_e[i] = 1;
    }
    if (roi) {
        if ((size_t)roi->numel != 2 * na)
            return rt_bad(c, "roi must have 2*len(axes) entries");
        for (size_t i = 0; i < na; i++) {
            roi_s[axes[i]] = rt_load_d(roi->data, roi->dtype, (int64_t)i);
            roi_e[axes[i]] = rt_load_d(roi->data, roi->dtype, (int64_t)(na + i));
        }
    }
    if (sz) {
        if ((size_t)sz->numel != na)
            return rt_bad(c, "sizes must have len(axes) entries");
        char pol[32];
        rt_attr_s(c, "keep_aspect_ratio_policy", "stretch", pol, sizeof pol);
        double s0 = 0;
        bool not_larger = !strcmp(pol, "not_larger"), not_smaller = !strcmp(pol, "not_smaller");
        for (size_t i = 0; i < na; i++) {
            double s = (double)rt_int_at(sz, (int64_t)i) / (double)x->dims[axes[i]];
            if (i == 0 || (not_larger && s < s0) || (not_smaller && s > s0))
                s0 = s;
        }
        for (size_t i = 0; i < na; i++) {
            int a = (int)axes[i];
            if (not_larger || not_smaller) {
                scale[a] = s0;
                out[a] = (int64_t)floor((double)x->dims[a] * s0 + 0.5);
            } else {
                out[a] = rt_int_at(sz, (int64_t)i);
                scale[a] = (double)out[a] / (double)x->dims[a];
            }
        }
    } else {
        size_t ns = sc ? (size_t)sc->numel : 0;
        const float *as = NULL;
        if (!sc)
            as = rt_attr_floats(c, "scales", &ns);
        if (ns != na)
            return rt_bad(c, "scales must have len(axes) entries");
        for (size_t i = 0; i < na; i++) {
            int a = (int)axes[i];
            scale[a] = sc ? rt_load_d(sc->data, sc->dtype, (int64_t)i) : as[i];
            if (scale[a] <= 0)
                return rt_bad(c, "non-positive scale");
            out[a] = (int64_t)floor((double)x->dims[a] * (float)scale[a]);
        }
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, r, out);
    if (!y || c->infer || !y->numel)
        return y ? HPCZ_OK : c->err->status;
    char mode_s[16], ct[32], nm[32];
    rt_attr_s(c, "mode", "nearest", mode_s, sizeof mode_s);
    int mode = !strcmp(mode_s, "nearest") ? M_NEAREST
               : (!strcmp(mode_s, "linear") || !strcmp(mode_s, "bilinear")) ? M_LINEAR
               : !strcmp(mode_s, "cubic") ? M_CUBIC : -1;
    if (mode < 0)
        return rt_unsupported(c);
    rt_attr_s(c, "coordinate_transformation_mode",
              (upsample || c->opset < 11) ? "asymmetric" : "half_pixel", ct, sizeof ct);
    /* Upsample rounds down to the nearest source pixel */
    rt_attr_s(c, "nearest_mode", upsample ? "floor" : "round_prefer_floor", nm, sizeof nm);
    if (c->opset < 11 && !upsample)
        snprintf(ct, sizeof ct, "asymmetric");
    double A = rt_attr_f(c, "cubic_coeff_a", -0.75f);
    bool excl = rt_attr_i(c, "exclude_outside", 0) != 0;
    float extrap = rt_attr_f(c, "extrapolation_value", 0);
    taps tp[RT_MAX_RANK];
    memset(tp, 0, sizeof tp);
    hpcz_status st = HPCZ_OK;
    for (int d = 0; d < r && !st; d++) {
        int64_t in = x->dims[d], on = out[d];
        tp[d].idx = malloc((size_t)(on ? on : 1) * 4 * sizeof(int64_t));
        tp[d].w = malloc((size_t)(on ? on : 1) * 4 * sizeof(float));
        tp[d].outside = calloc((size_t)(on ? on : 1), sizeof(bool));
        if (!tp[d].idx || !tp[d].w || !tp[d].outside) {
            st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        tp[d].n = mode == M_NEAREST ? 1 : mode == M_LINEAR ? 2 : 4;
        double s = scale[d];
        for (int64_t o = 0; o < on; o++) {
            double xo;
            if (!strcmp(ct, "half_pixel"))
                xo = ((double)o + 0.5) / s - 0.5;
            else if (!strcmp(ct, "pytorch_half_pixel"))
                xo = on > 1 ? ((double)o + 0.5) / s - 0.5 : 0;
            else if (!strcmp(ct, "align_corners")) {
                /* length_resized is in*scale (unrounded) when scales were given */
                double lr = sz ? (double)on : (double)in * s;
                xo = lr <= 1 ? 0 : (double)o * (double)(in - 1) / (lr - 1);
            }
            else if (!strcmp(ct, "asymmetric"))
                xo = (double)o / s;
            else if (!strcmp(ct, "half_pixel_symmetric")) {
                double adj = (double)on / (s * (double)in);
                double center = (double)in / 2;
                double off = center * (1 - adj);
                xo = off + ((double)o + 0.5) / s - 0.5;
            } else if (!strcmp(ct, "tf_crop_and_resize")) {
                double a = roi_s[d], b = roi_e[d];
                xo = on > 1 ? a * (double)(in - 1) + (double)o * (b - a) * (double)(in - 1) / (double)(on - 1)
                            : 0.5 * (a + b) * (double)(in - 1);
                if (xo < 0 || xo > (double)(in - 1))
                    tp[d].outside[o] = true;
            } else {
                st = rt_unsupported(c);
                break;
            }
            int64_t *ix = tp[d].idx + o * 4;
            float *w = tp[d].w + o * 4;
            if (mode == M_NEAREST) {
                double f;
                if (!strcmp(nm, "round_prefer_floor"))
                    f = (xo - floor(xo) == 0.5) ? floor(xo) : round(xo);
                else if (!strcmp(nm, "round_prefer_ceil"))
                    f = (xo - floor(xo) == 0.5) ? ceil(xo) : round(xo);
                else if (!strcmp(nm, "floor"))
                    f = floor(xo);
                else
                    f = ceil(xo);
                int64_t i = (int64_t)f;
                ix[0] = i < 0 ? 0 : i >= in ? in - 1 : i;
                w[0] = 1;
                continue;
            }
            double fl = floor(xo), ratio = xo - fl;
            int64_t i0 = (int64_t)fl;
            if (mode == M_LINEAR) {
                int64_t a = i0, b = i0 + 1;
                ix[0] = a < 0 ? 0 : a >= in ? in - 1 : a;
                ix[1] = b < 0 ? 0 : b >= in ? in - 1 : b;
                w[0] = (float)(1 - ratio);
                w[1] = (float)ratio;
                continue;
            }
            double sum = 0;
            for (int k = 0; k < 4; k++) {
                int64_t i = i0 - 1 + k;
                double wk = cubic_w(ratio + 1 - k, A);
                if (excl && (i < 0 || i >= in))
                    wk = 0;
                ix[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
                w[k] = (float)wk;
                sum += wk;
            }
            if (excl && sum != 0)
                for (int k = 0; k < 4; k++)
                    w[k] = (float)(w[k] / sum);
        }
    }
    if (!st) {
        int64_t xs[RT_MAX_RANK], s = 1;
        for (int d = r - 1; d >= 0; d--) {
            xs[d] = s;
            s *= x->dims[d];
        }
        size_t es = rt_esize(x->dtype);
        bool ints = rt_is_int(x->dtype);
        for (int64_t o = 0; o < y->numel; o++) {
            int64_t co[RT_MAX_RANK], rem = o;
            bool outside = false;
            for (int d = r - 1; d >= 0; d--) {
                co[d] = rem % out[d];
                rem /= out[d];
                outside |= tp[d].outside[co[d]];
            }
            if (outside) {
                rt_store_d(y->data, y->dtype, o, extrap);
                continue;
            }
            if (mode == M_NEAREST) {
                int64_t off = 0;
                for (int d = 0; d < r; d++)
                    off += tp[d].idx[co[d] * 4] * xs[d];
                memcpy((uint8_t *)y->data + (size_t)o * es,
                       (const uint8_t *)x->data + (size_t)off * es, es);
                continue;
            }
            /* sum over all tap combinations (dims with one effective tap stay cheap) */
            int n = tp[0].n;
            int64_t total = 1;
            for (int d = 0; d < r; d++)
                total *= n;
            double acc = 0;
            for (int64_t comb = 0; comb < total; comb++) {
                int64_t cr = comb, off = 0;
                double w = 1;
                for (int d = r - 1; d >= 0 && w != 0; d--) {
                    int k = (int)(cr % n);
                    cr /= n;
                    w *= tp[d].w[co[d] * 4 + k];
                    off += tp[d].idx[co[d] * 4 + k] * xs[d];
                }
                if (w != 0)
                    acc += w * rt_load_d(x->data, x->dtype, off);
            }
            if (ints)
                acc = nearbyint(acc);
            rt_store_d(y->data, y->dtype, o, acc);
        }
    }
    for (int d = 0; d < r; d++) {
        free(tp[d].idx);
        free(tp[d].w);
        free(tp[d].outside);
    }
    return st;
}

static const rt_op ops[] = {
    {"", "Resize", 10, 0, 0, k_resize, resize_ok},
    {"", "Upsample", 7, 0, 0, k_resize, NULL},
};

const rt_op_table rt_ops_misc = {ops, HPCZ_ARRAY_SIZE(ops)};
