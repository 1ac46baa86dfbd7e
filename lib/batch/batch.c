/*
 * batch.c - the model list, shards and resume records behind `hpcz batch`.
 *
 * A model zoo is a tree (one folder per family): the list walks it and names
 * each job by its path relative to the root, without the extension
 * ("family/model"), so the output folder mirrors the tree. A manifest lists
 * one path per line; relative paths inside the manifest's folder keep their
 * subfolders as well. A job is done when its record (OUTDIR/.hpcz-batch/
 * NAME.json) holds the same recipe hash, the input's content hash, and the
 * output's size and hash; anything else redoes it.
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
