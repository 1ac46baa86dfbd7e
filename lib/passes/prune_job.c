/*
 * prune_job.c - `hpcz prune` as one call (hpcz_prune_run): the recipe's
 * pipeline (or a given one, or the one per-layer sensitivity chooses for a
 * budget), with parameters, zeros and MACs before and after, per-layer
 * sparsity, and the outputs' change on the data.
 */
#include "job.h"

#include <stdio.h>

void hpcz_prune_opts_init(hpcz_prune_opts *o)
{
    memset(o, 0, sizeof *o);
    hpcz_prune_recipe_init(&o->recipe);
    /* `hpcz prune`'s defaults: BatchNorm only folded when asked, reconstruction
     * as the method's default */
    o->recipe.fold = 0;
    o->recipe.reconstruct = -1;
    o->target_params = o->target_macs = -1;
}

static hpcz_status setup(const hpcz_prune_opts *o, hpcz_prune_recipe *rp, char *spec, size_t cap, hpcz_error *err)
{
    *rp = o->recipe;
    rp->have_calib = o->calib != NULL;
    rp->targeted = o->target_params >= 0 || o->target_macs >= 0;
    hpcz_status st = hpcz_prune_recipe_resolve(rp, err);
    if (st)
        return st;
    if (!o->passes && (st = hpcz_prune_recipe_pipeline(rp, spec, cap, err)))
        return st;
    return job_spec_check(o->passes, spec, cap, err);
}

hpcz_status hpcz_prune_check(const hpcz_prune_opts *o, hpcz_error *err)
{
    hpcz_prune_recipe rp;
    char spec[2048];
    return setup(o, &rp, spec, sizeof spec, err);
}

static int64_t zeros_of(hpcz_tensor *t)
{
    hpcz_error e;
    const float *d = hpcz_tensor_data(t, &e);
    int64_t z = 0;
    for (int64_t i = 0; d && i < t->numel; i++)
        z += d[i] == 0.0f;
    return z;
}

typedef struct scan {
    hpcz_prune_result *res;
    size_t cap;
    const char *op_types;
    int after;
    size_t hint; /* where the next layer of the second scan probably is */
} scan;

static int scan_layers(hpcz_graph *g, void *ctx)
{
    scan *L = ctx;
    hpcz_prune_result *res = L->res;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!hpcz_list_contains(L->op_types, n->op_type) || n->n_inputs < 2)
            continue;
        hpcz_tensor *t = hpcz_value_const(n->inputs[1]);
        if (!t || t->dtype != HPCZ_DTYPE_FLOAT)
            continue;
        /* the second scan meets the layers in the first scan's order: look
         * where the last one was found first (a search from the start per
         * layer was quadratic: 20k layers, seconds) */
        hpcz_prune_layer *e = NULL;
        if (L->after && L->hint < res->n_layers && res->layers[L->hint].node == n)
            e = &res->layers[L->hint];
        for (size_t k = 0; k < res->n_layers && !e && L->after; k++)
            if (res->layers[k].node == n)
                e = &res->layers[k];
        if (e)
            L->hint = (size_t)(e - res->layers) + 1;
        if (!e) {
            if (L->after || !hpcz_grow((void **)&res->layers, &L->cap, res->n_layers + 1, sizeof *res->layers))
                continue;
            e = &res->layers[res->n_layers++];
            e->node = n;
            e->numel = t->numel;
            e->zeros_before = zeros_of(t);
            e->zeros_after = e->zeros_before;
            e->numel_after = t->numel;
        }
        if (L->after) {
            e->zeros_after = zeros_of(t);
            e->numel_after = t->numel;
        }
    }
    return 0;
}

/* The pipeline that meets the budget, chosen by per-layer sensitivity on
 * data; each chosen layer is said as a note. */
static hpcz_status plan_budget(hpcz_model *m, const hpcz_prune_opts *o, const hpcz_prune_recipe *rp, const char *data,
                               char *spec, size_t cap, hpcz_error *err)
{
    job_stage stage = {&o->hooks, "sensitivity"};
    hpcz_sensitivity_opts so = {.method = rp->method, .op_types = rp->op_types, .include = rp->include,
                                .exclude = rp->exclude, .threads = o->threads, .cancel = o->hooks.cancel};
    if (o->hooks.progress) {
        so.progress = job_progress;
        so.progress_ctx = &stage;
    }
    hpcz_sensitivity *s = NULL;
    hpcz_status st = hpcz_sensitivity_run(m, data, &so, &s, err);
    if (st)
        return st == HPCZ_ERR_CANCELLED ? st
                                         : job_blame(err, st == HPCZ_ERR_IO || st == HPCZ_ERR_PARSE ? data : m->path);
    hpcz_sens_step *steps = NULL;
    size_t ns = 0;
    char *tspec = NULL;
    if ((st = hpcz_sensitivity_plan(s, o->target_params, o->target_macs, &tspec, &steps, &ns, err))) {
        st = job_blame(err, m->path);
    } else {
        for (size_t i = 0; i < ns; i++)
            job_message(&o->hooks, 0, "prune: '%s' at %.0f%% (alone: %.1f dB output SQNR)", s->layers[steps[i].layer].node,
                        100 * steps[i].ratio, steps[i].sqnr_alone);
        snprintf(spec, cap, "%s%s", tspec, rp->recalibrate_bn ? ",recalibrate-bn" : "");
    }
    free(tspec);
    free(steps);
    hpcz_sensitivity_free(s);
    return st;
}

hpcz_status hpcz_prune_run(hpcz_model *m, const hpcz_prune_opts *o, hpcz_prune_result *res, hpcz_error *err)
{
    memset(res, 0, sizeof *res);
    const char *in = m->path;
    hpcz_prune_opts resolved = *o;
    if (hpcz_calib_mask_resolve(m, o->calib ? o->calib_mask : "none", &resolved.calib_mask, err)) {
        hpcz_error_prefix(err, "--calib-mask");
        return err->status = HPCZ_ERR_USAGE;
    }
    o = &resolved;
    hpcz_prune_recipe rp;
    hpcz_status st = setup(o, &rp, res->pipeline, sizeof res->pipeline, err);
    if (st)
        return st;
    /* random data make no sense to measure outputs on */
    const char *data = o->data ? o->data : o->calib && strncmp(o->calib, "random:", 7) ? o->calib : NULL;
    if (rp.targeted &&
        (st = plan_budget(m, o, &rp, o->calib ? o->calib : o->data, res->pipeline, sizeof res->pipeline, err)))
        return st;
    hpcz_pipeline *pl = hpcz_pipeline_parse(res->pipeline, err);
    if (!pl) {
        hpcz_error_prefix(err, "internal");
        return job_blame(err, NULL);
    }
    if ((o->keep_original || (o->measure_delta && data)) && !(res->orig = hpcz_model_clone(m, err))) {
        st = job_blame(err, in);
        goto done;
    }
    if (hpcz_model_summarize(m, &res->before, err)) {
        st = job_blame(err, in);
        goto done;
    }
    scan L = {.res = res, .op_types = rp.op_types ? rp.op_types : "Conv,ConvTranspose,Gemm,MatMul"};
    hpcz_model_foreach_graph(m, scan_layers, &L);
    /* MACs per sample, counted from shapes (symbolic dimensions from the
     * data when given); the model is not run */
    hpcz_error merr;
    res->have_macs = hpcz_model_macs(m, data, o->threads, &res->macs_before, &merr) == HPCZ_OK;
    if ((st = job_cancelled(&o->hooks, err)))
        goto done;
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    ctx.log = o->hooks.log;
    ctx.log_user = o->hooks.user;
    ctx.data = o->calib;
    ctx.data_samples = o->calib_samples;
    ctx.data_mask = o->calib_mask;
    ctx.threads = o->threads;
    if ((st = hpcz_pipeline_run(pl, m, &ctx, err))) {
        st = job_blame(err, in);
        goto done;
    }
    L.after = 1;
    hpcz_model_foreach_graph(m, scan_layers, &L);
    if (hpcz_model_summarize(m, &res->after, err)) {
        st = job_blame(err, in);
        goto done;
    }
    if (res->have_macs)
        res->have_macs = hpcz_model_macs(m, data, o->threads, &res->macs_after, &merr) == HPCZ_OK;
    if ((st = job_cancelled(&o->hooks, err)))
        goto done;
    if (o->output && hpcz_model_save(m, o->output, HPCZ_FORMAT_AUTO,
                                     &(hpcz_save_opts){.overwrite_inputs = o->in_place}, NULL, err)) {
        st = job_blame(err, o->output);
        goto done;
    }
    if (o->measure_delta && data) {
        hpcz_compare_opts co = {.threads = o->threads};
        if (hpcz_compare(res->orig, m, data, &co, &res->delta, &merr))
            snprintf(res->delta_error, sizeof res->delta_error, "%s", merr.msg);
    }
    if (!o->keep_original) {
        hpcz_model_free(res->orig);
        res->orig = NULL;
    }
done:
    hpcz_pipeline_free(pl);
    return st;
}

void hpcz_prune_result_release(hpcz_prune_result *res)
{
    hpcz_model_summary_release(&res->before);
    hpcz_model_summary_release(&res->after);
    free(res->layers);
    hpcz_model_free(res->orig);
    hpcz_compare_result_free(res->delta);
    memset(res, 0, sizeof *res);
}
