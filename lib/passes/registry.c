/*
 * registry.c - the pass table, pipeline parsing and running.
 */
#include "passes.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static const hpcz_pass *const registry[] = {
    &hpcz_pass_fold_bn,
    &hpcz_pass_eliminate,
    &hpcz_pass_dce,
    &hpcz_pass_fold_constants,
    &hpcz_pass_upgrade_opset,
    &hpcz_pass_quantize_int8,
    &hpcz_pass_quantize_int4,
    &hpcz_pass_early_fp16,
    &hpcz_pass_smooth_quant,
    &hpcz_pass_bias_correct,
    &hpcz_pass_equalize,
    &hpcz_pass_quantize_static,
    &hpcz_pass_quantize_dynamic,
    &hpcz_pass_to_fp16,
    &hpcz_pass_prune_magnitude,
    &hpcz_pass_prune_nm,
    &hpcz_pass_prune_channel,
    &hpcz_pass_prune_reconstruct,
    &hpcz_pass_quantize_gptq,
    &hpcz_pass_quantize_adaround,
    &hpcz_pass_recalibrate_bn,
    &hpcz_pass_int4_matmulnbits,
};

const hpcz_pass *const *hpcz_pass_list(size_t *n)
{
    *n = HPCZ_ARRAY_SIZE(registry);
    return registry;
}

const hpcz_pass *hpcz_pass_find(const char *name)
{
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(registry); i++)
        if (!strcmp(registry[i]->name, name))
            return registry[i];
    return NULL;
}

static size_t n_opts(const hpcz_pass *p)
{
    size_t n = 0;
    while (p->opts && p->opts[n].name)
        n++;
    return n;
}

static int opt_index(const hpcz_pass *p, const char *name)
{
    for (size_t i = 0; i < n_opts(p); i++)
        if (!strcmp(p->opts[i].name, name))
            return (int)i;
    return -1;
}

/* The option name a "k=v" or "k" item at s (up to end) starts with, or -1. */
static int option_key(const hpcz_pass *p, const char *s, const char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    const char *k = s;
    while (s < end && *s != '=' && *s != ',')
        s++;
    const char *ke = s;
    while (ke > k && isspace((unsigned char)ke[-1]))
        ke--;
    char key[128];
    size_t kl = (size_t)(ke - k);
    if (!kl || kl >= sizeof key)
        return -1;
    memcpy(key, k, kl);
    key[kl] = 0;
    return opt_index(p, key);
}

static bool option_at(const hpcz_pass *p, const char *s, const char *end)
{
    return option_key(p, s, end) >= 0;
}

/* s starts "k=..." with k a string option */
static bool string_option_at(const hpcz_pass *p, const char *s, const char *end)
{
    int i = option_key(p, s, end);
    return i >= 0 && p->opts[i].type == HPCZ_OPT_STRING && memchr(s, '=', (size_t)(end - s));
}

hpcz_optval hpcz_pass_arg(const hpcz_pass_args *a, const char *name)
{
    int i = opt_index(a->pass, name);
    HPCZ_ASSERT(i >= 0);
    return a->vals[i];
}

int hpcz_pass_arg_set(const hpcz_pass_args *a, const char *name)
{
    int i = opt_index(a->pass, name);
    HPCZ_ASSERT(i >= 0);
    return a->set[i];
}

/* ------------------------------------------------------------ parsing */

struct hpcz_pipeline {
    size_t n, cap;
    hpcz_pass_args *steps;
    hpcz_arena arena;
};

static hpcz_status parse_value(const hpcz_pass *p, const hpcz_pass_opt *o, const char *text,
                               hpcz_optval *out, hpcz_arena *ar, hpcz_error *err)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case HPCZ_OPT_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
            out->b = 1;
        else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no"))
            out->b = 0;
        else
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: '%s' is not true or false", p->name,
                             o->name, text);
        return HPCZ_OK;
    case HPCZ_OPT_INT: {
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: '%s' is not an integer", p->name,
                             o->name, text);
        if ((o->lo != 0 || o->hi != 0) && (v < o->lo || v > o->hi))
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: %lld is outside [%g, %g]", p->name,
                             o->name, v, o->lo, o->hi);
        out->i = v;
        return HPCZ_OK;
    }
    case HPCZ_OPT_FLOAT: {
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v))
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: '%s' is not a number", p->name,
                             o->name, text);
        if ((o->lo != 0 || o->hi != 0) && (v < o->lo || v > o->hi))
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: %g is outside [%g, %g]", p->name,
                             o->name, v, o->lo, o->hi);
        out->f = v;
        return HPCZ_OK;
    }
    case HPCZ_OPT_ENUM: {
        const char *c = o->choices;
        size_t tl = strlen(text);
        while (c && *c) {
            const char *bar = strchr(c, '|');
            size_t l = bar ? (size_t)(bar - c) : strlen(c);
            if (l == tl && !strncmp(c, text, l)) {
                out->s = hpcz_arena_strndup(ar, text, tl);
                return HPCZ_OK;
            }
            c = bar ? bar + 1 : NULL;
        }
        return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: '%s' is not one of %s", p->name, o->name,
                         text, o->choices);
    }
    case HPCZ_OPT_STRING:
        if (!strcmp(o->name, "op-types") && text && hpcz_op_list_check(text, err)) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: %s", p->name, o->name, why);
        }
        out->s = hpcz_arena_strndup(ar, text, strlen(text));
        return HPCZ_OK;
    }
    return hpcz_fail(err, HPCZ_ERR_USAGE, "bad option type");
}

static hpcz_status parse_step(hpcz_pipeline *pl, const char *s, size_t len, hpcz_error *err)
{
    /* trim */
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "empty pass name in pipeline");
    const char *brace = memchr(s, '{', len);
    size_t name_len = brace ? (size_t)(brace - s) : len;
    while (name_len && isspace((unsigned char)s[name_len - 1]))
        name_len--;
    char name[128];
    if (name_len >= sizeof name)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "pass name too long");
    memcpy(name, s, name_len);
    name[name_len] = 0;
    const hpcz_pass *p = hpcz_pass_find(name);
    if (!p) {
        const char *names[64];
        size_t n = 0;
        for (size_t i = 0; i < HPCZ_ARRAY_SIZE(registry) && n < 64; i++)
            names[n++] = registry[i]->name;
        const char *c = hpcz_closest(name, names, n, sizeof *names);
        if (c)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "unknown pass '%s': did you mean '%s'?", name, c);
        return hpcz_fail(err, HPCZ_ERR_USAGE, "unknown pass '%s' (hpcz passes lists them)", name);
    }
    if (!hpcz_grow((void **)&pl->steps, &pl->cap, pl->n + 1, sizeof *pl->steps))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_pass_args *a = &pl->steps[pl->n];
    size_t no = n_opts(p);
    a->pass = p;
    a->vals = hpcz_arena_alloc(&pl->arena, (no + 1) * sizeof *a->vals);
    a->set = hpcz_arena_alloc(&pl->arena, no + 1);
    if (!a->vals || !a->set)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < no; i++)
        if (p->opts[i].dflt) {
            hpcz_status st = parse_value(p, &p->opts[i], p->opts[i].dflt, &a->vals[i], &pl->arena, err);
            HPCZ_ASSERT(st == HPCZ_OK); /* defaults are ours: a bad one is a bug */
        }
    if (brace) {
        const char *body = brace + 1, *end = s + len;
        if (end[-1] != '}')
            return hpcz_fail(err, HPCZ_ERR_USAGE, "%s: missing '}'", p->name);
        end--;
        while (body < end) {
            const char *comma = memchr(body, ',', (size_t)(end - body));
            /* a string option's value may hold commas (op-types=MatMul,Gemm):
             * a segment that does not start with an option name goes on the
             * value before it */
            if (comma && string_option_at(p, body, comma))
                while (comma && !option_at(p, comma + 1, end))
                    comma = memchr(comma + 1, ',', (size_t)(end - comma - 1));
            const char *item_end = comma ? comma : end;
            char item[4096];
            size_t il = (size_t)(item_end - body);
            if (il >= sizeof item)
                return hpcz_fail(err, HPCZ_ERR_USAGE, "%s: option too long", p->name);
            memcpy(item, body, il);
            item[il] = 0;
            char *k = item;
            while (isspace((unsigned char)*k))
                k++;
            char *eq = strchr(k, '=');
            char *v = NULL;
            if (eq) {
                *eq = 0;
                v = eq + 1;
                while (isspace((unsigned char)*v))
                    v++;
            }
            for (char *t = k + strlen(k); t > k && isspace((unsigned char)t[-1]); t--)
                t[-1] = 0;
            if (*k) {
                int oi = opt_index(p, k);
                if (oi < 0) {
                    const char *names[64];
                    size_t n = 0;
                    for (size_t i = 0; i < no && n < 64; i++)
                        names[n++] = p->opts[i].name;
                    const char *c = hpcz_closest(k, names, n, sizeof *names);
                    if (c)
                        return hpcz_fail(err, HPCZ_ERR_USAGE,
                                         "pass '%s' has no option '%s': did you mean '%s'?",
                                         p->name, k, c);
                    return hpcz_fail(err, HPCZ_ERR_USAGE,
                                     "pass '%s' has no option '%s' (hpcz passes lists them)",
                                     p->name, k);
                }
                const hpcz_pass_opt *o = &p->opts[oi];
                if (!v) {
                    if (o->type != HPCZ_OPT_BOOL)
                        return hpcz_fail(err, HPCZ_ERR_USAGE, "%s{%s}: needs a value (%s=...)",
                                         p->name, k, k);
                    v = "true";
                }
                hpcz_status st = parse_value(p, o, v, &a->vals[oi], &pl->arena, err);
                if (st)
                    return st;
                a->set[oi] = 1;
            }
            body = comma ? comma + 1 : end;
        }
    }
    pl->n++;
    return HPCZ_OK;
}

hpcz_status hpcz_pipeline_append(hpcz_pipeline *pl, const char *spec, hpcz_error *err)
{
    const char *s = spec;
    int depth = 0;
    const char *start = s;
    for (;; s++) {
        if (*s == '{')
            depth++;
        else if (*s == '}') {
            if (--depth < 0)
                return hpcz_fail(err, HPCZ_ERR_USAGE, "unbalanced '}' in pipeline '%s'", spec);
        } else if ((*s == ',' && depth == 0) || *s == 0) {
            if (*s == 0 && depth != 0)
                return hpcz_fail(err, HPCZ_ERR_USAGE, "missing '}' in pipeline '%s'", spec);
            hpcz_status st = parse_step(pl, start, (size_t)(s - start), err);
            if (st)
                return st;
            if (*s == 0)
                break;
            start = s + 1;
        }
    }
    return HPCZ_OK;
}

hpcz_pipeline *hpcz_pipeline_parse(const char *spec, hpcz_error *err)
{
    hpcz_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (spec && *spec && hpcz_pipeline_append(pl, spec, err)) {
        hpcz_pipeline_free(pl);
        return NULL;
    }
    return pl;
}

size_t hpcz_pipeline_length(const hpcz_pipeline *p)
{
    return p ? p->n : 0;
}

void hpcz_pipeline_free(hpcz_pipeline *p)
{
    if (!p)
        return;
    free(p->steps);
    hpcz_arena_release(&p->arena);
    free(p);
}

void hpcz_pass_ctx_init(hpcz_pass_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
#ifdef HPCZ_DEBUG
    ctx->verify = 1;
#endif
}

void hpcz_pass_note(hpcz_pass_ctx *ctx, const char *pass, const char *fmt, ...)
{
    if (!ctx || !ctx->log)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->log(ctx->log_user, pass, buf);
}

/* ONNX wants every graph's nodes in topological order, subgraphs too (ONNX
 * Runtime refuses a model otherwise): a pass that appends nodes must sort
 * the graph it appended to. Checked after every pass in debug builds. */
static hpcz_status check_sorted(hpcz_graph *g, hpcz_error *err)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i]->aux = (int)i;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++) {
            const hpcz_value *v = n->inputs[k];
            if (v && v->producer && v->producer->graph == g && v->producer->aux >= (int)i)
                return hpcz_fail(err, HPCZ_ERR_INVALID,
                                 "node '%s' (%s) reads '%s' before '%s' makes it: the graph%s%s is not "
                                 "sorted", n->name ? n->name : "", n->op_type, v->name,
                                 v->producer->name ? v->producer->name : "", g->parent ? " of " : "",
                                 g->parent && g->owner && g->owner->name ? g->owner->name : "");
        }
    }
    hpcz_status st = HPCZ_OK;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs && !st; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                st = check_sorted(n->attrs[a].g, err);
            for (size_t k = 0; n->attrs[a].type == HPCZ_ATTR_GRAPHS && k < n->attrs[a].n && !st; k++)
                st = check_sorted(n->attrs[a].graphs[k], err);
        }
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i]->aux = 0;
    return st;
}

hpcz_status hpcz_pipeline_run(hpcz_pipeline *pl, hpcz_model *m, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    hpcz_pass_ctx local;
    if (!ctx) {
        hpcz_pass_ctx_init(&local);
        ctx = &local;
    }
    /* passes may test err->status after a helper that only sets it on
     * failure: it starts clear for each pass, whatever the caller's err held */
    hpcz_error scratch;
    if (!err)
        err = &scratch;
    for (size_t i = 0; i < pl->n; i++) {
        const hpcz_pass_args *a = &pl->steps[i];
        err->status = HPCZ_OK;
        err->msg[0] = 0;
        hpcz_status st = a->pass->run(m, a, ctx, err);
        if (st) {
            char pre[160];
            snprintf(pre, sizeof pre, "pass '%s'", a->pass->name);
            hpcz_error_prefix(err, pre);
            return st;
        }
        if (ctx->verify && !(st = hpcz_model_verify(m, err)))
            st = check_sorted(m->graph, err);
        if (ctx->verify && st) {
            char pre[200];
            snprintf(pre, sizeof pre, "internal error: pass '%s' left an invalid model", a->pass->name);
            hpcz_error_prefix(err, pre);
            return st;
        }
    }
    return HPCZ_OK;
}
