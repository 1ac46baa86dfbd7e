/*
 * util.c - arrays, shapes, broadcasting and dtype conversions for kernels.
 */
#include "rt.h"

#if defined(__F16C__) || defined(__x86_64__)
#include <immintrin.h>
#endif

void *rt_alloc(size_t n)
{
    void *p = NULL;
    size_t sz = (n + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN;
    if (posix_memalign(&p, RT_ALIGN, sz ? sz : RT_ALIGN))
        return NULL;
    return p;
}

void rt_free(void *p)
{
    free(p);
}

bool rt_env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0");
}

bool rt_cpu_avx512(void)
{
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           !rt_env_on("HPCZ_CPU_NO_AVX512");
#else
    return false;
#endif
}

void *rt_scratch_get(rt_scratch *s, size_t n)
{
    if (n > s->cap) {
        void *p = rt_alloc(n);
        if (!p)
            return NULL;
        rt_free(s->p);
        s->p = p;
        s->cap = n;
    }
    return s->p;
}

hpcz_status hpcz_array_alloc(hpcz_array *a, int dtype, int ndim, const int64_t *dims,
                             hpcz_error *err)
{
    memset(a, 0, sizeof *a);
    if (ndim < 0 || ndim > HPCZ_ARRAY_MAX_RANK)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "rank %d beyond %d", ndim,
                         HPCZ_ARRAY_MAX_RANK);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] && n > HPCZ_MAX_NUMEL / dims[i]))
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "shape too large");
        n *= dims[i];
        a->dims[i] = dims[i];
    }
    if (hpcz_dtype_bits(dtype) == 0)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "dtype %s has no fixed size",
                         hpcz_dtype_name(dtype));
    a->dtype = dtype;
    a->ndim = ndim;
    a->numel = n;
    a->nbytes = hpcz_dtype_nbytes(dtype, n);
    a->data = rt_alloc(a->nbytes);
    if (!a->data)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory (%zu bytes)", a->nbytes);
    memset(a->data, 0, a->nbytes);
    return HPCZ_OK;
}

void hpcz_array_release(hpcz_array *a)
{
    if (!a)
        return;
    rt_free(a->data);
    memset(a, 0, sizeof *a);
}

hpcz_status hpcz_array_from_tensor(hpcz_tensor *t, hpcz_array *out, hpcz_error *err)
{
    memset(out, 0, sizeof *out);
    if (t->ndim > HPCZ_ARRAY_MAX_RANK)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "rank %d beyond %d", t->ndim,
                         HPCZ_ARRAY_MAX_RANK);
    if (hpcz_dtype_bits(t->dtype) == 0)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "tensors of dtype %s are not supported",
                         hpcz_dtype_name(t->dtype));
    void *d = hpcz_tensor_data(t, err);
    if (!d)
        return err ? err->status : HPCZ_ERR_INVALID;
    hpcz_status st = hpcz_array_alloc(out, t->dtype, t->ndim, t->dims, err);
    if (st)
        return st;
    if (t->nbytes < out->nbytes) {
        hpcz_array_release(out);
        return hpcz_fail(err, HPCZ_ERR_INVALID, "tensor payload too short");
    }
    if (out->nbytes)
        memcpy(out->data, d, out->nbytes);
    return HPCZ_OK;
}

int64_t rt_numel(int ndim, const int64_t *dims)
{
    /* saturates: a count past int64 is INT64_MAX, which every allocation
     * refuses (the product of hostile dims once overflowed: UB) */
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(n, dims[i], &n))
            return INT64_MAX;
    return n;
}

bool rt_same_shape(const hpcz_array *a, const hpcz_array *b)
{
    return a->ndim == b->ndim && !memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof *a->dims);
}

bool rt_broadcast_shape(const hpcz_array *const *a, size_t n, int *ndim, int64_t *dims)
{
    int r = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] && a[i]->ndim > r)
            r = a[i]->ndim;
    for (int d = 0; d < r; d++)
        dims[d] = 1;
    for (size_t i = 0; i < n; i++) {
        if (!a[i])
            continue;
        int off = r - a[i]->ndim;
        for (int d = 0; d < a[i]->ndim; d++) {
            int64_t x = a[i]->dims[d];
            int64_t *y = &dims[off + d];
            if (x == *y || x == 1)
                continue;
            if (*y == 1)
                *y = x;
            else
                return false;
        }
    }
    *ndim = r;
    return true;
}

int rt_axis(int64_t axis, int rank)
{
    if (axis < -rank || axis >= (rank ? rank : 1))
        return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

size_t rt_esize(int dtype)
{
    return (size_t)(hpcz_dtype_bits(dtype) / 8);
}

bool rt_ints(const hpcz_array *a, int64_t *out, size_t max)
{
    if ((a->dtype != HPCZ_DTYPE_INT64 && a->dtype != HPCZ_DTYPE_INT32) || (size_t)a->numel > max)
        return false;
    for (int64_t i = 0; i < a->numel; i++)
        out[i] = rt_int_at(a, i);
    return true;
}

/* ---- fp16 / bf16 */

float rt_h2f(uint16_t h)
{
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        if (m == 0)
            u = s;
        else {
            e = 127 - 15 + 1;
            while (!(m & 0x400)) {
                m <<= 1;
                e--;
            }
            m &= 0x3ff;
            u = s | (e << 23) | (m << 13);
        }
    } else if (e == 31)
        u = s | 0x7f800000 | (m << 13);
    else
        u = s | ((e + 127 - 15) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

uint16_t rt_f2h(float f)
{
#ifdef __F16C__
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t m = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (uint32_t)(e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
#endif
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) static void h2f_f16c(const uint16_t *h, float *f, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++)
        f[i] = _cvtsh_ss(h[i]);
}

__attribute__((target("avx,f16c"))) static void f2h_f16c(const float *f, uint16_t *h, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        h[i] = _cvtss_sh(f[i], _MM_FROUND_TO_NEAREST_INT);
}

/* 16 at a time with AVX-512 (the same IEEE conversions), the rest F16C */
__attribute__((target("avx512f,f16c"))) static void h2f_512(const uint16_t *h, float *f, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    h2f_f16c(h + i, f + i, n - i);
}

__attribute__((target("avx512f,f16c"))) static void f2h_512(const float *f, uint16_t *h, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(h + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
    f2h_f16c(f + i, h + i, n - i);
}

/* 0: portable, 1: F16C, 2: AVX-512 (asked once; HPCZ_CPU_NO_AVX512 keeps 1) */
static int f16_isa(void)
{
    static int isa = -1;
    int v = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = !(__builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c")) ? 0
            : rt_cpu_avx512()                                                   ? 2
                                                                                : 1;
        __atomic_store_n(&isa, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

void rt_h2f_n(const uint16_t *h, float *f, int64_t n)
{
#if defined(__x86_64__)
    switch (f16_isa()) {
    case 2: h2f_512(h, f, n); return;
    case 1: h2f_f16c(h, f, n); return;
    default: break;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        f[i] = rt_h2f(h[i]);
}

void rt_f2h_n(const float *f, uint16_t *h, int64_t n)
{
#if defined(__x86_64__)
    switch (f16_isa()) {
    case 2: f2h_512(f, h, n); return;
    case 1: f2h_f16c(f, h, n); return;
    default: break;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        h[i] = rt_f2h(f[i]);
}

#if defined(__x86_64__)
/* rt_round_f16_n in registers: vcvtps2ph then vcvtph2ps, 8 or 16 at a time,
 * the tail through a masked load and store */
__attribute__((target("avx,f16c"))) static void round_f16c(float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(y + i),
                                                                _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++)
        y[i] = _cvtsh_ss(_cvtss_sh(y[i], _MM_FROUND_TO_NEAREST_INT));
}

__attribute__((target("avx512f,f16c"))) static void round_512(float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(y + i),
                                                                _MM_FROUND_TO_NEAREST_INT)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, y + i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)));
    }
}
#endif

void rt_round_f16_n(float *y, int64_t n)
{
#if defined(__x86_64__)
    switch (f16_isa()) {
    case 2: round_512(y, n); return;
    case 1: round_f16c(y, n); return;
    default: break;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        y[i] = rt_h2f(rt_f2h(y[i]));
}

/* ---- 32-bit transposes */

#if defined(__x86_64__)
/* Rows [0, rows) x columns [0, cols), both multiples of 8, in 8 x 8 blocks
 * transposed in registers (unpack, shuffle, swap of 128-bit halves). */
__attribute__((target("avx"))) static void transpose8_avx(const float *x, int64_t rows,
                                                           int64_t cols, int64_t ldx, float *y,
                                                           int64_t ldy)
{
    for (int64_t i = 0; i < rows; i += 8)
        for (int64_t j = 0; j < cols; j += 8) {
            const float *s = x + i * ldx + j;
            __m256 r[8], t[8], u[8];
            for (int k = 0; k < 8; k++)
                r[k] = _mm256_loadu_ps(s + k * ldx);
            for (int k = 0; k < 8; k += 2) {
                t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
                t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
            }
            for (int k = 0; k < 8; k += 4) {
                u[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
                u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
                u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
                u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            float *d = y + j * ldy + i;
            for (int k = 0; k < 4; k++) {
                _mm256_storeu_ps(d + k * ldy, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
                _mm256_storeu_ps(d + (k + 4) * ldy, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
            }
        }
}
#endif

static void transpose_blocks(const uint32_t *x, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                             int64_t ldx, uint32_t *y, int64_t ldy)
{
    for (int64_t ib = i0; ib < i1; ib += 16)
        for (int64_t jb = j0; jb < j1; jb += 16)
            for (int64_t j = jb; j < jb + 16 && j < j1; j++)
                for (int64_t i = ib; i < ib + 16 && i < i1; i++)
                    y[j * ldy + i] = x[i * ldx + j];
}

void rt_transpose32(const void *xv, int64_t rows, int64_t cols, int64_t ldx, void *yv, int64_t ldy)
{
    const uint32_t *x = xv;
    uint32_t *y = yv;
    int64_t r8 = 0, c8 = 0;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx")) {
        r8 = rows / 8 * 8;
        c8 = cols / 8 * 8;
        transpose8_avx(xv, r8, c8, ldx, yv, ldy);
    }
#endif
    /* the last columns of the first r8 rows, then the last rows (all of it
     * without AVX), in 16 x 16 blocks */
    transpose_blocks(x, 0, r8, c8, cols, ldx, y, ldy);
    transpose_blocks(x, r8, rows, 0, cols, ldx, y, ldy);
}

uint16_t rt_f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* ---- generic element access */

double rt_load_d(const void *p, int dtype, int64_t i)
{
    switch (dtype) {
    case HPCZ_DTYPE_FLOAT: return ((const float *)p)[i];
    case HPCZ_DTYPE_DOUBLE: return ((const double *)p)[i];
    case HPCZ_DTYPE_FLOAT16: return rt_h2f(((const uint16_t *)p)[i]);
    case HPCZ_DTYPE_BFLOAT16: return rt_bf2f(((const uint16_t *)p)[i]);
    case HPCZ_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
    default: return (double)rt_load_i(p, dtype, i);
    }
}

int64_t rt_load_i(const void *p, int dtype, int64_t i)
{
    switch (dtype) {
    case HPCZ_DTYPE_INT8: return ((const int8_t *)p)[i];
    case HPCZ_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case HPCZ_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case HPCZ_DTYPE_INT16: return ((const int16_t *)p)[i];
    case HPCZ_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case HPCZ_DTYPE_INT32: return ((const int32_t *)p)[i];
    case HPCZ_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case HPCZ_DTYPE_INT64: return ((const int64_t *)p)[i];
    case HPCZ_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i];
    default: {
        double d = rt_load_d(p, dtype, i);
        if (d != d)
            return INT64_MIN;
        if (d >= 9.2233720368547758e18)
            return INT64_MAX;
        if (d <= -9.2233720368547758e18)
            return INT64_MIN;
        return (int64_t)d;
    }
    }
}

void rt_store_d(void *p, int dtype, int64_t i, double v)
{
    switch (dtype) {
    case HPCZ_DTYPE_FLOAT: ((float *)p)[i] = (float)v; break;
    case HPCZ_DTYPE_DOUBLE: ((double *)p)[i] = v; break;
    case HPCZ_DTYPE_FLOAT16: ((uint16_t *)p)[i] = rt_f2h((float)v); break;
    case HPCZ_DTYPE_BFLOAT16: ((uint16_t *)p)[i] = rt_f2bf((float)v); break;
    case HPCZ_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: {
        /* float -> int conversion truncates toward zero (C and numpy agree);
         * out-of-range values are undefined in both, clamp to stay defined */
        int64_t x;
        if (v != v)
            x = 0;
        else if (v >= 9.2233720368547758e18)
            x = INT64_MAX;
        else if (v <= -9.2233720368547758e18)
            x = INT64_MIN;
        else
            x = (int64_t)v;
        if (dtype == HPCZ_DTYPE_UINT64 && v >= 9.2233720368547758e18 && v < 1.8446744073709552e19)
            x = (int64_t)(uint64_t)v;
        rt_store_i(p, dtype, i, x);
    }
    }
}

void rt_store_i(void *p, int dtype, int64_t i, int64_t v)
{
    switch (dtype) {
    case HPCZ_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case HPCZ_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case HPCZ_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case HPCZ_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case HPCZ_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case HPCZ_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case HPCZ_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case HPCZ_DTYPE_INT64: ((int64_t *)p)[i] = v; break;
    case HPCZ_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: rt_store_d(p, dtype, i, (double)v); break;
    }
}

/* ---- broadcasting */

void rt_bcast_init(rt_bcast *b, const hpcz_array *out, const hpcz_array *const *ins, int n)
{
    int r = out->ndim;
    int64_t str[4][RT_MAX_RANK + 1];
    int64_t dims[RT_MAX_RANK + 1];
    for (int k = 0; k < n; k++) {
        int off = r - ins[k]->ndim;
        int64_t s = 1;
        for (int d = r - 1; d >= 0; d--) {
            int64_t dim = d >= off ? ins[k]->dims[d - off] : 1;
            str[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    /* merge adjacent dims where every input is either contiguous across the
     * boundary or broadcast along both */
    int nd = 0;
    for (int d = 0; d < r; d++) {
        if (out->dims[d] == 1)
            continue;
        if (nd > 0) {
            bool ok = true;
            for (int k = 0; k < n && ok; k++) {
                int64_t prev = str[k][nd - 1], cur = str[k][d];
                ok = (prev == 0 && cur == 0) || (cur != 0 && prev == cur * out->dims[d]);
            }
            if (ok) {
                dims[nd - 1] *= out->dims[d];
                for (int k = 0; k < n; k++)
                    str[k][nd - 1] = str[k][d];
                continue;
            }
        }
        dims[nd] = out->dims[d];
        for (int k = 0; k < n; k++)
            str[k][nd] = str[k][d];
        nd++;
    }
    if (nd == 0) {
        dims[0] = 1;
        for (int k = 0; k < n; k++)
            str[k][0] = 0;
        nd = 1;
    }
    b->n = n;
    b->inner = dims[nd - 1];
    for (int k = 0; k < n; k++)
        b->istr[k] = str[k][nd - 1] ? 1 : 0;
    b->nd = nd - 1;
    b->rows = 1;
    for (int d = 0; d < nd - 1; d++) {
        b->dims[d] = dims[d];
        b->rows *= dims[d];
        for (int k = 0; k < n; k++)
            b->str[k][d] = str[k][d];
    }
}

void rt_bcast_row(const rt_bcast *b, int64_t row, int64_t *off)
{
    for (int k = 0; k < b->n; k++)
        off[k] = 0;
    for (int d = b->nd - 1; d >= 0; d--) {
        int64_t i = row % b->dims[d];
        row /= b->dims[d];
        for (int k = 0; k < b->n; k++)
            off[k] += i * b->str[k][d];
    }
}
