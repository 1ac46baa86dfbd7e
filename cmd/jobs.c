/*
 * jobs.c - the library's jobs on the terminal (see jobs.h).
 */
#include "jobs.h"

#include <string.h>
#include <unistd.h>

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
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    dprintf(STDERR_FILENO, "\r%s [%.*s%*s] %zu/%zu", stage, fill, "##############################", width - fill, "",
            done, total);
    if (done >= total)
        dprintf(STDERR_FILENO, "\r\033[K");
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
