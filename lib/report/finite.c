/*
 * finite.c - where a compressed model's values turn NaN or Inf on data
 * where the original's stay finite.
 *
 * Both models run the same samples with an observer on every tensor. A
 * tensor of the original that ever holds NaN/Inf is legitimately
 * non-finite (an attention mask of -inf) and never blamed. The first tensor
 * of the compressed model, in execution order, that holds NaN/Inf while the
 * original's tensor of the same name (or, for a tensor the compression
 * added, every one) is finite names where the compression broke the range:
 * float16 overflowing past 65504 is the usual cause.
 */
#include "internal.h"
#include "qmath.h"

#include <math.h>
#include <stdio.h>

/* A small open-addressing set of strings. */
typedef struct strset {
    char **slot;
    size_t cap, n;
    int oom;
} strset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool set_has(const strset *s, const char *k)
{
    if (!s->cap)
        return false;
    for (size_t i = hash_str(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i])
            return false;
        if (!strcmp(s->slot[i], k))
            return true;
    }
}

static void set_add(strset *s, const char *k)
{
    if (set_has(s, k) || s->oom)
        return;
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **ns = calloc(nc, sizeof *ns);
        if (!ns) {
            s->oom = 1;
            return;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = hash_str(s->slot[i]) & (nc - 1);
                while (ns[j])
                    j = (j + 1) & (nc - 1);
                ns[j] = s->slot[i];
            }
        free(s->slot);
        s->slot = ns;
        s->cap = nc;
    }
    char *c = strdup(k);
    if (!c) {
        s->oom = 1;
        return;
    }
    size_t j = hash_str(k) & (s->cap - 1);
    while (s->slot[j])
        j = (j + 1) & (s->cap - 1);
    s->slot[j] = c;
    s->n++;
}

static void set_free(strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
}

static int64_t count_nonfinite(const hpcz_array *a)
{
    int64_t bad = 0;
    if (a->dtype == HPCZ_DTYPE_FLOAT) {
        const float *x = a->data;
        for (int64_t i = 0; i < a->numel; i++)
            bad += !isfinite(x[i]);
    } else if (a->dtype == HPCZ_DTYPE_FLOAT16) {
        const uint16_t *x = a->data;
        for (int64_t i = 0; i < a->numel; i++)
            bad += (x[i] & 0x7c00) == 0x7c00;
    } else if (a->dtype == HPCZ_DTYPE_DOUBLE) {
        const double *x = a->data;
        for (int64_t i = 0; i < a->numel; i++)
            bad += !isfinite(x[i]);
    }
    return bad;
}

typedef struct watch {
    strset orig_bad;     /* tensors of the original that hold NaN/Inf somewhere */
    strset orig_names;   /* every tensor name of the original */
    bool compressed;     /* observing the compressed model */
    hpcz_nonfinite *r;
} watch;

static void observe(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    watch *w = ctx;
    if (!name || !a->data)
        return;
    if (!w->compressed) {
        set_add(&w->orig_names, name);
        if (count_nonfinite(a))
            set_add(&w->orig_bad, name);
        return;
    }
    if (w->r->node || set_has(&w->orig_bad, name))
        return;
    int64_t bad = count_nonfinite(a);
    if (!bad)
        return;
    /* the first place it broke: later NaN/Inf only follow from it */
    w->r->node = node;
    w->r->added_by_compression = !set_has(&w->orig_names, name);
    w->r->bad_values = bad;
    w->r->values = a->numel;
    snprintf(w->r->tensor, sizeof w->r->tensor, "%s", name);
}

hpcz_status hpcz_find_nonfinite(hpcz_model *orig, hpcz_model *comp, const char *data,
                                size_t max_samples, int threads, hpcz_nonfinite *r, hpcz_error *err)
{
    memset(r, 0, sizeof *r);
    watch w = {.r = r};
    hpcz_plan_opts po = {.threads = threads, .observer = observe, .observer_ctx = &w};
    hpcz_plan *pa = hpcz_plan_new(orig, &po, err);
    if (!pa)
        return err->status;
    hpcz_plan *pb = hpcz_plan_new(comp, &po, err);
    if (!pb) {
        hpcz_error_prefix(err, "compressed model");
        hpcz_plan_free(pa);
        return err->status;
    }
    hpcz_status st = HPCZ_OK;
    size_t n_in = hpcz_plan_n_inputs(pa), n_out = hpcz_plan_n_outputs(pa);
    size_t n_out_b = hpcz_plan_n_outputs(pb);
    hpcz_array *ins = calloc(n_in + 1, sizeof *ins), *ins_b = calloc(n_in + 1, sizeof *ins_b);
    hpcz_array *oa = calloc(n_out + 1, sizeof *oa), *ob = calloc(n_out_b + 1, sizeof *ob);
    int *b_in = calloc(n_in + 1, sizeof *b_in);
    bool *out_bad = calloc(n_out_b + 1, sizeof *out_bad);
    hpcz_dataset *d = NULL;
    if (!ins || !ins_b || !oa || !ob || !b_in || !out_bad) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hpcz_plan_map_inputs(pa, pb, b_in, err)))
        goto done;
    d = hpcz_dataset_open(data, pa, max_samples, err);
    if (!d) {
        st = err->status;
        goto done;
    }
    size_t total = hpcz_dataset_size(d), bs = hpcz_dataset_batch_size(d);
    for (size_t start = 0; start < total && !st; start += bs) {
        size_t n = total - start < bs ? total - start : bs;
        if ((st = hpcz_dataset_batch(d, start, n, ins, err)))
            break;
        st = hpcz_plan_feed_b(pb, b_in, n_in, ins, ins_b, err);
        w.compressed = false;
        if (!st)
            st = hpcz_plan_run(pa, ins, oa, err);
        w.compressed = true;
        if (!st && (st = hpcz_plan_run(pb, ins_b, ob, err)))
            hpcz_error_prefix(err, "compressed model");
        for (size_t k = 0; k < n_out_b && !st; k++) {
            const char *name = hpcz_plan_output(pb, k)->name;
            if (!out_bad[k] && !set_has(&w.orig_bad, name) && count_nonfinite(&ob[k])) {
                out_bad[k] = true;
                if (!r->n_outputs)
                    snprintf(r->output, sizeof r->output, "%s", name);
                r->n_outputs++;
            }
        }
        if (!st && (w.orig_bad.oom || w.orig_names.oom))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        hpcz_plan_fed_release(b_in, n_in, ins, ins_b);
        for (size_t i = 0; i < n_out; i++)
            hpcz_array_release(&oa[i]);
        for (size_t i = 0; i < n_out_b; i++)
            hpcz_array_release(&ob[i]);
        r->samples += n;
    }
done:
    hpcz_dataset_free(d);
    free(ins);
    free(ins_b);
    free(oa);
    free(ob);
    free(b_in);
    free(out_bad);
    hpcz_plan_free(pa);
    hpcz_plan_free(pb);
    set_free(&w.orig_bad);
    set_free(&w.orig_names);
    return st;
}
