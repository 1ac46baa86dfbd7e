/*
 * calib.c - activation statistics and the ranges chosen from them.
 *
 * Each float tensor gets a fixed-size record: exact min/max, moving-average
 * min/max, and a 2048-bin histogram of |x| over [0, amax] that is re-binned
 * (adjacent bins merged) when a larger value arrives. Memory is therefore
 * constant in the number of samples, and the result does not depend on how
 * samples are split into batches except for the moving average, which is
 * per batch by definition.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>

#define NBINS 2048

typedef struct tstat {
    char *name;
    double min, max;
    double ma_min, ma_max;
    int ma_init;
    double amax;             /* histogram covers [0, amax] */
    uint64_t hist[NBINS];    /* nonzero values only: zeros are exact in any range */
    uint64_t count;          /* all finite values */
    uint64_t seen;           /* all values, finite or not */
    uint64_t zeros;
    double sum_min, sum_max; /* over samples (mean-minmax) */
    uint64_t n_samples;
} tstat;

typedef struct observer {
    tstat **t;
    size_t n, cap;
    hpcz_valmap index;       /* name -> position (through a dummy value) */
    hpcz_value *keys;
    size_t cap_keys;
    int failed;
    int64_t batch;           /* samples in the running batch */
    int per_sample;          /* track each sample's min and max (mean-minmax only: one more pass) */
    hpcz_token_mask mask;    /* the running batch's token mask (keep == NULL: none) */
    hpcz_error err;          /* a device statistic's failure (failed set) */
} observer;

static tstat *stat_for(observer *o, const char *name)
{
    hpcz_value *k = hpcz_valmap_get(&o->index, name);
    if (k)
        return o->t[k->aux];
    if (!hpcz_grow((void **)&o->t, &o->cap, o->n + 1, sizeof *o->t)) {
        o->failed = 1;
        return NULL;
    }
    tstat *s = calloc(1, sizeof *s);
    hpcz_value *key = calloc(1, sizeof *key);
    if (!s || !key) {
        free(s);
        free(key);
        o->failed = 1;
        return NULL;
    }
    s->name = strdup(name);
    s->min = INFINITY;
    s->max = -INFINITY;
    key->name = s->name;
    key->aux = (int)o->n;
    if (!hpcz_valmap_put(&o->index, key)) {
        o->failed = 1;
        return NULL;
    }
    o->t[o->n++] = s;
    return s;
}

#if defined(__x86_64__)
#include <float.h>
#include <immintrin.h>
#define CALIB_X86 1

/* Min and max of the finite x[i] (NaN and infinities skipped). */
__attribute__((target("avx2"))) static void minmax_avx2(const float *x, int64_t n, float *lo_out,
                                                        float *hi_out)
{
    const __m256 pinf = _mm256_set1_ps(INFINITY), ninf = _mm256_set1_ps(-INFINITY);
    const __m256 big = _mm256_set1_ps(FLT_MAX), absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 lo = pinf, hi = ninf;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 fin = _mm256_cmp_ps(_mm256_and_ps(v, absm), big, _CMP_LE_OQ); /* NaN: false */
        lo = _mm256_min_ps(lo, _mm256_blendv_ps(pinf, v, fin));
        hi = _mm256_max_ps(hi, _mm256_blendv_ps(ninf, v, fin));
    }
    float l[8], h[8], rl = INFINITY, rh = -INFINITY;
    _mm256_storeu_ps(l, lo);
    _mm256_storeu_ps(h, hi);
    for (int k = 0; k < 8; k++) {
        rl = l[k] < rl ? l[k] : rl;
        rh = h[k] > rh ? h[k] : rh;
    }
    for (; i < n; i++)
        if (isfinite(x[i])) {
            rl = x[i] < rl ? x[i] : rl;
            rh = x[i] > rh ? x[i] : rh;
        }
    *lo_out = rl;
    *hi_out = rh;
}

/* Histogram bins (int)(|v| * scale) of x, counted into h[0, NBINS); zeros
 * into h[NBINS], non-finite values into h[NBINS + 1]. The bin is computed in
 * double, as the scalar code does. */
__attribute__((target("avx2"))) static void hist_avx2(const float *x, int64_t n, double scale,
                                                      uint32_t *h)
{
    const __m256 big = _mm256_set1_ps(FLT_MAX), zero = _mm256_setzero_ps();
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256d sc = _mm256_set1_pd(scale);
    const __m256i last = _mm256_set1_epi32(NBINS - 1), zbin = _mm256_set1_epi32(NBINS),
                  nbin = _mm256_set1_epi32(NBINS + 1);
    int32_t idx[8] __attribute__((aligned(32)));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), a = _mm256_and_ps(v, absm);
        __m256 fin = _mm256_cmp_ps(a, big, _CMP_LE_OQ), isz = _mm256_cmp_ps(v, zero, _CMP_EQ_OQ);
        a = _mm256_and_ps(a, fin); /* non-finite lanes: 0, replaced below */
        __m128i b0 = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), sc));
        __m128i b1 = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), sc));
        __m256i b = _mm256_min_epi32(_mm256_set_m128i(b1, b0), last);
        b = _mm256_blendv_epi8(b, zbin, _mm256_castps_si256(isz));
        b = _mm256_blendv_epi8(nbin, b, _mm256_castps_si256(fin));
        _mm256_store_si256((__m256i *)idx, b);
        for (int k = 0; k < 8; k++)
            h[idx[k]]++;
    }
    for (; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            h[NBINS + 1]++;
        } else if (v == 0.0f) {
            h[NBINS]++;
        } else {
            int b = (int)(fabs(v) * scale);
            h[b >= NBINS ? NBINS - 1 : b]++;
        }
    }
}
#endif

/* Folds one tensor's finite range [lo, hi] into s (min/max, the moving
 * average, the histogram's range); false when nothing was finite. */
static bool update_range(tstat *s, double lo, double hi)
{
    if (lo > hi)
        return false; /* nothing finite */
    double amax = fmax(-lo, hi);
    if (lo < s->min)
        s->min = lo;
    if (hi > s->max)
        s->max = hi;
    if (!s->ma_init) {
        s->ma_min = lo;
        s->ma_max = hi;
        s->ma_init = 1;
    } else {
        /* ORT's and PyTorch's moving-average observer constant */
        s->ma_min += 0.01 * (lo - s->ma_min);
        s->ma_max += 0.01 * (hi - s->ma_max);
    }
    if (amax > s->amax) {
        if (s->amax == 0) {
            s->amax = amax;
        } else {
            /* grow by a power of two and merge bins: the old edges stay edges */
            int f = 1;
            while (s->amax * f < amax)
                f *= 2;
            uint64_t nh[NBINS] = {0};
            for (int b = 0; b < NBINS; b++)
                nh[b / f] += s->hist[b];
            memcpy(s->hist, nh, sizeof nh);
            s->amax *= f;
        }
    }
    return true;
}

static void observe_floats(tstat *s, const float *x, int64_t n)
{
    double lo = INFINITY, hi = -INFINITY;
    s->seen += (uint64_t)n;
#ifdef CALIB_X86
    bool avx2 = __builtin_cpu_supports("avx2");
    if (avx2) {
        float l, h;
        minmax_avx2(x, n, &l, &h);
        lo = l;
        hi = h;
    } else
#endif
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            if (!isfinite(v))
                continue;
            if (v < lo)
                lo = v;
            if (v > hi)
                hi = v;
        }
    if (!update_range(s, lo, hi))
        return;
    double scale = s->amax > 0 ? NBINS / s->amax : 0;
#ifdef CALIB_X86
    /* in chunks that a uint32 count cannot overflow */
    for (int64_t c0 = 0; avx2 && c0 < n; c0 += (int64_t)1 << 30) {
        static _Thread_local uint32_t h[NBINS + 2];
        memset(h, 0, sizeof h);
        int64_t len = n - c0 < ((int64_t)1 << 30) ? n - c0 : (int64_t)1 << 30;
        hist_avx2(x + c0, len, scale, h);
        for (int b = 0; b < NBINS; b++)
            s->hist[b] += h[b];
        s->zeros += h[NBINS];
        s->count += (uint64_t)len - h[NBINS + 1];
    }
    if (avx2)
        return;
#endif
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        s->count++;
        if (v == 0.0f) {
            s->zeros++;
            continue;
        }
        int b = (int)(fabs(v) * scale);
        s->hist[b >= NBINS ? NBINS - 1 : b]++;
    }
}

/* observe_floats on device memory: the same statistics from the device
 * kernels (cuda_api.h: min/max, the histogram counted exactly as above);
 * only they come back. */
static void observe_floats_device(observer *o, tstat *s, const float *x, int64_t n)
{
    float lo, hi;
    s->seen += (uint64_t)n;
    if (hpcz_device_minmax(x, n, &lo, &hi, &o->err)) {
        o->failed = 1;
        return;
    }
    if (!update_range(s, lo, hi))
        return;
    static _Thread_local uint64_t h[NBINS + 2];
    memset(h, 0, sizeof h);
    if (hpcz_device_histogram(x, n, s->amax > 0 ? NBINS / s->amax : 0, NBINS, h, &o->err)) {
        o->failed = 1;
        return;
    }
    for (int b = 0; b < NBINS; b++)
        s->hist[b] += h[b];
    s->zeros += h[NBINS];
    s->count += (uint64_t)n - h[NBINS + 1];
}

/* Per-sample min and max, summed: slices along axis 0 when it is the batch
 * axis (its size is the batch's sample count), else the tensor as one. */
static void observe_samples(observer *o, tstat *s, const float *x, int64_t numel, int64_t d0,
                            int64_t batch, bool dev)
{
    int64_t n = batch > 1 && d0 == batch && numel % batch == 0 ? batch : 1, per = numel / n;
    for (int64_t b = 0; b < n; b++) {
        float lo = INFINITY, hi = -INFINITY;
        const float *xb = x + b * per;
        if (dev && hpcz_device_minmax(xb, per, &lo, &hi, &o->err)) {
            o->failed = 1;
            return;
        }
#ifdef CALIB_X86
        if (dev)
            ;
        else if (__builtin_cpu_supports("avx2"))
            minmax_avx2(xb, per, &lo, &hi);
        else
#endif
            for (int64_t i = 0; !dev && i < per; i++)
                if (isfinite(xb[i])) {
                    lo = xb[i] < lo ? xb[i] : lo;
                    hi = xb[i] > hi ? xb[i] : hi;
                }
        if (lo > hi)
            continue;
        s->sum_min += lo;
        s->sum_max += hi;
        s->n_samples++;
    }
}

/* Each sample's real tokens of a masked tensor: slices of a (one sample
 * each) under that sample's row of the mask. */
static void observe_samples_masked(observer *o, tstat *s, const hpcz_array *a)
{
    const hpcz_token_mask *tm = &o->mask;
    bool flat = a->dims[0] == tm->batch * tm->seq && a->dims[0] != tm->batch;
    int64_t per = a->numel / tm->batch;
    for (int64_t b = 0; b < tm->batch; b++) {
        hpcz_array sl = *a, sel = {0};
        sl.dims[0] = flat ? tm->seq : 1;
        sl.numel = per;
        sl.data = (float *)a->data + b * per;
        hpcz_token_mask one = {1, tm->seq, tm->keep + b * tm->seq, 0};
        int r = hpcz_token_mask_apply(&one, &sl, 1, &sel);
        if (r < 0) {
            o->failed = 1;
            return;
        }
        const hpcz_array *use = r ? &sel : &sl;
        observe_samples(o, s, use->data, use->numel, 1, 1, false);
        hpcz_array_release(&sel);
    }
}

/* Observes a float tensor: with a token mask, only the real tokens' values.
 * In device memory: the statistics computed there, unless a mask selects
 * tokens (then the tensor is copied back first). */
static void observe(observer *o, tstat *s, const hpcz_array *a)
{
    hpcz_array sel = {0}, host = {0};
    if (hpcz_array_on_device(a)) {
        if (!o->mask.keep) {
            observe_floats_device(o, s, a->data, a->numel);
            if (o->per_sample)
                observe_samples(o, s, a->data, a->numel, a->ndim ? a->dims[0] : 1, o->batch, true);
            return;
        }
        host = *a;
        if (!(host.data = malloc(a->nbytes ? a->nbytes : 1)) ||
            hpcz_device_copy_back(host.data, a->data, a->nbytes, &o->err)) {
            free(host.data);
            o->failed = 1;
            return;
        }
        a = &host;
    }
    int r = hpcz_token_mask_apply(&o->mask, a, 1, &sel);
    if (r < 0) {
        o->failed = 1;
    } else {
        observe_floats(s, r ? sel.data : a->data, r ? sel.numel : a->numel);
        hpcz_array_release(&sel);
        if (o->per_sample && r)
            observe_samples_masked(o, s, a);
        else if (o->per_sample)
            observe_samples(o, s, a->data, a->numel, a->ndim ? a->dims[0] : 1, o->batch, false);
    }
    free(host.data);
}

static void on_tensor(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    observer *o = ctx;
    if (a->dtype != HPCZ_DTYPE_FLOAT || !name)
        return;
    tstat *s = stat_for(o, name);
    if (s)
        observe(o, s, a);
}

/* ------------------------------------------------------------ methods */

static double percentile_amax(const tstat *s, double pct)
{
    if (s->count == 0 || s->amax == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(pct / 100.0 * (double)s->count);
    uint64_t acc = s->zeros;
    if (acc >= want)
        return s->amax / NBINS;
    for (int b = 0; b < NBINS; b++) {
        acc += s->hist[b];
        if (acc >= want)
            return (b + 1) * s->amax / NBINS;
    }
    return s->amax;
}

/* Entropy calibration on |x|: the threshold T whose quantized distribution
 * (`levels` steps over [0, T], values above T clamped to T) has the least
 * KL divergence from the measured one.
 *
 * TensorRT's form compares the two only inside [0, T], the reference with its
 * clipped tail folded into the last bin. That ignores what clipping loses, and
 * on data that does not start near zero it collapses: at the smallest
 * candidate every value is in the tail, reference and candidate are the same
 * single spike, the divergence is 0, and T lands on the smallest |x| (a
 * sigmoid gate in [0.08, 0.76] was clamped to 0.083). Here the reference is
 * the whole histogram and the candidate puts the clipped mass on its top
 * level; where the candidate holds nothing (the clipped tail) it counts as
 * 1e-9, so clipping costs about 20 nats per unit of mass moved. Still, KL
 * over bins spreads each level over its non-empty bins, which rewards
 * clipping data packed near zero whatever the size of the tail (a conv output
 * with 1% of |x| near 14 went to 1.8): T stays at or above the 99.9th
 * percentile of |x|. One-sided data (uint8 over [0, T]) has twice the levels
 * of two-sided. */
static double entropy_amax(const tstat *s, int levels)
{
    if (s->count == 0 || s->amax == 0)
        return 0;
    int last = NBINS - 1;
    while (last > 0 && s->hist[last] == 0)
        last--;
    int nb = last + 1;
    if (nb <= levels)
        return nb * s->amax / NBINS;
    double *p = malloc(NBINS * sizeof *p), *q = malloc(NBINS * sizeof *q);
    if (!p || !q) {
        free(p);
        free(q);
        return s->amax;
    }
    const double eps = 1e-9; /* floor of the candidate where it holds nothing */
    double total = 0;
    for (int b = 0; b < nb; b++)
        total += (double)s->hist[b];
    for (int b = 0; b < nb; b++)
        p[b] = (double)s->hist[b] / total;
    double best = INFINITY;
    int best_i = nb;
    int stride = (nb - levels) / 256 + 1;
    for (int i = nb;; i -= stride) {
        if (i < levels)
            i = levels;
        double tail = 0;
        for (int b = i; b < nb; b++)
            tail += (double)s->hist[b];
        if (tail > 1e-3 * total)
            break; /* below the 99.9th percentile: see above */
        /* candidate: `levels` groups over [0, i), each group's mass spread
         * evenly over its non-empty bins; the clipped tail joins the top group */
        double per = (double)i / levels;
        for (int l = 0; l < levels; l++) {
            int b0 = (int)floor(l * per), b1 = l == levels - 1 ? i : (int)floor((l + 1) * per);
            double sum = l == levels - 1 ? tail : 0;
            int nz = 0;
            for (int b = b0; b < b1; b++) {
                sum += (double)s->hist[b];
                nz += s->hist[b] != 0;
            }
            if (!nz && sum > 0) /* only clipped values: they land on the top bin */
                for (int b = b0; b < b1; b++)
                    q[b] = b == b1 - 1 ? sum : 0;
            else
                for (int b = b0; b < b1; b++)
                    q[b] = s->hist[b] != 0 ? sum / nz : 0;
        }
        for (int b = i; b < nb; b++)
            q[b] = 0;
        double kl = 0;
        for (int b = 0; b < nb; b++) {
            if (p[b] <= 0)
                continue;
            double qq = q[b] / total;
            kl += p[b] * log(p[b] / (qq > eps ? qq : eps));
        }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
        if (i == levels)
            break;
    }
    free(p);
    free(q);
    return best_i * s->amax / NBINS;
}

/* Clipping threshold minimising the expected squared error of a uniform
 * quantizer with `levels` steps over [-T, T] (or [0, T] for one-sided data). */
static double mse_amax(const tstat *s, int levels, bool one_sided)
{
    if (s->count == 0 || s->amax == 0)
        return 0;
    double best = INFINITY, best_t = s->amax;
    for (int k = 8; k <= NBINS; k += 8) {
        double t = k * s->amax / NBINS;
        double step = (one_sided ? t : 2 * t) / (levels - 1);
        double err = 0;
        for (int b = 0; b < NBINS; b++) {
            if (!s->hist[b])
                continue;
            double x = (b + 0.5) * s->amax / NBINS;
            double e = x > t ? (x - t) * (x - t) : step * step / 12.0;
            err += e * (double)s->hist[b];
        }
        if (err < best) {
            best = err;
            best_t = t;
        }
    }
    return best_t;
}

hpcz_status hpcz_calib_method_parse(const char *s, hpcz_calib_opts *o, hpcz_error *err)
{
    o->percentile = 99.99;
    if (!strcmp(s, "minmax"))
        o->method = HPCZ_CALIB_MINMAX;
    else if (!strcmp(s, "moving-minmax") || !strcmp(s, "moving-average"))
        o->method = HPCZ_CALIB_MOVING_MINMAX;
    else if (!strcmp(s, "entropy"))
        o->method = HPCZ_CALIB_ENTROPY;
    else if (!strcmp(s, "mse"))
        o->method = HPCZ_CALIB_MSE;
    else if (!strcmp(s, "mean-minmax"))
        o->method = HPCZ_CALIB_MEAN_MINMAX;
    else if (!strncmp(s, "percentile", 10) && (s[10] == 0 || s[10] == ':')) {
        o->method = HPCZ_CALIB_PERCENTILE;
        if (s[10] == ':') {
            char *end;
            double p = strtod(s + 11, &end);
            if (end == s + 11 || *end || !(p > 50 && p <= 100))
                return hpcz_fail(err, HPCZ_ERR_USAGE, "'%s': the percentile must be in (50, 100]", s);
            o->percentile = p;
        }
    } else {
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "'%s' is not a calibration method (minmax, mean-minmax, moving-minmax, "
                         "percentile:P, entropy, mse)",
                         s);
    }
    return HPCZ_OK;
}

static const char *method_text(const hpcz_calib_opts *o, char *buf, size_t cap)
{
    switch (o->method) {
    case HPCZ_CALIB_MINMAX:
        return "minmax";
    case HPCZ_CALIB_MOVING_MINMAX:
        return "moving-minmax";
    case HPCZ_CALIB_ENTROPY:
        return "entropy";
    case HPCZ_CALIB_MSE:
        return "mse";
    case HPCZ_CALIB_MEAN_MINMAX:
        return "mean-minmax";
    case HPCZ_CALIB_PERCENTILE:
        snprintf(buf, cap, "percentile:%g", o->percentile);
        return buf;
    }
    return "?";
}

static void choose(const tstat *s, const hpcz_calib_opts *o, hpcz_calib_range *r)
{
    double lo = s->min, hi = s->max;
    if (!(lo <= hi)) {
        lo = hi = 0;
    }
    r->seen_min = (float)lo;
    r->seen_max = (float)hi;
    r->finite = s->count;
    r->nonfinite = s->seen - s->count;
    r->abs_p99 = (float)percentile_amax(s, 99.0);
    int levels = 1 << (o->bits > 0 ? o->bits : 8);
    double t = -1;
    switch (o->method) {
    case HPCZ_CALIB_MINMAX:
        break;
    case HPCZ_CALIB_MOVING_MINMAX:
        lo = s->ma_min;
        hi = s->ma_max;
        break;
    case HPCZ_CALIB_PERCENTILE:
        t = percentile_amax(s, o->percentile);
        break;
    case HPCZ_CALIB_ENTROPY:
        /* one-sided data gets every level over [0, T]; two-sided, half */
        t = entropy_amax(s, lo >= 0 ? levels : levels / 2);
        break;
    case HPCZ_CALIB_MSE:
        t = mse_amax(s, levels, lo >= 0);
        break;
    case HPCZ_CALIB_MEAN_MINMAX:
        if (s->n_samples) {
            lo = s->sum_min / (double)s->n_samples;
            hi = s->sum_max / (double)s->n_samples;
        }
        break;
    }
    if (t >= 0) {
        if (lo < -t)
            lo = -t;
        if (hi > t)
            hi = t;
    }
    r->min = (float)(lo < 0 ? lo : 0);
    r->max = (float)(hi > 0 ? hi : 0);
}

static int cmp_range(const void *a, const void *b)
{
    return strcmp(((const hpcz_calib_range *)a)->name, ((const hpcz_calib_range *)b)->name);
}

hpcz_status hpcz_calibrate(hpcz_model *m, hpcz_dataset *d, const hpcz_calib_opts *o,
                           hpcz_calib_table **out, hpcz_error *err)
{
    observer ob = {0};
    hpcz_plan_opts po = {0};
    po.threads = o->threads;
    po.observer = on_tensor;
    po.observer_ctx = &ob;
    po.observer_device = 1; /* on_tensor computes the statistics where the values are */
    hpcz_status st = HPCZ_OK;
    hpcz_plan *plan = hpcz_plan_new(m, &po, err);
    if (!plan)
        return err->status;
    size_t n_in = hpcz_plan_n_inputs(plan), n_out = hpcz_plan_n_outputs(plan);
    hpcz_array *ins = calloc(n_in ? n_in : 1, sizeof *ins);
    hpcz_array *outs = calloc(n_out ? n_out : 1, sizeof *outs);
    if (!ins || !outs) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    int mask_idx = -1;
    if (o->mask_input && (mask_idx = hpcz_plan_input_index(plan, o->mask_input)) < 0) {
        st = hpcz_fail(err, HPCZ_ERR_USAGE, "calibration mask: the model has no input '%s'", o->mask_input);
        goto done;
    }
    size_t total = hpcz_dataset_size(d), bs = hpcz_dataset_batch_size(d);
    for (size_t start = 0; start < total && !st; start += bs) {
        size_t n = total - start < bs ? total - start : bs;
        if ((st = hpcz_dataset_batch(d, start, n, ins, err)))
            break;
        if (mask_idx >= 0) {
            st = hpcz_token_mask_set(&ob.mask, &ins[mask_idx], o->mask_input, err);
            if (!st && ob.mask.batch != (int64_t)n)
                st = hpcz_fail(err, HPCZ_ERR_INVALID, "calibration mask '%s': %lld rows for a batch of %zu samples",
                               o->mask_input, (long long)ob.mask.batch, n);
        }
        for (size_t i = 0; i < n_in && !st; i++) {
            const hpcz_value *v = hpcz_plan_input(plan, i);
            if (ins[i].dtype == HPCZ_DTYPE_FLOAT) {
                tstat *s = stat_for(&ob, v->name);
                if (s) {
                    uint64_t before = s->seen - s->count;
                    ob.batch = (int64_t)n;
                    ob.per_sample = o->method == HPCZ_CALIB_MEAN_MINMAX;
                    observe(&ob, s, &ins[i]);
                    if (s->seen - s->count > before) {
                        /* which sample: the batch's first one holding NaN/Inf */
                        const float *x = ins[i].data;
                        int64_t per = n ? ins[i].numel / (int64_t)n : 0, at = 0;
                        while (at < ins[i].numel && isfinite(x[at]))
                            at++;
                        st = hpcz_fail(err, HPCZ_ERR_INVALID,
                                       "calibration data: input '%s' holds NaN or Inf (sample %zu)",
                                       v->name, start + (size_t)(per ? at / per : 0));
                    }
                }
            }
        }
        if (st) {
            for (size_t i = 0; i < n_in; i++)
                hpcz_array_release(&ins[i]);
            break;
        }
        ob.batch = (int64_t)n;
        ob.per_sample = o->method == HPCZ_CALIB_MEAN_MINMAX;
        st = hpcz_plan_run(plan, ins, outs, err);
        for (size_t i = 0; i < n_in; i++)
            hpcz_array_release(&ins[i]);
        /* graph outputs were observed as node outputs */
        for (size_t i = 0; i < n_out; i++)
            hpcz_array_release(&outs[i]);
        if (ob.failed && !st)
            st = ob.err.status ? hpcz_fail(err, ob.err.status, "%s", ob.err.msg)
                               : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        if (o->progress)
            o->progress(o->progress_ctx, start + n, total);
    }
    if (st)
        goto done;
    hpcz_calib_table *t = calloc(1, sizeof *t);
    if (!t) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    char mb[64];
    t->method = strdup(method_text(o, mb, sizeof mb));
    t->samples = total;
    t->random = hpcz_dataset_is_random(d);
    t->n = ob.n;
    t->r = calloc(ob.n ? ob.n : 1, sizeof *t->r);
    t->hist_bytes = (uint64_t)ob.n * sizeof(tstat);
    if (!t->r || !t->method) {
        hpcz_calib_table_free(t);
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    char **names = calloc(ob.n ? ob.n : 1, sizeof *names);
    for (size_t i = 0; i < ob.n && names; i++) {
        names[i] = ob.t[i]->name;
        ob.t[i]->name = NULL;
        t->r[i].name = names[i];
        /* a graph output is what the model's user reads: clipping it is an
         * error there, never noise spent elsewhere, so it keeps what was seen */
        bool is_out = false;
        for (size_t k = 0; k < m->graph->n_outputs && !is_out; k++)
            is_out = m->graph->outputs[k] && m->graph->outputs[k]->name &&
                     !strcmp(m->graph->outputs[k]->name, names[i]);
        hpcz_calib_opts oo = *o;
        if (is_out && o->method != HPCZ_CALIB_MOVING_MINMAX)
            oo.method = HPCZ_CALIB_MINMAX;
        choose(ob.t[i], &oo, &t->r[i]);
    }
    t->storage = names;
    t->model_fingerprint = hpcz_model_fingerprint(m);
    qsort(t->r, t->n, sizeof *t->r, cmp_range);
    *out = t;
done:
    free(ins);
    free(outs);
    hpcz_plan_free(plan);
    for (size_t i = 0; i < ob.n; i++) {
        free(ob.t[i]->name);
        free(ob.t[i]);
    }
    free(ob.t);
    hpcz_token_mask_release(&ob.mask);
    for (size_t i = 0; i < ob.index.cap; i++)
        free(ob.index.slots ? ob.index.slots[i] : NULL);
    hpcz_valmap_release(&ob.index);
    return st;
}

size_t hpcz_calib_table_nonfinite(const hpcz_calib_table *t, const hpcz_calib_range **first,
                                  const hpcz_calib_range **empty)
{
    size_t n = 0;
    *first = NULL;
    if (empty)
        *empty = NULL;
    for (size_t i = 0; i < t->n; i++) {
        const hpcz_calib_range *r = &t->r[i];
        if (!r->nonfinite)
            continue;
        if (!n++)
            *first = r;
        if (empty && !r->finite && !*empty)
            *empty = r;
    }
    return n;
}

const hpcz_calib_range *hpcz_calib_find(const hpcz_calib_table *t, const char *name)
{
    if (!t)
        return NULL;
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t->r[mid].name, name);
        if (c == 0)
            return &t->r[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void hpcz_calib_table_free(hpcz_calib_table *t)
{
    if (!t)
        return;
    char **names = t->storage;
    for (size_t i = 0; names && i < t->n; i++)
        free(names[i]);
    free(names);
    free(t->r);
    free(t->method);
    free(t);
}

hpcz_status hpcz_calib_table_save(const hpcz_calib_table *t, const char *path, hpcz_error *err)
{
    hpcz_outfile *of = hpcz_outfile_open(path, err);
    if (!of)
        return err->status;
    hpcz_json j;
    hpcz_json_init(&j, hpcz_outfile_stream(of));
    hpcz_json_object_begin(&j, NULL);
    hpcz_json_string(&j, "schema", "hpcz.calibration");
    hpcz_json_int(&j, "version", 1);
    hpcz_json_string(&j, "method", t->method);
    hpcz_json_uint(&j, "samples", t->samples);
    hpcz_json_bool(&j, "random_data", t->random);
    if (t->model_fingerprint) {
        char fp[17];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)t->model_fingerprint);
        hpcz_json_string(&j, "model_fingerprint", fp);
    }
    hpcz_json_object_begin(&j, "tensors");
    for (size_t i = 0; i < t->n; i++) {
        hpcz_json_object_begin(&j, t->r[i].name);
        hpcz_json_double(&j, "min", t->r[i].min);
        hpcz_json_double(&j, "max", t->r[i].max);
        hpcz_json_double(&j, "seen_min", t->r[i].seen_min);
        hpcz_json_double(&j, "seen_max", t->r[i].seen_max);
        hpcz_json_double(&j, "abs_p99", t->r[i].abs_p99);
        hpcz_json_object_end(&j);
    }
    hpcz_json_object_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
    return hpcz_outfile_commit(of, err);
}

hpcz_calib_table *hpcz_calib_table_load(const char *path, hpcz_error *err)
{
    uint8_t *buf;
    size_t len;
    if (hpcz_file_read(path, (uint64_t)1 << 30, &buf, &len, err))
        return NULL;
    hpcz_jval *doc = hpcz_json_parse((const char *)buf, len, err);
    free(buf);
    if (!doc)
        return NULL;
    hpcz_calib_table *t = NULL;
    const hpcz_jval *schema = hpcz_json_get(doc, "schema"), *ver = hpcz_json_get(doc, "version");
    const hpcz_jval *tens = hpcz_json_get(doc, "tensors");
    if (!schema || schema->type != HPCZ_JSON_STRING || strcmp(schema->s, "hpcz.calibration")) {
        hpcz_fail(err, HPCZ_ERR_PARSE, "not a calibration table (schema is not hpcz.calibration)");
        goto out;
    }
    if (!ver || ver->type != HPCZ_JSON_NUMBER || ver->num != 1) {
        hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "calibration table version %g is not supported (1 is)",
                  ver && ver->type == HPCZ_JSON_NUMBER ? ver->num : 0.0);
        goto out;
    }
    if (!tens || tens->type != HPCZ_JSON_OBJECT) {
        hpcz_fail(err, HPCZ_ERR_PARSE, "calibration table without \"tensors\"");
        goto out;
    }
    t = calloc(1, sizeof *t);
    char **names = t ? calloc(tens->n ? tens->n : 1, sizeof *names) : NULL;
    if (!t || !names) {
        free(t);
        t = NULL;
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    t->storage = names;
    t->r = calloc(tens->n ? tens->n : 1, sizeof *t->r);
    const hpcz_jval *meth = hpcz_json_get(doc, "method"), *smp = hpcz_json_get(doc, "samples");
    t->method = strdup(meth && meth->type == HPCZ_JSON_STRING ? meth->s : "unknown");
    t->samples = smp && smp->type == HPCZ_JSON_NUMBER ? (size_t)smp->num : 0;
    const hpcz_jval *rnd = hpcz_json_get(doc, "random_data");
    t->random = rnd && rnd->type == HPCZ_JSON_BOOL && rnd->b;
    const hpcz_jval *fp = hpcz_json_get(doc, "model_fingerprint");
    if (fp && fp->type == HPCZ_JSON_STRING)
        t->model_fingerprint = strtoull(fp->s, NULL, 16);
    for (size_t i = 0; i < tens->n && t->r; i++) {
        const hpcz_jval *e = tens->items[i];
        const hpcz_jval *mn = hpcz_json_get(e, "min"), *mx = hpcz_json_get(e, "max");
        if (!mn || !mx || mn->type != HPCZ_JSON_NUMBER || mx->type != HPCZ_JSON_NUMBER ||
            !(mn->num <= mx->num)) {
            hpcz_fail(err, HPCZ_ERR_PARSE, "tensor '%s': needs numbers min <= max", tens->keys[i]);
            hpcz_calib_table_free(t);
            t = NULL;
            goto out;
        }
        names[i] = strdup(tens->keys[i]);
        t->r[i].name = names[i];
        t->r[i].min = (float)mn->num;
        t->r[i].max = (float)mx->num;
        const hpcz_jval *smin = hpcz_json_get(e, "seen_min"), *smax = hpcz_json_get(e, "seen_max");
        t->r[i].seen_min = smin && smin->type == HPCZ_JSON_NUMBER ? (float)smin->num : t->r[i].min;
        t->r[i].seen_max = smax && smax->type == HPCZ_JSON_NUMBER ? (float)smax->num : t->r[i].max;
        const hpcz_jval *pq = hpcz_json_get(e, "abs_p99");
        t->r[i].abs_p99 = pq && pq->type == HPCZ_JSON_NUMBER ? (float)pq->num : 0.0f;
        t->n++;
    }
    if (t)
        qsort(t->r, t->n, sizeof *t->r, cmp_range);
out:
    hpcz_json_free(doc);
    return t;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    uint8_t b[16];
    uint64_t x = hpcz_hpcz_checksum(p, n);
    memcpy(b, &h, 8);
    memcpy(b + 8, &x, 8);
    return hpcz_hpcz_checksum(b, sizeof b);
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

uint64_t hpcz_model_fingerprint(const hpcz_model *m)
{
    const hpcz_graph *g = m->graph;
    uint64_t h = 0x68706378; /* "hpcz" */
    for (size_t i = 0; i < g->n_inputs; i++)
        h = mix_str(h, g->inputs[i] ? g->inputs[i]->name : "");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        h = mix_str(h, n->op_type);
        for (size_t k = 0; k < n->n_outputs; k++)
            h = mix_str(h, n->outputs[k] ? n->outputs[k]->name : "");
    }
    for (size_t i = 0; i < g->n_inits; i++) {
        hpcz_tensor *t = g->inits[i];
        hpcz_error err;
        h = mix_str(h, t->name);
        const void *d = t->numel ? hpcz_tensor_bytes(t, &err) : NULL;
        if (d)
            h = mix(h, d, t->nbytes);
    }
    return h ? h : 1;
}

hpcz_status hpcz_calib_table_check(const hpcz_calib_table *t, const hpcz_model *m, hpcz_error *err)
{
    if (!t->n)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the calibration table holds no tensor ranges");
    size_t found = 0;
    for (size_t i = 0; i < t->n; i++)
        found += hpcz_graph_find_value(m->graph, t->r[i].name) != NULL;
    const hpcz_graph *g = m->graph;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const hpcz_value *v = g->inputs[i];
        if (v && v->dtype == HPCZ_DTYPE_FLOAT && !v->init && !hpcz_calib_find(t, v->name))
            return hpcz_fail(err, HPCZ_ERR_USAGE,
                             "the calibration table has no range for the model's input '%s' "
                             "(%zu of its %zu tensors are in this model): made for another model?",
                             v->name, found, t->n);
    }
    if (found * 10 < t->n * 9)
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "only %zu of the calibration table's %zu tensors are in this model: made "
                         "for another model?", found, t->n);
    uint64_t fp = hpcz_model_fingerprint(m);
    if (t->model_fingerprint && t->model_fingerprint != fp)
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "the calibration table was measured on a model with other weights or "
                         "structure (fingerprint %016llx, this model %016llx): calibrate again",
                         (unsigned long long)t->model_fingerprint, (unsigned long long)fp);
    return HPCZ_OK;
}

/* ------------------------------------------------- per-channel |x| maxima */

typedef struct chan_obs {
    size_t n;
    const char *const *names;
    const int64_t *channels;
    double **absmax;
    hpcz_token_mask mask;
    int failed;
} chan_obs;

static void on_channels(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    chan_obs *o = ctx;
    if (!name || a->dtype != HPCZ_DTYPE_FLOAT || !a->ndim)
        return;
    for (size_t i = 0; i < o->n; i++) {
        int64_t C = o->channels[i];
        if (strcmp(o->names[i], name) || a->dims[a->ndim - 1] != C)
            continue;
        hpcz_array sel = {0};
        int r = hpcz_token_mask_apply(&o->mask, a, C, &sel);
        if (r < 0) {
            o->failed = 1;
            return;
        }
        const hpcz_array *use = r ? &sel : a;
        const float *x = use->data;
        double *mx = o->absmax[i];
        for (int64_t k = 0; k < use->numel; k++) {
            double v = fabs(x[k]);
            if (isfinite(v) && v > mx[k % C])
                mx[k % C] = v;
        }
        hpcz_array_release(&sel);
    }
}

/* Runs m on the samples of `data` with `fn` observing every tensor it
 * computes; `on_batch` (may be NULL) sees each batch's inputs first, and
 * the token mask of that batch is set in *mask when mask_input names it. */
static hpcz_status observe_data(hpcz_model *m, const char *data, size_t max_samples, const char *mask_input,
                                int threads, hpcz_observer_fn fn, void *ctx, hpcz_token_mask *mask,
                                void (*on_batch)(void *ctx, const hpcz_plan *plan, const hpcz_array *ins),
                                hpcz_error *err)
{
    hpcz_plan_opts po = {0};
    po.threads = threads;
    po.observer = fn;
    po.observer_ctx = ctx;
    hpcz_plan *plan = hpcz_plan_new(m, &po, err);
    if (!plan)
        return err->status;
    hpcz_dataset *d = hpcz_dataset_open(data, plan, max_samples, err);
    hpcz_status st = d ? HPCZ_OK : err->status;
    int mask_idx = mask_input ? hpcz_plan_input_index(plan, mask_input) : -1;
    if (!st && mask_input && mask_idx < 0)
        st = hpcz_fail(err, HPCZ_ERR_USAGE, "calibration mask: the model has no input '%s'", mask_input);
    size_t n_in = hpcz_plan_n_inputs(plan), n_out = hpcz_plan_n_outputs(plan);
    hpcz_array *ins = calloc(n_in ? n_in : 1, sizeof *ins), *outs = calloc(n_out ? n_out : 1, sizeof *outs);
    if (!st && (!ins || !outs))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    size_t total = d ? hpcz_dataset_size(d) : 0, bs = d ? hpcz_dataset_batch_size(d) : 1;
    for (size_t start = 0; start < total && !st; start += bs) {
        size_t k = total - start < bs ? total - start : bs;
        if ((st = hpcz_dataset_batch(d, start, k, ins, err)))
            break;
        if (mask_idx >= 0)
            st = hpcz_token_mask_set(mask, &ins[mask_idx], mask_input, err);
        if (!st && on_batch)
            on_batch(ctx, plan, ins);
        if (!st)
            st = hpcz_plan_run(plan, ins, outs, err);
        for (size_t i = 0; i < n_in; i++)
            hpcz_array_release(&ins[i]);
        for (size_t i = 0; i < n_out; i++)
            hpcz_array_release(&outs[i]);
    }
    free(ins);
    free(outs);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    return st;
}

hpcz_status hpcz_channel_absmax(hpcz_model *m, const char *data, size_t max_samples, const char *mask_input,
                                int threads, size_t n, const char *const *names, const int64_t *channels,
                                double **absmax, hpcz_error *err)
{
    chan_obs ob = {n, names, channels, absmax, {0}, 0};
    hpcz_status st = observe_data(m, data, max_samples, mask_input, threads, on_channels, &ob, &ob.mask, NULL, err);
    if (!st && ob.failed)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_token_mask_release(&ob.mask);
    return st;
}

/* ------------------------------------------------- per-channel means */

typedef struct mean_obs {
    size_t n;
    const char *const *names;
    const int *axes;
    const int64_t *channels;
    double **sum;
    double *count; /* per tensor: values summed into each channel */
    hpcz_token_mask mask;
    int failed;
    int64_t *dims_seen; /* n x HPCZ_ARRAY_MAX_RANK, may be NULL */
} mean_obs;

static void add_means(mean_obs *o, size_t i, const hpcz_array *in)
{
    int ax = o->axes[i] < 0 ? in->ndim + o->axes[i] : o->axes[i];
    int64_t C = o->channels[i];
    if (in->dtype != HPCZ_DTYPE_FLOAT || ax < 0 || ax >= in->ndim || in->dims[ax] != C)
        return;
    for (int k = 0; o->dims_seen && k < HPCZ_ARRAY_MAX_RANK; k++)
        o->dims_seen[i * HPCZ_ARRAY_MAX_RANK + k] = k < in->ndim ? in->dims[k] : 0;
    /* channels last: real tokens only (rows of C values) */
    hpcz_array sel = {0};
    int r = ax == in->ndim - 1 ? hpcz_token_mask_apply(&o->mask, in, C, &sel) : 0;
    if (r < 0) {
        o->failed = 1;
        return;
    }
    const hpcz_array *a = r ? &sel : in;
    if (r)
        ax = a->ndim - 1;
    int64_t inner = 1;
    for (int k = ax + 1; k < a->ndim; k++)
        inner *= a->dims[k];
    const float *x = a->data;
    double *s = o->sum[i];
    /* non-finite values (rare, warned about by calibration) count as absent */
    for (int64_t k = 0, c = 0, r = 0; k < a->numel; k++) {
        if (isfinite(x[k]))
            s[c] += x[k];
        if (++r == inner) {
            r = 0;
            c = c + 1 == C ? 0 : c + 1;
        }
    }
    o->count[i] += (double)(a->numel / C);
    hpcz_array_release(&sel);
}

static void on_means(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    mean_obs *o = ctx;
    for (size_t i = 0; name && i < o->n; i++)
        if (!strcmp(o->names[i], name))
            add_means(o, i, a);
}

/* graph inputs are not observed: their batches are */
static void on_mean_inputs(void *ctx, const hpcz_plan *plan, const hpcz_array *ins)
{
    for (size_t k = 0; k < hpcz_plan_n_inputs(plan); k++)
        on_means(ctx, NULL, hpcz_plan_input(plan, k)->name, &ins[k]);
}

hpcz_status hpcz_channel_mean(hpcz_model *m, const char *data, size_t max_samples, const char *mask_input,
                              int threads, size_t n, const char *const *names, const int *axes,
                              const int64_t *channels, double **mean, int64_t *dims_seen, hpcz_error *err)
{
    double *count = calloc(n ? n : 1, sizeof *count);
    if (!count)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    mean_obs ob = {n, names, axes, channels, mean, count, {0}, 0, dims_seen};
    hpcz_status st = observe_data(m, data, max_samples, mask_input, threads, on_means, &ob, &ob.mask, on_mean_inputs,
                                  err);
    if (!st && ob.failed)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_token_mask_release(&ob.mask);
    for (size_t i = 0; i < n && !st; i++)
        for (int64_t c = 0; c < channels[i]; c++)
            mean[i][c] = count[i] > 0 ? mean[i][c] / count[i] : 0;
    free(count);
    return st;
}
