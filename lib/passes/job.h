/*
 * job.h - what the quantize and prune jobs share (lib/passes/job.c).
 */
#ifndef HPCZ_JOB_H
#define HPCZ_JOB_H

#include "internal.h"

/* Names `file` in err (as "FILE: msg", "<stdin>" for "-", not twice) and
 * returns its status, HPCZ_ERR_USAGE made HPCZ_ERR_INVALID: during a job
 * only data that do not fit the model are the caller's usage error. */
hpcz_status job_blame(hpcz_error *err, const char *file);
/* HPCZ_ERR_CANCELLED (with err set) when the hooks' cancel flag is set. */
hpcz_status job_cancelled(const hpcz_job_hooks *h, hpcz_error *err);
/* A note (warning 0) or warning for the hooks, formatted as hpcz_fail does. */
void job_say(const hpcz_job_hooks *h, int warning, const char *msg);
#define job_message(h, warning, ...)                                                               \
    do {                                                                                           \
        hpcz_error m_;                                                                             \
        hpcz_fail(&m_, HPCZ_OK, __VA_ARGS__);                                                      \
        job_say((h), (warning), m_.msg);                                                           \
    } while (0)

/* Pass notes kept as "pass: msg" lines (and handed to hooks->log). */
typedef struct job_notes {
    char **lines;
    size_t n, cap;
    const hpcz_job_hooks *hooks;
} job_notes;
void job_notes_log(void *user, const char *pass, const char *msg);
/* Forgets the notes (they described a model that is gone). */
void job_notes_clear(job_notes *nt);

/* The progress hook as hpcz_calib_opts and friends call it: ctx is a
 * job_stage. */
typedef struct job_stage {
    const hpcz_job_hooks *hooks;
    const char *stage;
} job_stage;
void job_progress(void *ctx, size_t done, size_t total);

/* The pipeline a job runs: passes when given (else spec holds what the
 * recipe made), parsed once to check it (HPCZ_ERR_USAGE). */
hpcz_status job_spec_check(const char *passes, char *spec, size_t cap, hpcz_error *err);

/* Writes m to path ("-": stdout) and sets *bytes to the file's size (the
 * ONNX serialization's when nothing is written, path NULL). */
hpcz_status job_save(hpcz_model *m, const char *path, int in_place, uint64_t *bytes, hpcz_error *err);

/* Static int8 with cross-layer equalization to decide (lib/passes/
 * equalize_check.c): when the steps run before calibration, pre, begin with
 * the equalize pass, m is calibrated and quantized by post with and without
 * it (copies), and "equalize" is taken out of pre unless the worst output
 * SQNR on the calibration data holds; says which in a note. */
hpcz_status job_equalize_check(hpcz_model *m, char *pre, hpcz_pipeline *post, const hpcz_quantize_opts *o,
                               const hpcz_calib_opts *co, hpcz_pass_ctx *ctx, hpcz_error *err);
#endif
