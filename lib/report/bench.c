/*
 * bench.c - latency of two models on the same sample, alternated run by run
 * (a change in the machine's load hits both alike): medians, minima and the
 * ratio of the medians. What `hpcz report --bench N` prints.
 */
#include "internal.h"
#include "qmath.h"

#include <stdlib.h>
#include <string.h>

/* One model ready to time: its plan and one input sample. */
typedef struct benchee {
    hpcz_plan *p;
    hpcz_dataset *d;
    hpcz_array *in, *out;
    size_t ni, no;
    double *t;
} benchee;

static void benchee_release(benchee *e)
{
    for (size_t i = 0; i < e->ni && e->in; i++)
        hpcz_array_release(&e->in[i]);
    free(e->in);
    free(e->out);
    free(e->t);
    hpcz_dataset_free(e->d);
    hpcz_plan_free(e->p);
}

static hpcz_status benchee_init(benchee *e, hpcz_model *m, const char *data, int threads, int runs,
                                hpcz_error *err)
{
    memset(e, 0, sizeof *e);
    hpcz_plan_opts po = {0};
    po.threads = threads;
    e->p = hpcz_plan_new(m, &po, err);
    if (!e->p)
        return err->status;
    e->d = hpcz_dataset_open(data, e->p, 1, err);
    hpcz_status st = e->d ? HPCZ_OK : err->status;
    e->ni = hpcz_plan_n_inputs(e->p);
    e->no = hpcz_plan_n_outputs(e->p);
    e->in = calloc(e->ni ? e->ni : 1, sizeof *e->in);
    e->out = calloc(e->no ? e->no : 1, sizeof *e->out);
    e->t = calloc((size_t)runs, sizeof *e->t);
    if (!st && (!e->in || !e->out || !e->t))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    if (!st)
        st = hpcz_dataset_batch(e->d, 0, 1, e->in, err);
    /* a float16 model given float32 data (--keep-io-types off) */
    for (size_t i = 0; i < e->ni && !st; i++) {
        const hpcz_value *v = hpcz_plan_input(e->p, i);
        if (v->dtype != HPCZ_DTYPE_FLOAT16 || e->in[i].dtype != HPCZ_DTYPE_FLOAT)
            continue;
        hpcz_array h;
        if ((st = hpcz_array_alloc(&h, HPCZ_DTYPE_FLOAT16, e->in[i].ndim, e->in[i].dims, err)))
            break;
        const float *f = e->in[i].data;
        uint16_t *hd = h.data;
        for (int64_t k = 0; k < h.numel; k++)
            hd[k] = hpcz_f32_to_f16(f[k]);
        hpcz_array_release(&e->in[i]);
        e->in[i] = h;
    }
    return st;
}

static hpcz_status benchee_run(benchee *e, int r, hpcz_error *err)
{
    double t0 = hpcz_now_ms();
    hpcz_status st = hpcz_plan_run(e->p, e->in, e->out, err);
    double dt = hpcz_now_ms() - t0;
    if (r >= 0)
        e->t[r] = dt;
    for (size_t i = 0; i < e->no; i++)
        hpcz_array_release(&e->out[i]);
    return st;
}

hpcz_status hpcz_bench_pair(hpcz_model *a, hpcz_model *b, const char *data, int threads, int runs,
                            hpcz_bench_result *ra, hpcz_bench_result *rb, hpcz_error *err)
{
    if (runs < 1)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "runs must be at least 1");
    memset(ra, 0, sizeof *ra);
    memset(rb, 0, sizeof *rb);
    benchee e[2] = {{0}};
    hpcz_status st = benchee_init(&e[0], a, data, threads, runs, err);
    if (!st && b)
        st = benchee_init(&e[1], b, data, threads, runs, err);
    int nm = b ? 2 : 1;
    /* one warm-up run each (r = -1), then runs alternating which goes first */
    for (int r = -1; r < runs && !st; r++)
        for (int k = 0; k < nm && !st; k++)
            st = benchee_run(&e[nm == 2 && (r & 1) ? 1 - k : k], r, err);
    if (!st) {
        hpcz_bench_result *out[2] = {ra, rb};
        for (int k = 0; k < nm; k++) {
            out[k]->median_ms = hpcz_median_min(e[k].t, (size_t)runs, &out[k]->min_ms);
            out[k]->runs = runs;
        }
        ra->ratio = 1;
        if (b)
            rb->ratio = ra->median_ms > 0 ? rb->median_ms / ra->median_ms : 0;
    }
    for (int k = 0; k < nm; k++)
        benchee_release(&e[k]);
    return st;
}
