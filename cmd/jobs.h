/*
 * jobs.h - the library's jobs (quantize, prune, calibrate) on the terminal:
 * their hooks print, their errors become exit statuses (cmd/jobs.c).
 */
#ifndef HPCZ_CLI_JOBS_H
#define HPCZ_CLI_JOBS_H

#include "cli.h"

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
