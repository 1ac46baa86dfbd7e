/*
 * autofallback.c - accuracy-aware quantization and the NaN/Inf repair of
 * compressed models.
 *
 * hpcz_autofallback: one per-layer comparison ranks the quantized layers by
 * the noise each adds (its output's noise power minus its inputs': a deep
 * layer inherits the error of everything before it, so the plain per-layer
 * SQNR would blame the last layers); then the smallest number k of the worst
 * layers that must stay float for the gates to hold is bisected, one
 * output-only evaluation per trial (a --min-cosine gate with a margin for
 * data other than these samples: gates_hold). Layers returned to float keep
 * int8 weights first; when every layer so kept still breaks the gates, their
 * weights become float16 (post_fp16), then float (post_float).
 *
 * hpcz_repair_nonfinite: a compressed model whose values turn NaN/Inf on the
 * data where the original's stay finite is never accepted. float16 repairs
 * itself: the node where it first broke (or the nodes reading a Cast that
 * overflowed) stays float32 and the model is converted again, up to 32 times.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct keep_set {
    char **names;
    size_t n;
} keep_set;

/* a node's id: its name, or its first output for nodes without one */
static const char *node_id(const hpcz_node *n)
{
    return n->name && *n->name ? n->name : n->n_outputs && n->outputs[0] ? n->outputs[0]->name : NULL;
}

static int keep_cb(void *user, const hpcz_node *n)
{
    const keep_set *k = user;
    const char *id = node_id(n);
    for (size_t i = 0; id && i < k->n; i++)
        if (!strcmp(id, k->names[i]))
            return 1;
    return 0;
}

static void keep_release(keep_set *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->names[i]);
    free(k->names);
    k->names = NULL;
    k->n = 0;
}

/* The quantized model with the nodes of `keep` left float. */
static hpcz_model *requantize(const hpcz_fallback_opts *o, hpcz_pipeline *post, keep_set *keep, hpcz_error *err)
{
    hpcz_model *m = hpcz_onnx_load_buffer(o->bytes, o->len, NULL, err);
    if (!m)
        return NULL;
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    ctx.calib = o->table;
    ctx.keep_float = keep_cb;
    ctx.keep_float_user = keep;
    hpcz_status st = HPCZ_OK;
    if (o->fold) {
        hpcz_pipeline *pre = hpcz_pipeline_parse("fold-bn,eliminate", err);
        st = pre ? hpcz_pipeline_run(pre, m, &ctx, err) : err->status;
        hpcz_pipeline_free(pre);
    }
    if (!st && o->prepare) {
        ctx.data = o->prepare_data;
        ctx.data_mask = o->prepare_mask;
        ctx.data_samples = o->prepare_samples;
        ctx.threads = o->threads;
        hpcz_pipeline *prep = hpcz_pipeline_parse(o->prepare, err);
        st = prep ? hpcz_pipeline_run(prep, m, &ctx, err) : err->status;
        hpcz_pipeline_free(prep);
        ctx.data = NULL;
    }
    if (!st)
        st = hpcz_pipeline_run(post, m, &ctx, err);
    if (st) {
        hpcz_model_free(m);
        return NULL;
    }
    return m;
}

static const hpcz_node *op_behind(hpcz_model *m, const char *tensor)
{
    return hpcz_op_behind_qdq(hpcz_graph_find_value(m->graph, tensor));
}

/* The lowest SQNR among the compared tensors feeding node p, walking back
 * through tensors that were not compared (folded away, say); graph inputs
 * and constants are exact (infinite SQNR). */
static double inputs_sqnr(const hpcz_compare_result *cr, const hpcz_node *p, int depth)
{
    double best = INFINITY;
    for (size_t j = 0; p && j < p->n_inputs; j++) {
        const hpcz_value *in = p->inputs[j];
        if (!in || in->init)
            continue;
        double s = INFINITY;
        int found = 0;
        for (size_t k = 0; k < cr->n_layers && !found; k++)
            if (!strcmp(cr->layers[k].name, in->name)) {
                s = cr->layers[k].sqnr_db;
                found = 1;
            }
        if (!found && depth > 0 && in->producer)
            s = inputs_sqnr(cr, in->producer, depth - 1);
        if (s < best)
            best = s;
    }
    return best;
}

static double worst_sqnr(const hpcz_compare_result *r)
{
    double w = INFINITY;
    for (size_t i = 0; i < r->n_outputs; i++)
        if (r->outputs[i].sqnr_db < w)
            w = r->outputs[i].sqnr_db;
    return w;
}

/* Whether the gates hold on r, with --min-cosine gates asked for a margin
 * (its largest over the outputs into *margin): a model chosen to pass on
 * the calibration samples must pass on other data too, and ppocr_det and
 * ddddocr_det passed 0.99 on their 32 calibration images but gave 0.9889
 * and 0.9896 on their eval images. The margin is two standard errors of the
 * difference between the mean per-sample cosine of these samples and of
 * another set as large: 2 sd sqrt(2 / n), taken off both cosines the gate
 * reads (r is changed). */
static int gates_hold(const hpcz_fallback_opts *o, hpcz_compare_result *r, double *margin)
{
    int cos_gate = 0;
    for (size_t i = 0; i < o->n_gates; i++)
        cos_gate |= o->gates[i].kind == HPCZ_GATE_MIN_COSINE;
    *margin = 0;
    for (size_t i = 0; i < r->n_outputs && cos_gate; i++) {
        hpcz_output_metrics *m = &r->outputs[i];
        double mg = m->cos_n > 1 ? 2.0 * m->cos_sd * sqrt(2.0 / (double)m->cos_n) : 0;
        m->cosine -= mg;
        m->cos_mean -= mg;
        if (mg > *margin)
            *margin = mg;
    }
    return hpcz_gates_hold(o->gates, o->n_gates, r) == 1;
}

/* compare with the data's name in front of a message that lacks it */
static hpcz_status compare(const hpcz_fallback_opts *o, hpcz_model *b, const hpcz_compare_opts *co,
                           hpcz_compare_result **res, hpcz_error *err)
{
    hpcz_status st = hpcz_compare(o->orig, b, o->data, co, res, err);
    size_t dl = strlen(o->data);
    if (st && err && !(strncmp(err->msg, o->data, dl) == 0 && err->msg[dl] == ':')) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        hpcz_fail(err, st, "%s: %s", o->data, m);
    }
    return st;
}

/* The quantized layers of `first`, worst first, by the noise each adds. */
static hpcz_status rank_layers(const hpcz_fallback_opts *o, hpcz_model *first, const hpcz_compare_result *cr,
                               keep_set *all, const char ***ops_out, double **sq_out, hpcz_error *err)
{
    size_t nl = cr->n_layers;
    size_t *rank = calloc(nl + 1, sizeof *rank);
    double *loss = calloc(nl + 1, sizeof *loss);
    all->names = calloc(nl + 1, sizeof(char *));
    all->n = 0;
    const char **ops = calloc(nl + 1, sizeof *ops);
    double *sq = calloc(nl + 1, sizeof *sq);
    hpcz_status st = rank && loss && all->names && ops && sq ? HPCZ_OK : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nl && !st; i++) {
        rank[i] = i;
        const hpcz_value *v = hpcz_graph_find_value(o->orig->graph, cr->layers[i].name);
        /* noise powers add: the noise this layer adds, relative to the signal */
        double in_sq = inputs_sqnr(cr, v ? v->producer : NULL, 8);
        double added = pow(10.0, -cr->layers[i].sqnr_db / 10.0) - pow(10.0, -in_sq / 10.0);
        loss[i] = added > 0 ? added : 0;
    }
    for (size_t i = 0; i < nl && !st; i++) /* insertion sort: stable, small n */
        for (size_t j = i; j > 0 && loss[rank[j]] > loss[rank[j - 1]]; j--) {
            size_t t = rank[j];
            rank[j] = rank[j - 1];
            rank[j - 1] = t;
        }
    for (size_t ri = 0; ri < nl && !st; ri++) {
        size_t i = rank[ri];
        if (!strcmp(cr->layers[i].what, "kept float"))
            continue;
        const hpcz_node *n = op_behind(first, cr->layers[i].matched);
        if (!n || !n->name || !*n->name)
            continue;
        int dup = 0;
        for (size_t k = 0; k < all->n && !dup; k++)
            dup = !strcmp(all->names[k], n->name);
        if (dup)
            continue;
        ops[all->n] = n->op_type;
        sq[all->n] = cr->layers[i].sqnr_db;
        if (!(all->names[all->n] = strdup(n->name)))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        else
            all->n++;
    }
    free(rank);
    free(loss);
    *ops_out = ops;
    *sq_out = sq;
    return st;
}

void hpcz_fallback_result_release(hpcz_fallback_result *f)
{
    for (size_t i = 0; i < f->n_kept; i++) {
        free(f->kept[i]);
        free(f->kept_op[i]);
    }
    free(f->kept);
    free(f->kept_op);
    free(f->kept_sqnr);
    memset(f, 0, sizeof *f);
}

hpcz_status hpcz_autofallback(const hpcz_fallback_opts *o, hpcz_model *first, hpcz_model **better,
                              hpcz_fallback_result *fb, hpcz_error *err)
{
    memset(fb, 0, sizeof *fb);
    *better = NULL;
    double t0 = wall_s();
    hpcz_compare_opts co = {0};
    co.threads = o->threads;
    co.per_layer = 1;
    co.labels = o->labels;
    co.n_labels = o->n_labels;
    hpcz_compare_result *cr = NULL;
    hpcz_status st = compare(o, first, &co, &cr, err);
    if (st)
        return st;
    fb->evaluations = 1;
    fb->one_eval = wall_s() - t0;
    double margin;
    if (gates_hold(o, cr, &margin)) {
        fb->cos_margin = margin;
        fb->satisfied = 1;
        fb->seconds = wall_s() - t0;
        hpcz_compare_result_free(cr);
        return HPCZ_OK;
    }
    keep_set all = {0};
    const char **ops = NULL;
    double *sq = NULL;
    st = rank_layers(o, first, cr, &all, &ops, &sq, err);
    hpcz_compare_result_free(cr);
    co.per_layer = 0;
    /* bisect the smallest k whose model passes */
    size_t lo = 0, hi = all.n, best_k = 0, total = 0;
    hpcz_model *best = NULL;
    double best_score = -INFINITY;
    int hi_known = 0;
    hpcz_pipeline *post = o->post;
    for (size_t span = all.n + 1; span; span /= 2)
        total++; /* about how many trials the bisection takes */
    while (!st && (lo < hi || !hi_known)) {
        size_t k = hi_known ? lo + (hi - lo) / 2 : hi;
        if (hi_known && k == lo)
            k = lo + 1;
        if (o->budget_s > 0 && wall_s() - t0 > o->budget_s) {
            fb->budget_reached = 1;
            break;
        }
        if (o->cancel && *o->cancel) {
            st = hpcz_fail(err, HPCZ_ERR_CANCELLED, "auto-fallback: cancelled");
            break;
        }
        keep_set ks = {all.names, k};
        hpcz_model *cand = requantize(o, post, &ks, err);
        if (!cand) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err->msg);
            st = hpcz_fail(err, err->status, "auto-fallback: %s", m);
            break;
        }
        hpcz_compare_result *res = NULL;
        if ((st = compare(o, cand, &co, &res, err))) {
            hpcz_model_free(cand);
            break;
        }
        fb->evaluations++;
        if (o->progress)
            o->progress(o->progress_ctx, (size_t)fb->evaluations - 1, total);
        double score = worst_sqnr(res);
        int pass = gates_hold(o, res, &margin);
        hpcz_compare_result_free(res);
        if (pass) {
            hpcz_model_free(best);
            best = cand;
            best_k = k;
            best_score = INFINITY;
            fb->cos_margin = margin;
            hi = k;
            hi_known = 1;
            fb->satisfied = 1;
        } else {
            if (!fb->satisfied && score > best_score) {
                hpcz_model_free(best);
                best = cand;
                best_k = k;
                best_score = score;
            } else {
                hpcz_model_free(cand);
            }
            if (!hi_known && post == o->post && o->post_fp16) {
                post = o->post_fp16;
                fb->fp16_weights = 1;
                continue;
            }
            if (!hi_known && post != o->post_float && o->post_float) {
                post = o->post_float;
                fb->fp16_weights = 0;
                fb->float_weights = 1;
                continue;
            }
            if (!hi_known) {
                hi_known = 1; /* even all-float layers fail: nothing to bisect */
                lo = hi;
                break;
            }
            lo = k;
        }
        if (hi_known && hi - lo <= 1 && fb->satisfied)
            break;
    }
    fb->seconds = wall_s() - t0;
    if (!st && best && best_k) {
        fb->kept = calloc(best_k, sizeof(char *));
        fb->kept_op = calloc(best_k, sizeof(char *));
        fb->kept_sqnr = calloc(best_k, sizeof(double));
        if (!fb->kept || !fb->kept_op || !fb->kept_sqnr) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        } else {
            fb->n_kept = best_k;
            for (size_t i = 0; i < best_k; i++) {
                fb->kept[i] = strdup(all.names[i]);
                fb->kept_op[i] = strdup(ops[i]);
                fb->kept_sqnr[i] = sq[i];
            }
        }
    }
    keep_release(&all);
    free(ops);
    free(sq);
    if (st) {
        hpcz_model_free(best);
        hpcz_fallback_result_release(fb);
        return st;
    }
    *better = best;
    return HPCZ_OK;
}

hpcz_status hpcz_repair_nonfinite(const uint8_t *orig_bytes, size_t orig_len, const char *data, int fp16,
                                  int threads, hpcz_pipeline *pl, hpcz_pass_ctx *ctx,
                                  void (*retry)(void *user, const char *msg), void *retry_user, hpcz_model **m,
                                  hpcz_error *err)
{
    keep_set keep = {NULL, 0};
    hpcz_status st = HPCZ_OK;
    int (*saved_fn)(void *, const hpcz_node *) = ctx->keep_float;
    void *saved_user = ctx->keep_float_user;
    for (int round = 0; !st; round++) {
        hpcz_model *orig = hpcz_onnx_load_buffer(orig_bytes, orig_len, NULL, err);
        if (!orig) {
            st = err->status;
            break;
        }
        hpcz_nonfinite nf;
        st = hpcz_find_nonfinite(orig, *m, data, 32, threads, &nf, err);
        hpcz_model_free(orig);
        if (st || !nf.node)
            break;
        const char *nname = nf.node->name && *nf.node->name ? nf.node->name : "";
        if (!fp16 || round == 32) {
            st = hpcz_fail(err, HPCZ_ERR_INVALID,
                           "the compressed model turns NaN or Inf on %s where the original stays finite "
                           "(first at '%s' of node '%s' (%s): %lld of %lld values; output '%s'): not written",
                           data, nf.tensor, nname, nf.node->op_type, (long long)nf.bad_values,
                           (long long)nf.values, nf.n_outputs ? nf.output : "none yet");
            break;
        }
        /* which nodes stay float32: the one that broke, or, when a Cast the
         * conversion added overflowed, every node that reads it */
        const hpcz_graph *g = nf.node->graph;
        size_t before = keep.n;
        for (size_t i = 0; i < g->n_nodes && !st; i++) {
            const hpcz_node *n = g->nodes[i];
            int take = 0;
            if (nf.added_by_compression) {
                for (size_t k = 0; k < n->n_inputs && !take; k++)
                    take = n->inputs[k] && !strcmp(n->inputs[k]->name, nf.tensor);
            } else {
                take = n == nf.node;
            }
            const char *id = node_id(n);
            if (!take || !id)
                continue;
            char **nn = realloc(keep.names, (keep.n + 1) * sizeof *nn);
            if (nn)
                keep.names = nn;
            if (!nn || !(nn[keep.n] = strdup(id)))
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            else
                keep.n++;
        }
        if (st)
            break;
        if (keep.n == before) {
            st = hpcz_fail(err, HPCZ_ERR_INVALID,
                           "the float16 model turns NaN or Inf at '%s' on %s and no node can be kept in "
                           "float32 for it: not written",
                           nf.tensor, data);
            break;
        }
        if (retry) {
            char msg[512];
            snprintf(msg, sizeof msg, "float16: '%s' turned NaN or Inf on the data; %s kept in float32", nf.tensor,
                     nf.added_by_compression ? "the nodes reading it are" : "its node is");
            retry(retry_user, msg);
        }
        hpcz_model *again = hpcz_onnx_load_buffer(orig_bytes, orig_len, NULL, err);
        if (!again) {
            st = err->status;
            break;
        }
        ctx->keep_float = keep_cb;
        ctx->keep_float_user = &keep;
        if ((st = hpcz_pipeline_run(pl, again, ctx, err))) {
            hpcz_model_free(again);
            break;
        }
        hpcz_model_free(*m);
        *m = again;
    }
    ctx->keep_float = saved_fn;
    ctx->keep_float_user = saved_user;
    keep_release(&keep);
    return st;
}
