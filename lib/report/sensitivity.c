/*
 * sensitivity.c - per-layer pruning sensitivity: each prunable layer alone
 * pruned at 25/50/75/90% (magnitude or channel), the worst output SQNR and
 * top-1 agreement on data, and what it saves; then, for a parameter or MAC
 * budget, a greedy plan that takes the step with the least added output
 * noise per unit saved until the budget holds, as a pass pipeline.
 */
#include "internal.h"

#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

const double hpcz_sensitivity_ratios[HPCZ_SENS_RATIOS] = {0.25, 0.5, 0.75, 0.9};

/* ^name$ with regex characters escaped; NULL when the name cannot be
 * written inside a pipeline string */
static char *exact_regex(const char *name)
{
    if (strpbrk(name, ",{}"))
        return NULL;
    size_t n = strlen(name);
    char *r = malloc(2 * n + 3), *p = r;
    if (!r)
        return NULL;
    *p++ = '^';
    for (const char *c = name; *c; c++) {
        if (strchr(".[]()*+?^$|\\", *c))
            *p++ = '\\';
        *p++ = *c;
    }
    *p++ = '$';
    *p = 0;
    return r;
}

typedef struct rows_ctx {
    hpcz_sensitivity *s;
    const char *ops;
    hpcz_status st;
} rows_ctx;

static int collect_rows(hpcz_graph *g, void *ctx)
{
    rows_ctx *c = ctx;
    if (g->parent)
        return 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *nd = g->nodes[i];
        if (!hpcz_list_contains(c->ops, nd->op_type) || nd->n_inputs < 2 || !nd->name || !*nd->name)
            continue;
        const hpcz_tensor *t = hpcz_value_const(nd->inputs[1]);
        if (!t || t->dtype != HPCZ_DTYPE_FLOAT)
            continue;
        hpcz_sensitivity *s = c->s;
        hpcz_sens_layer *nr = realloc(s->layers, (s->n + 1) * sizeof *nr);
        if (!nr) {
            c->st = HPCZ_ERR_NOMEM;
            return 1;
        }
        s->layers = nr;
        hpcz_sens_layer *r = &nr[s->n++];
        memset(r, 0, sizeof *r);
        r->node = strdup(nd->name);
        r->op_type = strdup(nd->op_type);
        r->rx = exact_regex(nd->name);
        r->weights = t->numel;
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
            r->sqnr[k] = NAN;
        if (!r->node || !r->op_type) {
            c->st = HPCZ_ERR_NOMEM;
            return 1;
        }
    }
    return 0;
}

void hpcz_sensitivity_free(hpcz_sensitivity *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->layers[i].node);
        free(s->layers[i].op_type);
        free(s->layers[i].rx);
    }
    free(s->layers);
    free(s);
}

/* Prunes a fresh copy of the model (from its serialized bytes) with one
 * layer's pipeline and measures it against another fresh copy. 1: measured,
 * 0: the layer cannot be pruned alone, < 0: failed (err set). */
static int measure(const uint8_t *bytes, size_t len, const char *spec, const char *data,
                   const hpcz_compare_opts *co, int channel, const hpcz_model_summary *base, uint64_t base_macs,
                   hpcz_sens_layer *r, int k, int threads, hpcz_error *err)
{
    hpcz_error e2;
    hpcz_model *c = hpcz_onnx_load_buffer(bytes, len, NULL, &e2);
    hpcz_pipeline *pl = c ? hpcz_pipeline_parse(spec, &e2) : NULL;
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    if (!pl || hpcz_pipeline_run(pl, c, &ctx, &e2)) {
        /* coupled channels, untraceable: stays NAN */
        hpcz_pipeline_free(pl);
        hpcz_model_free(c);
        return 0;
    }
    hpcz_pipeline_free(pl);
    hpcz_model *orig = hpcz_onnx_load_buffer(bytes, len, NULL, err);
    hpcz_compare_result *res = NULL;
    if (!orig || hpcz_compare(orig, c, data, co, &res, err)) {
        hpcz_model_free(orig);
        hpcz_model_free(c);
        return -1;
    }
    double worst = INFINITY, agree = 1;
    for (size_t o = 0; o < res->n_outputs; o++) {
        if (res->outputs[o].sqnr_db < worst)
            worst = res->outputs[o].sqnr_db;
        if (res->outputs[o].is_scores && res->outputs[o].top1_agreement < agree)
            agree = res->outputs[o].top1_agreement;
    }
    r->sqnr[k] = worst;
    r->agree[k] = agree;
    hpcz_model_summary s2;
    if (hpcz_model_summarize(c, &s2, &e2) == HPCZ_OK) {
        uint64_t nz0 = base->params - (uint64_t)base->zeros, nz1 = s2.params - (uint64_t)s2.zeros;
        r->params_cut[k] = channel ? (int64_t)base->params - (int64_t)s2.params : (int64_t)nz0 - (int64_t)nz1;
        hpcz_model_summary_release(&s2);
    }
    hpcz_macs mc;
    if (channel && hpcz_model_macs(c, data, threads, &mc, &e2) == HPCZ_OK)
        r->macs_cut[k] = (int64_t)base_macs - (int64_t)mc.macs;
    hpcz_compare_result_free(res);
    hpcz_model_free(orig);
    hpcz_model_free(c);
    return 1;
}

hpcz_status hpcz_sensitivity_run(hpcz_model *m, const char *data, const hpcz_sensitivity_opts *o,
                                 hpcz_sensitivity **out, hpcz_error *err)
{
    *out = NULL;
    hpcz_sensitivity_opts dflt = {0};
    if (!o)
        o = &dflt;
    const char *method = o->method ? o->method : "magnitude";
    int channel = !strcmp(method, "channel");
    if (!channel && strcmp(method, "magnitude"))
        return hpcz_fail(err, HPCZ_ERR_INVALID, "sensitivity: method '%s' is not magnitude or channel", method);
    hpcz_sensitivity *s = calloc(1, sizeof *s);
    if (!s)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    s->channel = channel;
    uint8_t *bytes = NULL;
    size_t len;
    hpcz_status st = hpcz_onnx_serialize(m, NULL, &bytes, &len, err);
    hpcz_model_summary base;
    int have_base = 0;
    if (!st && !(st = hpcz_model_summarize(m, &base, err)))
        have_base = 1;
    hpcz_macs bm = {0};
    if (!st && channel)
        st = hpcz_model_macs(m, data, o->threads, &bm, err);
    if (!st) {
        s->base_params = base.params;
        s->base_nonzeros = base.params - (uint64_t)base.zeros;
        s->base_macs = bm.macs;
        rows_ctx rc = {s, o->op_types ? o->op_types : "Conv,Gemm,MatMul", HPCZ_OK};
        hpcz_model_foreach_graph(m, collect_rows, &rc);
        if (rc.st)
            st = hpcz_fail(err, rc.st, "out of memory");
    }
    regex_t rin, rex;
    int has_in = !st && o->include && !regcomp(&rin, o->include, REG_EXTENDED | REG_NOSUB);
    int has_ex = !st && o->exclude && !regcomp(&rex, o->exclude, REG_EXTENDED | REG_NOSUB);
    hpcz_compare_opts co = {0};
    co.threads = o->threads;
    size_t total = 0, done = 0;
    for (size_t i = 0; i < s->n && !st; i++)
        total += s->layers[i].rx ? HPCZ_SENS_RATIOS : 0;
    for (size_t i = 0; i < s->n && !st; i++) {
        hpcz_sens_layer *r = &s->layers[i];
        const char *nm = r->node;
        if (!r->rx || (has_in && regexec(&rin, nm, 0, NULL, 0) && regexec(&rin, r->op_type, 0, NULL, 0)) ||
            (has_ex && (!regexec(&rex, nm, 0, NULL, 0) || !regexec(&rex, r->op_type, 0, NULL, 0))))
            continue;
        for (int k = 0; k < HPCZ_SENS_RATIOS && !st; k++) {
            if (o->cancel && *o->cancel) {
                st = hpcz_fail(err, HPCZ_ERR_CANCELLED, "sensitivity: cancelled");
                break;
            }
            char sp[1024];
            snprintf(sp, sizeof sp, "%s{%s=%g,include=%s}", channel ? "prune-channel" : "prune-magnitude",
                     channel ? "ratio" : "sparsity", hpcz_sensitivity_ratios[k], r->rx);
            int got = measure(bytes, len, sp, data, &co, channel, &base, bm.macs, r, k, o->threads, err);
            if (got < 0)
                st = err ? err->status : HPCZ_ERR_INVALID;
            if (got > 0)
                s->evals++;
            if (o->progress)
                o->progress(o->progress_ctx, ++done, total);
            if (got == 0)
                break; /* the larger ratios cannot be pruned alone either */
        }
    }
    if (has_in)
        regfree(&rin);
    if (has_ex)
        regfree(&rex);
    free(bytes);
    if (have_base)
        hpcz_model_summary_release(&base);
    if (st) {
        hpcz_sensitivity_free(s);
        return st;
    }
    *out = s;
    return HPCZ_OK;
}

hpcz_status hpcz_sensitivity_plan(const hpcz_sensitivity *s, int64_t target_params, int64_t target_macs,
                                  char **pipeline, hpcz_sens_step **steps, size_t *n_steps, hpcz_error *err)
{
    *pipeline = NULL;
    if (steps)
        *steps = NULL;
    if (n_steps)
        *n_steps = 0;
    size_t n = s->n;
    int *lvl = malloc((n + 1) * sizeof *lvl);
    if (!lvl)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    int use_macs = target_macs >= 0;
    int64_t have_p = (int64_t)(s->channel ? s->base_params : s->base_nonzeros);
    int64_t have_m = (int64_t)s->base_macs;
    for (size_t i = 0; i < n; i++)
        lvl[i] = -1;
#define GAIN(r, k) ((k) < 0 ? 0 : use_macs ? (r)->macs_cut[k] : (r)->params_cut[k])
    while (use_macs ? have_m > target_macs : have_p > target_params) {
        double best = INFINITY;
        size_t bi = n;
        for (size_t i = 0; i < n; i++) {
            const hpcz_sens_layer *r = &s->layers[i];
            int k = lvl[i] + 1;
            if (k >= HPCZ_SENS_RATIOS || isnan(r->sqnr[k]))
                continue;
            double noise1 = pow(10.0, -r->sqnr[k] / 10.0);
            double noise0 = lvl[i] < 0 ? 0 : pow(10.0, -r->sqnr[lvl[i]] / 10.0);
            int64_t g = GAIN(r, k) - GAIN(r, lvl[i]);
            if (g <= 0)
                continue;
            double cost = (noise1 - noise0 > 0 ? noise1 - noise0 : 0) / (double)g;
            if (cost < best) {
                best = cost;
                bi = i;
            }
        }
        if (bi == n)
            break;
        const hpcz_sens_layer *r = &s->layers[bi];
        int k = lvl[bi] + 1;
        int64_t g = GAIN(r, k) - GAIN(r, lvl[bi]);
        if (use_macs)
            have_m -= g;
        else
            have_p -= g;
        lvl[bi] = k;
    }
#undef GAIN
    if (use_macs ? have_m > target_macs : have_p > target_params) {
        free(lvl);
        return hpcz_fail(err, HPCZ_ERR_INVALID,
                         "the target of %lld %s cannot be reached pruning each layer at most 90%% (best: %lld)",
                         (long long)(use_macs ? target_macs : target_params), use_macs ? "MACs" : "parameters",
                         (long long)(use_macs ? have_m : have_p));
    }
    size_t cap = 256 + n * 600, len = 0, ns = 0;
    char *sp = malloc(cap);
    hpcz_sens_step *st = steps ? calloc(n + 1, sizeof *st) : NULL;
    if (!sp || (steps && !st)) {
        free(sp);
        free(st);
        free(lvl);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    sp[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (lvl[i] < 0)
            continue;
        len += (size_t)snprintf(sp + len, cap - len, "%s%s{%s=%g,include=%s}", len ? "," : "",
                                s->channel ? "prune-channel" : "prune-magnitude", s->channel ? "ratio" : "sparsity",
                                hpcz_sensitivity_ratios[lvl[i]], s->layers[i].rx);
        if (st) {
            st[ns].layer = i;
            st[ns].ratio = hpcz_sensitivity_ratios[lvl[i]];
            st[ns].sqnr_alone = s->layers[i].sqnr[lvl[i]];
        }
        ns++;
    }
    if (!len)
        snprintf(sp, cap, "dce");
    free(lvl);
    *pipeline = sp;
    if (steps)
        *steps = st;
    if (n_steps)
        *n_steps = ns;
    return HPCZ_OK;
}
