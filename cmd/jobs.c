/*
 * jobs.c - what the commands that run the library's jobs share (see jobs.h).
 */
#include "jobs.h"

#include <string.h>
#include <unistd.h>

bool cli_store_option(const cli_store *s, size_t n, int key, const char *arg)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].key != key)
            continue;
        if (s[i].text)
            *s[i].text = arg;
        else
            *s[i].flag = s[i].val;
        return true;
    }
    return false;
}

int cli_check_outputs(const cli_cmd_info *info, const cli_outputs *o, const char **json)
{
    bool model_stdout = o->model_out && o->out && !strcmp(o->out, "-");
    if (o->json_flag && o->json_file)
        return cli_usage_error(info, "--json and --json-file: give one");
    *json = o->json_flag ? "-" : o->json_file;
    if ((model_stdout && !cli_claim_stdout(info, "-o -")) || (o->json_flag && !cli_claim_stdout(info, "--json")) ||
        (o->json_file && !strcmp(o->json_file, "-") && !cli_claim_stdout(info, "--json-file -")) ||
        (o->report && !strcmp(o->report, "-") && !cli_claim_stdout(info, "--report -")))
        return EXIT_USAGE;
    if (model_stdout && !cli_binary_stdout_ok(info, o->force))
        return EXIT_USAGE;
    if (o->out && !o->in_place && hpcz_same_file(o->in, o->out))
        return cli_error("%s: refusing to overwrite the input (use --in-place)", o->out);
    const char *outs[] = {o->out, *json, o->report};
    int rc = EXIT_OK;
    for (size_t i = 0; i < sizeof outs / sizeof outs[0] && !rc; i++)
        rc = cli_check_output(outs[i]);
    return rc;
}

hpcz_model *cli_job_load(const cli_cmd_info *info, const char *in, const cli_gates *gates, const cli_dims *dims,
                         const char *calib, const char *calib_mask, const char **mask, int *rc)
{
    hpcz_error err;
    hpcz_model *m = hpcz_model_load(in, NULL, &err);
    if (!m) {
        *rc = cli_file_error(in, &err);
        return NULL;
    }
    *rc = gates ? cli_check_gate_outputs(info, gates, m) : EXIT_OK;
    if (!*rc)
        *rc = cli_dims_apply(info, dims, m);
    const char *found = NULL;
    if (!*rc && calib && hpcz_calib_mask_resolve(m, calib_mask, &found, &err))
        *rc = cli_usage_error(info, "--calib-mask: %s", err.msg);
    else if (found && !calib_mask)
        cli_note("calibration: padded tokens left out, by the mask in input '%s' (--calib-mask none counts them)",
                 found);
    if (mask)
        *mask = found;
    if (*rc) {
        hpcz_model_free(m);
        return NULL;
    }
    return m;
}

static void message(void *user, int warning, const char *msg)
{
    (void)user;
    if (warning)
        cli_warn("%s", msg);
    else
        cli_note("%s", msg);
}

static void pass_note_verbose(void *user, const char *pass, const char *msg)
{
    (void)user;
    if (cli_verbosity > 0)
        fprintf(stderr, "hpcz: %s: %s\n", pass, msg);
}

static void progress(void *user, const char *stage, size_t done, size_t total)
{
    (void)user;
    cli_progress_bar((void *)stage, done, total);
}

hpcz_job_hooks cli_job_hooks(bool quiet_passes)
{
    hpcz_job_hooks h = {.log = quiet_passes ? pass_note_verbose : cli_log_note, .message = message};
    if (isatty(STDERR_FILENO) && cli_verbosity >= 0)
        h.progress = progress;
    return h;
}

int cli_job_error(const hpcz_error *err)
{
    if (err->status == HPCZ_ERR_USAGE) {
        fprintf(stderr, "hpcz: --calib: %s\n", err->msg);
        return EXIT_USAGE;
    }
    return cli_error("%s", err->msg);
}

FILE *cli_out_open(const char *path, hpcz_outfile **of)
{
    hpcz_error err;
    *of = NULL;
    if (!strcmp(path, "-"))
        return stdout;
    if (!(*of = hpcz_outfile_open(path, &err))) {
        cli_file_error(path, &err);
        return NULL;
    }
    return hpcz_outfile_stream(*of);
}

int cli_out_commit(const char *path, hpcz_outfile *of)
{
    hpcz_error err;
    if (of && hpcz_outfile_commit(of, &err))
        return cli_file_error(path, &err);
    return EXIT_OK;
}
