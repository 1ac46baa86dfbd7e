/*
 * batch.c - the model list, shards and resume records behind `hpcz batch`.
 *
 * A model zoo is a tree (one folder per family): the list walks it and names
 * each job by its path relative to the root, without the extension
 * ("family/model"), so the output folder mirrors the tree. A manifest lists
 * one path per line; relative paths inside the manifest's folder keep their
 * subfolders as well. A job is done when its record (OUTDIR/.hpcz-batch/
 * NAME.json) holds the same recipe hash, the input's content hash, and the
 * output's size and hash; anything else redoes it. Jobs run as child
 * processes of the hpcz executable, N at a time, each logging to NAME.log.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH_MAX_DEPTH 32

static bool has_ext(const char *s, const char *ext)
{
    size_t l = strlen(s), e = strlen(ext);
    return l > e && !strcmp(s + l - e, ext);
}

static hpcz_status add_job(hpcz_batch_list *l, const char *path, const char *rel, hpcz_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        hpcz_batch_job *nj = realloc(l->jobs, cap * sizeof *nj);
        if (!nj)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        l->jobs = nj;
        l->cap = cap;
    }
    hpcz_batch_job *j = &l->jobs[l->n];
    memset(j, 0, sizeof *j);
    j->path = strdup(path);
    j->name = strdup(rel);
    if (!j->path || !j->name) {
        free(j->path);
        free(j->name);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    char *dot = strrchr(j->name, '.'), *slash = strrchr(j->name, '/');
    if (dot && (!slash || dot > slash))
        *dot = 0;
    l->n++;
    return HPCZ_OK;
}

/* Every *.onnx and *.hpcz under dir; hidden entries and symbolic links to
 * folders are skipped (a link cycle would never end). */
static hpcz_status walk(hpcz_batch_list *l, const char *dir, const char *rel, int depth, hpcz_error *err)
{
    if (depth > BATCH_MAX_DEPTH)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "%s: folders nested deeper than %d", dir, BATCH_MAX_DEPTH);
    DIR *d = opendir(dir);
    if (!d)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s: %s", dir, strerror(errno));
    hpcz_status st = HPCZ_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096], r[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= sizeof p ||
            (size_t)snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= sizeof r) {
            st = hpcz_fail(err, HPCZ_ERR_INVALID, "%s/%s: path too long", dir, e->d_name);
            break;
        }
        struct stat ls;
        if (lstat(p, &ls) != 0)
            continue;
        if (S_ISDIR(ls.st_mode))
            st = walk(l, p, r, depth + 1, err);
        else if (has_ext(e->d_name, ".onnx") || has_ext(e->d_name, ".hpcz"))
            st = add_job(l, p, r, err);
    }
    closedir(d);
    return st;
}

/* A manifest line's job name: the path relative to the manifest's folder
 * when it stays inside it, else the file's base name. */
static const char *manifest_rel(const char *line)
{
    if (line[0] == '/' || strstr(line, ".."))
        return strrchr(line, '/') ? strrchr(line, '/') + 1 : line;
    while (line[0] == '.' && line[1] == '/')
        line += 2;
    return line;
}

static hpcz_status read_manifest(hpcz_batch_list *l, const char *src, hpcz_error *err)
{
    uint8_t *b;
    size_t len;
    hpcz_status st = hpcz_file_read(src, 1 << 24, &b, &len, err);
    if (st)
        return st;
    char *text = realloc(b, len + 1);
    if (!text) {
        free(b);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    text[len] = 0;
    const char *slash = strrchr(src, '/');
    int dl = slash ? (int)(slash - src) : 0;
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !st; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (*line == ' ' || *line == '\t')
            line++;
        char *end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '\t'))
            *--end = 0;
        if (!*line || *line == '#')
            continue;
        char p[4096];
        if (line[0] == '/' || !dl)
            snprintf(p, sizeof p, "%s", line);
        else
            snprintf(p, sizeof p, "%.*s/%s", dl, src, line);
        if (access(p, R_OK) != 0)
            st = hpcz_fail(err, HPCZ_ERR_IO, "%s:%d: %s: no such model", src, lineno, p);
        else
            st = add_job(l, p, manifest_rel(line), err);
    }
    free(text);
    return st;
}

static int cmp_jobs(const void *a, const void *b)
{
    return strcmp(((const hpcz_batch_job *)a)->name, ((const hpcz_batch_job *)b)->name);
}

hpcz_status hpcz_batch_list_models(const char *src, hpcz_batch_list *out, hpcz_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat sst;
    if (stat(src, &sst) != 0)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s: no such file or folder", src);
    hpcz_status st = S_ISDIR(sst.st_mode) ? walk(out, src, "", 0, err) : read_manifest(out, src, err);
    if (!st && out->n == 0)
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "%s: no models (*.onnx, *.hpcz)", src);
    if (!st) {
        qsort(out->jobs, out->n, sizeof *out->jobs, cmp_jobs);
        for (size_t i = 1; i < out->n && !st; i++)
            if (!strcmp(out->jobs[i].name, out->jobs[i - 1].name))
                st = hpcz_fail(err, HPCZ_ERR_INVALID, "%s and %s would write the same output name '%s'",
                               out->jobs[i - 1].path, out->jobs[i].path, out->jobs[i].name);
    }
    if (st)
        hpcz_batch_list_free(out);
    return st;
}

void hpcz_batch_list_free(hpcz_batch_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->jobs[i].path);
        free(l->jobs[i].name);
    }
    free(l->jobs);
    memset(l, 0, sizeof *l);
}

void hpcz_batch_shard(size_t n, uint64_t index, uint64_t count, size_t *lo, size_t *hi)
{
    /* contiguous, near-equal shares of the sorted list; n * count fits in
     * 64 bits for any list that fits in memory and count <= 1e6 */
    *lo = (size_t)((uint64_t)n * index / count);
    *hi = (size_t)((uint64_t)n * (index + 1) / count);
}

int hpcz_file_hash(const char *path, uint64_t *hash, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return false;
    }
    *size = (uint64_t)st.st_size;
    if (st.st_size == 0) {
        close(fd);
        *hash = hpcz_hpcz_checksum("", 0);
        return true;
    }
    void *a = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (a == MAP_FAILED)
        return false;
    *hash = hpcz_hpcz_checksum(a, (size_t)st.st_size);
    munmap(a, (size_t)st.st_size);
    return true;
}

static void hex64(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

static void record_path(char *buf, size_t cap, const char *outdir, const hpcz_batch_job *j)
{
    snprintf(buf, cap, "%s/.hpcz-batch/%s.json", outdir, j->name);
}

/* mkdir -p of the folder part of path (not its last component) */
static hpcz_status make_parents(const char *path, hpcz_error *err)
{
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "%s: path too long", path);
    char *last = strrchr(p, '/');
    if (!last)
        return HPCZ_OK;
    *last = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return hpcz_fail(err, HPCZ_ERR_IO, "%s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s: %s", p, strerror(errno));
    return HPCZ_OK;
}

hpcz_status hpcz_batch_prepare(const char *outdir, const hpcz_batch_list *l, size_t lo, size_t hi,
                               hpcz_error *err)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/.hpcz-batch/x", outdir);
    hpcz_status st = make_parents(p, err);
    for (size_t i = lo; i < hi && !st; i++) {
        if (!strchr(l->jobs[i].name, '/'))
            continue;
        snprintf(p, sizeof p, "%s/%s", outdir, l->jobs[i].name);
        st = make_parents(p, err);
        record_path(p, sizeof p, outdir, &l->jobs[i]);
        if (!st)
            st = make_parents(p, err);
    }
    return st;
}

void hpcz_batch_remove_stale(const char *outdir, const hpcz_batch_list *l, size_t lo, size_t hi,
                             const char *ext)
{
    /* a killed writer leaves ".BASE.EXT.XXXXXX" beside the output (and the
     * same beside the record, with EXT ".json") */
    for (size_t i = lo; i < hi; i++) {
        const char *name = l->jobs[i].name, *slash = strrchr(name, '/');
        const char *base = slash ? slash + 1 : name;
        for (int rec = 0; rec < 2; rec++) {
            char dir[4096];
            int dl = slash ? (int)(slash - name) : 0;
            snprintf(dir, sizeof dir, "%s%s%s%.*s", outdir, rec ? "/.hpcz-batch" : "", slash ? "/" : "", dl, name);
            const char *x = rec ? ".json" : ext;
            DIR *d = opendir(dir);
            if (!d)
                continue;
            size_t bl = strlen(base), xl = strlen(x);
            struct dirent *e;
            while ((e = readdir(d))) {
                const char *f = e->d_name;
                if (f[0] == '.' && strlen(f) == 1 + bl + xl + 7 && !strncmp(f + 1, base, bl) &&
                    !strncmp(f + 1 + bl, x, xl) && f[1 + bl + xl] == '.') {
                    char p[4096];
                    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, f) < sizeof p)
                        unlink(p);
                }
            }
            closedir(d);
        }
    }
}

int hpcz_batch_is_done(const char *outdir, hpcz_batch_job *j, const char *out_path, const char *recipe_hash)
{
    char rp[4096];
    record_path(rp, sizeof rp, outdir, j);
    uint8_t *buf;
    size_t len;
    hpcz_error err;
    if (hpcz_file_read(rp, 1 << 20, &buf, &len, &err))
        return false;
    hpcz_jval *doc = hpcz_json_parse((const char *)buf, len, &err);
    free(buf);
    if (!doc)
        return false;
    uint64_t in_size, out_hash, out_size;
    if (!j->hashed && hpcz_file_hash(j->path, &j->in_hash, &in_size))
        j->hashed = 1;
    const hpcz_jval *rc = hpcz_json_get(doc, "recipe_hash"), *ih = hpcz_json_get(doc, "input_hash"),
                    *oh = hpcz_json_get(doc, "output_hash"), *ob = hpcz_json_get(doc, "output_bytes"),
                    *ex = hpcz_json_get(doc, "exit");
    char want_in[17], want_out[17];
    bool ok = j->hashed && rc && ih && oh && ob && ex && rc->s && ih->s && oh->s && !strcmp(rc->s, recipe_hash) &&
              (ex->num == 0 || ex->num == 3) && hpcz_file_hash(out_path, &out_hash, &out_size) &&
              ob->num == (double)out_size;
    if (ok) {
        hex64(want_in, j->in_hash);
        hex64(want_out, out_hash);
        ok = !strcmp(ih->s, want_in) && !strcmp(oh->s, want_out);
    }
    hpcz_json_free(doc);
    return ok;
}

hpcz_status hpcz_batch_record(const char *outdir, const hpcz_batch_job *j, const char *out_path,
                              const char *recipe, const char *recipe_hash, int exit_status, double seconds,
                              hpcz_error *err)
{
    /* the input is hashed before the run: a model changed while it ran is
     * redone next time, and one never hashed gets no record */
    if (!j->hashed)
        return HPCZ_OK;
    char rp[4096];
    record_path(rp, sizeof rp, outdir, j);
    uint64_t out_hash = 0, out_size = 0;
    bool have_out = hpcz_file_hash(out_path, &out_hash, &out_size);
    hpcz_outfile *of = hpcz_outfile_open(rp, err);
    if (!of)
        return err ? err->status : HPCZ_ERR_IO;
    char h[17];
    hpcz_json js;
    hpcz_json_init(&js, hpcz_outfile_stream(of));
    hpcz_json_object_begin(&js, NULL);
    hpcz_json_string(&js, "input", j->path);
    hpcz_json_string(&js, "recipe", recipe);
    hpcz_json_string(&js, "recipe_hash", recipe_hash);
    hex64(h, j->in_hash);
    hpcz_json_string(&js, "input_hash", h);
    hpcz_json_uint(&js, "input_bytes", j->in_bytes);
    hex64(h, out_hash);
    hpcz_json_string(&js, "output_hash", have_out ? h : NULL);
    hpcz_json_uint(&js, "output_bytes", out_size);
    hpcz_json_int(&js, "exit", exit_status);
    hpcz_json_double(&js, "seconds", seconds);
    hpcz_json_object_end(&js);
    hpcz_json_finish(&js);
    return hpcz_outfile_commit(of, err);
}

hpcz_status hpcz_batch_shard_parse(const char *s, uint64_t *index, uint64_t *count, hpcz_error *err)
{
    char *e1, *e2 = NULL;
    errno = 0;
    long long k = strtoll(s, &e1, 10), n = *e1 == '/' ? strtoll(e1 + 1, &e2, 10) : 0;
    if (errno == ERANGE || n > 1000000)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "'%s': N is at most 1000000", s);
    if (e2 && !*e2 && k == 0 && n >= 1)
        return hpcz_fail(err, HPCZ_ERR_USAGE,
                         "'%s': K counts from 1; for ids from 0 (Slurm's --array=0-%lld) use --shard-index I "
                         "--shard-count %lld", s, n - 1, n);
    if (!e2 || *e2 || n < 1 || k < 1 || k > n)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "'%s' is not K/N with 1 <= K <= N", s);
    *index = (uint64_t)k - 1;
    *count = (uint64_t)n;
    return HPCZ_OK;
}

/* ------------------------------------------------------------ running jobs */

static double now_s(void)
{
    return hpcz_now_ms() / 1e3;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Splits a recipe into argv words: single and double quotes group. */
static int split_words(char *s, char **argv, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        char *w = s, *o = s;
        char q = 0;
        while (*s && (q || (*s != ' ' && *s != '\t' && *s != '\n'))) {
            if (!q && (*s == '\'' || *s == '"')) {
                q = *s++;
                continue;
            }
            if (q && *s == q) {
                q = 0;
                s++;
                continue;
            }
            *o++ = *s++;
        }
        if (*s)
            s++;
        *o = 0;
        argv[n++] = w;
    }
    return n;
}

/* Workers still running, for hpcz_batch_stop_workers (a signal handler). */
static volatile pid_t live[256];

void hpcz_batch_stop_workers(void)
{
    for (int i = 0; i < 256; i++)
        if (live[i] > 0)
            kill(live[i], SIGTERM);
}

static void live_set(pid_t pid, pid_t to)
{
    for (int i = 0; i < 256; i++)
        if (live[i] == pid) {
            live[i] = to;
            return;
        }
}

const char *hpcz_batch_status_name(int status)
{
    switch (status) {
    case HPCZ_BATCH_DONE_BEFORE: return "done before";
    case HPCZ_BATCH_NOT_RUN: return "not run";
    case 0: return "ok";
    case 3: return "gate broken";
    default: return "failed";
    }
}

/* The recipe as words of an hpcz command, checked. */
typedef struct recipe {
    char *text;
    char hash[17];   /* of the words before splitting: what records are keyed by */
    char *words[128];
    int n;
    int ext_word, ext_eq; /* --external-name's value: words[ext_word] + ext_eq */
    const char *ext;      /* the outputs' extension */
} recipe;

static hpcz_status recipe_parse(recipe *r, const hpcz_batch_opts *o, hpcz_error *err)
{
    memset(r, 0, sizeof *r);
    if (o->recipe[0] == '@') {
        uint8_t *b;
        size_t l;
        if (hpcz_file_read(o->recipe + 1, 1 << 16, &b, &l, err)) {
            hpcz_error_prefix(err, o->recipe + 1);
            return err->status;
        }
        r->text = realloc(b, l + 1);
        if (r->text)
            r->text[l] = 0;
        else
            free(b);
    } else {
        r->text = strdup(o->recipe);
    }
    if (!r->text)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hex64(r->hash, hpcz_hpcz_checksum(r->text, strlen(r->text)));
    r->n = split_words(r->text, r->words, 120);
    static const char *const allowed[] = {"quantize", "prune", "convert"};
    bool ok = false;
    for (size_t i = 0; r->n > 0 && i < sizeof allowed / sizeof allowed[0]; i++)
        ok |= !strcmp(r->words[0], allowed[i]);
    if (!ok)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "--recipe must start with quantize, prune or convert");
    if (o->device && strcmp(r->words[0], "convert")) { /* convert runs no model */
        r->words[r->n++] = "--device";
        r->words[r->n++] = (char *)o->device;
    }
    r->ext_word = -1;
    r->ext = ".onnx";
    for (int i = 1; i < r->n; i++) {
        const char *w = r->words[i];
        if (!strcmp(w, "-o") || !strcmp(w, "--output") || !strncmp(w, "--output=", 9))
            return hpcz_fail(err, HPCZ_ERR_USAGE, "--recipe: leave -o out (batch names the outputs)");
        /* Outputs that every model would share: --external-name names one
         * data file in OUTDIR, so each model gets its own ("NAME.X", or X
         * with {name} replaced); convert --format hpcz writes .hpcz files. */
        if (!strcmp(w, "--external-name") && i + 1 < r->n)
            r->ext_word = ++i;
        else if (!strncmp(w, "--external-name=", 16))
            r->ext_word = i, r->ext_eq = 16;
        else if ((!strcmp(w, "--format") && i + 1 < r->n && !strcmp(r->words[i + 1], "hpcz")) ||
                 !strcmp(w, "--format=hpcz"))
            r->ext = ".hpcz";
    }
    if (r->ext_word >= 0 && strchr(r->words[r->ext_word] + r->ext_eq, '/'))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "--recipe: --external-name '%s' must be a plain file name",
                         r->words[r->ext_word] + r->ext_eq);
    return HPCZ_OK;
}

/* argv of job j into av (with ext_arg's storage); returns argc. */
static int job_argv(const recipe *r, const char *exe, const char *out, const hpcz_batch_job *j, char **av,
                    char *ext_arg, size_t cap)
{
    int k = 0;
    av[k++] = (char *)exe;
    for (int w = 0; w < r->n; w++)
        av[k++] = r->words[w];
    if (r->ext_word >= 0) {
        /* a data file beside its model: named after the model's base name */
        const char *x = r->words[r->ext_word] + r->ext_eq, *at = strstr(x, "{name}");
        const char *base = strrchr(j->name, '/') ? strrchr(j->name, '/') + 1 : j->name;
        if (at)
            snprintf(ext_arg, cap, "%.*s%.*s%s%s", r->ext_eq, r->words[r->ext_word], (int)(at - x), x, base,
                     at + 6);
        else
            snprintf(ext_arg, cap, "%.*s%s.%s", r->ext_eq, r->words[r->ext_word], base, x);
        av[1 + r->ext_word] = ext_arg;
    }
    av[k++] = j->path;
    av[k++] = "-o";
    av[k++] = (char *)out;
    av[k] = NULL;
    return k;
}

static pid_t spawn(const char *exe, char **av, const char *logp, pid_t parent)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* a worker outlives no batch, even one killed with SIGKILL */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(128 + SIGTERM);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0)
        dup2(nul, STDIN_FILENO);
    execv(exe, av);
    _exit(127);
}

static void job_finished(const hpcz_batch_opts *o, const recipe *rc, hpcz_batch_result *r, size_t i, int wst)
{
    hpcz_batch_job *j = &r->list.jobs[i];
    hpcz_batch_state *s = &r->state[i];
    live_set(s->pid, 0);
    s->pid = 0;
    s->seconds = now_s() - s->t0;
    s->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    char out[4096];
    snprintf(out, sizeof out, "%s/%s%s", o->outdir, j->name, rc->ext);
    s->out_bytes = file_size(out);
    hpcz_error rerr;
    if (hpcz_batch_record(o->outdir, j, out, o->recipe, rc->hash, s->status, s->seconds, &rerr) && o->warn)
        o->warn(o->ctx, rerr.msg);
    if (o->progress)
        o->progress(o->ctx, j, s);
}

hpcz_status hpcz_batch_run(const hpcz_batch_opts *o, hpcz_batch_result *r, hpcz_error *err)
{
    memset(r, 0, sizeof *r);
    r->shard_index = o->shard_index;
    r->shard_count = o->shard_count ? o->shard_count : 1;
    recipe rc;
    hpcz_status st = recipe_parse(&rc, o, err);
    if (!st)
        st = hpcz_batch_list_models(o->src, &r->list, err);
    if (!st && !(r->state = calloc(r->list.n + 1, sizeof *r->state)))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < r->list.n; i++)
        r->state[i].status = HPCZ_BATCH_NOT_RUN;
    if (!st)
        hpcz_batch_shard(r->list.n, r->shard_index, r->shard_count, &r->lo, &r->hi);
    if (!st && mkdir(o->outdir, 0777) != 0 && errno != EEXIST)
        st = hpcz_fail(err, HPCZ_ERR_IO, "%s: %s", o->outdir, strerror(errno));
    if (!st && !o->dry_run)
        st = hpcz_batch_prepare(o->outdir, &r->list, r->lo, r->hi, err);
    char exe[4096];
    if (!st && o->exe) {
        snprintf(exe, sizeof exe, "%s", o->exe);
    } else if (!st) {
        ssize_t sl = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (sl <= 0)
            st = hpcz_fail(err, HPCZ_ERR_IO, "cannot find the hpcz executable");
        else
            exe[sl] = 0;
    }
    if (st) {
        free(rc.text);
        return st;
    }
    if (!o->dry_run)
        hpcz_batch_remove_stale(o->outdir, &r->list, r->lo, r->hi, rc.ext);
    pid_t parent = getpid();
    size_t running = 0, next = r->lo, jobs = o->jobs > 0 ? (size_t)o->jobs : 1;
    double t_all = now_s();
    int stopped = 0;
    while (next < r->hi || running) {
        while (next < r->hi && running < jobs && !(o->cancel && *o->cancel)) {
            size_t ji = next++;
            hpcz_batch_job *j = &r->list.jobs[ji];
            hpcz_batch_state *s = &r->state[ji];
            char out[4096], ext_arg[4096], logp[4096], *av[140];
            snprintf(out, sizeof out, "%s/%s%s", o->outdir, j->name, rc.ext);
            j->in_bytes = file_size(j->path);
            if (!o->force && hpcz_batch_is_done(o->outdir, j, out, rc.hash)) {
                s->status = HPCZ_BATCH_DONE_BEFORE;
                s->out_bytes = file_size(out);
                continue;
            }
            job_argv(&rc, exe, out, j, av, ext_arg, sizeof ext_arg);
            if (!j->hashed) {
                uint64_t sz;
                j->hashed = hpcz_file_hash(j->path, &j->in_hash, &sz);
            }
            if (o->dry_run) {
                if (o->command)
                    o->command(o->ctx, av);
                continue;
            }
            snprintf(logp, sizeof logp, "%s/%s.log", o->outdir, j->name);
            s->t0 = now_s();
            pid_t pid = spawn(exe, av, logp, parent);
            if (pid < 0) {
                s->status = 1;
                continue;
            }
            s->pid = pid;
            live_set(0, pid);
            running++;
        }
        if (!running)
            break;
        if (o->cancel && *o->cancel && !stopped) {
            hpcz_batch_stop_workers(); /* and wait for them */
            stopped = 1;
        }
        int wst;
        pid_t done = wait(&wst);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            break;
        for (size_t i = r->lo; i < r->hi; i++)
            if (r->state[i].pid == done) {
                job_finished(o, &rc, r, i, wst);
                running--;
            }
    }
    r->seconds = now_s() - t_all;
    for (size_t i = r->lo; i < r->hi; i++) {
        int s = r->state[i].status;
        s == 0 ? r->n_ok++ : s == HPCZ_BATCH_DONE_BEFORE ? r->n_skipped++ : s == 3 ? r->n_gate++ : r->n_failed++;
    }
    free(rc.text);
    return o->cancel && *o->cancel ? hpcz_fail(err, HPCZ_ERR_CANCELLED, "cancelled") : HPCZ_OK;
}

void hpcz_batch_result_release(hpcz_batch_result *r)
{
    hpcz_batch_list_free(&r->list);
    free(r->state);
    memset(r, 0, sizeof *r);
}

void hpcz_batch_summary_path(const hpcz_batch_opts *o, char *buf, size_t cap)
{
    if (o->shard_count > 1)
        snprintf(buf, cap, "%s/batch-summary-%llu-of-%llu.json", o->outdir,
                 (unsigned long long)o->shard_index + 1, (unsigned long long)o->shard_count);
    else
        snprintf(buf, cap, "%s/batch-summary.json", o->outdir);
}

void hpcz_batch_write_json(FILE *f, const char *recipe, const hpcz_batch_result *r)
{
    hpcz_json js;
    hpcz_json_document(&js, f, "hpcz.batch", 1);
    hpcz_json_string(&js, "recipe", recipe);
    hpcz_json_object_begin(&js, "shard");
    hpcz_json_int(&js, "k", (int64_t)r->shard_index + 1);
    hpcz_json_int(&js, "n", (int64_t)r->shard_count);
    hpcz_json_object_end(&js);
    hpcz_json_array_begin(&js, "models");
    for (size_t i = r->lo; i < r->hi; i++) {
        const hpcz_batch_job *j = &r->list.jobs[i];
        const hpcz_batch_state *s = &r->state[i];
        hpcz_json_object_begin(&js, NULL);
        hpcz_json_string(&js, "input", j->path);
        hpcz_json_string(&js, "name", j->name);
        hpcz_json_string(&js, "status", hpcz_batch_status_name(s->status));
        hpcz_json_int(&js, "exit", s->status < 0 ? 0 : s->status);
        hpcz_json_uint(&js, "input_bytes", j->in_bytes);
        hpcz_json_uint(&js, "output_bytes", s->out_bytes);
        hpcz_json_double(&js, "seconds", s->seconds);
        hpcz_json_object_end(&js);
    }
    hpcz_json_array_end(&js);
    hpcz_json_object_end(&js);
    hpcz_json_finish(&js);
}
