/*
 * mask.c - token masks for calibration: which values of an activation belong
 * to real tokens of a padded batch (attention_mask [batch, seq], nonzero =
 * real token), so that calibration ranges, GPTQ Hessians and reconstruction
 * Gram matrices are measured on real tokens only.
 *
 * The token axes of a tensor, for a mask [B, T] (T > 1):
 *   - leading [B*T, ...] (flattened tokens, e.g. after a Reshape): axis 0,
 *     row i being token (i / T, i % T);
 *   - leading [B, ...]: every later axis of size T, so [B, T, C] masks rows
 *     and [B, H, T, D] each head's rows; but of two or more such axes the
 *     last one is a key axis and is not masked: attention scores [B, H, T, T]
 *     keep the rows of real queries, every key included. Scores after the
 *     additive mask then keep its huge negatives in their range (which keeps
 *     them out of int8) instead of a range that would clamp the padding back
 *     into the softmax;
 *   - anything else (pooled [B, C], constants), and tensors of one value per
 *     token (the attention mask itself and what is made of it, such as the
 *     additive [B, 1, 1, T] mask whose padded values are meant): every value
 *     counts.
 * A channel axis that happens to have size T is taken for a token axis too.
 */
#include "internal.h"

#include <math.h>

hpcz_status hpcz_calib_mask_resolve(const hpcz_model *m, const char *opt, const char **mask, hpcz_error *err)
{
    const hpcz_graph *g = m->graph;
    *mask = NULL;
    if (opt && !strcmp(opt, "none"))
        return HPCZ_OK;
    const char *want = opt ? opt : "attention_mask";
    for (size_t i = 0; i < g->n_inputs; i++) {
        const hpcz_value *v = g->inputs[i];
        if (v && !v->init && v->name && !strcmp(v->name, want)) {
            *mask = v->name;
            return HPCZ_OK;
        }
    }
    if (opt)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the model has no input '%s' (none: no mask)", opt);
    return HPCZ_OK;
}

void hpcz_token_mask_release(hpcz_token_mask *tm)
{
    free(tm->keep);
    memset(tm, 0, sizeof *tm);
}

hpcz_status hpcz_token_mask_set(hpcz_token_mask *tm, const hpcz_array *a, const char *name, hpcz_error *err)
{
    hpcz_token_mask_release(tm);
    if (a->ndim != 2) {
        char got[128];
        hpcz_array_describe(a, got, sizeof got);
        return hpcz_fail(err, HPCZ_ERR_INVALID, "calibration mask '%s': expected [batch, seq], got %s", name, got);
    }
    tm->batch = a->dims[0];
    tm->seq = a->dims[1];
    tm->keep = malloc(a->numel ? (size_t)a->numel : 1);
    if (!tm->keep)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    tm->all = 1;
    for (int64_t i = 0; i < a->numel; i++) {
        int k;
        switch (a->dtype) {
        case HPCZ_DTYPE_INT64:
            k = ((const int64_t *)a->data)[i] != 0;
            break;
        case HPCZ_DTYPE_INT32:
            k = ((const int32_t *)a->data)[i] != 0;
            break;
        case HPCZ_DTYPE_FLOAT:
            k = ((const float *)a->data)[i] != 0;
            break;
        case HPCZ_DTYPE_BOOL:
        case HPCZ_DTYPE_UINT8:
        case HPCZ_DTYPE_INT8:
            k = ((const uint8_t *)a->data)[i] != 0;
            break;
        default:
            hpcz_token_mask_release(tm);
            return hpcz_fail(err, HPCZ_ERR_INVALID,
                             "calibration mask '%s': expected an integer, bool or float tensor", name);
        }
        tm->keep[i] = (uint8_t)k;
        tm->all &= k;
    }
    return HPCZ_OK;
}

/* Token axes of a (a bit per axis; bit 0 alone: the flattened form), 0 when
 * every value counts. */
static unsigned token_axes(const hpcz_token_mask *tm, const hpcz_array *a)
{
    int64_t B = tm->batch, T = tm->seq;
    if (!tm->keep || tm->all || T < 2 || a->ndim < 1 || a->ndim > 31 || a->numel == B * T)
        return 0;
    if (a->dims[0] == B * T)
        return 1;
    if (a->dims[0] != B)
        return 0;
    unsigned ax = 0;
    for (int k = 1; k < a->ndim; k++)
        if (a->dims[k] == T)
            ax |= 1u << k;
    if (ax & (ax - 1))
        ax &= ~(1u << (31 - __builtin_clz(ax))); /* the key axis */
    return ax;
}

int hpcz_token_mask_apply(const hpcz_token_mask *tm, const hpcz_array *a, int64_t unit, hpcz_array *out)
{
    unsigned ax = a->dtype == HPCZ_DTYPE_FLOAT ? token_axes(tm, a) : 0;
    if (!ax)
        return 0;
    int last = 31 - __builtin_clz(ax);
    int64_t inner = 1;
    for (int k = last + 1; k < a->ndim; k++)
        inner *= a->dims[k];
    if (unit < 1 || inner % unit)
        return 0; /* a token axis inside the unit (a row): rows cannot be told apart */
    int64_t T = tm->seq, blocks = inner ? a->numel / inner : 0, kept = 0;
    bool flat = ax == 1 && a->dims[0] == tm->batch * T && a->dims[0] != tm->batch;
    uint8_t *sel = malloc(blocks ? (size_t)blocks : 1);
    if (!sel)
        return -1;
    /* block j: the index of axes [0, last] in row-major order */
    for (int64_t j = 0; j < blocks; j++) {
        bool keep = true;
        if (flat) {
            keep = tm->keep[j];
        } else {
            int64_t r = j, idx[32];
            for (int k = last; k >= 0; k--) {
                idx[k] = r % a->dims[k];
                r /= a->dims[k];
            }
            for (int k = 1; k <= last && keep; k++)
                if (ax >> k & 1)
                    keep = tm->keep[idx[0] * T + idx[k]];
        }
        sel[j] = keep;
        kept += keep;
    }
    int64_t dims[2] = {kept * inner / unit, unit};
    hpcz_error err;
    if (hpcz_array_alloc(out, HPCZ_DTYPE_FLOAT, 2, dims, &err)) {
        free(sel);
        return -1;
    }
    float *o = out->data;
    const float *x = a->data;
    for (int64_t j = 0; j < blocks; j++)
        if (sel[j]) {
            memcpy(o, x + j * inner, (size_t)inner * sizeof *o);
            o += inner;
        }
    free(sel);
    return 1;
}
