/*
 * json.c - a small streaming JSON writer.
 */
#include "internal.h"

#include <math.h>

void hpcz_json_init(hpcz_json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

static void indent(hpcz_json *j)
{
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
}

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(f, "\\u%04x", *p);
            } else if (*p < 0x80) {
                fputc(*p, f);
            } else {
                /* JSON is UTF-8: a byte that starts no well-formed
                 * sequence becomes U+FFFD */
                size_t l = hpcz_utf8_len(p);
                if (l) {
                    fwrite(p, 1, l, f);
                    p += l - 1;
                } else {
                    fputs("\\ufffd", f);
                }
            }
        }
    }
    fputc('"', f);
}

size_t hpcz_utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong forms */
        if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static void item(hpcz_json *j, const char *key)
{
    if (j->depth > 0) {
        if (j->has_items[j->depth])
            fputc(',', j->f);
        j->has_items[j->depth] = 1;
        indent(j);
    }
    if (key) {
        put_string(j->f, key);
        fputs(": ", j->f);
    }
}

static void open_(hpcz_json *j, const char *key, char c)
{
    item(j, key);
    fputc(c, j->f);
    HPCZ_ASSERT(j->depth + 1 < (int)sizeof j->has_items);
    j->depth++;
    j->has_items[j->depth] = 0;
}

static void close_(hpcz_json *j, char c)
{
    int had = j->has_items[j->depth];
    j->depth--;
    if (had)
        indent(j);
    fputc(c, j->f);
}

void hpcz_json_object_begin(hpcz_json *j, const char *key)
{
    open_(j, key, '{');
}
void hpcz_json_object_end(hpcz_json *j)
{
    close_(j, '}');
}
void hpcz_json_array_begin(hpcz_json *j, const char *key)
{
    open_(j, key, '[');
}
void hpcz_json_array_end(hpcz_json *j)
{
    close_(j, ']');
}

void hpcz_json_string(hpcz_json *j, const char *key, const char *val)
{
    item(j, key);
    if (val)
        put_string(j->f, val);
    else
        fputs("null", j->f);
}

void hpcz_json_int(hpcz_json *j, const char *key, int64_t val)
{
    item(j, key);
    fprintf(j->f, "%lld", (long long)val);
}

void hpcz_json_uint(hpcz_json *j, const char *key, uint64_t val)
{
    item(j, key);
    fprintf(j->f, "%llu", (unsigned long long)val);
}

void hpcz_json_double(hpcz_json *j, const char *key, double val)
{
    item(j, key);
    if (!isfinite(val)) {
        fputs("null", j->f);
        return;
    }
    /* shortest of %.15g/%.17g that round-trips */
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", val);
    if (strtod(buf, NULL) != val)
        snprintf(buf, sizeof buf, "%.17g", val);
    fputs(buf, j->f);
}

void hpcz_json_bool(hpcz_json *j, const char *key, int val)
{
    item(j, key);
    fputs(val ? "true" : "false", j->f);
}

void hpcz_json_null(hpcz_json *j, const char *key)
{
    item(j, key);
    fputs("null", j->f);
}

void hpcz_json_finish(hpcz_json *j)
{
    fputc('\n', j->f);
    fflush(j->f);
}

/* ------------------------------------------------------------ terminal text */

static size_t hex_byte(char *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\', out[1] = 'x', out[2] = hex[c >> 4], out[3] = hex[c & 15];
    return 4;
}

size_t hpcz_text_escape_run(hpcz_text_escape *t, const char *buf, size_t size, char *out)
{
    size_t k = 0, i = 0;
    unsigned char seq[8];
    while (i < size || t->n_pend) {
        /* the next complete character: pending bytes first */
        size_t have = t->n_pend;
        memcpy(seq, t->pend, have);
        while (have < 4 && i < size && (have == 0 || (buf[i] & 0xc0) == 0x80))
            seq[have++] = (unsigned char)buf[i++];
        seq[have] = 0;
        t->n_pend = 0;
        unsigned char c = seq[0];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                k += hex_byte(out + k, c);
            else
                out[k++] = (char)c;
            /* bytes taken after an ASCII one belong to the next round */
            for (size_t j = 1; j < have; j++)
                k += hex_byte(out + k, seq[j]);
            continue;
        }
        size_t l = hpcz_utf8_len(seq);
        if (l && l <= have) {
            memcpy(out + k, seq, l);
            k += l;
            for (size_t j = l; j < have; j++)
                k += hex_byte(out + k, seq[j]);
            continue;
        }
        if (i == size && have < 4 && !l) {
            /* maybe cut by the write: keep it if it could still complete */
            size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
            if (need > have) {
                memcpy(t->pend, seq, have);
                t->n_pend = have;
                break;
            }
        }
        for (size_t j = 0; j < have; j++)
            k += hex_byte(out + k, seq[j]);
    }
    return k;
}

size_t hpcz_text_escape_end(hpcz_text_escape *t, char *out)
{
    size_t k = 0;
    for (size_t j = 0; j < t->n_pend; j++)
        k += hex_byte(out + k, t->pend[j]);
    t->n_pend = 0;
    return k;
}
