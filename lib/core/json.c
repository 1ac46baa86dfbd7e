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
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
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
