/*
 * equalize_check.c - whether static int8 keeps cross-layer equalization
 * (lib/passes/equalize.c) on this model: it changes every activation range
 * between the pairs it scales, so it is judged the way the result will be,
 * by calibrating and quantizing the model with and without it and keeping
 * it only when the worst output SQNR on the calibration data does not drop
 * (ppocr_rec gains 4 dB on its eval samples, oww_embedding loses 1).
 */
#include "job.h"
#include "passes.h"

#include <math.h>
#include <stdio.h>

/* The equalize pass's note, to tell whether it found a pair. */
static void catch_note(void *user, const char *pass, const char *msg)
{
    if (!strcmp(pass, "equalize"))
        snprintf(user, 256, "%s", msg);
}

/* A copy of m with `steps` run (quiet), calibrated and quantized by post;
 * *sqnr: its worst output SQNR against m on the calibration data. */
static hpcz_status trial(hpcz_model *m, const char *steps, hpcz_pipeline *post, const hpcz_quantize_opts *o,
                         const hpcz_calib_opts *co, const hpcz_pass_ctx *ctx, char *note, double *sqnr,
                         hpcz_error *err)
{
    hpcz_job_hooks h = {.cancel = o->hooks.cancel};
    hpcz_pass_ctx quiet = *ctx;
    quiet.log = note ? catch_note : NULL;
    quiet.log_user = note;
    quiet.verify = 0;
    hpcz_calib_table *t = NULL;
    hpcz_model *q = hpcz_model_clone(m, err);
    hpcz_status st = q ? HPCZ_OK : err->status;
    if (!st && *steps) {
        hpcz_pipeline *pl = hpcz_pipeline_parse(steps, err);
        st = pl ? hpcz_pipeline_run(pl, q, &quiet, err) : err->status;
        hpcz_pipeline_free(pl);
    }
    if (!st && note && !strstr(note, "equalized"))
        *sqnr = -INFINITY; /* nothing to equalize: no need to measure */
    else if (!st && !(st = hpcz_calibrate_model(q, o->calib, o->calib_samples, co, 0, &h, &t, err))) {
        quiet.calib = t;
        quiet.log = NULL;
        if (!(st = hpcz_pipeline_run(post, q, &quiet, err)))
            st = hpcz_worst_sqnr(m, q, &quiet, sqnr, err);
    }
    hpcz_calib_table_free(t);
    hpcz_model_free(q);
    return st;
}

hpcz_status job_equalize_check(hpcz_model *m, char *pre, hpcz_pipeline *post, const hpcz_quantize_opts *o,
                               const hpcz_calib_opts *co, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    static const char name[] = "equalize";
    size_t len = strlen(name);
    if (strncmp(pre, name, len) || (pre[len] && pre[len] != ','))
        return HPCZ_OK;
    const char *rest = pre + len + (pre[len] == ',');
    char note[256] = "";
    double with = 0, without = 0;
    hpcz_status st = trial(m, pre, post, o, co, ctx, note, &with, err);
    if (!st && with > -INFINITY)
        st = trial(m, rest, post, o, co, ctx, NULL, &without, err);
    /* calibration data that do not fit the model stay a usage error */
    if (st)
        return st == HPCZ_ERR_USAGE ? st : job_blame(err, m->path);
    if (with == -INFINITY)
        hpcz_pass_note(ctx, name, "%s", note);
    else if (with >= without)
        hpcz_pass_note(ctx, name, "kept: worst output SQNR on the calibration data %.1f -> %.1f dB", without, with);
    else
        hpcz_pass_note(ctx, name, "left out: it would lower the worst output SQNR on the calibration data "
                       "(%.1f -> %.1f dB)", without, with);
    if (!(with >= without) || with == -INFINITY)
        memmove(pre, rest, strlen(rest) + 1);
    return HPCZ_OK;
}
