/*
 * internal.h - helpers shared inside libhpcz (not installed).
 */
#ifndef HPCZ_INTERNAL_H
#define HPCZ_INTERNAL_H

#include "hpcz.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HPCZ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Invariant checks: a failure is a bug in hpcz, not bad input. */
#define HPCZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            hpcz_assert_fail(#cond, __FILE__, __LINE__);                                           \
    } while (0)
_Noreturn void hpcz_assert_fail(const char *what, const char *file, int line);

/* ---- arena: bump allocator for small objects, freed at once */
typedef struct hpcz_arena {
    struct hpcz_arena_block *head;
    size_t total;
} hpcz_arena;
void *hpcz_arena_alloc(hpcz_arena *a, size_t size);
void hpcz_arena_release(hpcz_arena *a);
char *hpcz_arena_strndup(hpcz_arena *a, const char *s, size_t n);

/* ---- overflow-checked size arithmetic; return false on overflow */
static inline bool hpcz_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* ---- name -> value map (open addressing, grows) */
typedef struct hpcz_valmap {
    size_t cap, count;
    hpcz_value **slots;
} hpcz_valmap;
hpcz_value *hpcz_valmap_get(const hpcz_valmap *m, const char *name);
bool hpcz_valmap_put(hpcz_valmap *m, hpcz_value *v);
void hpcz_valmap_release(hpcz_valmap *m);

/* ---- model bookkeeping */
typedef struct hpcz_mapping {
    void *addr;
    size_t len;
    char *path;
} hpcz_mapping;

typedef struct hpcz_payload_reader hpcz_payload_reader;

struct hpcz_model_priv {
    hpcz_arena arena;
    hpcz_tensor **tensors; /* every tensor, for freeing owned payloads */
    size_t n_tensors, cap_tensors;
    hpcz_graph **graphs; /* every graph (valmaps to free) */
    size_t n_graphs, cap_graphs;
    void *proto;           /* unpacked protobuf message kept alive for borrowing */
    void (*proto_free)(void *);
    hpcz_mapping *maps;    /* mmap'd external data files */
    size_t n_maps;
    char *base_dir;        /* folder that external data paths are relative to */
    struct hpcz_uses *uses; /* reader counts while a pass holds them (hpcz_uses_begin) */
    const hpcz_payload_reader *payloads; /* decodes tensors' src lazily; set by the reader */
};

hpcz_graph *hpcz_graph_new_internal(hpcz_model *m, hpcz_graph *parent);
void hpcz_name_index_free(struct hpcz_name_index *x);
hpcz_tensor *hpcz_tensor_new_empty(hpcz_model *m);
/* Topological order of g's nodes into out[g->n_nodes] without changing g. */
hpcz_status hpcz_graph_topo_order(const hpcz_graph *g, hpcz_node **out, hpcz_error *err);
bool hpcz_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* The op that computes v, looking through up to 4 QuantizeLinear /
 * DequantizeLinear nodes (lib/report/compare.c). */
const hpcz_node *hpcz_op_behind_qdq(const hpcz_value *v);

/* Two plans of one model, the original A and a compressed B, fed the same
 * samples (lib/report/compare.c). hpcz_plan_map_inputs sets b_in[i] to the
 * index in B of A's input i, failing when B lacks it or holds it in another
 * dtype (float in A and float16 in B is allowed). hpcz_plan_feed_b sets
 * ins_b from A's ins, narrowed to float16 where B wants it; hpcz_plan_fed_release
 * frees what it allocated and then A's ins. */
hpcz_status hpcz_plan_map_inputs(const hpcz_plan *a, const hpcz_plan *b, int *b_in, hpcz_error *err);
hpcz_status hpcz_plan_feed_b(const hpcz_plan *b, const int *b_in, size_t n_in, const hpcz_array *ins,
                             hpcz_array *ins_b, hpcz_error *err);
void hpcz_plan_fed_release(const int *b_in, size_t n_in, hpcz_array *ins, hpcz_array *ins_b);

/* ---- timing and documents */
/* CLOCK_MONOTONIC in milliseconds. */
double hpcz_now_ms(void);
/* Sorts t[0..n) (n >= 1); returns the median and sets *min. */
double hpcz_median_min(double *t, size_t n, double *min);
/* Starts a JSON document on f: the object with "schema" and "version". */
void hpcz_json_document(hpcz_json *j, FILE *f, const char *schema, int version);

/* ---- string buffer */
typedef struct hpcz_strbuf {
    char *buf;
    size_t len, cap;
} hpcz_strbuf;
void hpcz_strbuf_printf(hpcz_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hpcz_strbuf_append(hpcz_strbuf *sb, const char *s, size_t n);
void hpcz_strbuf_release(hpcz_strbuf *sb);

/* How tensors read lazily get their payloads: the file reader that set
 * their `src` installs one per model, so the IR knows no file format. */
struct hpcz_payload_reader {
    /* a dense payload into t->data (owned), decoded from t->src */
    hpcz_status (*decode)(hpcz_tensor *t, hpcz_error *err);
    /* the payload's bytes where they already lie dense in the file (maybe
     * unaligned), or NULL */
    const void *(*bytes_in_place)(const hpcz_tensor *t);
};
/* The ONNX reader's (formats/onnx/onnx_read.c). */
extern const hpcz_payload_reader hpcz_onnx_payloads;
/* The dense payload for reading, like hpcz_tensor_data but without the
 * aligned copy of a raw_data payload used in place in the file: the pointer
 * may be unaligned for the type (load elements with memcpy). */
const void *hpcz_tensor_bytes(hpcz_tensor *t, hpcz_error *err);

/* A .npy file mapped read-only (formats/npy.c): a.data points into the
 * mapping and pages are read as they are touched, so memory follows the
 * rows used, not the file size. Small files, stdin and FIFOs are read whole
 * instead (addr NULL, a owns its data). */
typedef struct hpcz_npy_mapped {
    hpcz_array a;
    void *addr;
    size_t len;
} hpcz_npy_mapped;
hpcz_status hpcz_npy_map(const char *path, hpcz_npy_mapped *out, hpcz_error *err);
/* Gives back the resident pages wholly inside [p, p + n) of a mapping (they
 * are read again if touched); nothing for a file read whole. */
void hpcz_npy_mapped_drop(hpcz_npy_mapped *m, const void *p, size_t n);
void hpcz_npy_unmap(hpcz_npy_mapped *m);

/* ---- token masks (calib/mask.c): padded tokens left out of calibration
 * statistics, GPTQ Hessians and reconstruction Gram matrices */
/* Values in device memory (a plan with hpcz_plan_opts.observer_device on
 * the cuda backend): whether a's data is device memory, calibration's
 * statistics computed there (as lib/calib/calib.c does on the host; only
 * the results come back), and a copy back (runtime/cuda/cuda_ops.c;
 * without CUDA nothing is on a device). */
bool hpcz_array_on_device(const hpcz_array *a);
hpcz_status hpcz_device_minmax(const float *x, int64_t n, float *lo, float *hi, hpcz_error *err);
hpcz_status hpcz_device_histogram(const float *x, int64_t n, double scale, int bins, uint64_t *h,
                                  hpcz_error *err);
hpcz_status hpcz_device_copy_back(void *h, const void *d, size_t n, hpcz_error *err);

typedef struct hpcz_token_mask {
    int64_t batch, seq;
    uint8_t *keep; /* batch x seq, 1 = real token; NULL: no mask */
    int all;       /* every token real: nothing to leave out */
} hpcz_token_mask;
/* From the batch's mask input (any integer, bool or float [batch, seq]);
 * another shape fails with a one-line message naming `name`. */
hpcz_status hpcz_token_mask_set(hpcz_token_mask *tm, const hpcz_array *a, const char *name, hpcz_error *err);
void hpcz_token_mask_release(hpcz_token_mask *tm);
/* The values of float array a that belong to real tokens (rules in mask.c),
 * as out = [n, unit] (allocated; release it): 1. Whole runs of `unit` values
 * are kept or dropped (unit = K for the rows of a matrix product's input).
 * 0: a has no token axis outside the unit (or no mask, or no padding), use
 * a as it is; -1: out of memory. */
int hpcz_token_mask_apply(const hpcz_token_mask *tm, const hpcz_array *a, int64_t unit, hpcz_array *out);

/* Per-channel (last axis) maxima of |x| for the named float tensors over
 * the samples of `data` (a hpcz_dataset spec), real tokens only when
 * mask_input names the token mask input: absmax[i] (channels[i] doubles,
 * zeroed by the caller) for names[i]. calib/calib.c. */
hpcz_status hpcz_channel_absmax(hpcz_model *m, const char *data, size_t max_samples, const char *mask_input,
                                int threads, size_t n, const char *const *names, const int64_t *channels,
                                double **absmax, hpcz_error *err);

/* Per-channel means of the named float tensors (graph inputs included) over
 * the samples of `data`: channel axis axes[i] (negative: from the end) of
 * channels[i] values; mean[i] (channels[i] doubles, zeroed by the caller).
 * Channels-last tensors count real tokens only when mask_input names the
 * token mask input. A tensor never seen keeps zeros. dims_seen (NULL, or n
 * rows of HPCZ_ARRAY_MAX_RANK, zeroed): the shape each was last seen with.
 * calib/calib.c. */
hpcz_status hpcz_channel_mean(hpcz_model *m, const char *data, size_t max_samples, const char *mask_input,
                              int threads, size_t n, const char *const *names, const int *axes,
                              const int64_t *channels, double **mean, int64_t *dims_seen, hpcz_error *err);

#endif
