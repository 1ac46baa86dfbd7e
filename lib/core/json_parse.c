/*
 * json_parse.c - a small JSON reader (RFC 8259) for hpcz's own documents:
 * calibration tables, batch manifests. Depth and size are bounded.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>

typedef struct parser {
    const char *p, *end;
    hpcz_error *err;
    int depth;
    int line;
} parser;

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        if (*ps->p == '\n')
            ps->line++;
        ps->p++;
    }
}

static hpcz_jval *jnew(hpcz_jtype t)
{
    hpcz_jval *v = calloc(1, sizeof *v);
    if (v)
        v->type = t;
    return v;
}

static hpcz_jval *fail_at(parser *ps, const char *what)
{
    hpcz_fail(ps->err, HPCZ_ERR_PARSE, "JSON line %d: %s", ps->line, what);
    return NULL;
}

static hpcz_jval *parse_value(parser *ps);

static char *parse_string_raw(parser *ps)
{
    /* at the opening quote */
    ps->p++;
    hpcz_strbuf sb = {0};
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) {
            hpcz_strbuf_release(&sb);
            fail_at(ps, "control character in a string");
            return NULL;
        }
        if (c != '\\') {
            hpcz_strbuf_append(&sb, (const char *)&c, 1);
            continue;
        }
        if (ps->p >= ps->end)
            break;
        char e = *ps->p++;
        const char *map = "\"\\/bfnrt", *rep = "\"\\/\b\f\n\r\t";
        const char *f = strchr(map, e);
        if (f && e) {
            hpcz_strbuf_append(&sb, rep + (f - map), 1);
        } else if (e == 'u' && ps->end - ps->p >= 4) {
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                char h = *ps->p++;
                cp = cp * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
            }
            char u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3f));
                n = 2;
            } else {
                u[0] = (char)(0xe0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                n = 3;
            }
            hpcz_strbuf_append(&sb, u, n);
        } else {
            hpcz_strbuf_release(&sb);
            fail_at(ps, "bad escape in a string");
            return NULL;
        }
    }
    if (ps->p >= ps->end) {
        hpcz_strbuf_release(&sb);
        fail_at(ps, "unterminated string");
        return NULL;
    }
    ps->p++;
    if (!sb.buf)
        hpcz_strbuf_append(&sb, "", 0);
    return sb.buf;
}

static hpcz_jval *parse_value(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail_at(ps, "unexpected end of input");
    if (++ps->depth > 64)
        return fail_at(ps, "nested too deeply");
    hpcz_jval *v = NULL;
    char c = *ps->p;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        v = jnew(obj ? HPCZ_JSON_OBJECT : HPCZ_JSON_ARRAY);
        if (!v)
            return fail_at(ps, "out of memory");
        ps->p++;
        skip_ws(ps);
        size_t cap = 0;
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
            ps->depth--;
            return v;
        }
        for (;;) {
            char *key = NULL;
            skip_ws(ps);
            if (obj) {
                if (ps->p >= ps->end || *ps->p != '"') {
                    hpcz_json_free(v);
                    return fail_at(ps, "expected a key");
                }
                if (!(key = parse_string_raw(ps))) {
                    hpcz_json_free(v);
                    return NULL;
                }
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') {
                    free(key);
                    hpcz_json_free(v);
                    return fail_at(ps, "expected ':'");
                }
                ps->p++;
            }
            hpcz_jval *item = parse_value(ps);
            if (!item) {
                free(key);
                hpcz_json_free(v);
                return NULL;
            }
            if (!hpcz_grow((void **)&v->items, &cap, v->n + 1, sizeof *v->items)) {
                free(key);
                hpcz_json_free(item);
                hpcz_json_free(v);
                return fail_at(ps, "out of memory");
            }
            if (obj) {
                char **nk = realloc(v->keys, (v->n + 1) * sizeof *nk);
                if (!nk) {
                    free(key);
                    hpcz_json_free(item);
                    hpcz_json_free(v);
                    return fail_at(ps, "out of memory");
                }
                v->keys = nk;
                v->keys[v->n] = key;
            }
            v->items[v->n++] = item;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
                ps->p++;
                break;
            }
            hpcz_json_free(v);
            return fail_at(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    } else if (c == '"') {
        char *s = parse_string_raw(ps);
        if (!s)
            return NULL;
        v = jnew(HPCZ_JSON_STRING);
        if (!v) {
            free(s);
            return fail_at(ps, "out of memory");
        }
        v->s = s;
    } else if (c == 't' && ps->end - ps->p >= 4 && !strncmp(ps->p, "true", 4)) {
        ps->p += 4;
        v = jnew(HPCZ_JSON_BOOL);
        if (v)
            v->b = 1;
    } else if (c == 'f' && ps->end - ps->p >= 5 && !strncmp(ps->p, "false", 5)) {
        ps->p += 5;
        v = jnew(HPCZ_JSON_BOOL);
    } else if (c == 'n' && ps->end - ps->p >= 4 && !strncmp(ps->p, "null", 4)) {
        ps->p += 4;
        v = jnew(HPCZ_JSON_NULL);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t n = 0;
        while (ps->p < ps->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", *ps->p))
            buf[n++] = *ps->p++;
        buf[n] = 0;
        char *e;
        errno = 0;
        double d = strtod(buf, &e);
        if (*e || errno)
            return fail_at(ps, "bad number");
        v = jnew(HPCZ_JSON_NUMBER);
        if (v)
            v->num = d;
    } else {
        return fail_at(ps, "unexpected character");
    }
    if (!v)
        return fail_at(ps, "out of memory");
    ps->depth--;
    return v;
}

hpcz_jval *hpcz_json_parse(const char *text, size_t len, hpcz_error *err)
{
    parser ps = {text, text + len, err, 0, 1};
    hpcz_jval *v = parse_value(&ps);
    if (!v)
        return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        hpcz_json_free(v);
        fail_at(&ps, "text after the document");
        return NULL;
    }
    return v;
}

void hpcz_json_free(hpcz_jval *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        hpcz_json_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

const hpcz_jval *hpcz_json_get(const hpcz_jval *obj, const char *key)
{
    if (!obj || obj->type != HPCZ_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key))
            return obj->items[i];
    return NULL;
}
