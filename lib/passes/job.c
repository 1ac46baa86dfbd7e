/*
 * job.c - what the quantize and prune jobs share: errors that name their
 * file, notes, progress, cancellation, the output, and calibration with its
 * NaN/Inf checks (hpcz_calibrate_model).
 */
#include "job.h"

#include <stdio.h>
#include <sys/stat.h>

hpcz_status job_blame(hpcz_error *err, const char *file)
{
    if (file && !strcmp(file, "-"))
        file = "<stdin>";
    size_t fl = file ? strlen(file) : 0;
    if (file && !(!strncmp(err->msg, file, fl) && err->msg[fl] == ':'))
        hpcz_error_prefix(err, file);
    if (err->status == HPCZ_ERR_USAGE || err->status == HPCZ_OK)
        err->status = HPCZ_ERR_INVALID;
    return err->status;
}

hpcz_status job_cancelled(const hpcz_job_hooks *h, hpcz_error *err)
{
    if (h && h->cancel && *h->cancel)
        return hpcz_fail(err, HPCZ_ERR_CANCELLED, "cancelled");
    return HPCZ_OK;
}

void job_say(const hpcz_job_hooks *h, int warning, const char *msg)
{
    if (h && h->message)
        h->message(h->user, warning, msg);
}

hpcz_status job_spec_check(const char *passes, char *spec, size_t cap, hpcz_error *err)
{
    if (passes)
        snprintf(spec, cap, "%s", passes);
    hpcz_pipeline *pl = hpcz_pipeline_parse(spec, err);
    if (!pl)
        return err->status;
    hpcz_pipeline_free(pl);
    return HPCZ_OK;
}

void job_notes_log(void *user, const char *pass, const char *msg)
{
    job_notes *nt = user;
    if (nt->hooks && nt->hooks->log)
        nt->hooks->log(nt->hooks->user, pass, msg);
    if (!hpcz_grow((void **)&nt->lines, &nt->cap, nt->n + 1, sizeof *nt->lines))
        return;
    size_t l = strlen(pass) + strlen(msg) + 3;
    char *s = malloc(l);
    if (!s)
        return;
    snprintf(s, l, "%s: %s", pass, msg);
    nt->lines[nt->n++] = s;
}

void job_notes_clear(job_notes *nt)
{
    for (size_t i = 0; i < nt->n; i++)
        free(nt->lines[i]);
    nt->n = 0;
}

void job_progress(void *ctx, size_t done, size_t total)
{
    const job_stage *s = ctx;
    s->hooks->progress(s->hooks->user, s->stage, done, total);
}

hpcz_status job_save(hpcz_model *m, const char *path, int in_place, uint64_t *bytes, hpcz_error *err)
{
    /* the size of what is written (deterministic; only standard output
     * needs the bytes in memory) */
    uint8_t *buf = NULL;
    size_t len = 0;
    int to_stdout = path && !strcmp(path, "-");
    if (to_stdout ? hpcz_onnx_serialize(m, NULL, &buf, &len, err) : hpcz_onnx_serialized_size(m, NULL, &len, err))
        return job_blame(err, path ? path : m->path);
    *bytes = len;
    hpcz_status st = HPCZ_OK;
    if (to_stdout) {
        if (fwrite(buf, 1, len, stdout) != len || fflush(stdout))
            st = hpcz_fail(err, HPCZ_ERR_IO, "writing standard output failed");
    } else if (path) {
        if (hpcz_model_save(m, path, HPCZ_FORMAT_AUTO, &(hpcz_save_opts){.overwrite_inputs = in_place}, NULL, err))
            return job_blame(err, path);
        struct stat ost;
        if (hpcz_format_from_path(path) == HPCZ_FORMAT_HPCZ && stat(path, &ost) == 0)
            *bytes = (uint64_t)ost.st_size; /* the container, not the ONNX form */
    }
    free(buf);
    return st;
}

hpcz_status hpcz_calibrate_model(hpcz_model *m, const char *data, size_t max_samples, const hpcz_calib_opts *o,
                                 int fold, const hpcz_job_hooks *hooks, hpcz_calib_table **out, hpcz_error *err)
{
    *out = NULL;
    if (fold) {
        hpcz_pass_ctx ctx;
        hpcz_pass_ctx_init(&ctx);
        if (hooks) {
            ctx.log = hooks->log;
            ctx.log_user = hooks->user;
        }
        hpcz_pipeline *pre = hpcz_pipeline_parse("fold-bn,eliminate", err);
        hpcz_status st = pre ? hpcz_pipeline_run(pre, m, &ctx, err) : err->status;
        hpcz_pipeline_free(pre);
        if (st)
            return job_blame(err, m->path);
    }
    hpcz_status st = job_cancelled(hooks, err);
    if (st)
        return st;
    hpcz_plan_opts po = {0};
    po.threads = o->threads;
    hpcz_plan *plan = hpcz_plan_new(m, &po, err);
    if (!plan)
        return job_blame(err, m->path);
    hpcz_dataset *d = hpcz_dataset_open(data, plan, max_samples, err);
    if (!d) {
        hpcz_plan_free(plan);
        /* data that do not fit the model's inputs are the caller's mistake */
        return err->status == HPCZ_ERR_USAGE ? HPCZ_ERR_USAGE : job_blame(err, NULL);
    }
    if (hpcz_dataset_is_random(d))
        job_message(hooks, 1, "calibrating on random data: the ranges are a proxy, not your data's");
    hpcz_calib_opts co = *o;
    job_stage stage = {hooks, "calibrating"};
    if (hooks && hooks->progress) {
        co.progress = job_progress;
        co.progress_ctx = &stage;
    }
    st = hpcz_calibrate(m, d, &co, out, err);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    if (st)
        return job_blame(err, data);
    /* NaN/Inf inside the model: a tensor with nothing finite has no range */
    const hpcz_calib_range *first, *empty;
    size_t n_bad = hpcz_calib_table_nonfinite(*out, &first, &empty);
    if (empty) {
        hpcz_fail(err, HPCZ_ERR_INVALID, "tensor '%s' was NaN or Inf in every value on the calibration "
                  "data: it has no range to quantize to", empty->name);
        hpcz_calib_table_free(*out);
        *out = NULL;
        return job_blame(err, m->path);
    }
    if (n_bad)
        job_message(hooks, 1, "%s: %zu tensor%s held NaN or Inf on the calibration data (first: '%s', %llu of %llu "
                    "values); ranges cover the finite values only",
                    m->path, n_bad, n_bad == 1 ? "" : "s", first->name, (unsigned long long)first->nonfinite,
                    (unsigned long long)(first->nonfinite + first->finite));
    return job_cancelled(hooks, err);
}
