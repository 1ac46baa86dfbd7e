/*
 * jobs.h - what the commands that run the library's jobs (quantize, prune,
 * calibrate, convert) share: options that only store their value, hooks
 * that print, errors that become exit statuses (cmd/jobs.c).
 */
#ifndef HPCZ_CLI_JOBS_H
#define HPCZ_CLI_JOBS_H

#include "cli.h"

/* An option that only stores its value: a text option its argument, a flag
 * val. A command lists them (CLI_TEXT, CLI_FLAG) and switches on the rest. */
typedef struct cli_store {
    int key;
    const char **text;
    int *flag;
    int val;
} cli_store;
#define CLI_TEXT(key, dst) {(key), (dst), NULL, 0}
#define CLI_FLAG(key, dst, val) {(key), NULL, (dst), (val)}
/* Stores key's value when key is one of s[0..n); false when it is none. */
bool cli_store_option(const cli_store *s, size_t n, int key, const char *arg);

/* The outputs of a job, checked before any work: at most one of -o -,
 * --json, --json-file - and --report - takes standard output, a model goes
 * to a terminal only with force, OUT is not IN without in_place, and every
 * folder is writable. model_out: OUT receives a model (not --dry-run).
 * Sets *json (--json: "-"); returns an exit status. */
typedef struct cli_outputs {
    const char *in, *out, *json_file, *report;
    bool model_out, json_flag, force, in_place;
} cli_outputs;
int cli_check_outputs(const cli_cmd_info *info, const cli_outputs *o, const char **json);
/* Loads IN and checks the gates' outputs, --dim and (with calibration
 * data) --calib-mask against it (hpcz_calib_mask_resolve, a note for a mask
 * found by name); *mask (mask may be NULL): the mask input. NULL after
 * printing the error, with its exit status in *rc. */
hpcz_model *cli_job_load(const cli_cmd_info *info, const char *in, const cli_gates *gates, const cli_dims *dims,
                         const char *calib, const char *calib_mask, const char **mask, int *rc);

/* Notes and warnings as cli_note and cli_warn, a progress bar when stderr
 * is a terminal; pass notes with -v, and without it those saying what a
 * pass declined to do unless quiet_passes (cli_log_note). */
hpcz_job_hooks cli_job_hooks(bool quiet_passes);
/* A job's error on stderr: EXIT_USAGE for calibration data that do not fit
 * the model ("hpcz: --calib: ..."), else "hpcz: error: MSG" (EXIT_FAIL). */
int cli_job_error(const hpcz_error *err);
/* The stream for a JSON document at path ("-": stdout); NULL after printing
 * the error. cli_out_commit then writes it in place: an exit status. */
FILE *cli_out_open(const char *path, hpcz_outfile **of);
int cli_out_commit(const char *path, hpcz_outfile *of);

#endif
