/*
 * fileio.c - whole-file reads and atomic (temp + rename) writes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

hpcz_status hpcz_file_read(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len,
                           hpcz_error *err)
{
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return hpcz_fail(err, HPCZ_ERR_IO, "is a directory, expected a file");
    }
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
    if (max_bytes < SIZE_MAX && (uint64_t)cap > max_bytes + 1)
        cap = (size_t)max_bytes + 1;
    uint8_t *buf = malloc(cap);
    size_t n = 0;
    if (!buf) {
        close(fd);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        if (n == cap) {
            if ((uint64_t)n > max_bytes) {
                free(buf);
                close(fd);
                return hpcz_fail(err, HPCZ_ERR_IO, "file is larger than %llu bytes",
                                 (unsigned long long)max_bytes);
            }
            size_t ncap = cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return hpcz_fail(err, HPCZ_ERR_IO, "%s", strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if ((uint64_t)n > max_bytes) {
        free(buf);
        return hpcz_fail(err, HPCZ_ERR_IO, "file is larger than %llu bytes",
                         (unsigned long long)max_bytes);
    }
    *out = buf;
    *len = n;
    return HPCZ_OK;
}

/* A model read from a stream (stdin, a pipe, a device) cannot be mapped, so
 * it is read whole; an ONNX protobuf is at most 2 GiB, so reading stops
 * there (/dev/zero once read 5.7 GB in 8 s), and bytes that cannot start a
 * protobuf stop it at once. A .hpcz stream (magic "HPCZ") has no such limit
 * when allow_hpcz is set. */
hpcz_status hpcz_model_stream_read(const char *path, int allow_hpcz, uint8_t **out, size_t *len,
                                   hpcz_error *err)
{
    const uint64_t onnx_max = (uint64_t)2 << 30;
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s", errno == ENOENT ? "no such file" : strerror(errno));
    size_t cap = 65536, n = 0;
    uint64_t limit = onnx_max;
    uint8_t *buf = malloc(cap);
    hpcz_status st = HPCZ_OK;
    if (!buf) {
        close(fd);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    bool sniffed = false;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = hpcz_fail(err, HPCZ_ERR_IO, "%s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (!sniffed && n >= 4) {
            sniffed = true;
            if (allow_hpcz && memcmp(buf, "HPCZ", 4) == 0) {
                limit = UINT64_MAX;
            } else {
                /* a protobuf starts with a tag: field number >= 1, wire type 0-5 */
                uint8_t b = buf[0];
                if ((b & 7) > 5 || (!(b & 0x80) && (b >> 3) == 0)) {
                    st = hpcz_fail(err, HPCZ_ERR_PARSE,
                                   "not an ONNX model (it starts with byte 0x%02x, which no "
                                   "protobuf can)", b);
                    break;
                }
            }
        }
        if ((uint64_t)n > limit) {
            st = hpcz_fail(err, HPCZ_ERR_PARSE,
                           "not an ONNX model: more than 2 GiB, the protobuf limit (larger "
                           "models keep their tensors in external data)");
            break;
        }
    }
    close(fd);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return HPCZ_OK;
}

/* ------------------------------------------------------------ atomic output */

struct hpcz_outfile {
    FILE *f;
    char *path;  /* the file renamed over (a symlink's resolved target) */
    char *tmp;   /* NULL for stdout and for files written in place */
    int direct;  /* a device, FIFO or socket written through its own fd */
    int slot;
};

/* Temporary names still on disk, for the signal handler. Fixed size so the
 * handler needs no allocation. */
#define MAX_OPEN_OUTFILES 64
static char tmp_names[MAX_OPEN_OUTFILES][PATH_MAX];
static volatile sig_atomic_t tmp_used[MAX_OPEN_OUTFILES];

void hpcz_outfile_cleanup_all(void)
{
    for (int i = 0; i < MAX_OPEN_OUTFILES; i++)
        if (tmp_used[i]) {
            unlink(tmp_names[i]);
            tmp_used[i] = 0;
        }
}

/* Follows a chain of symbolic links from path to the name it finally stands
 * for, which need not exist yet (a dangling link names the file to create).
 * Relative link targets are taken from the link's folder. Returns a malloc'd
 * path, or NULL with errno set (ELOOP past 40 links). */
static char *resolve_links(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            return cur; /* not there yet, or the end of the chain */
        if (hops == 40) {
            free(cur);
            errno = ELOOP;
            return NULL;
        }
        char target[PATH_MAX];
        ssize_t n = readlink(cur, target, sizeof target - 1);
        if (n < 0) {
            free(cur);
            return NULL;
        }
        target[n] = 0;
        char *next;
        const char *slash = strrchr(cur, '/');
        if (target[0] == '/' || !slash) {
            next = strdup(target);
        } else {
            size_t dl = (size_t)(slash - cur) + 1;
            next = malloc(dl + (size_t)n + 1);
            if (next) {
                memcpy(next, cur, dl);
                memcpy(next + dl, target, (size_t)n + 1);
            }
        }
        free(cur);
        cur = next;
    }
    errno = ENOMEM;
    return NULL;
}

static hpcz_outfile *open_direct(hpcz_outfile *o, const char *path, hpcz_error *err)
{
    /* a FIFO waits for its reader here, as any writer to it does */
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        hpcz_fail(err, HPCZ_ERR_IO, "cannot write there: %s", strerror(e));
        free(o);
        return NULL;
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        close(fd);
        free(o);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    o->direct = 1;
    return o;
}

hpcz_outfile *hpcz_outfile_open(const char *path, hpcz_error *err)
{
    hpcz_outfile *o = calloc(1, sizeof *o);
    if (!o) {
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    o->slot = -1;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return o;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            free(o);
            hpcz_fail(err, HPCZ_ERR_IO, "is a directory");
            return NULL;
        }
        /* /dev/null, a terminal, a FIFO, /dev/fd/N of a pipe: written
         * through, never replaced by a regular file */
        if (!S_ISREG(st.st_mode))
            return open_direct(o, path, err);
    }
    /* a symlink is written through: the rename replaces its target */
    char *real = resolve_links(path);
    if (!real) {
        int e = errno;
        free(o);
        hpcz_fail(err, HPCZ_ERR_IO, "cannot follow the link: %s", strerror(e));
        return NULL;
    }
    const char *slash = strrchr(real, '/');
    size_t dir_len = slash ? (size_t)(slash - real) + 1 : 0;
    size_t need = strlen(real) + 16;
    o->path = real;
    o->tmp = malloc(need);
    if (!o->tmp) {
        free(o->path);
        free(o);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(o->tmp, need, "%.*s.%s.XXXXXX", (int)dir_len, real, real + dir_len);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        hpcz_fail(err, HPCZ_ERR_IO, "cannot create a file there: %s",
                  e == ENOENT ? "no such folder" : strerror(e));
        free(o->path);
        free(o->tmp);
        free(o);
        return NULL;
    }
    mode_t um = umask(0); /* mkstemp makes 0600; outputs are ordinary files */
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0) {
        /* not fatal: the file is still ours to write */
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        close(fd);
        unlink(o->tmp);
        free(o->path);
        free(o->tmp);
        free(o);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < MAX_OPEN_OUTFILES; i++)
        if (!tmp_used[i] && strlen(o->tmp) < PATH_MAX) {
            strcpy(tmp_names[i], o->tmp);
            tmp_used[i] = 1;
            o->slot = i;
            break;
        }
    return o;
}

FILE *hpcz_outfile_stream(hpcz_outfile *o)
{
    return o->f;
}

static void release(hpcz_outfile *o)
{
    if (o->slot >= 0)
        tmp_used[o->slot] = 0;
    free(o->path);
    free(o->tmp);
    free(o);
}

/* Makes a rename durable: the folder's entry reaches the disk too. */
static void sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

hpcz_status hpcz_outfile_commit(hpcz_outfile *o, hpcz_error *err)
{
    hpcz_status st = HPCZ_OK;
    if (!o->tmp && !o->direct) {
        if (fflush(o->f) != 0)
            st = hpcz_fail(err, HPCZ_ERR_IO, "writing standard output: %s", strerror(errno));
        release(o);
        return st;
    }
    int bad = fflush(o->f) != 0 || ferror(o->f);
    int e = errno;
    /* the bytes reach the disk before the name does: a crash leaves the old
     * file or the new one, never a renamed empty one */
    if (!bad && o->tmp && fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != EROFS) {
        bad = 1;
        e = errno;
    }
    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (o->direct) {
        if (bad)
            st = hpcz_fail(err, HPCZ_ERR_IO, "write failed: %s", strerror(e));
    } else if (bad) {
        unlink(o->tmp);
        st = hpcz_fail(err, HPCZ_ERR_IO, "write failed: %s", strerror(e));
    } else if (rename(o->tmp, o->path) != 0) {
        e = errno;
        unlink(o->tmp);
        st = hpcz_fail(err, HPCZ_ERR_IO, "rename: %s", strerror(e));
    } else {
        sync_dir_of(o->path);
    }
    release(o);
    return st;
}

void hpcz_outfile_abort(hpcz_outfile *o)
{
    if (!o)
        return;
    if (o->tmp) {
        fclose(o->f);
        unlink(o->tmp);
    } else if (o->direct) {
        fclose(o->f);
    }
    release(o);
}

/* ------------------------------------------------------------ before writing */

int hpcz_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!strcmp(a, "-") || !strcmp(b, "-"))
        return 0;
    if (!strcmp(a, b))
        return 1;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

hpcz_status hpcz_output_check(const char *path, hpcz_error *err)
{
    if (!path || !strcmp(path, "-"))
        return HPCZ_OK;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return hpcz_fail(err, HPCZ_ERR_IO, "%s: is a directory", path);
        if (!S_ISREG(st.st_mode))
            return access(path, W_OK) == 0 ? HPCZ_OK
                                           : hpcz_fail(err, HPCZ_ERR_IO, "%s: cannot write there: %s", path,
                                                       strerror(errno));
    }
    /* a new file (or a rename over one) needs a writable folder */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (access(dir, W_OK) != 0)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s: cannot create a file there: %s", path,
                         errno == ENOENT ? "no such folder" : strerror(errno));
    return HPCZ_OK;
}
