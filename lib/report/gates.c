/*
 * gates.c - accuracy gates on a comparison (hpcz_compare): "top-1 may drop
 * at most 0.5 points", "cosine at least 0.99 on output 'logits'". The CLI's
 * --max-X/--min-X options and exit status 3 are built on these.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const gate_names[] = {
    [HPCZ_GATE_MAX_TOP1_DROP] = "max-top1-drop",
    [HPCZ_GATE_MIN_TOP1_AGREEMENT] = "min-top1-agreement",
    [HPCZ_GATE_MIN_COSINE] = "min-cosine",
    [HPCZ_GATE_MIN_SQNR] = "min-sqnr",
    [HPCZ_GATE_MAX_ABS] = "max-abs",
};

const char *hpcz_gate_name(int kind)
{
    return kind >= 0 && kind < (int)(sizeof gate_names / sizeof gate_names[0]) ? gate_names[kind] : "?";
}

hpcz_status hpcz_gate_parse(int kind, const char *spec, hpcz_gate *out, hpcz_error *err)
{
    if (kind < 0 || kind > HPCZ_GATE_MAX_ABS)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "unknown gate kind %d", kind);
    const char *eq = strrchr(spec, '=');
    const char *num = eq ? eq + 1 : spec;
    char *end;
    double v = strtod(num, &end);
    if (end == num || *end || !isfinite(v))
        return hpcz_fail(err, HPCZ_ERR_INVALID, "'%s' is not a number (or OUTPUT=NUMBER)", spec);
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->value = v;
    if (eq) {
        size_t l = (size_t)(eq - spec);
        if (l >= sizeof out->output)
            return hpcz_fail(err, HPCZ_ERR_INVALID, "output name too long");
        memcpy(out->output, spec, l);
        out->output[l] = 0;
    }
    return HPCZ_OK;
}

const hpcz_gate *hpcz_gates_unknown_output(const hpcz_gate *gates, size_t n, const hpcz_model *m)
{
    const hpcz_graph *g = m->graph;
    for (size_t i = 0; i < n; i++) {
        if (!gates[i].output[0])
            continue;
        bool found = false;
        for (size_t k = 0; k < g->n_outputs && !found; k++)
            found = g->outputs[k] && !strcmp(g->outputs[k]->name, gates[i].output);
        if (!found)
            return &gates[i];
    }
    return NULL;
}

size_t hpcz_gates_check(const hpcz_gate *gates, size_t n, const hpcz_compare_result *r, hpcz_gate_result *res,
                        size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const hpcz_gate *e = &gates[i];
        for (size_t o = 0; o < r->n_outputs && k < cap; o++) {
            const hpcz_output_metrics *m = &r->outputs[o];
            if (e->output[0] && strcmp(e->output, m->name))
                continue;
            hpcz_gate_result *x = &res[k];
            x->gate = e;
            x->output = m->name;
            x->proxy = 0;
            switch (e->kind) {
            case HPCZ_GATE_MAX_TOP1_DROP:
                if (!m->is_scores)
                    continue;
                if (m->has_labels) {
                    x->measured = m->drop_points;
                } else {
                    /* without labels: the share of changed predictions bounds the drop */
                    x->measured = 100.0 * (1.0 - m->top1_agreement);
                    x->proxy = 1;
                }
                x->broken = x->measured > e->value;
                break;
            case HPCZ_GATE_MIN_TOP1_AGREEMENT:
                if (!m->is_scores)
                    continue;
                x->measured = 100.0 * m->top1_agreement;
                x->broken = x->measured < e->value;
                break;
            case HPCZ_GATE_MIN_COSINE:
                /* the lower of the cosine over all samples together and
                 * the mean of the per-sample cosines: the first is led by
                 * the samples with the largest outputs, and a gate passed on
                 * the calibration set that way failed on ppocr_det's and
                 * ddddocr_det's eval images (per-sample mean 0.989) */
                x->measured = fmin(m->cosine, m->cos_mean);
                x->broken = !(x->measured >= e->value);
                break;
            case HPCZ_GATE_MIN_SQNR:
                x->measured = m->sqnr_db;
                x->broken = !(x->measured >= e->value);
                break;
            case HPCZ_GATE_MAX_ABS:
                x->measured = m->max_abs;
                x->broken = !(x->measured <= e->value);
                break;
            default:
                continue;
            }
            k++;
        }
    }
    return k;
}

int hpcz_gates_hold(const hpcz_gate *gates, size_t n, const hpcz_compare_result *r)
{
    /* each gate yields at most one result per output */
    size_t cap = n * r->n_outputs;
    if (!cap)
        return 1;
    hpcz_gate_result *res = malloc(cap * sizeof *res);
    if (!res)
        return -1;
    size_t k = hpcz_gates_check(gates, n, r, res, cap);
    int ok = 1;
    for (size_t i = 0; i < k; i++)
        ok &= !res[i].broken;
    free(res);
    return ok;
}

hpcz_status hpcz_gates_check_outputs(const hpcz_gate *gates, size_t n, const hpcz_model *m, const hpcz_gate **bad,
                                     hpcz_error *err)
{
    if (!(*bad = hpcz_gates_unknown_output(gates, n, m)))
        return HPCZ_OK;
    const hpcz_graph *g = m->graph;
    const char *names[256];
    size_t k = 0;
    for (size_t i = 0; i < g->n_outputs && k < 256; i++)
        if (g->outputs[i])
            names[k++] = g->outputs[i]->name;
    const char *near = hpcz_closest((*bad)->output, names, k, sizeof *names);
    char list[512];
    hpcz_list_names(list, sizeof list, names, k);
    if (near)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the model has no output '%s'; did you mean '%s'?", (*bad)->output,
                         near);
    return hpcz_fail(err, HPCZ_ERR_USAGE, "the model has no output '%s' (outputs: %s)", (*bad)->output, list);
}
