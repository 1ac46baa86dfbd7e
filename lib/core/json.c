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
