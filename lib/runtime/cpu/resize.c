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

/* What the taps depend on besides the attributes (fixed per node). */
typedef struct resize_key {
    int r, mode;
    int64_t in[RT_MAX_RANK], out[RT_MAX_RANK];
    double scale[RT_MAX_RANK], roi_s[RT_MAX_RANK], roi_e[RT_MAX_RANK];
} resize_key;

/* The taps of every axis, in one allocation (a node's state, freed with
 * free()): the arrays follow the struct. */
typedef struct resize_taps {
    resize_key key;
    taps tp[RT_MAX_RANK];
    bool any_outside;
} resize_taps;

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

/* The taps of every axis for key (mode, shapes, scales, roi) and the
 * coordinate transformation ct / nearest mode nm. NULL with *st set on
 * failure. */
static resize_taps *build_taps(rt_ctx *c, const resize_key *key, const char *ct, const char *nm,
                               bool sized, double A, bool excl, hpcz_status *st)
{
    int r = key->r, mode = key->mode;
    size_t total = 0;
    for (int d = 0; d < r; d++)
        total += (size_t)(key->out[d] ? key->out[d] : 1);
    size_t bytes = sizeof(resize_taps) + total * 4 * (sizeof(int64_t) + sizeof(float)) + total;
    resize_taps *rt = calloc(1, bytes);
    if (!rt) {
        *st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rt->key = *key;
    int64_t *ip = (int64_t *)(rt + 1);
    float *wp = (float *)(ip + total * 4);
    bool *bp = (bool *)(wp + total * 4);
    for (int d = 0; d < r; d++) {
        int64_t in = key->in[d], on = key->out[d];
        taps *t = &rt->tp[d];
        t->idx = ip;
        t->w = wp;
        t->outside = bp;
        ip += (on ? on : 1) * 4;
        wp += (on ? on : 1) * 4;
        bp += on ? on : 1;
        t->n = mode == M_NEAREST ? 1 : mode == M_LINEAR ? 2 : 4;
        double s = key->scale[d];
        for (int64_t o = 0; o < on; o++) {
            double xo;
            if (!strcmp(ct, "half_pixel"))
                xo = ((double)o + 0.5) / s - 0.5;
            else if (!strcmp(ct, "pytorch_half_pixel"))
                xo = on > 1 ? ((double)o + 0.5) / s - 0.5 : 0;
            else if (!strcmp(ct, "align_corners")) {
                /* length_resized is in*scale (unrounded) when scales were given */
                double lr = sized ? (double)on : (double)in * s;
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
                double a = key->roi_s[d], b = key->roi_e[d];
                xo = on > 1 ? a * (double)(in - 1) + (double)o * (b - a) * (double)(in - 1) / (double)(on - 1)
                            : 0.5 * (a + b) * (double)(in - 1);
                if (xo < 0 || xo > (double)(in - 1))
                    t->outside[o] = rt->any_outside = true;
            } else {
                free(rt);
                *st = rt_unsupported(c);
                return NULL;
            }
            int64_t *ix = t->idx + o * 4;
            float *w = t->w + o * 4;
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
    return rt;
}

/* Every output element as the weighted sum of its tap combinations, in
 * double (the reference path; any dtype, every mode). */
static void resize_generic(const resize_taps *rt, const hpcz_array *x, hpcz_array *y, float extrap)
{
    int r = rt->key.r, mode = rt->key.mode;
    const int64_t *out = rt->key.out;
    const taps *tp = rt->tp;
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

/* ---- fast paths: output rows along the last axis.
 * Nearest (any dtype): a row is a gather by the last axis's index map, or a
 * copy of the previous output row when it reads the same source row (x2
 * upsampling writes every row twice from one gather). Linear (float32,
 * resizing at most the last two axes): each output plane blends two
 * horizontally interpolated input rows, kept while consecutive output rows
 * share them. */
typedef struct resize_job {
    const resize_taps *rt;
    const uint8_t *x;
    uint8_t *y;
    size_t es;
    int64_t xs[RT_MAX_RANK];
    int64_t rows, rows_per_task; /* nearest: output rows; linear: planes */
} resize_job;

/* Offset (elements) of the source row of output row `row` (axes < r - 1). */
static int64_t src_row(const resize_job *j, int64_t row)
{
    const resize_taps *rt = j->rt;
    int64_t off = 0;
    for (int d = rt->key.r - 2; d >= 0; d--) {
        int64_t o = row % rt->key.out[d];
        row /= rt->key.out[d];
        off += rt->tp[d].idx[o * 4] * j->xs[d];
    }
    return off;
}

RT_HOT static void nearest_rows(void *ctx, int64_t t)
{
    const resize_job *j = ctx;
    const resize_taps *rt = j->rt;
    int r = rt->key.r;
    int64_t OW = rt->key.out[r - 1];
    const int64_t *iw = rt->tp[r - 1].idx;
    size_t es = j->es;
    int64_t r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    int64_t prev = -1;
    for (int64_t row = r0; row < r1; row++) {
        int64_t src = src_row(j, row);
        uint8_t *yr = j->y + (size_t)(row * OW) * es;
        if (src == prev) {
            memcpy(yr, yr - (size_t)OW * es, (size_t)OW * es);
            continue;
        }
        prev = src;
        const uint8_t *xr = j->x + (size_t)src * es;
        if (es == 4) {
            const float *xf = (const float *)xr;
            float *yf = (float *)yr;
            for (int64_t o = 0; o < OW; o++)
                yf[o] = xf[iw[o * 4]];
        } else if (es == 8) {
            const uint64_t *xq = (const uint64_t *)xr;
            uint64_t *yq = (uint64_t *)yr;
            for (int64_t o = 0; o < OW; o++)
                yq[o] = xq[iw[o * 4]];
        } else {
            for (int64_t o = 0; o < OW; o++)
                memcpy(yr + (size_t)o * es, xr + (size_t)iw[o * 4] * es, es);
        }
    }
}

#define RESIZE_MAXW 4096

/* dst[o] = w0[o] x[i0[o]] + w1[o] x[i1[o]] along the last axis. */
RT_HOT static void lerp_row(const float *x, const taps *tw, int64_t OW, float *dst)
{
    for (int64_t o = 0; o < OW; o++)
        dst[o] = tw->w[o * 4] * x[tw->idx[o * 4]] + tw->w[o * 4 + 1] * x[tw->idx[o * 4 + 1]];
}

RT_HOT static void linear_planes(void *ctx, int64_t t)
{
    const resize_job *j = ctx;
    const resize_taps *rt = j->rt;
    int r = rt->key.r;
    int64_t OH = rt->key.out[r - 2], OW = rt->key.out[r - 1], IW = rt->key.in[r - 1];
    const taps *th = &rt->tp[r - 2], *tw = &rt->tp[r - 1];
    float hrow[2][RESIZE_MAXW];
    int64_t p0 = t * j->rows_per_task, p1 = p0 + j->rows_per_task < j->rows ? p0 + j->rows_per_task : j->rows;
    for (int64_t pl = p0; pl < p1; pl++) {
        /* source plane: the single tap of every leading axis */
        int64_t off = 0, rem = pl;
        for (int d = r - 3; d >= 0; d--) {
            int64_t o = rem % rt->key.out[d];
            rem /= rt->key.out[d];
            off += rt->tp[d].idx[o * 4] * j->xs[d];
        }
        const float *xp = (const float *)j->x + off;
        float *yp = (float *)j->y + pl * OH * OW;
        float *b0 = hrow[0], *b1 = hrow[1];
        int64_t h0 = -1, h1 = -1; /* the input rows b0 and b1 hold */
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t i0 = th->idx[oh * 4], i1 = th->idx[oh * 4 + 1];
            if (i0 != h0) {
                if (i0 == h1) { /* moved down a row: the second becomes the first */
                    float *tb = b0;
                    b0 = b1;
                    b1 = tb;
                    h1 = h0;
                    h0 = i0;
                } else {
                    lerp_row(xp + i0 * IW, tw, OW, b0);
                    h0 = i0;
                }
            }
            const float *r1 = b0;
            if (i1 != h0) {
                if (i1 != h1) {
                    lerp_row(xp + i1 * IW, tw, OW, b1);
                    h1 = i1;
                }
                r1 = b1;
            }
            float a = th->w[oh * 4], b = th->w[oh * 4 + 1];
            float *yr = yp + oh * OW;
            for (int64_t o = 0; o < OW; o++)
                yr[o] = a * b0[o] + b * r1[o];
        }
    }
}

/* Runs a fast path when one applies; false: the generic loop must. */
static bool resize_fast(const resize_taps *rt, const hpcz_array *x, hpcz_array *y)
{
    int r = rt->key.r, mode = rt->key.mode;
    if (rt->any_outside || r < 1 || mode == M_CUBIC)
        return false;
    resize_job j = {.rt = rt, .x = x->data, .y = y->data, .es = rt_esize(x->dtype)};
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        j.xs[d] = s;
        s *= x->dims[d];
    }
    int64_t OW = rt->key.out[r - 1];
    if (mode == M_NEAREST) {
        j.rows = y->numel / OW;
        j.rows_per_task = OW >= 4096 ? 1 : 4096 / OW;
        rt_parallel_for_work((j.rows + j.rows_per_task - 1) / j.rows_per_task, nearest_rows, &j,
                             (double)y->numel);
        return true;
    }
    /* linear: float32, at most the last two axes interpolated */
    if (x->dtype != HPCZ_DTYPE_FLOAT || r < 2 || OW > RESIZE_MAXW)
        return false;
    for (int d = 0; d < r - 2; d++)
        for (int64_t o = 0; o < rt->key.out[d]; o++)
            if (rt->tp[d].w[o * 4 + 1] != 0)
                return false;
    int64_t plane = rt->key.out[r - 2] * OW;
    j.rows = y->numel / plane;
    j.rows_per_task = plane >= 4096 ? 1 : 4096 / plane;
    rt_parallel_for_work((j.rows + j.rows_per_task - 1) / j.rows_per_task, linear_planes, &j,
                         4.0 * (double)y->numel);
    return true;
}

/* What the taps and the output shape depend on: k_resize's reading of the
 * node (inputs, attributes). */
typedef struct resize_params {
    resize_key key;        /* key.mode -1: a mode resize.c does not know */
    char ct[32], nm[32];
    bool sized;            /* output sizes given (not scales) */
    double A;
    bool excl;
    float extrap;
} resize_params;

/* *ready false (and HPCZ_OK) while a shape depends on data not there yet
 * (scales, sizes or roi computed at run time, in infer mode). */
static hpcz_status resize_params_get(rt_ctx *c, resize_params *p, bool *ready)
{
    hpcz_array *x = rt_in(c, 0);
    int r = x->ndim;
    bool upsample = !strcmp(c->node->op_type, "Upsample");
    hpcz_array *roi = NULL, *sc = NULL, *sz = NULL;
    *ready = false;
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
    resize_key *k = &p->key;
    memset(p, 0, sizeof *p);
    k->r = r;
    for (int i = 0; i < r; i++) {
        k->in[i] = x->dims[i];
        k->scale[i] = 1;
        k->out[i] = x->dims[i];
        k->roi_s[i] = 0;
        k->roi_e[i] = 1;
    }
    if (roi) {
        if ((size_t)roi->numel != 2 * na)
            return rt_bad(c, "roi must have 2*len(axes) entries");
        for (size_t i = 0; i < na; i++) {
            k->roi_s[axes[i]] = rt_load_d(roi->data, roi->dtype, (int64_t)i);
            k->roi_e[axes[i]] = rt_load_d(roi->data, roi->dtype, (int64_t)(na + i));
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
                k->scale[a] = s0;
                k->out[a] = (int64_t)floor((double)x->dims[a] * s0 + 0.5);
            } else {
                k->out[a] = rt_int_at(sz, (int64_t)i);
                k->scale[a] = (double)k->out[a] / (double)x->dims[a];
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
            k->scale[a] = sc ? rt_load_d(sc->data, sc->dtype, (int64_t)i) : as[i];
            if (k->scale[a] <= 0)
                return rt_bad(c, "non-positive scale");
            k->out[a] = (int64_t)floor((double)x->dims[a] * (float)k->scale[a]);
        }
    }
    char mode_s[16];
    rt_attr_s(c, "mode", "nearest", mode_s, sizeof mode_s);
    k->mode = !strcmp(mode_s, "nearest") ? M_NEAREST
              : (!strcmp(mode_s, "linear") || !strcmp(mode_s, "bilinear")) ? M_LINEAR
              : !strcmp(mode_s, "cubic") ? M_CUBIC : -1;
    rt_attr_s(c, "coordinate_transformation_mode",
              (upsample || c->opset < 11) ? "asymmetric" : "half_pixel", p->ct, sizeof p->ct);
    /* Upsample rounds down to the nearest source pixel */
    rt_attr_s(c, "nearest_mode", upsample ? "floor" : "round_prefer_floor", p->nm, sizeof p->nm);
    if (c->opset < 11 && !upsample)
        snprintf(p->ct, sizeof p->ct, "asymmetric");
    p->sized = sz != NULL;
    p->A = rt_attr_f(c, "cubic_coeff_a", -0.75f);
    p->excl = rt_attr_i(c, "exclude_outside", 0) != 0;
    p->extrap = rt_attr_f(c, "extrapolation_value", 0);
    *ready = true;
    return HPCZ_OK;
}

static hpcz_status k_resize(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype) || x->dtype == HPCZ_DTYPE_BOOL)
        return rt_unsupported(c);
    resize_params p;
    bool ready;
    hpcz_status st = resize_params_get(c, &p, &ready);
    if (st || !ready)
        return st;
    hpcz_array *y = rt_out(c, 0, x->dtype, p.key.r, p.key.out);
    if (!y || c->infer || !y->numel)
        return y ? HPCZ_OK : c->err->status;
    if (p.key.mode < 0)
        return rt_unsupported(c);
    /* the taps of every axis, kept in the node's state for the next run
     * with the same shapes, scales and roi */
    resize_taps *rt = c->state ? *c->state : NULL;
    if (!rt || memcmp(&rt->key, &p.key, sizeof p.key)) {
        if (c->state) {
            free(*c->state);
            *c->state = NULL;
        }
        rt = build_taps(c, &p.key, p.ct, p.nm, p.sized, p.A, p.excl, &st);
        if (!rt)
            return st;
        if (c->state)
            *c->state = rt;
    }
    if (c->reference || !resize_fast(rt, x, y))
        resize_generic(rt, x, y, p.extrap);
    if (!c->state)
        free(rt);
    return HPCZ_OK;
}

void *rt_resize_taps_new(rt_ctx *c, rt_resize_view *v)
{
    const hpcz_array *x = rt_in(c, 0);
    if (!resize_ok(c->node))
        return NULL;
    resize_params p;
    bool ready;
    hpcz_error *saved = c->err, quiet = {0};
    c->err = &quiet; /* a node this cannot describe stays with k_resize, which reports */
    hpcz_status st = resize_params_get(c, &p, &ready);
    resize_taps *rt = NULL;
    if (!st && ready && p.key.mode > M_NEAREST)
        rt = build_taps(c, &p.key, p.ct, p.nm, p.sized, p.A, p.excl, &st);
    c->err = saved;
    if (!rt || rt->any_outside) {
        free(rt);
        return NULL;
    }
    int r = p.key.r;
    memset(v, 0, sizeof *v);
    v->r = r;
    v->n = rt->tp[0].n;
    for (int d = 0; d < r; d++) {
        v->in[d] = p.key.in[d];
        v->out[d] = p.key.out[d];
        v->idx[d] = rt->tp[d].idx;
        v->w[d] = rt->tp[d].w;
    }
    /* resize_fast's linear path (linear_planes) */
    v->lerp2d = p.key.mode == M_LINEAR && x->dtype == HPCZ_DTYPE_FLOAT && r >= 2 &&
                p.key.out[r - 1] <= RESIZE_MAXW;
    for (int d = 0; d < r - 2 && v->lerp2d; d++)
        for (int64_t o = 0; o < p.key.out[d]; o++)
            v->lerp2d &= rt->tp[d].w[o * 4 + 1] == 0;
    return rt;
}

static const rt_op ops[] = {
    {"", "Resize", 10, 0, 0, k_resize, resize_ok},
    {"", "Upsample", 7, 0, 0, k_resize, NULL},
};

const rt_op_table rt_ops_misc = {ops, HPCZ_ARRAY_SIZE(ops)};
