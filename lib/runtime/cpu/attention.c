/*
 * attention.c - Attention (opset 23+): 3-D or 4-D Q/K/V, grouped-query
 * heads, past key/value caches, boolean or additive masks, causal masking
 * aligned to the cache, softcap and the qk_matmul_output modes. A direct
 * implementation in double (each output row serially): the fused
 * transformer path for speed is future work.
 */
#include "../rt.h"

static bool attention_ok(const hpcz_node *n)
{
    static const char *known[] = {"is_causal", "kv_num_heads", "q_num_heads",
                                  "qk_matmul_output_mode", "scale", "softcap",
                                  "softmax_precision"};
    for (size_t i = 0; i < n->n_attrs; i++) {
        bool ok = false;
        for (size_t k = 0; k < HPCZ_ARRAY_SIZE(known); k++)
            ok |= !strcmp(n->attrs[i].name, known[k]);
        if (!ok)
            return false; /* sliding windows and later additions */
    }
    /* nonpad_kv_seqlen (external cache) is not implemented */
    return n->n_inputs <= 6 || !n->inputs[6];
}

static hpcz_status k_attention(rt_ctx *c)
{
    hpcz_array *Q = rt_in(c, 0), *K = rt_in(c, 1), *V = rt_in(c, 2), *M = rt_in(c, 3),
               *PK = rt_in(c, 4), *PV = rt_in(c, 5);
    int dt = Q->dtype;
    if (!hpcz_dtype_is_float(dt) || dt == HPCZ_DTYPE_BFLOAT16 || K->dtype != dt ||
        V->dtype != dt || (!PK) != (!PV) || Q->ndim != K->ndim || Q->ndim != V->ndim ||
        (Q->ndim != 3 && Q->ndim != 4))
        return rt_unsupported(c);
    bool d3 = Q->ndim == 3;
    int64_t B = Q->dims[0], Hq, Hk, Sq, Skv, D, Dv;
    if (d3) {
        Hq = rt_attr_i(c, "q_num_heads", 0);
        Hk = rt_attr_i(c, "kv_num_heads", 0);
        if (Hq <= 0 || Hk <= 0 || Q->dims[2] % Hq || K->dims[2] % Hk || V->dims[2] % Hk)
            return rt_bad(c, "3-D inputs need q_num_heads and kv_num_heads dividing the hidden sizes");
        Sq = Q->dims[1];
        Skv = K->dims[1];
        D = Q->dims[2] / Hq;
        Dv = V->dims[2] / Hk;
        if (K->dims[2] / Hk != D)
            return rt_bad(c, "Q and K head sizes differ");
    } else {
        Hq = Q->dims[1];
        Hk = K->dims[1];
        Sq = Q->dims[2];
        Skv = K->dims[2];
        D = Q->dims[3];
        Dv = V->dims[3];
        if (K->dims[3] != D || V->dims[1] != Hk)
            return rt_bad(c, "Q/K/V shapes do not match");
    }
    if (Hk <= 0 || Hq % Hk || K->dims[0] != B || V->dims[0] != B ||
        (d3 ? V->dims[1] : V->dims[2]) != Skv)
        return rt_bad(c, "Q/K/V shapes do not match");
    int64_t P = 0;
    if (PK) {
        if (PK->ndim != 4 || PV->ndim != 4 || PK->dims[0] != B || PK->dims[1] != Hk ||
            PK->dims[3] != D || PV->dims[1] != Hk || PV->dims[3] != Dv || PV->dims[2] != PK->dims[2] ||
            PK->dtype != dt || PV->dtype != dt)
            return rt_bad(c, "past_key/past_value shapes do not match");
        P = PK->dims[2];
    }
    int64_t T = P + Skv;
    int mode = (int)rt_attr_i(c, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return rt_unsupported(c);
    if (M && (M->ndim < 2 || M->ndim > 4 || M->dims[M->ndim - 2] != Sq || M->dims[M->ndim - 1] > T ||
              (M->dtype != HPCZ_DTYPE_BOOL && M->dtype != dt)))
        return rt_bad(c, "attn_mask shape or dtype does not fit");
    int64_t yd[4], kd[4] = {B, Hk, T, D}, vd[4] = {B, Hk, T, Dv}, qd[4] = {B, Hq, Sq, T};
    hpcz_array *Y;
    if (d3) {
        yd[0] = B, yd[1] = Sq, yd[2] = Hq * Dv;
        Y = rt_out(c, 0, dt, 3, yd);
    } else {
        yd[0] = B, yd[1] = Hq, yd[2] = Sq, yd[3] = Dv;
        Y = rt_out(c, 0, dt, 4, yd);
    }
    hpcz_array *PKo = rt_out(c, 1, dt, 4, kd), *PVo = rt_out(c, 2, dt, 4, vd),
               *QKo = rt_out(c, 3, dt, 4, qd);
    for (size_t i = 0; i < c->n_out && i < 4; i++)
        if (c->out[i] && !(i == 0 ? Y : i == 1 ? PKo : i == 2 ? PVo : QKo))
            return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    double scale = rt_attr_f(c, "scale", 0);
    if (scale == 0)
        scale = 1.0 / sqrt((double)D);
    double s = (float)sqrt(scale); /* applied to Q and K, in the input precision */
    double cap = rt_attr_f(c, "softcap", 0);
    bool causal = rt_attr_i(c, "is_causal", 0) != 0;
    /* element accessors: q[b][h][i][d], k/v over the concatenated cache */
#define QAT(b, h, i, d)                                                                            \
    rt_load_d(Q->data, dt, d3 ? (((b)*Sq + (i)) * Hq + (h)) * D + (d) : (((b)*Hq + (h)) * Sq + (i)) * D + (d))
    double *kk = malloc((size_t)(B * Hk * T * (D + Dv) + 1) * sizeof *kk);
    double *row = malloc((size_t)(T + 1) * 3 * sizeof *row);
    if (!kk || !row) {
        free(kk);
        free(row);
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    double *vv = kk + B * Hk * T * D;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hk; h++)
            for (int64_t t = 0; t < T; t++) {
                for (int64_t d = 0; d < D; d++) {
                    double x = t < P ? rt_load_d(PK->data, dt, ((b * Hk + h) * P + t) * D + d)
                                     : rt_load_d(K->data, dt,
                                                 d3 ? ((b * Skv + t - P) * Hk + h) * D + d
                                                    : ((b * Hk + h) * Skv + t - P) * D + d);
                    kk[((b * Hk + h) * T + t) * D + d] = x;
                    if (PKo)
                        rt_store_d(PKo->data, dt, ((b * Hk + h) * T + t) * D + d, x);
                }
                for (int64_t d = 0; d < Dv; d++) {
                    double x = t < P ? rt_load_d(PV->data, dt, ((b * Hk + h) * P + t) * Dv + d)
                                     : rt_load_d(V->data, dt,
                                                 d3 ? ((b * Skv + t - P) * Hk + h) * Dv + d
                                                    : ((b * Hk + h) * Skv + t - P) * Dv + d);
                    vv[((b * Hk + h) * T + t) * Dv + d] = x;
                    if (PVo)
                        rt_store_d(PVo->data, dt, ((b * Hk + h) * T + t) * Dv + d, x);
                }
            }
    double *qk = row, *bias = row + T, *sm = row + 2 * T;
    int64_t mb = 1, mh = 1, mT = M ? M->dims[M->ndim - 1] : 0;
    if (M && M->ndim == 4) {
        mb = M->dims[0];
        mh = M->dims[1];
    } else if (M && M->ndim == 3) {
        mh = M->dims[0];
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            int64_t hk = h / (Hq / Hk);
            for (int64_t i = 0; i < Sq; i++) {
                bool all_masked = true;
                for (int64_t t = 0; t < T; t++) {
                    double bv = 0;
                    if (M) {
                        if (t >= mT) {
                            bv = -INFINITY; /* the mask is padded to the cache length */
                        } else {
                            int64_t mi = (((mb == 1 ? 0 : b) * mh + (mh == 1 ? 0 : h)) * Sq + i) * mT + t;
                            if (M->dtype == HPCZ_DTYPE_BOOL)
                                bv = ((const uint8_t *)M->data)[mi] ? 0 : -INFINITY;
                            else
                                bv = rt_load_d(M->data, dt, mi);
                        }
                    }
                    if (causal && t > i + P)
                        bv = -INFINITY;
                    bias[t] = bv;
                    if (!(isinf(bv) && bv < 0))
                        all_masked = false;
                    double acc = 0;
                    const double *kr = kk + ((b * Hk + hk) * T + t) * D;
                    for (int64_t d = 0; d < D; d++)
                        acc += (double)(float)(QAT(b, h, i, d) * s) * (double)(float)(kr[d] * s);
                    if (cap > 0)
                        acc = cap * tanh(acc / cap);
                    qk[t] = acc;
                }
                double mx = -INFINITY;
                for (int64_t t = 0; t < T; t++)
                    mx = fmax(mx, qk[t] + bias[t]);
                double safe = isinf(mx) && mx < 0 ? 0 : mx, sum = 0;
                for (int64_t t = 0; t < T; t++) {
                    sm[t] = exp(qk[t] + bias[t] - safe);
                    sum += sm[t];
                }
                if (sum == 0)
                    sum = 1;
                for (int64_t t = 0; t < T; t++)
                    sm[t] = all_masked ? 0 : sm[t] / sum;
                if (QKo)
                    for (int64_t t = 0; t < T; t++) {
                        double v = mode == 3 ? sm[t] : mode == 2 ? qk[t] + bias[t] : qk[t];
                        rt_store_d(QKo->data, dt, ((b * Hq + h) * Sq + i) * T + t, v);
                    }
                for (int64_t d = 0; d < Dv; d++) {
                    double acc = 0;
                    for (int64_t t = 0; t < T; t++)
                        acc += sm[t] * vv[((b * Hk + hk) * T + t) * Dv + d];
                    int64_t yo = d3 ? ((b * Sq + i) * Hq + h) * Dv + d : ((b * Hq + h) * Sq + i) * Dv + d;
                    rt_store_d(Y->data, dt, yo, acc);
                }
            }
        }
#undef QAT
    free(kk);
    free(row);
    return HPCZ_OK;
}

static const rt_op ops[] = {
    {"", "Attention", 23, 0, 0, k_attention, attention_ok},
};

const rt_op_table rt_ops_attention = {ops, HPCZ_ARRAY_SIZE(ops)};
