/*
 * core.c - errors, dtype traits, arena, name map, string buffer.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

_Noreturn void hpcz_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "hpcz: internal error: %s:%d: assertion '%s' failed\n", file, line, what);
    abort();
}

/* ------------------------------------------------------------ errors */

hpcz_status hpcz_fail(hpcz_error *err, hpcz_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = st;
    }
    return st;
}

void hpcz_error_prefix(hpcz_error *err, const char *prefix)
{
    if (!err || !prefix)
        return;
    char tmp[sizeof err->msg];
    memcpy(tmp, err->msg, sizeof tmp);
    size_t n = strlen(prefix);
    if (n + 2 >= sizeof err->msg)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t rest = sizeof err->msg - n - 2;
    size_t tl = strnlen(tmp, rest - 1);
    memcpy(err->msg + n + 2, tmp, tl);
    err->msg[n + 2 + tl] = 0;
}

static const char *const status_names[HPCZ_ERR_COUNT] = {
    [HPCZ_OK] = "ok",
    [HPCZ_ERR_IO] = "i/o error",
    [HPCZ_ERR_PARSE] = "parse error",
    [HPCZ_ERR_INVALID] = "invalid model",
    [HPCZ_ERR_UNSUPPORTED] = "not supported",
    [HPCZ_ERR_NOMEM] = "out of memory",
    [HPCZ_ERR_USAGE] = "usage error",
    [HPCZ_ERR_CANCELLED] = "cancelled",
};

const char *hpcz_status_name(hpcz_status st)
{
    return (unsigned)st < HPCZ_ERR_COUNT ? status_names[st] : "unknown status";
}

/* ------------------------------------------------------------ dtypes */

typedef struct dtype_traits {
    const char *name;
    int bits;
    bool is_float;
} dtype_traits;

static const dtype_traits dtypes[HPCZ_DTYPE_COUNT] = {
    [HPCZ_DTYPE_UNDEFINED] = {"undefined", 0, false},
    [HPCZ_DTYPE_FLOAT] = {"float", 32, true},
    [HPCZ_DTYPE_UINT8] = {"uint8", 8, false},
    [HPCZ_DTYPE_INT8] = {"int8", 8, false},
    [HPCZ_DTYPE_UINT16] = {"uint16", 16, false},
    [HPCZ_DTYPE_INT16] = {"int16", 16, false},
    [HPCZ_DTYPE_INT32] = {"int32", 32, false},
    [HPCZ_DTYPE_INT64] = {"int64", 64, false},
    [HPCZ_DTYPE_STRING] = {"string", 0, false},
    [HPCZ_DTYPE_BOOL] = {"bool", 8, false},
    [HPCZ_DTYPE_FLOAT16] = {"float16", 16, true},
    [HPCZ_DTYPE_DOUBLE] = {"double", 64, true},
    [HPCZ_DTYPE_UINT32] = {"uint32", 32, false},
    [HPCZ_DTYPE_UINT64] = {"uint64", 64, false},
    [HPCZ_DTYPE_COMPLEX64] = {"complex64", 64, false},
    [HPCZ_DTYPE_COMPLEX128] = {"complex128", 128, false},
    [HPCZ_DTYPE_BFLOAT16] = {"bfloat16", 16, true},
    [HPCZ_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 8, true},
    [HPCZ_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8, true},
    [HPCZ_DTYPE_FLOAT8E5M2] = {"float8e5m2", 8, true},
    [HPCZ_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8, true},
    [HPCZ_DTYPE_UINT4] = {"uint4", 4, false},
    [HPCZ_DTYPE_INT4] = {"int4", 4, false},
    [HPCZ_DTYPE_FLOAT4E2M1] = {"float4e2m1", 4, true},
    [HPCZ_DTYPE_FLOAT8E8M0] = {"float8e8m0", 8, true},
    [HPCZ_DTYPE_UINT2] = {"uint2", 2, false},
    [HPCZ_DTYPE_INT2] = {"int2", 2, false},
};
_Static_assert(HPCZ_ARRAY_SIZE(dtypes) == HPCZ_DTYPE_COUNT, "dtype table out of date");

const char *hpcz_dtype_name(int dtype)
{
    static _Thread_local char buf[24];
    if (dtype >= 0 && dtype < HPCZ_DTYPE_COUNT && dtypes[dtype].name)
        return dtypes[dtype].name;
    snprintf(buf, sizeof buf, "dtype%d", dtype);
    return buf;
}

int hpcz_dtype_bits(int dtype)
{
    return dtype >= 0 && dtype < HPCZ_DTYPE_COUNT ? dtypes[dtype].bits : 0;
}

int hpcz_dtype_is_float(int dtype)
{
    return dtype >= 0 && dtype < HPCZ_DTYPE_COUNT && dtypes[dtype].is_float;
}

size_t hpcz_dtype_nbytes(int dtype, int64_t n)
{
    int bits = hpcz_dtype_bits(dtype);
    if (n <= 0 || bits == 0)
        return 0;
    return (size_t)(((unsigned __int128)n * (unsigned)bits + 7) / 8);
}

/* ------------------------------------------------------------ arena */

struct hpcz_arena_block {
    struct hpcz_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *hpcz_arena_alloc(hpcz_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    struct hpcz_arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 32768 ? size : 32768;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        /* Large one-off blocks go behind the head so the head keeps its free space. */
        if (a->head && size > 32768) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
        a->total += cap;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

void hpcz_arena_release(hpcz_arena *a)
{
    struct hpcz_arena_block *b = a->head;
    while (b) {
        struct hpcz_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

char *hpcz_arena_strndup(hpcz_arena *a, const char *s, size_t n)
{
    char *p = hpcz_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

bool hpcz_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    size_t bytes;
    if (!hpcz_mul_size(ncap, elem, &bytes))
        return false;
    void *p = realloc(*arr, bytes);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* ------------------------------------------------------------ name map */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

hpcz_value *hpcz_valmap_get(const hpcz_valmap *m, const char *name)
{
    if (!m || !m->cap || !name)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
        hpcz_value *v = m->slots[i];
        if (!v)
            return NULL;
        if (strcmp(v->name, name) == 0)
            return v;
    }
}

bool hpcz_valmap_put(hpcz_valmap *m, hpcz_value *v)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        hpcz_value **ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < m->cap; i++) {
            hpcz_value *o = m->slots[i];
            if (!o)
                continue;
            size_t j = hash_str(o->name) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = o;
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t mask = m->cap - 1;
    size_t i = hash_str(v->name) & mask;
    while (m->slots[i]) {
        if (strcmp(m->slots[i]->name, v->name) == 0) {
            m->slots[i] = v;
            return true;
        }
        i = (i + 1) & mask;
    }
    m->slots[i] = v;
    m->count++;
    return true;
}

void hpcz_valmap_release(hpcz_valmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ strbuf */

void hpcz_strbuf_append(hpcz_strbuf *sb, const char *s, size_t n)
{
    if (!hpcz_grow((void **)&sb->buf, &sb->cap, sb->len + n + 1, 1))
        HPCZ_ASSERT(!"out of memory");
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = 0;
}

void hpcz_strbuf_printf(hpcz_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        hpcz_strbuf_append(sb, tmp, (size_t)n);
        return;
    }
    if (!hpcz_grow((void **)&sb->buf, &sb->cap, sb->len + (size_t)n + 1, 1))
        HPCZ_ASSERT(!"out of memory");
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void hpcz_strbuf_release(hpcz_strbuf *sb)
{
    free(sb->buf);
    memset(sb, 0, sizeof *sb);
}

int hpcz_list_contains(const char *list, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = list; p && *p;) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == nl && e > p && !strncmp(p, name, nl))
            return true;
        p = e;
    }
    return false;
}

/* ------------------------------------------------------------ names, sizes */

int hpcz_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1; /* a transposition */
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *hpcz_closest(const char *s, const char *const *names, size_t n, size_t stride)
{
    const char *best = NULL;
    int best_d = 1 << 30;
    size_t ls = strlen(s);
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)names + i * stride);
        if (!name)
            continue;
        int d = hpcz_edit_distance(s, name);
        if (d < best_d) {
            best_d = d;
            best = name;
        }
    }
    /* close: at most 2 edits, and fewer than a third of the word */
    if (!best || best_d == 0 || best_d > 2 || (size_t)best_d * 3 > ls + 1)
        return NULL;
    return best;
}

void hpcz_list_names(char *buf, size_t cap, const char *const *names, size_t n)
{
    size_t k = 0, last = 0; /* the end of the list so far, and before its last name */
    if (!cap)
        return;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + k, cap - k, "%s'%s'", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= cap - k) {
            /* whole names, then "...": never a silent cut, never half a name */
            size_t at = cap - k >= 4 ? k : last;
            if (cap - at >= 4)
                memcpy(buf + at, "...", 4);
            else
                buf[0] = 0;
            return;
        }
        last = k;
        k += (size_t)w;
    }
}

int hpcz_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end), mul = 1;
    static const char *const units[3][3] = {{"k", "kb", "kib"}, {"m", "mb", "mib"}, {"g", "gb", "gib"}};
    for (int u = 0; end != s && u < 3; u++)
        for (int k = 0; k < 3; k++)
            if (!strcasecmp(end, units[u][k]))
                mul = (double)(1ull << (10 * (u + 1))), end += strlen(end);
    if (errno || end == s || *end || v < 0 || v * mul > 1e18)
        return 0;
    *out = (uint64_t)(v * mul);
    return 1;
}

/* ------------------------------------------------------------ timing */

double hpcz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double hpcz_median_min(double *t, size_t n, double *min)
{
    qsort(t, n, sizeof *t, cmp_double);
    *min = t[0];
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

void hpcz_json_document(hpcz_json *j, FILE *f, const char *schema, int version)
{
    hpcz_json_init(j, f);
    hpcz_json_object_begin(j, NULL);
    hpcz_json_string(j, "schema", schema);
    hpcz_json_int(j, "version", version);
}
