/*
 * hpcz.h - the public API of libhpcz: the IR, errors and the model formats.
 *
 * Conventions (see README "Library"):
 *  - Every exported symbol starts with hpcz_ / HPCZ_.
 *  - Functions that can fail return an hpcz_status (0 on success) and fill
 *    an hpcz_error with a one-line, lowercase message; the library never
 *    prints or exits.
 *  - Lifecycle verbs: _new/_free for heap objects (_free(NULL) is a no-op).
 *  - Small IR objects (nodes, values, attributes, names) live in the model's
 *    arena and are freed with the model; tensor payloads are either borrowed
 *    from the model's backing storage (protobuf buffers, mmap'd external
 *    data) or owned by the tensor (see hpcz_tensor_set_data).
 */
#ifndef HPCZ_H
#define HPCZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HPCZ_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum hpcz_status {
    HPCZ_OK = 0,
    HPCZ_ERR_IO,          /* a file could not be read or written */
    HPCZ_ERR_PARSE,       /* the bytes are not what they claim to be */
    HPCZ_ERR_INVALID,     /* well-formed but inconsistent (cycle, undefined input, ...) */
    HPCZ_ERR_UNSUPPORTED, /* valid but beyond what hpcz implements */
    HPCZ_ERR_NOMEM,       /* allocation failed or a size is beyond limits */
    HPCZ_ERR_USAGE,       /* a bad argument from the caller */
    HPCZ_ERR_CANCELLED,   /* a caller's cancel flag stopped the work */
    HPCZ_ERR_COUNT
} hpcz_status;

typedef struct hpcz_error {
    hpcz_status status;
    char msg[1024];
} hpcz_error;

/* Sets err (may be NULL) and returns st, so callers write
 * `return hpcz_fail(err, HPCZ_ERR_PARSE, "node '%s': ...", name);` */
hpcz_status hpcz_fail(hpcz_error *err, hpcz_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to err->msg (used to add a file name). */
void hpcz_error_prefix(hpcz_error *err, const char *prefix);
const char *hpcz_status_name(hpcz_status st);
/* 1 if name is one of the entries of list, a comma- (or space-) separated
 * list such as "Conv,MatMul" (--op-types); a NULL list holds nothing. */
int hpcz_list_contains(const char *list, const char *name);

/* ---------------------------------------------------------------- dtypes */

/* Numbering is ONNX's TensorProto.DataType. */
typedef enum hpcz_dtype {
    HPCZ_DTYPE_UNDEFINED = 0,
    HPCZ_DTYPE_FLOAT = 1,
    HPCZ_DTYPE_UINT8 = 2,
    HPCZ_DTYPE_INT8 = 3,
    HPCZ_DTYPE_UINT16 = 4,
    HPCZ_DTYPE_INT16 = 5,
    HPCZ_DTYPE_INT32 = 6,
    HPCZ_DTYPE_INT64 = 7,
    HPCZ_DTYPE_STRING = 8,
    HPCZ_DTYPE_BOOL = 9,
    HPCZ_DTYPE_FLOAT16 = 10,
    HPCZ_DTYPE_DOUBLE = 11,
    HPCZ_DTYPE_UINT32 = 12,
    HPCZ_DTYPE_UINT64 = 13,
    HPCZ_DTYPE_COMPLEX64 = 14,
    HPCZ_DTYPE_COMPLEX128 = 15,
    HPCZ_DTYPE_BFLOAT16 = 16,
    HPCZ_DTYPE_FLOAT8E4M3FN = 17,
    HPCZ_DTYPE_FLOAT8E4M3FNUZ = 18,
    HPCZ_DTYPE_FLOAT8E5M2 = 19,
    HPCZ_DTYPE_FLOAT8E5M2FNUZ = 20,
    HPCZ_DTYPE_UINT4 = 21,
    HPCZ_DTYPE_INT4 = 22,
    HPCZ_DTYPE_FLOAT4E2M1 = 23,
    HPCZ_DTYPE_FLOAT8E8M0 = 24,
    HPCZ_DTYPE_UINT2 = 25,
    HPCZ_DTYPE_INT2 = 26,
    HPCZ_DTYPE_COUNT
} hpcz_dtype;

/* Name as ONNX spells it in lowercase ("float", "int8", ...); "dtype<N>" for
 * values outside the table (returned in a static buffer). */
const char *hpcz_dtype_name(int dtype);
/* Bits per element (4 for int4, 0 for string/undefined/unknown). */
int hpcz_dtype_bits(int dtype);
/* Bytes needed for n elements, packed for sub-byte types. */
size_t hpcz_dtype_nbytes(int dtype, int64_t n);
/* 1 for floating dtypes (including fp16/bf16/fp8). */
int hpcz_dtype_is_float(int dtype);

/* ---------------------------------------------------------------- IR */

typedef struct hpcz_model hpcz_model;
typedef struct hpcz_graph hpcz_graph;
typedef struct hpcz_node hpcz_node;
typedef struct hpcz_value hpcz_value;
typedef struct hpcz_tensor hpcz_tensor;
typedef struct hpcz_attr hpcz_attr;

/* Upper bound on elements of one tensor (2^40): larger claims are rejected
 * as corrupt instead of attempted. */
#define HPCZ_MAX_NUMEL ((int64_t)1 << 40)
#define HPCZ_MAX_RANK 64

/* Optional quantization parameters of a tensor (set by quantization passes). */
typedef struct hpcz_qparams {
    hpcz_tensor *scale;      /* float, per tensor / per axis / per block */
    hpcz_tensor *zero_point; /* may be NULL (symmetric) */
    int axis;                /* -1 per tensor */
    int block_size;          /* 0 unless blocked */
} hpcz_qparams;

struct hpcz_tensor {
    const char *name;   /* NULL for unnamed attribute tensors */
    int dtype;          /* hpcz_dtype (kept as int: files may carry new types) */
    int ndim;
    int64_t *dims;
    int64_t numel;
    void *data;         /* dense little-endian payload; see hpcz_tensor_data() */
    size_t nbytes;
    unsigned owns_data : 1; /* data was malloc'd for this tensor */
    unsigned dirty : 1;     /* payload or header changed since it was read */
    unsigned external : 1;  /* payload came from an external data file */
    hpcz_qparams *quant;
    const void *src;    /* the Onnx__TensorProto it was read from, or NULL */
    hpcz_model *model;
};

typedef struct hpcz_dim {
    int64_t size;       /* -1 when unknown or symbolic */
    const char *param;  /* symbolic name, or NULL */
} hpcz_dim;

struct hpcz_value {
    const char *name;
    int dtype;          /* HPCZ_DTYPE_UNDEFINED when not known */
    int ndim;           /* -1 when the rank is unknown */
    hpcz_dim *dims;
    hpcz_tensor *init;  /* initializer that defines this value, or NULL */
    hpcz_node *producer;/* node that outputs it, or NULL */
    hpcz_graph *graph;  /* graph that defines it */
    unsigned is_input : 1;      /* listed in graph.input */
    unsigned is_output : 1;     /* listed in graph.output */
    unsigned is_sparse_init : 1;/* defined by a sparse initializer */
    unsigned type_dirty : 1;    /* dtype/shape changed: rewrite value_info */
    const void *src;    /* Onnx__ValueInfoProto (input/output/value_info) or NULL */
    int aux;            /* free for passes and the runtime */
};

typedef enum hpcz_attr_type {
    HPCZ_ATTR_UNDEFINED = 0,
    HPCZ_ATTR_FLOAT = 1,
    HPCZ_ATTR_INT = 2,
    HPCZ_ATTR_STRING = 3,
    HPCZ_ATTR_TENSOR = 4,
    HPCZ_ATTR_GRAPH = 5,
    HPCZ_ATTR_FLOATS = 6,
    HPCZ_ATTR_INTS = 7,
    HPCZ_ATTR_STRINGS = 8,
    HPCZ_ATTR_TENSORS = 9,
    HPCZ_ATTR_GRAPHS = 10,
    HPCZ_ATTR_SPARSE_TENSOR = 11,
    HPCZ_ATTR_SPARSE_TENSORS = 12,
    HPCZ_ATTR_TYPE_PROTO = 13,
    HPCZ_ATTR_TYPE_PROTOS = 14
} hpcz_attr_type;

typedef struct hpcz_bytes {
    const uint8_t *data;
    size_t len;
} hpcz_bytes;

struct hpcz_attr {
    const char *name;
    hpcz_attr_type type;
    float f;
    int64_t i;
    hpcz_bytes s;
    hpcz_tensor *t;
    hpcz_graph *g;
    size_t n;           /* element count of the list member in use */
    float *floats;
    int64_t *ints;
    hpcz_bytes *strings;
    hpcz_tensor **tensors;
    hpcz_graph **graphs;
    const void *src;    /* Onnx__AttributeProto or NULL (sparse tensors, type protos and
                           ref_attr_name/doc_string travel through it) */
};

struct hpcz_node {
    const char *name;   /* may be NULL */
    const char *op_type;
    const char *domain; /* NULL or "" for the default domain */
    size_t n_inputs;
    hpcz_value **inputs;    /* NULL entries: omitted optional inputs ("") */
    size_t n_outputs;
    hpcz_value **outputs;   /* NULL entries: omitted optional outputs */
    size_t n_attrs;
    hpcz_attr *attrs;
    hpcz_graph *graph;
    const void *src;    /* Onnx__NodeProto or NULL */
    int aux;            /* free for passes and the runtime */
};

struct hpcz_graph {
    const char *name;
    hpcz_graph *parent; /* enclosing graph of a subgraph, NULL at top level */
    hpcz_node *owner;   /* node whose attribute holds this subgraph */
    hpcz_model *model;
    size_t n_nodes, cap_nodes;
    hpcz_node **nodes;  /* in file order (topological for valid models) */
    size_t n_inputs;
    hpcz_value **inputs;
    size_t n_outputs;
    hpcz_value **outputs;
    size_t n_value_info;
    hpcz_value **value_info;
    size_t n_inits, cap_inits;
    hpcz_tensor **inits; /* initializers in file order */
    struct hpcz_valmap *values; /* name -> value defined in this graph */
    const void *src;    /* Onnx__GraphProto or NULL */
    struct hpcz_name_index *node_names; /* hpcz_graph_add_node's cache of node names */
};

typedef struct hpcz_opset {
    const char *domain; /* "" for ai.onnx */
    int64_t version;
} hpcz_opset;

typedef struct hpcz_kv {
    const char *key;
    const char *value;
} hpcz_kv;

struct hpcz_model {
    int64_t ir_version;
    const char *producer_name;
    const char *producer_version;
    const char *domain;
    int64_t model_version;
    const char *doc_string;
    size_t n_opsets;
    hpcz_opset *opsets;
    size_t n_meta;
    hpcz_kv *meta;
    hpcz_graph *graph;
    const void *src;         /* Onnx__ModelProto or NULL */
    const char *path;        /* file it was read from ("-" for stdin) */
    uint64_t file_size;      /* bytes of that file (0 when unknown) */
    struct hpcz_model_priv *priv;
};

/* Creates an empty model with an empty top-level graph and opset ai.onnx 21. */
hpcz_model *hpcz_model_new(void);
void hpcz_model_free(hpcz_model *m);
/* The external data file m's tensors are read from that `path` names (the
 * same file through any link), or NULL: an output must not replace it. */
const char *hpcz_model_source_file(const hpcz_model *m, const char *path);
/* The constant behind a value: its initializer, or the tensor of the
 * Constant node that makes it; NULL otherwise. */
hpcz_tensor *hpcz_value_const(const hpcz_value *v);
/* Copies s into the model's arena (NULL stays NULL). */
const char *hpcz_model_strdup(hpcz_model *m, const char *s);
/* Zeroed arena allocation, freed with the model; NULL on overflow/OOM. */
void *hpcz_model_alloc(hpcz_model *m, size_t size);
/* Version of the opset imported for a domain (NULL/"" = ai.onnx, "ai.onnx"
 * accepted); 0 when not imported. */
int64_t hpcz_model_opset(const hpcz_model *m, const char *domain);

/* Values: lookup walks outward through enclosing graphs. */
hpcz_value *hpcz_graph_find_value(const hpcz_graph *g, const char *name);
/* Finds or creates a value named `name` defined in g. */
hpcz_value *hpcz_graph_value(hpcz_graph *g, const char *name);
/* Adds a node (appended; hpcz_graph_toposort puts it in place). A non-empty
 * name already used in g gets a suffix (_2, _3, ...). */
hpcz_node *hpcz_graph_add_node(hpcz_graph *g, const char *op_type, const char *name,
                               size_t n_inputs, size_t n_outputs);
/* Appends v to the graph's inputs / outputs (sets is_input / is_output). */
hpcz_status hpcz_graph_add_input(hpcz_graph *g, hpcz_value *v, hpcz_error *err);
hpcz_status hpcz_graph_add_output(hpcz_graph *g, hpcz_value *v, hpcz_error *err);
/* Wires output i of n to v (v->producer = n). */
void hpcz_node_set_output(hpcz_node *n, size_t i, hpcz_value *v);
/* Removes the nodes with aux == -1 in one sweep (cheap bulk removal). */
void hpcz_graph_sweep(hpcz_graph *g);
/* Replaces every use of `from` by `to` in g and its subgraphs, and in the
 * graph outputs. Returns the number of uses rewired. */
size_t hpcz_graph_replace_uses(hpcz_graph *g, hpcz_value *from, hpcz_value *to);
/* Number of nodes (in g and nested subgraphs) that read v. */
size_t hpcz_graph_count_uses(const hpcz_graph *g, const hpcz_value *v);
/* Sorts g's nodes topologically (stable for already sorted graphs). */
hpcz_status hpcz_graph_toposort(hpcz_graph *g, hpcz_error *err);
/* Attaches a tensor as initializer of a (new or existing) value; a value without
 * a shape takes the tensor's. */
hpcz_status hpcz_graph_add_initializer(hpcz_graph *g, hpcz_tensor *t, hpcz_error *err);

/* Attributes. */
const hpcz_attr *hpcz_node_attr(const hpcz_node *n, const char *name);
int64_t hpcz_node_attr_int(const hpcz_node *n, const char *name, int64_t dflt);
float hpcz_node_attr_float(const hpcz_node *n, const char *name, float dflt);
/* NUL-terminated copy in the arena, or dflt. */
const char *hpcz_node_attr_string(const hpcz_node *n, const char *name, const char *dflt);
/* Opset of the node's domain in the model. */
int64_t hpcz_node_opset(const hpcz_node *n);

/* Tensors. */
hpcz_tensor *hpcz_tensor_new(hpcz_model *m, const char *name, int dtype, int ndim,
                             const int64_t *dims);
/* Dense payload, decoding typed proto fields on first use; NULL + err on failure. */
void *hpcz_tensor_data(hpcz_tensor *t, hpcz_error *err);
/* Replaces the payload; takes ownership of `data` when own != 0. */
void hpcz_tensor_set_data(hpcz_tensor *t, void *data, size_t nbytes, int own);
/* Allocates an owned zeroed payload of the right size; NULL on OOM. */
void *hpcz_tensor_alloc(hpcz_tensor *t);

/* Verifier: every input defined (in scope), each value produced once, no
 * cycles, initializer/value_info types consistent; recurses into subgraphs. */
hpcz_status hpcz_model_verify(const hpcz_model *m, hpcz_error *err);

/* Fills in the element type of values the file leaves untyped, from each
 * op's typing rule (outputs the rules cannot type stay UNDEFINED). Does not
 * mark values dirty: nothing changes in the written model. */
void hpcz_model_infer_dtypes(hpcz_model *m);

/* Walks every graph (top level first, then subgraphs depth-first). */
typedef int (*hpcz_graph_visit_fn)(hpcz_graph *g, void *ctx);
int hpcz_model_foreach_graph(hpcz_model *m, hpcz_graph_visit_fn fn, void *ctx);

/* ---------------------------------------------------------------- ONNX */

typedef struct hpcz_load_opts {
    int skip_verify;        /* do not run hpcz_model_verify after reading */
    const char *base_dir;   /* external data folder for buffers/stdin (default: cwd) */
    /* hpcz_onnx_load_buffer: the buffer stays valid and unchanged until the
     * model is freed, so large raw_data payloads are used where they lie
     * instead of copied (hpcz_onnx_load does this with its mapping of a
     * regular file) */
    int borrow;
    size_t borrow_min;      /* payloads of at least this many bytes (0: 4096) */
} hpcz_load_opts;

/* Reads an ONNX model ("-" = stdin). opts may be NULL. Error messages do not
 * repeat the path; callers prefix it. */
hpcz_model *hpcz_onnx_load(const char *path, const hpcz_load_opts *opts, hpcz_error *err);
hpcz_model *hpcz_onnx_load_buffer(const void *buf, size_t len, const hpcz_load_opts *opts,
                                  hpcz_error *err);

typedef struct hpcz_save_opts {
    int external;              /* write large tensors to an external data file */
    size_t external_threshold; /* bytes; tensors at least this big go external (default 1024) */
    const char *external_name; /* data file name, relative to the model (default "<model>.data") */
    int regenerate;            /* rebuild every proto object from the IR (tests) */
    int overwrite_inputs;      /* may replace the external data files m was read from */
} hpcz_save_opts;

/* Writes an ONNX model atomically (temporary file + rename; "-" = stdout). */
hpcz_status hpcz_onnx_save(const hpcz_model *m, const char *path, const hpcz_save_opts *opts,
                           hpcz_error *err);
/* Serializes to a malloc'd buffer (inline data only). */
hpcz_status hpcz_onnx_serialize(const hpcz_model *m, const hpcz_save_opts *opts, uint8_t **out,
                                size_t *out_len, hpcz_error *err);
/* The size hpcz_onnx_serialize would give, without serializing. */
hpcz_status hpcz_onnx_serialized_size(const hpcz_model *m, const hpcz_save_opts *opts,
                                      size_t *out_len, hpcz_error *err);

/* An independent copy of m (through its serialization: every field kept). */
hpcz_model *hpcz_model_clone(const hpcz_model *m, hpcz_error *err);

/* Canonical bytes of a serialized ModelProto (parse + re-serialize in field
 * order), for semantic comparison of two files. */
hpcz_status hpcz_onnx_canonicalize(const void *buf, size_t len, uint8_t **out, size_t *out_len,
                                   hpcz_error *err);

/* A standalone TensorProto (.pb test data). The tensor lives in its own small
 * model (free with hpcz_model_free(t->model)). */
hpcz_tensor *hpcz_tensorproto_load(const char *path, hpcz_error *err);
hpcz_tensor *hpcz_tensorproto_load_buffer(const void *buf, size_t len, hpcz_error *err);
hpcz_status hpcz_tensorproto_serialize(const hpcz_tensor *t, uint8_t **out, size_t *out_len,
                                       hpcz_error *err);
hpcz_status hpcz_tensorproto_canonicalize(const void *buf, size_t len, uint8_t **out,
                                          size_t *out_len, hpcz_error *err);

/* ---------------------------------------------------------------- files */

/* Reads a whole file ("-" = stdin) into a malloc'd buffer (mmap is used by the
 * model reader itself). Refuses directories and files above max_bytes. */
/* A model from stdin ("-"), a pipe or a device, read whole: at most 2 GiB
 * unless allow_hpcz and it starts with .hpcz's magic; bytes no protobuf can
 * start with fail at once. */
hpcz_status hpcz_model_stream_read(const char *path, int allow_hpcz, uint8_t **out, size_t *len,
                                   hpcz_error *err);
hpcz_status hpcz_file_read(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len,
                           hpcz_error *err);

/* Atomic output: writes go to a temporary file in the target's folder, which
 * hpcz_outfile_commit renames over the target; abort (or a signal, see
 * hpcz_outfile_cleanup_all) removes it. "-" writes to stdout directly. */
typedef struct hpcz_outfile hpcz_outfile;
hpcz_outfile *hpcz_outfile_open(const char *path, hpcz_error *err);
FILE *hpcz_outfile_stream(hpcz_outfile *f);
hpcz_status hpcz_outfile_commit(hpcz_outfile *f, hpcz_error *err);
void hpcz_outfile_abort(hpcz_outfile *f);
/* Async-signal-safe: unlinks every temporary file still open. */
void hpcz_outfile_cleanup_all(void);


/* ---------------------------------------------------------------- summary */

typedef struct hpcz_op_count {
    const char *op_type;
    const char *domain; /* "" for ai.onnx */
    size_t count;
} hpcz_op_count;

typedef struct hpcz_dtype_stat {
    int dtype;
    uint64_t tensors;
    uint64_t params;
    uint64_t bytes;
} hpcz_dtype_stat;

typedef struct hpcz_weight_stat {
    hpcz_tensor *tensor;
    const char *name;
    const char *source; /* "initializer" or "constant" (a Constant node's value) */
    const char *graph;  /* NULL for the main graph, else the subgraph's name */
    uint64_t bytes;
    int64_t zeros;      /* exact zeros; -1 when not countable (strings) */
} hpcz_weight_stat;

typedef struct hpcz_model_summary {
    size_t n_nodes;         /* top-level graph */
    size_t n_nodes_total;   /* including every subgraph */
    size_t n_subgraphs;
    size_t n_ops;
    hpcz_op_count *ops;     /* sorted by count, then name */
    size_t n_dtypes;
    hpcz_dtype_stat *dtypes;/* sorted by bytes */
    size_t n_weights;
    hpcz_weight_stat *weights; /* sorted by bytes, then name */
    uint64_t params;
    uint64_t param_bytes;
    int64_t zeros;
} hpcz_model_summary;

/* Counts ops, parameters per dtype and exact zeros of every weight
 * (initializers and Constant-node tensors, subgraphs included). */
hpcz_status hpcz_model_summarize(hpcz_model *m, hpcz_model_summary *out, hpcz_error *err);
/* The same without reading payloads (zeros reported as -1): sizes only. */
hpcz_status hpcz_model_summarize_sizes(hpcz_model *m, hpcz_model_summary *out, hpcz_error *err);
void hpcz_model_summary_release(hpcz_model_summary *s);

/* ---------------------------------------------------------------- JSON */

/* A streaming JSON writer with stable formatting (2-space indent, keys in the
 * order written, doubles with 17 significant digits trimmed, NaN/Inf as null). */
typedef struct hpcz_json {
    FILE *f;
    int depth;
    unsigned char has_items[64];
} hpcz_json;

void hpcz_json_init(hpcz_json *j, FILE *f);
/* Length (1-4) of the well-formed UTF-8 sequence at p (NUL-terminated), or 0
 * when the bytes there are not one. Names from a model may hold anything:
 * writers of JSON, Markdown and terminal text check them with this. */
size_t hpcz_utf8_len(const unsigned char *p);
void hpcz_json_object_begin(hpcz_json *j, const char *key); /* key NULL in arrays/top */
void hpcz_json_object_end(hpcz_json *j);
void hpcz_json_array_begin(hpcz_json *j, const char *key);
void hpcz_json_array_end(hpcz_json *j);
void hpcz_json_string(hpcz_json *j, const char *key, const char *val); /* NULL -> null */
void hpcz_json_int(hpcz_json *j, const char *key, int64_t val);
void hpcz_json_uint(hpcz_json *j, const char *key, uint64_t val);
void hpcz_json_double(hpcz_json *j, const char *key, double val);
void hpcz_json_bool(hpcz_json *j, const char *key, int val);
void hpcz_json_null(hpcz_json *j, const char *key);
/* Ends the document with a newline. */
void hpcz_json_finish(hpcz_json *j);

/* A parsed JSON value (hpcz_json_parse). Objects keep key order. */
typedef enum hpcz_jtype {
    HPCZ_JSON_NULL,
    HPCZ_JSON_BOOL,
    HPCZ_JSON_NUMBER,
    HPCZ_JSON_STRING,
    HPCZ_JSON_ARRAY,
    HPCZ_JSON_OBJECT
} hpcz_jtype;

typedef struct hpcz_jval {
    hpcz_jtype type;
    int b;
    double num;
    char *s;
    size_t n;                 /* items of arrays and objects */
    struct hpcz_jval **items;
    char **keys;              /* objects */
} hpcz_jval;

hpcz_jval *hpcz_json_parse(const char *text, size_t len, hpcz_error *err);
void hpcz_json_free(hpcz_jval *v);
/* Member of an object by key, or NULL. */
const hpcz_jval *hpcz_json_get(const hpcz_jval *obj, const char *key);

/* ---------------------------------------------------------------- batch
 * The model list, shards and resume records behind `hpcz batch`
 * (lib/batch/batch.c); hpcz_batch_run (at the end of this header) runs a
 * recipe over them. */

typedef struct hpcz_batch_job {
    char *path;        /* the input model */
    char *name;        /* output stem relative to the output folder, without
                        * extension: "family/model" mirrors the source tree */
    uint64_t in_bytes; /* for the caller's records */
    uint64_t in_hash;  /* content hash of the input, valid when hashed */
    int hashed;
} hpcz_batch_job;

typedef struct hpcz_batch_list {
    hpcz_batch_job *jobs; /* sorted by name; names are unique */
    size_t n, cap;
} hpcz_batch_list;

/* src is a folder (every *.onnx and *.hpcz below it, subfolders included,
 * hidden entries and links to folders skipped) or a manifest (one path per
 * line, '#' comments, relative to the manifest's folder). */
hpcz_status hpcz_batch_list_models(const char *src, hpcz_batch_list *out, hpcz_error *err);
void hpcz_batch_list_free(hpcz_batch_list *l);
/* Jobs [lo, hi) of shard `index` (from 0) of `count`: contiguous shares that
 * are disjoint and cover the list. */
void hpcz_batch_shard(size_t n, uint64_t index, uint64_t count, size_t *lo, size_t *hi);
/* Creates OUTDIR, its record folder and the subfolders jobs [lo, hi) need. */
hpcz_status hpcz_batch_prepare(const char *outdir, const hpcz_batch_list *l, size_t lo, size_t hi,
                               hpcz_error *err);
/* Removes temporary files a killed run of jobs [lo, hi) left behind. */
void hpcz_batch_remove_stale(const char *outdir, const hpcz_batch_list *l, size_t lo, size_t hi,
                             const char *ext);
/* Whether job j is done: its record holds recipe_hash, the input's current
 * content hash, and out_path's size and hash. Hashes the input once. */
int hpcz_batch_is_done(const char *outdir, hpcz_batch_job *j, const char *out_path, const char *recipe_hash);
/* Writes job j's record (atomically) after a run that exited exit_status. */
hpcz_status hpcz_batch_record(const char *outdir, const hpcz_batch_job *j, const char *out_path,
                              const char *recipe, const char *recipe_hash, int exit_status, double seconds,
                              hpcz_error *err);
/* A content hash of a regular file (the .hpcz payload checksum). */
int hpcz_file_hash(const char *path, uint64_t *hash, uint64_t *size);


/* ================================================================ runtime
 * The CPU execution engine (lib/runtime/) and the .npy tensor format
 * (formats/npy.c). */

#define HPCZ_ARRAY_MAX_RANK 16

/* A dense tensor handed to or returned by the runtime. `data` is owned by
 * the array when it came from hpcz_array_alloc, hpcz_npy_load,
 * hpcz_array_from_tensor or hpcz_plan_run's outputs (release with
 * hpcz_array_release); otherwise the caller manages it. */
typedef struct hpcz_array {
    int dtype;                          /* hpcz_dtype */
    int ndim;
    int64_t dims[HPCZ_ARRAY_MAX_RANK];
    int64_t numel;
    void *data;
    size_t nbytes;
} hpcz_array;

/* Sets dtype/shape and allocates a zeroed payload (64-byte aligned). */
hpcz_status hpcz_array_alloc(hpcz_array *a, int dtype, int ndim, const int64_t *dims,
                             hpcz_error *err);
/* Frees the payload and zeroes the array (a zeroed array is a no-op). */
void hpcz_array_release(hpcz_array *a);
/* Copies a tensor (initializer, .pb test data) into a new array. */
hpcz_status hpcz_array_from_tensor(hpcz_tensor *t, hpcz_array *out, hpcz_error *err);
/* "float [1,3,224,224]" into buf. */
void hpcz_array_describe(const hpcz_array *a, char *buf, size_t cap);

/* .npy (NumPy format 1.0/2.0/3.0): little-endian, C order; dtypes f2 f4 f8
 * i1 u1 i2 u2 i4 u4 i8 u8 b1. Fortran order and big-endian are rejected. */
hpcz_status hpcz_npy_load(const char *path, hpcz_array *out, hpcz_error *err);
hpcz_status hpcz_npy_load_buffer(const void *buf, size_t len, hpcz_array *out, hpcz_error *err);
/* Written atomically (hpcz_outfile). */
hpcz_status hpcz_npy_save(const char *path, const hpcz_array *a, hpcz_error *err);

/* Called with every intermediate tensor as it is produced (graph inputs,
 * constants folded at plan time and, unless observe_subgraphs, subgraph
 * values excluded). The array and its data are valid only during the call. */
typedef void (*hpcz_observer_fn)(void *ctx, const hpcz_node *node, const char *name,
                                 const hpcz_array *a);

typedef struct hpcz_plan_opts {
    int threads;                 /* 0: all cores */
    const char *backend;         /* NULL (hpcz_set_default_device's), "cpu" or "cuda" */
    size_t n_dims;               /* symbolic dimensions fixed by name (--dim) */
    const char *const *dim_names;
    const int64_t *dim_values;
    hpcz_observer_fn observer;   /* NULL: no observation, no cost */
    void *observer_ctx;
    /* the observer takes arrays in device memory (hpcz_array_on_device; the
     * device statistics of lib/calib): values a device backend made are
     * passed as they are, not copied back for the call */
    int observer_device;
    /* the caller changes initializer values in place between runs (layer-wise
     * reconstruction, GPTQ): nothing derived from them (packed or widened
     * weights) is kept from one run to the next */
    int weights_change;
    /* plan shapes, never run (hpcz_model_macs): no activation arena, no
     * fusion, results folded at plan time only up to 64 MiB per node (larger
     * ones stay nodes with a shape); hpcz_plan_run refuses */
    int shapes_only;
    /* the observer also sees the values of If and Loop bodies as they run
     * (node is the body's node; a Loop's once per iteration): layer-wise
     * reconstruction and GPTQ measure layers inside the branch taken */
    int observe_subgraphs;
} hpcz_plan_opts;

typedef struct hpcz_plan hpcz_plan;

/* Sizes that every plan made after this call gives the named symbolic
 * dimensions unless its own options name them (the CLI's --dim for
 * quantize, calibrate and prune: calibration, random data, reconstruction
 * and comparisons all plan models of their own). Process-wide; n = 0
 * clears them. */
hpcz_status hpcz_set_default_dims(size_t n, const char *const *names, const int64_t *values,
                                  hpcz_error *err);
/* The size a plan gives symbolic dimension `name`, or -1 when none. */
int64_t hpcz_plan_dim(const hpcz_plan *p, const char *name);

/* Prepares the model's main graph for execution: every op (subgraphs
 * included) is checked against the backend, nodes are ordered, and when
 * every input dimension is known (fixed or by opts->dim_*) shapes, kernels
 * and the activation arena are planned now; otherwise at the first run.
 * The model must outlive the plan. An unsupported op fails with
 * HPCZ_ERR_UNSUPPORTED and "node 'NAME' (OP, opset N): not supported". */
hpcz_plan *hpcz_plan_new(hpcz_model *m, const hpcz_plan_opts *opts, hpcz_error *err);
void hpcz_plan_free(hpcz_plan *p);

/* The inputs a caller feeds (graph inputs without an initializer), in graph
 * order, and the graph outputs. */
size_t hpcz_plan_n_inputs(const hpcz_plan *p);
const hpcz_value *hpcz_plan_input(const hpcz_plan *p, size_t i);
size_t hpcz_plan_n_outputs(const hpcz_plan *p);
const hpcz_value *hpcz_plan_output(const hpcz_plan *p, size_t i);
/* Index of the input named `name`, or -1. */
int hpcz_plan_input_index(const hpcz_plan *p, const char *name);
/* Checks an array against input i's declared dtype and shape (symbolic
 * dimensions match anything, or their fixed value). On mismatch the message
 * is "input 'x': expected float [batch,3,224,224], got int64 [1,3]". */
hpcz_status hpcz_plan_check_input(const hpcz_plan *p, size_t i, const hpcz_array *a,
                                  hpcz_error *err);

/* Plans for inputs of these dtypes and shapes (inputs[i] matches
 * hpcz_plan_input(i); their data is not read and may be NULL) without
 * running anything but the plan-time folding of constants. */
hpcz_status hpcz_plan_shapes(hpcz_plan *p, const hpcz_array *inputs, hpcz_error *err);

/* Runs the graph. inputs[i] matches hpcz_plan_input(i); outputs (n_outputs
 * zeroed or released arrays) receive freshly allocated results owned by the
 * caller. A change of input shapes re-plans. Results do not depend on the
 * thread count. */
hpcz_status hpcz_plan_run(hpcz_plan *p, const hpcz_array *inputs, hpcz_array *outputs,
                          hpcz_error *err);

typedef struct hpcz_plan_stats {
    uint64_t arena_bytes;    /* the planned activation arena (peak of live buffers) */
    uint64_t dynamic_peak;   /* peak bytes of buffers allocated at run time */
    uint64_t const_bytes;    /* tensors computed once at plan time */
    size_t n_nodes;          /* nodes run per call */
    size_t n_folded;         /* nodes evaluated at plan time */
    size_t n_dynamic;        /* nodes whose output shapes are only known at run time */
    int threads;
    /* a device backend (--device cuda): nodes placed on the device (views
     * included), host/device copies per run, the device arena, and the
     * weights uploaded once per plan */
    size_t n_device, n_copies;
    uint64_t device_arena_bytes, device_const_bytes;
} hpcz_plan_stats;
void hpcz_plan_get_stats(const hpcz_plan *p, hpcz_plan_stats *out);

/* The device that plans whose options name no backend run on (the CLI's
 * --device): "cpu", or "cuda" / "cuda:N" (device N, default 0) in builds with
 * CUDA. Opens the device now: HPCZ_ERR_UNSUPPORTED with "hpcz was built
 * without CUDA" or "no CUDA device found (...)" when it cannot; HPCZ_ERR_USAGE
 * for another name. The cuda backend runs the ops it has kernels for on the
 * GPU and every other one on the CPU. Process-wide. */
hpcz_status hpcz_set_default_device(const char *device, hpcz_error *err);

/* Whether the backend ("cpu" when NULL) implements node n at its opset;
 * with dtypes (n->n_inputs entries, HPCZ_DTYPE_UNDEFINED = unknown) the
 * input types are checked too. */
int hpcz_runtime_supports(const char *backend, const hpcz_node *n, const int *dtypes);

/* Per-node timing for profiling: when set, hpcz_plan_run adds each node's
 * wall time (ns) into times[k] for the k-th node of the run order. */
size_t hpcz_plan_n_nodes(const hpcz_plan *p);
const hpcz_node *hpcz_plan_node(const hpcz_plan *p, size_t k);
void hpcz_plan_set_profile(hpcz_plan *p, uint64_t *times);
/* 1 when the k-th node was evaluated at plan time (it does not run). */
int hpcz_plan_node_folded(const hpcz_plan *p, size_t k);
/* dtype and shape of output j of the k-th node as planned (data not to be
 * read); NULL before planning, for omitted outputs, and when the shape is
 * only known at run time (control flow, data-dependent shapes). */
const hpcz_array *hpcz_plan_node_output(const hpcz_plan *p, size_t k, size_t j);
/* Multiply-add FLOPs (2 per MAC) of the k-th node from its planned shapes:
 * Conv, ConvTranspose, Gemm, MatMul; 0 for other ops or unknown shapes. */
uint64_t hpcz_plan_node_flops(const hpcz_plan *p, size_t k);

/* ============================================================ end runtime */

/* ---------------------------------------------------------------- passes
 *
 * Every transformation is a pass: a table entry with a name, a one-line
 * summary, a typed option table (which drives parsing, defaults and help) and
 * a run function over the IR. Pipelines are strings:
 *     fold-bn,prune-magnitude{sparsity=0.5,scope=global},quantize-int8{per-channel}
 * A bare option name inside braces sets a bool option to true.
 * Adding a pass: see lib/passes/passes.h.
 */

typedef enum hpcz_opt_type {
    HPCZ_OPT_BOOL,
    HPCZ_OPT_INT,
    HPCZ_OPT_FLOAT,
    HPCZ_OPT_STRING,
    HPCZ_OPT_ENUM /* one of `choices`, '|' separated */
} hpcz_opt_type;

typedef struct hpcz_pass_opt {
    const char *name;
    hpcz_opt_type type;
    const char *dflt;    /* default as text ("0.5", "true", "l1"); NULL = no default */
    const char *help;
    const char *choices; /* HPCZ_OPT_ENUM only */
    double lo, hi;       /* numeric range, inclusive; lo == hi == 0: unbounded */
} hpcz_pass_opt;

typedef union hpcz_optval {
    int64_t i;
    double f;
    const char *s; /* strings and enums */
    int b;
} hpcz_optval;

typedef struct hpcz_pass_ctx hpcz_pass_ctx;
typedef struct hpcz_pass_args hpcz_pass_args;

typedef struct hpcz_pass {
    const char *name;
    const char *summary;
    const hpcz_pass_opt *opts; /* terminated by a zeroed entry; NULL = none */
    hpcz_status (*run)(hpcz_model *m, const hpcz_pass_args *args, hpcz_pass_ctx *ctx,
                       hpcz_error *err);
} hpcz_pass;

struct hpcz_pass_args {
    const hpcz_pass *pass;
    hpcz_optval *vals;   /* parallel to pass->opts */
    unsigned char *set;  /* 1 where the pipeline string gave the value */
};

/* Context of a pipeline run: how passes report what they did. */
struct hpcz_pass_ctx {
    int verify; /* run hpcz_model_verify after every pass (on in debug builds by default) */
    /* Called for each note a pass makes ("folded 4 BatchNormalization nodes"); may be NULL. */
    void (*log)(void *user, const char *pass, const char *msg);
    void *log_user;
    size_t nodes_removed;
    size_t nodes_added;
    /* activation ranges for static quantization (NULL: none) */
    const struct hpcz_calib_table *calib;
    /* nodes that quantization passes must leave in float (accuracy fallback);
     * NULL: none */
    int (*keep_float)(void *user, const hpcz_node *n);
    void *keep_float_user;
    /* calibration data for data-aware passes (reconstruction, GPTQ, BatchNorm
     * re-estimation): a hpcz_dataset spec, NULL = none */
    const char *data;
    size_t data_samples; /* 0 = all */
    int threads;
    /* model input holding the data's token mask (hpcz_calib_opts.mask_input):
     * GPTQ, reconstruction and smoothing statistics skip padded tokens; NULL = none */
    const char *data_mask;
};

/* What `hpcz quantize`'s options mean, as a pipeline (lib/passes/recipe.c).
 * Strings are borrowed. */
typedef struct hpcz_quantize_recipe {
    const char *mode;   /* "weight-only" (default), "dynamic", "static" */
    const char *dtype;  /* "int8" (default), "int4", "fp16" */
    int per_channel;    /* 1 (default) or 0 */
    int symmetric;      /* -1: the mode's default, 0, 1 */
    const char *weight_dtype; /* NULL: int8 (dynamic: uint8) */
    int reduce_range;   /* -1: the mode's default (static: per layer) */
    int block;          /* weight-only block size; 0: per channel (int4: 32) */
    const char *clip;   /* "mse" (default) or "minmax" */
    const char *algo;   /* NULL: GPTQ for weight-only with calibration data, else "rtn"; "adaround": weight-only
                         * int8/int4 and static, with calibration data */
    const char *int4_format;      /* NULL, "qdq" or "matmulnbits" */
    const char *act_dtype;        /* static: "uint8" (default) or "int8" */
    const char *placement;        /* static: "latency" (default), "all" or "hpcz" */
    const char *fallback_weights; /* static: layers kept float keep "int8" (default), "fp16" or "float" weights */
    const char *placed_weights;   /* static: layers the latency placement leaves float keep "fp16"
                                   * (default: float16 read through a Cast, float speed in ONNX Runtime),
                                   * "float" or "int8" weights (smaller, slower in ONNX Runtime) */
    int keep_io_types;  /* fp16 */
    int fold;           /* fold BatchNorm first (1, default) */
    const char *op_types, *include, *exclude;
    int have_calib, have_table; /* calibration data / a table will be given */
    int size_search;            /* set from below: --auto-fallback searches for the smallest model
                                 * at the gates, so static keeps its int8 islands (no
                                 * min-macs-per-value rule, which trades them for ORT latency) */
    double smooth;      /* static SmoothQuant alpha; -1: default (0.5 with data), 0: off */
    int bias_correct;   /* bias correction for the weights' rounding (static, weight-only int8 --algo rtn;
                         * needs calibration data): -1 default (static with data: on, kept where the
                         * data says it helps; weight-only: off), 0, 1 */
    const char *rounding; /* weight-only int8 round-to-nearest: "balanced" (default: each channel's rounding
                           * errors sum to ~0, weighted by input means estimated without data) or "nearest" */
    double early_fp16;  /* weight-only int8 per channel (GPTQ too): a net whose output is a dense
                         * map keeps its earliest convolutions, up to this percentage of the convolution
                         * weights, in float16 (-1: default, 1.5 where it applies;
                         * 0: off) */
    int equalize;       /* static: cross-layer equalization before calibration: -1 default (with --calib:
                         * on, kept where the calibration data says it helps), 0, 1 */
    /* filled by hpcz_quantize_recipe_resolve */
    int resolved, algo_default;
    const char *static_reduce_range;
} hpcz_quantize_recipe;
void hpcz_quantize_recipe_init(hpcz_quantize_recipe *r);
/* Checks the choices (HPCZ_ERR_USAGE, one line naming the option) and fills
 * the defaults they imply (algo, weight_dtype, block, reduce_range). */
hpcz_status hpcz_quantize_recipe_resolve(hpcz_quantize_recipe *r, hpcz_error *err);
/* The pipeline (resolving first when needed) into spec; smooth (may be
 * NULL) gets the steps to run before calibration (equalize, smooth-quant),
 * or "". */
hpcz_status hpcz_quantize_recipe_pipeline(hpcz_quantize_recipe *r, char *spec, size_t cap, char *smooth,
                                          size_t smooth_cap, hpcz_error *err);

/* What `hpcz prune`'s options mean, as a pipeline (lib/passes/recipe.c). */
typedef struct hpcz_prune_recipe {
    const char *method;    /* "magnitude" (default), "nm", "channel" */
    double sparsity;       /* magnitude: 0.5 */
    double ratio;          /* channel: 0.25 */
    const char *criterion; /* channel: NULL = energy with data, else l1; l2, bn-gamma */
    const char *scope;     /* magnitude: "layer" (default) or "global" */
    const char *pattern;   /* nm: "2:4" */
    int64_t min_params;
    int keep_first_last;
    const char *op_types, *include, *exclude;
    int fold;              /* fold BatchNorm (1, default) */
    int reconstruct;       /* -1 default, 1 re-solve on data, 0 not (channel) */
    int recalibrate_bn;
    int have_calib;        /* calibration data will be given */
    int targeted;          /* a --target-* budget picks the layers */
    /* filled by hpcz_prune_recipe_resolve */
    int resolved, channel_data, n, m;
} hpcz_prune_recipe;
void hpcz_prune_recipe_init(hpcz_prune_recipe *r);
hpcz_status hpcz_prune_recipe_resolve(hpcz_prune_recipe *r, hpcz_error *err);
hpcz_status hpcz_prune_recipe_pipeline(hpcz_prune_recipe *r, char *spec, size_t cap, hpcz_error *err);

/* Every registered pass, in listing order. */
const hpcz_pass *const *hpcz_pass_list(size_t *n);
const hpcz_pass *hpcz_pass_find(const char *name);
/* Value of an option by name (asserts that the option exists). */
hpcz_optval hpcz_pass_arg(const hpcz_pass_args *a, const char *name);
int hpcz_pass_arg_set(const hpcz_pass_args *a, const char *name);

typedef struct hpcz_pipeline hpcz_pipeline;
/* Parses a pipeline string. Errors are HPCZ_ERR_USAGE with the closest valid
 * name ("unknown pass 'fold-b': did you mean 'fold-bn'?"). */
hpcz_pipeline *hpcz_pipeline_parse(const char *spec, hpcz_error *err);
/* Appends another pipeline string to p (commands build presets this way). */
hpcz_status hpcz_pipeline_append(hpcz_pipeline *p, const char *spec, hpcz_error *err);
size_t hpcz_pipeline_length(const hpcz_pipeline *p);
hpcz_status hpcz_pipeline_run(hpcz_pipeline *p, hpcz_model *m, hpcz_pass_ctx *ctx,
                              hpcz_error *err);
void hpcz_pipeline_free(hpcz_pipeline *p);
void hpcz_pass_ctx_init(hpcz_pass_ctx *ctx);
void hpcz_pass_note(hpcz_pass_ctx *ctx, const char *pass, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ================================================================ .hpcz
 * hpcz's own model container (formats/hpcz/, spec in formats/hpcz/FORMAT.md):
 * the ONNX ModelProto with tensor payloads moved out into a table, each
 * payload stored raw, as a zstd frame or sparse (bitmask + nonzeros, optionally
 * zstd), 64-byte aligned for mmap, with checksums. Lossless with respect to
 * ONNX: .onnx -> .hpcz -> .onnx gives the same model. */

typedef enum hpcz_hpcz_encoding {
    HPCZ_HPCZ_ENC_RAW = 0,         /* the payload as it is */
    HPCZ_HPCZ_ENC_ZSTD = 1,        /* one zstd frame of the payload */
    HPCZ_HPCZ_ENC_SPARSE = 2,      /* bitmask of nonzero elements + the nonzero elements */
    HPCZ_HPCZ_ENC_SPARSE_ZSTD = 3, /* one zstd frame of the sparse form */
    HPCZ_HPCZ_ENC_COUNT
} hpcz_hpcz_encoding;

typedef struct hpcz_hpcz_opts {
    int zstd_level;        /* 1..19 (0: 3, fast); -1: never zstd */
    size_t inline_max;     /* payloads smaller than this many bytes stay inline in the skeleton
                              (0: 64; 1: every non-empty payload goes to the table) */
    const char *encoding;  /* NULL or "auto": the smallest encoding (raw unless another saves
                              at least 1/64); "raw", "zstd", "sparse", "sparse-zstd": that
                              one for every table payload (tests) */
} hpcz_hpcz_opts;

/* Writes m as .hpcz atomically (hpcz_outfile; "-" = stdout). opts may be NULL.
 * The same model and options always give the same bytes. m is not changed
 * (tensor sources are swapped while the skeleton is written, then restored). */
hpcz_status hpcz_hpcz_save(const hpcz_model *m, const char *path, const hpcz_hpcz_opts *opts,
                           hpcz_error *err);
/* Serializes to a malloc'd buffer. */
hpcz_status hpcz_hpcz_serialize(const hpcz_model *m, const hpcz_hpcz_opts *opts, uint8_t **out,
                                size_t *out_len, hpcz_error *err);

/* Reads a .hpcz file ("-" = stdin). The file is mmap'd: raw payloads are
 * borrowed from the mapping, encoded ones decoded once. Every checksum is
 * verified; a corrupt, truncated or newer-major file fails with one line. */
hpcz_model *hpcz_hpcz_load(const char *path, const hpcz_load_opts *opts, hpcz_error *err);
/* Reads from memory. With copy == 0, buf is borrowed and must outlive the
 * model; else it is copied. max_decoded bounds the bytes decoded from encoded
 * payloads in all (0: no bound beyond the format's own), e.g. for fuzzing. */
hpcz_model *hpcz_hpcz_load_buffer(const void *buf, size_t len, int copy, uint64_t max_decoded,
                                  const hpcz_load_opts *opts, hpcz_error *err);

/* How a tensor's payload is stored in the .hpcz file it was read from. */
typedef struct hpcz_hpcz_tensor_info {
    int encoding;          /* hpcz_hpcz_encoding */
    int field;             /* the TensorProto field it fills (FORMAT.md "field") */
    uint32_t index;        /* entry in the tensor table */
    uint64_t offset;       /* of the stored bytes in the file */
    uint64_t stored_bytes; /* in the file */
    uint64_t raw_bytes;    /* decoded */
} hpcz_hpcz_tensor_info;
/* 1 and *out filled when t's payload came from a .hpcz tensor table; 0 for
 * tensors kept inline in the skeleton and for models of other formats. */
int hpcz_hpcz_tensor_storage(const hpcz_tensor *t, hpcz_hpcz_tensor_info *out);

typedef struct hpcz_hpcz_info {
    int major, minor;
    uint32_t n_tensors;     /* table entries */
    uint64_t skeleton_bytes;
    uint64_t stored_bytes;  /* all payloads as stored */
    uint64_t raw_bytes;     /* all payloads decoded */
    uint32_t by_encoding[HPCZ_HPCZ_ENC_COUNT];
} hpcz_hpcz_info;
/* 1 and *out filled when m was read from a .hpcz file, else 0. */
int hpcz_hpcz_model_info(const hpcz_model *m, hpcz_hpcz_info *out);
/* "raw", "zstd", "sparse", "sparse-zstd"; "?" outside the table. */
const char *hpcz_hpcz_encoding_name(int encoding);
/* The format's 64-bit checksum (FORMAT.md "Checksum"). */
uint64_t hpcz_hpcz_checksum(const void *data, size_t len);

/* Model files of either format. */
typedef enum hpcz_format {
    HPCZ_FORMAT_AUTO = 0, /* by magic when reading, by extension when writing */
    HPCZ_FORMAT_ONNX,
    HPCZ_FORMAT_HPCZ
} hpcz_format;
/* HPCZ_FORMAT_HPCZ for paths ending in ".hpcz", else HPCZ_FORMAT_ONNX. */
hpcz_format hpcz_format_from_path(const char *path);
/* "onnx" or "hpcz": the format m was read from ("onnx" for models built in memory). */
const char *hpcz_model_format(const hpcz_model *m);
/* Reads a model of either format, told apart by the magic "HPCZ" ("-" =
 * stdin: read whole, then sniffed). */
hpcz_model *hpcz_model_load(const char *path, const hpcz_load_opts *opts, hpcz_error *err);
/* Writes m as `format` (AUTO: by path's extension; stdout "-" with AUTO is
 * ONNX). onnx_opts / hpcz_opts may be NULL; ONNX external data does not apply
 * to .hpcz (HPCZ_ERR_USAGE). */
hpcz_status hpcz_model_save(const hpcz_model *m, const char *path, hpcz_format format,
                            const hpcz_save_opts *onnx_opts, const hpcz_hpcz_opts *hpcz_opts,
                            hpcz_error *err);

/* ============================================================ end .hpcz */

/* ---------------------------------------------------------------- calibration
 * Data sets for calibration and evaluation, streaming activation statistics
 * over hpcz's runtime, and calibration tables (versioned JSON, reusable). */

typedef struct hpcz_dataset hpcz_dataset;

/* spec is a folder holding either one .npy per model input named after it
 * with a leading batch axis ("input.npy"), or one .npy per input per sample
 * ("input_0.npy", "input_1.npy", ...), or ONNX test_data_set_* folders of
 * input_<i>.pb; or a single .npy file (one-input models); or "random:N" for N
 * seeded standard-normal samples (a proxy, said so). Every array is checked
 * against the plan's input (dtype, rank, non-batch dims): a mismatch names
 * the file and the expected shape. max_samples 0 = all. Large .npy files
 * are mapped, not read: only the rows a batch copies are touched, so memory
 * follows the samples used, not the file size; files past max_samples are not
 * opened. */
hpcz_dataset *hpcz_dataset_open(const char *spec, hpcz_plan *plan, size_t max_samples,
                                hpcz_error *err);
size_t hpcz_dataset_size(const hpcz_dataset *d);
int hpcz_dataset_is_random(const hpcz_dataset *d);
/* Samples per run that the model allows (its batch dim if fixed, else 32). */
size_t hpcz_dataset_batch_size(const hpcz_dataset *d);
/* Stacks samples [start, start + n) of every input along axis 0 into
 * inputs[hpcz_plan_n_inputs] (freshly allocated; release them). */
hpcz_status hpcz_dataset_batch(hpcz_dataset *d, size_t start, size_t n, hpcz_array *inputs,
                               hpcz_error *err);
void hpcz_dataset_free(hpcz_dataset *d);

/* Where a compressed model turns NaN/Inf on data where the original stays
 * finite (hpcz_find_nonfinite). */
typedef struct hpcz_nonfinite {
    size_t samples;               /* samples both models ran */
    size_t n_outputs;             /* graph outputs of the compressed model hit */
    char output[256];             /* the first of them */
    const hpcz_node *node;        /* the first node of the compressed model whose output
                                     broke (NULL: none); valid while that model lives */
    char tensor[256];             /* that output's name */
    int added_by_compression;     /* the tensor is not in the original (a Cast it added) */
    int64_t bad_values, values;   /* NaN/Inf among that tensor's values, on its first batch */
} hpcz_nonfinite;
/* Runs orig and comp on data (a hpcz_dataset spec; max_samples 0 = all) and
 * fills r. Tensors the original itself makes NaN/Inf are not blamed. */
hpcz_status hpcz_find_nonfinite(hpcz_model *orig, hpcz_model *comp, const char *data,
                                size_t max_samples, int threads, hpcz_nonfinite *r, hpcz_error *err);

typedef enum hpcz_calib_method {
    HPCZ_CALIB_MINMAX,
    HPCZ_CALIB_MOVING_MINMAX, /* exponential moving average of per-batch min/max */
    HPCZ_CALIB_PERCENTILE,
    HPCZ_CALIB_ENTROPY,       /* KL-divergence threshold (TensorRT's method) */
    HPCZ_CALIB_MSE,           /* clipping that minimises the expected squared error */
    HPCZ_CALIB_MEAN_MINMAX    /* mean over samples of each sample's min and max (NNCF's default) */
} hpcz_calib_method;

typedef struct hpcz_calib_opts {
    hpcz_calib_method method;
    double percentile;   /* HPCZ_CALIB_PERCENTILE, e.g. 99.99 */
    int bits;            /* activation bits the range is chosen for (8) */
    int threads;
    /* model input holding the token mask ([batch, seq], nonzero = real token):
     * values of padded tokens stay out of the statistics; NULL: none */
    const char *mask_input;
    /* called after each batch; may be NULL */
    void (*progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
} hpcz_calib_opts;

typedef struct hpcz_calib_range {
    const char *name;
    float min, max;      /* the range to quantize to */
    float seen_min, seen_max;
    float abs_p99;       /* 99th percentile of |x| (0: not known) */
    uint64_t nonfinite;  /* NaN and Inf values seen (left out of the range) */
    uint64_t finite;     /* finite values seen */
} hpcz_calib_range;

typedef struct hpcz_calib_table {
    char *method;        /* "minmax", "percentile:99.99", ... */
    size_t samples;
    int random;          /* calibrated on random data */
    size_t n;
    hpcz_calib_range *r; /* sorted by name */
    uint64_t hist_bytes; /* memory the statistics took (constant in the sample count) */
    uint64_t model_fingerprint; /* hpcz_model_fingerprint of the model measured (0: not known) */
    void *storage;
} hpcz_calib_table;

/* A hash of m's top graph: inputs, nodes (op type, output names) and
 * initializers (names and bytes). Tables remember it to refuse a model with
 * other weights or structure. */
uint64_t hpcz_model_fingerprint(const hpcz_model *m);
/* Fails (HPCZ_ERR_USAGE) when t cannot be m's: an empty table, a model input
 * or most of the table's tensors missing from m, or another fingerprint. */
hpcz_status hpcz_calib_table_check(const hpcz_calib_table *t, const hpcz_model *m, hpcz_error *err);

/* The token-mask input of m for calibration (hpcz_calib_opts.mask_input),
 * from what a user asked for: NULL finds an input named attention_mask
 * (*mask stays NULL when m has none), "none" gives none, another name must
 * be an input of m (else HPCZ_ERR_USAGE). The quantize and prune jobs apply
 * it to their calib_mask; `hpcz` notes a mask it found by name. */
hpcz_status hpcz_calib_mask_resolve(const hpcz_model *m, const char *opt, const char **mask, hpcz_error *err);
/* Parses "minmax", "moving-minmax", "percentile[:P]", "entropy", "mse". */
hpcz_status hpcz_calib_method_parse(const char *s, hpcz_calib_opts *o, hpcz_error *err);
/* Runs every sample through the model and returns the range of every float
 * tensor (graph inputs and every intermediate). NaN and Inf are left out of
 * the ranges and counted (hpcz_calib_range.nonfinite); calibration data whose
 * inputs hold them fails, naming the input and the sample. Memory does not grow with the
 * number of samples: statistics are histograms of fixed size. */
hpcz_status hpcz_calibrate(hpcz_model *m, hpcz_dataset *d, const hpcz_calib_opts *o,
                           hpcz_calib_table **out, hpcz_error *err);
/* The same on a data set spec (see hpcz_dataset_open), max_samples 0 = all;
 * o may be NULL (min/max, 8 bits). */
hpcz_status hpcz_calibrate_data(hpcz_model *m, const char *data, size_t max_samples, const hpcz_calib_opts *o,
                                hpcz_calib_table **out, hpcz_error *err);
const hpcz_calib_range *hpcz_calib_find(const hpcz_calib_table *t, const char *name);
/* JSON schema "hpcz.calibration" version 1 (docs/json.md). */
hpcz_status hpcz_calib_table_save(const hpcz_calib_table *t, const char *path, hpcz_error *err);
hpcz_calib_table *hpcz_calib_table_load(const char *path, hpcz_error *err);
void hpcz_calib_table_free(hpcz_calib_table *t);

/* ---------------------------------------------------------------- compare
 * Accuracy delta of two models on the same data (lib/report/compare.c). */

typedef struct hpcz_output_metrics {
    const char *name;
    uint64_t count;          /* elements compared */
    double max_abs, mean_abs, rmse, cosine, sqnr_db; /* sqnr_db: +inf when identical */
    double cos_worst, cos_mean; /* cosine per sample: the lowest and the mean */
    double cos_sd;           /* ... their standard deviation (0 for one sample) */
    uint64_t cos_n;          /* ... over this many samples (rows) */
    int is_scores;           /* [N, C] float scores: top-k agreement computed */
    double top1_agreement;   /* share of samples, 0..1 */
    double top5_agreement;
    int has_labels;
    double acc_a, acc_b;     /* top-1 accuracy against the labels, 0..1 */
    double drop_points;      /* (acc_a - acc_b) * 100 */
    double drop_ci95;        /* half-width of the 95% interval of the paired drop, points */
    uint64_t samples;
} hpcz_output_metrics;

typedef struct hpcz_layer_metrics {
    const char *name;        /* tensor name in model A */
    const char *op_type;     /* op of A that produced it */
    const char *what;        /* what was done to it in B: "int8", "int4", "fp16", "pruned 50%", "kept float" */
    const char *matched;     /* name of the tensor of B compared with it */
    double sqnr_db, cosine, max_abs; /* sqnr_db: +inf when identical */
    uint64_t count;
    size_t order;            /* position in A's execution order */
} hpcz_layer_metrics;

typedef struct hpcz_compare_opts {
    int threads;
    const int64_t *labels;   /* class index per sample, or NULL */
    size_t n_labels;
    int per_layer;           /* compare every intermediate tensor */
    size_t max_samples;      /* 0: all */
    size_t first_sample;     /* samples before it are not run (max_samples still counts
                              * from sample 0): a held-out part of a data set */
    void (*progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
} hpcz_compare_opts;

typedef struct hpcz_compare_result {
    size_t samples;
    size_t n_outputs;
    hpcz_output_metrics *outputs;
    size_t n_layers;
    hpcz_layer_metrics *layers;   /* worst SQNR first */
    size_t n_unmatched;
    char **unmatched;             /* float tensors of A with no counterpart in B */
    void *storage;
} hpcz_compare_result;

/* Runs A and B on the same samples of `data` (a hpcz_dataset spec) and
 * measures how B's outputs (and, with per_layer, intermediate tensors matched
 * by name, following QDQ pairs) differ from A's. The models must take the
 * same inputs (B may take float16 where A takes float32). o may be NULL. */
hpcz_status hpcz_compare(hpcz_model *a, hpcz_model *b, const char *data, const hpcz_compare_opts *o,
                         hpcz_compare_result **out, hpcz_error *err);
void hpcz_compare_result_free(hpcz_compare_result *r);

/* Accuracy gates on a comparison (lib/report/gates.c). */
enum {
    HPCZ_GATE_MAX_TOP1_DROP,      /* top-1 accuracy drop, points (labels), else % changed */
    HPCZ_GATE_MIN_TOP1_AGREEMENT, /* % of top-1 predictions unchanged */
    HPCZ_GATE_MIN_COSINE,
    HPCZ_GATE_MIN_SQNR,           /* dB */
    HPCZ_GATE_MAX_ABS,            /* largest absolute error */
};
typedef struct hpcz_gate {
    int kind;
    double value;
    char output[256]; /* "" = every output */
} hpcz_gate;
typedef struct hpcz_gate_result {
    const hpcz_gate *gate;
    const char *output; /* borrowed from the comparison */
    double measured;
    int broken;
    int proxy; /* top-1 drop without labels: the share of changed predictions */
} hpcz_gate_result;
/* "max-top1-drop", ... (the CLI's option names) */
const char *hpcz_gate_name(int kind);
/* spec: "NUMBER" (every output) or "OUTPUT=NUMBER". */
hpcz_status hpcz_gate_parse(int kind, const char *spec, hpcz_gate *out, hpcz_error *err);
/* The first gate naming an output m lacks, or NULL. */
const hpcz_gate *hpcz_gates_unknown_output(const hpcz_gate *gates, size_t n, const hpcz_model *m);
/* Every gate on every output it applies to (top-1 gates: score outputs
 * only); at most cap results; returns their number. */
size_t hpcz_gates_check(const hpcz_gate *gates, size_t n, const hpcz_compare_result *r, hpcz_gate_result *res,
                        size_t cap);
/* 1 when every gate holds on r, 0 when one breaks, -1 out of memory. */
int hpcz_gates_hold(const hpcz_gate *gates, size_t n, const hpcz_compare_result *r);

/* The accuracy report (lib/report/report_write.c): sizes of both models,
 * the comparison, latency when measured, gate results. */
typedef struct hpcz_model_sizes {
    uint64_t file, params, nonzeros, param_bytes;
    double bits_per_weight;
    double latency_ms;    /* median; < 0: not measured */
    double latency_min_ms;
    double latency_ratio; /* compressed: its median / the original's */
    int latency_runs;
} hpcz_model_sizes;
/* File size (m->file_size), parameters, non-zeros, weight bytes; latency -1. */
void hpcz_model_sizes_of(hpcz_model *m, hpcz_model_sizes *s);
typedef struct hpcz_report {
    const char *a_path, *b_path, *data, *labels; /* as shown; labels may be NULL */
    const hpcz_compare_result *result;
    hpcz_model_sizes a, b;
    const hpcz_gate_result *gates;
    size_t n_gates;
} hpcz_report;
/* Text for people: outputs, accuracy, sizes, latency, max_layers worst layers, gates. */
void hpcz_report_write_text(FILE *f, const hpcz_report *rep, size_t max_layers);
/* JSON, schema "hpcz.report" version 1 (docs/json.md). */
void hpcz_report_write_json(FILE *f, const hpcz_report *rep);
/* Markdown at path (atomically), with the per-layer SQNR chart as an SVG
 * next to it (PATH without extension + ".svg") when path is a regular file. */
hpcz_status hpcz_report_write_md(const char *path, const hpcz_report *rep, hpcz_error *err);
/* "1.5 MiB" and "1,234,567" into buf; returns buf. */
const char *hpcz_fmt_bytes(uint64_t n, char buf[32]);
const char *hpcz_fmt_count(uint64_t n, char buf[32]);

/* Latency (lib/report/bench.c): model a, and b when not NULL, on the first
 * sample of data (a hpcz_dataset spec), one warm-up run each, then `runs`
 * runs each alternating which goes first. ratio: b's median / a's (a: 1). */
typedef struct hpcz_bench_result {
    double median_ms, min_ms, ratio;
    int runs;
} hpcz_bench_result;
hpcz_status hpcz_bench_pair(hpcz_model *a, hpcz_model *b, const char *data, int threads, int runs,
                            hpcz_bench_result *ra, hpcz_bench_result *rb, hpcz_error *err);

/* Per-layer pruning sensitivity (lib/report/sensitivity.c): each layer with
 * a constant float weight (op_types, default Conv,Gemm,MatMul; top-level
 * graph; include/exclude: POSIX extended regexes on node names or op types)
 * pruned alone at each of hpcz_sensitivity_ratios by method "magnitude" or
 * "channel", compared with the original on data. */
#define HPCZ_SENS_RATIOS 4
extern const double hpcz_sensitivity_ratios[HPCZ_SENS_RATIOS]; /* 0.25 0.5 0.75 0.9 */
typedef struct hpcz_sens_layer {
    char *node, *op_type;
    char *rx;                      /* ^escaped-name$ for pipelines; NULL: the name cannot be */
    int64_t weights;
    double sqnr[HPCZ_SENS_RATIOS]; /* worst output SQNR, dB; NAN: not prunable alone */
    double agree[HPCZ_SENS_RATIOS];/* worst top-1 agreement over score outputs (1 without) */
    int64_t params_cut[HPCZ_SENS_RATIOS]; /* parameters (channel) or non-zeros (magnitude) removed */
    int64_t macs_cut[HPCZ_SENS_RATIOS];   /* channel only */
} hpcz_sens_layer;
typedef struct hpcz_sensitivity {
    hpcz_sens_layer *layers;
    size_t n;
    size_t evals;
    int channel;
    uint64_t base_params, base_nonzeros, base_macs;
} hpcz_sensitivity;
typedef struct hpcz_sensitivity_opts {
    const char *method;   /* "magnitude" (default) or "channel" */
    const char *op_types, *include, *exclude;
    int threads;
    void (*progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
    const volatile int *cancel; /* set to stop: HPCZ_ERR_CANCELLED */
} hpcz_sensitivity_opts;
hpcz_status hpcz_sensitivity_run(hpcz_model *m, const char *data, const hpcz_sensitivity_opts *o,
                                 hpcz_sensitivity **out, hpcz_error *err);
void hpcz_sensitivity_free(hpcz_sensitivity *s);
/* The least-noise plan that meets a budget (target_macs >= 0: MACs, else
 * parameters or non-zeros): greedy steps with the least added output noise
 * per unit saved, each layer at most 90%. *pipeline: a pass pipeline
 * ("dce" when nothing needs pruning), malloc'd; steps (may be NULL): the
 * chosen layer and ratio of each pruned layer. */
typedef struct hpcz_sens_step {
    size_t layer;
    double ratio, sqnr_alone;
} hpcz_sens_step;
hpcz_status hpcz_sensitivity_plan(const hpcz_sensitivity *s, int64_t target_params, int64_t target_macs,
                                  char **pipeline, hpcz_sens_step **steps, size_t *n_steps, hpcz_error *err);

/* Accuracy-aware quantization (lib/quant/autofallback.c). `first` is the
 * model `post` made from the original (bytes: its ONNX serialization, after
 * fold-bn,eliminate when fold). When the gates break on `first`, the layers
 * adding the most noise are left float (keep_float) in as few as the gates
 * need, found by bisection over models rebuilt from bytes with table; with
 * post_float (kept layers' weights float too) tried when int8 weights of
 * every kept layer are not enough. *better: that model (NULL when `first`
 * already passes); without a passing model, the best one found. */
typedef struct hpcz_fallback_opts {
    hpcz_model *orig;
    const uint8_t *bytes;
    size_t len;
    int fold;
    /* post: the quantization; when every layer kept float with post's kept
     * weights still breaks the gates, post_fp16 then post_float (either may be
     * NULL) store those layers' weights as float16, then as float */
    hpcz_pipeline *post, *post_fp16, *post_float;
    const struct hpcz_calib_table *table;
    const char *data;
    const int64_t *labels;
    size_t n_labels;
    const hpcz_gate *gates;
    size_t n_gates;
    int threads;
    double budget_s;      /* > 0: stop searching after this long */
    /* a pipeline run after folding and before post on every candidate (the
     * smooth-quant that preceded calibration), with its data, or NULL */
    const char *prepare;
    const char *prepare_data, *prepare_mask;
    size_t prepare_samples;
    void (*progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
    const volatile int *cancel;
} hpcz_fallback_opts;
typedef struct hpcz_fallback_result {
    size_t n_kept;
    char **kept, **kept_op; /* node names and op types left float, worst first */
    double *kept_sqnr;      /* their output SQNR in `first` */
    int evaluations;
    double seconds, one_eval;
    int satisfied, fp16_weights, float_weights, budget_reached; /* *_weights: post_fp16 / post_float used */
    /* the search asks --min-cosine gates this much more than their value (the
     * largest margin over the outputs of the model kept; see autofallback.c) */
    double cos_margin;
} hpcz_fallback_result;
hpcz_status hpcz_autofallback(const hpcz_fallback_opts *o, hpcz_model *first, hpcz_model **better,
                              hpcz_fallback_result *res, hpcz_error *err);
void hpcz_fallback_result_release(hpcz_fallback_result *res);
/* Fails when *m's values turn NaN/Inf on data where the original's (bytes)
 * stay finite; fp16: instead keeps the breaking nodes float32 and reruns pl
 * on the original (up to 32 rounds; retry(msg) before each), replacing *m. */
hpcz_status hpcz_repair_nonfinite(const uint8_t *orig_bytes, size_t orig_len, const char *data, int fp16,
                                  int threads, hpcz_pipeline *pl, hpcz_pass_ctx *ctx,
                                  void (*retry)(void *user, const char *msg), void *retry_user, hpcz_model **m,
                                  hpcz_error *err);


typedef struct hpcz_macs {
    uint64_t macs;      /* per sample */
    /* 1 when part of the count is an estimate: bodies of Loop/Scan/If
     * (counted for one iteration, a constant trip count up to 10^6, or the
     * larger If branch), nodes whose shapes only a run would tell (declared
     * shapes taken), or ops the runtime lacks */
    int estimate;
    size_t n_unknown;   /* Conv/Gemm/MatMul nodes whose shape could not be found (counted 0) */
} hpcz_macs;

/* Multiply-accumulates of Conv/Gemm/MatMul (float or quantized, with a
 * constant weight) per sample, counted statically: the model is planned for
 * shapes (hpcz_plan_opts.shapes_only) and never run, so the time and memory
 * taken do not depend on what a run would do (a Loop of 2^62 iterations).
 * Symbolic dimensions come from one sample of `data` (a hpcz_dataset spec)
 * when given, else are 1; a fixed leading dimension of the first input is
 * the batch and divided out. Fails only on bad data or out of memory. */
hpcz_status hpcz_model_macs(hpcz_model *m, const char *data, int threads, hpcz_macs *out,
                            hpcz_error *err);

/* ------------------------------------------------ run, inspect and batch
 * What `hpcz run`, `inspect`, `report` and `batch` compute, and the checks
 * every command makes, for programs that link libhpcz (lib/run/,
 * lib/report/report_write.c and gates.c, lib/batch/batch.c, lib/core/,
 * formats/fileio.c). Nothing here prints. */

/* An array from a .npy file, or from a TensorProto when path ends in .pb. */
hpcz_status hpcz_array_load(const char *path, hpcz_array *a, hpcz_error *err);
/* Range of an array's values: NaN left out, +-Inf counted in min/max but
 * not in the mean (NaN when nothing is finite). */
typedef struct hpcz_array_stat {
    double min, max, mean;
    int64_t nan, inf, finite;
} hpcz_array_stat;
void hpcz_array_stats(const hpcz_array *a, hpcz_array_stat *s);
/* How `got` differs from the reference `ref` (same shape; any numeric
 * dtypes): largest absolute error, RMSE, cosine, SQNR (dB; +inf when equal).
 * NaN/Inf at the same place in both count as equal; elsewhere they are
 * counted in mismatched_nonfinite and left out. HPCZ_ERR_USAGE: "shapes
 * differ: expected float [1,10], got float [10]". */
typedef struct hpcz_array_difference {
    uint64_t count, mismatched_nonfinite;
    double max_abs, rmse, cosine, sqnr_db;
} hpcz_array_difference;
hpcz_status hpcz_array_diff(const hpcz_array *ref, const hpcz_array *got, hpcz_array_difference *d,
                            hpcz_error *err);
/* "[1,batch,3]" ("?" for an unknown rank) into buf. */
void hpcz_value_shape_str(const hpcz_value *v, char *buf, size_t cap);

/* One run of a model on inputs from files (`hpcz run`). */
typedef struct hpcz_run_opts {
    int threads;                 /* 0: all cores */
    size_t n_dims;               /* symbolic dimensions fixed by name */
    const char *const *dim_names;
    const int64_t *dim_values;
    size_t n_inputs;             /* input NAME from FILE (.npy or .pb) */
    const char *const *input_names, *const *input_files;
    const char *inputs_dir;      /* or a folder of NAME.npy ('/' in NAME as '_') or input_<i>.pb */
    const char *outdir;          /* write OUTDIR/NAME.npy per output (created); NULL: none */
    int bench;                   /* > 0: time this many runs after the first */
    int profile;                 /* with bench: time per op type and per node */
} hpcz_run_opts;
typedef struct hpcz_op_time {
    const char *op_type;
    size_t nodes;
    uint64_t ns, flops;          /* over all timed runs; flops: Conv/Gemm/MatMul (2 per MAC) */
} hpcz_op_time;
typedef struct hpcz_node_time {
    const hpcz_node *node;
    size_t k;                    /* position in the run order */
    uint64_t ns, flops;
} hpcz_node_time;
typedef struct hpcz_run_result {
    hpcz_plan *plan;             /* owned; names of inputs and outputs */
    size_t n_inputs, n_outputs;
    hpcz_array *inputs, *outputs; /* as hpcz_plan_input / hpcz_plan_output */
    char **files;                /* the .npy written per output (NULL without outdir) */
    hpcz_plan_stats stats;
    int runs;                    /* timed runs (opts.bench) */
    double median_ms, min_ms;
    uint64_t total_ns;           /* profile: all nodes, all timed runs */
    size_t n_ops, n_nodes;
    hpcz_op_time *ops;           /* profile: per op type, slowest first */
    hpcz_node_time *nodes;       /* profile: every node that ran, slowest first */
    /* on failure, the file the message is about (the model, an input, an
     * output), or NULL when the message stands alone */
    const char *about, *model_path;
    char about_buf[4096]; /* storage for about */
} hpcz_run_result;
/* Plans m, loads and checks the inputs ("missing input 'x' (float [1,3])",
 * "model has no input 'y' (inputs: x)", a file's own error with about set),
 * runs once, times opts.bench more runs, writes the outputs. r is filled
 * even on failure; release it either way. */
hpcz_status hpcz_run(hpcz_model *m, const hpcz_run_opts *o, hpcz_run_result *r, hpcz_error *err);
void hpcz_run_result_release(hpcz_run_result *r);
/* The run as JSON, schema "hpcz.run" version 1 (docs/json.md). */
void hpcz_run_write_json(FILE *f, const char *model_path, const hpcz_run_result *r);

/* A recipe over a model list (`hpcz batch`, lib/batch/batch.c): every job
 * is the hpcz executable run on one model as a child process, its output
 * OUTDIR/NAME.onnx (.hpcz for convert --format hpcz) and its log
 * OUTDIR/NAME.log; a job whose record says it is done is skipped. */
enum { HPCZ_BATCH_NOT_RUN = -1, HPCZ_BATCH_DONE_BEFORE = -2 };
typedef struct hpcz_batch_state {
    int status;          /* the job's exit status, or HPCZ_BATCH_NOT_RUN / _DONE_BEFORE */
    double seconds;
    uint64_t out_bytes;
    int pid;             /* hpcz_batch_run's own: the worker while it runs, */
    double t0;           /* and when it started */
} hpcz_batch_state;
typedef struct hpcz_batch_opts {
    const char *src;     /* a folder or a manifest (hpcz_batch_list_models) */
    const char *outdir;  /* created when missing */
    const char *recipe;  /* "quantize --mode weight-only" (no model, no -o), or @FILE */
    const char *exe;     /* the hpcz executable; NULL: this process's own */
    const char *device;  /* passed on as --device (not to convert); NULL: none */
    int jobs;            /* at once; 0: 1 */
    uint64_t shard_index, shard_count; /* this share (from 0) of count (0: 1) */
    int force;           /* redo jobs that are done */
    int dry_run;         /* run nothing: command(ctx, argv) per job instead */
    void (*command)(void *ctx, char *const *argv);
    /* after each job that ran */
    void (*progress)(void *ctx, const hpcz_batch_job *j, const hpcz_batch_state *s);
    void (*warn)(void *ctx, const char *msg); /* a record that could not be written */
    void *ctx;
    /* set (from a signal handler, say) to start no more jobs and stop the
     * running ones: HPCZ_ERR_CANCELLED */
    const volatile int *cancel;
} hpcz_batch_opts;
typedef struct hpcz_batch_result {
    hpcz_batch_list list;    /* every model; this shard's are jobs [lo, hi) */
    hpcz_batch_state *state; /* parallel to list.jobs */
    size_t lo, hi;
    uint64_t shard_index, shard_count;
    size_t n_ok, n_skipped, n_gate, n_failed;
    double seconds;
} hpcz_batch_result;
/* Runs the shard's jobs. Errors before any job runs: HPCZ_ERR_USAGE for a
 * recipe batch cannot run ("--recipe must start with quantize, prune or
 * convert", "--recipe: leave -o out (batch names the outputs)"), the model
 * list's, the output folder's. Failed jobs are no error: see the counts.
 * Release r either way. */
hpcz_status hpcz_batch_run(const hpcz_batch_opts *o, hpcz_batch_result *r, hpcz_error *err);
void hpcz_batch_result_release(hpcz_batch_result *r);
/* "ok", "done before", "gate broken", "failed", "not run". */
const char *hpcz_batch_status_name(int status);
/* Where `hpcz batch` writes the summary by default: OUTDIR/batch-summary.json,
 * or OUTDIR/batch-summary-K-of-N.json for shard K (from 1) of N > 1. */
void hpcz_batch_summary_path(const hpcz_batch_opts *o, char *buf, size_t cap);
/* The summary as JSON, schema "hpcz.batch" version 1 (docs/json.md). */
void hpcz_batch_write_json(FILE *f, const char *recipe, const hpcz_batch_result *r);
/* SIGTERM to every running worker of this process; async-signal-safe. */
void hpcz_batch_stop_workers(void);

/* Class labels for a report: a 1-D int64 or int32 .npy, as int64. */
hpcz_status hpcz_labels_load(const char *path, hpcz_array *out, hpcz_error *err);
/* What `hpcz report` measures (lib/report/report_write.c). */
typedef struct hpcz_report_opts {
    const char *data;        /* a hpcz_dataset spec */
    const int64_t *labels;   /* class per sample, or NULL */
    size_t n_labels;
    int threads, per_layer;
    size_t max_samples;      /* 0: all */
    int bench;               /* > 0: latency of both, alternated, this many runs each */
    const hpcz_gate *gates;
    size_t n_gates;
    void (*progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
} hpcz_report_opts;
/* Compares a and b on o->data, their sizes, latency and the gates into rep
 * (result and gates owned by rep until hpcz_report_release; the paths are
 * the caller's to set). A benchmark failure's message starts "benchmark: "
 * (rep->result is set then); the comparison's are hpcz_compare's. */
hpcz_status hpcz_report_make(hpcz_model *a, hpcz_model *b, const hpcz_report_opts *o, hpcz_report *rep,
                             hpcz_error *err);
/* 1 when a gate in rep broke. */
int hpcz_report_broken(const hpcz_report *rep);
void hpcz_report_release(hpcz_report *rep);

/* m's graph inputs a caller feeds (those without an initializer) into out
 * (g->n_inputs entries); returns their number. */
size_t hpcz_graph_fed_inputs(const hpcz_graph *g, hpcz_value **out);
/* `hpcz inspect --json`: the summary, file and container facts of m, schema
 * "hpcz.inspect" version 1 (docs/json.md), every tensor listed
 * (lib/run/inspect.c). */
void hpcz_model_summary_write_json(FILE *f, const hpcz_model *m, const hpcz_model_summary *s);
/* `hpcz inspect`: the same as text, the top largest tensors ((size_t)-1: all). */
void hpcz_model_summary_write_text(FILE *f, const hpcz_model *m, const hpcz_model_summary *s, size_t top);
/* "[64,3,7,7]" */
void hpcz_tensor_shape_str(const hpcz_tensor *t, char *buf, size_t cap);

/* Levenshtein distance with transpositions (64 for words over 63 bytes). */
int hpcz_edit_distance(const char *a, const char *b);
/* The closest of names (n entries, stride bytes apart, NULL entries
 * skipped) to s for a "did you mean": at most 2 edits and fewer than a
 * third of the word; NULL when none is that close. */
const char *hpcz_closest(const char *s, const char *const *names, size_t n, size_t stride);
/* "'a', 'b', 'c'" into buf, cut with "..." when long. */
void hpcz_list_names(char *buf, size_t cap, const char *const *names, size_t n);
/* "4096", "64K", "1.5M", "2GiB" (case-insensitive) into bytes; 0 when s is
 * no size. */
int hpcz_parse_size(const char *s, uint64_t *out);
/* Whether a and b are the same file (same path, or same inode through
 * links); never for "-". */
int hpcz_same_file(const char *a, const char *b);
/* Before any work: fails (HPCZ_ERR_IO, "PATH: is a directory", "PATH:
 * cannot create a file there: no such folder") when path cannot be
 * written; HPCZ_OK for "-" and NULL. */
hpcz_status hpcz_output_check(const char *path, hpcz_error *err);
/* Checks names given for symbolic input dimensions (--dim) against m's:
 * HPCZ_ERR_USAGE naming the closest one ("the model has no symbolic
 * dimension 'bach'; did you mean 'batch'?"), *bad = the index. */
hpcz_status hpcz_model_check_dims(const hpcz_model *m, const char *const *dims, size_t n_dims, size_t *bad,
                                  hpcz_error *err);

/* For a program's main, before anything else: when OpenBLAS chose its
 * generic SSE3 kernels on a CPU with AVX2/FMA or AVX-512 (a virtual machine
 * with an unnamed CPU model), re-executes the program (/proc/self/exe,
 * argv) with OPENBLAS_CORETYPE set; returns when it does not. A user's own
 * OPENBLAS_CORETYPE is left alone. */
void hpcz_runtime_pick_blas(char **argv);

/* Untrusted text (names from a model) for a terminal: control characters
 * other than newline and tab, DEL, and bytes that are not UTF-8 become \xNN.
 * Streaming: the start of a UTF-8 sequence cut at the end of one call is
 * kept for the next; hpcz_text_escape_end writes what is left. Zero the
 * state to start. out has room for 4 * size + 16 bytes; both return the
 * bytes written. */
typedef struct hpcz_text_escape {
    unsigned char pend[4];
    size_t n_pend;
} hpcz_text_escape;
size_t hpcz_text_escape_run(hpcz_text_escape *t, const char *buf, size_t size, char *out);
size_t hpcz_text_escape_end(hpcz_text_escape *t, char *out);

/* The gates' outputs against m's: HPCZ_ERR_USAGE for the first gate that
 * names an output m lacks (*bad), "the model has no output 'logit'; did you
 * mean 'logits'?" or "... (outputs: 'a', 'b')"; *bad NULL when all exist. */
hpcz_status hpcz_gates_check_outputs(const hpcz_gate *gates, size_t n, const hpcz_model *m, const hpcz_gate **bad,
                                     hpcz_error *err);

/* "K/N" (K from 1, N at most 10^6) into the shard index (from 0) and count;
 * HPCZ_ERR_USAGE: "'0/4': K counts from 1; ...", "'5/4' is not K/N with
 * 1 <= K <= N". */
hpcz_status hpcz_batch_shard_parse(const char *s, uint64_t *index, uint64_t *count, hpcz_error *err);

/* Tensors of t that held NaN or Inf on the calibration data: returns how
 * many; *first the first of them, *empty (may be NULL) the first with no
 * finite value at all (it has no range), NULL when none. */
size_t hpcz_calib_table_nonfinite(const hpcz_calib_table *t, const hpcz_calib_range **first,
                                  const hpcz_calib_range **empty);
/* ---------------------------------------------------------------- quantize and prune jobs
 * What `hpcz quantize`, `hpcz prune` and `hpcz calibrate` do between reading
 * their options and printing (lib/passes/job.c, quantize_job.c,
 * prune_job.c; writers in lib/report/job_write.c). The jobs never print:
 * pass notes, notes and warnings go to the hooks, and errors name the file
 * they are about ("model.onnx: ...", "<stdin>: ..."); the writers print what
 * the CLI prints to the FILE they are given. */

/* Callbacks shared by the jobs; every member may be NULL. */
typedef struct hpcz_job_hooks {
    /* a pass's note ("fold-bn: folded 4 BatchNormalization nodes"), as
     * hpcz_pass_ctx.log */
    void (*log)(void *user, const char *pass, const char *msg);
    /* a note for the user (warning 0) or a warning (1): random calibration
     * data, NaN in a few tensors, a float16 node kept float32, ... */
    void (*message)(void *user, int warning, const char *msg);
    /* stage "calibrating", "fallback", "sensitivity": done of total */
    void (*progress)(void *user, const char *stage, size_t done, size_t total);
    void *user;
    /* set (from another thread or a callback) to stop: the job returns
     * HPCZ_ERR_CANCELLED at its next step, having written nothing */
    const volatile int *cancel;
} hpcz_job_hooks;

/* Calibration as quantize and calibrate do it: fold-bn,eliminate first when
 * fold, then hpcz_calibrate on data (a hpcz_dataset spec). A tensor that is
 * NaN/Inf in every value fails; one that is partly so is a warning. Fails
 * with HPCZ_ERR_USAGE only when the data do not fit the model's inputs. */
hpcz_status hpcz_calibrate_model(hpcz_model *m, const char *data, size_t max_samples, const hpcz_calib_opts *o,
                                 int fold, const hpcz_job_hooks *hooks, hpcz_calib_table **out, hpcz_error *err);

typedef struct hpcz_quantize_opts {
    hpcz_quantize_recipe recipe; /* the preset's choices (have_calib, have_table are set from below) */
    const char *passes;          /* a pipeline run instead of the recipe's, or NULL */
    const char *calib;           /* calibration data (a hpcz_dataset spec), or NULL */
    size_t calib_samples;        /* 0: all */
    const char *calib_method;    /* NULL: minmax (entropy for static int8 that SmoothQuant smoothed) */
    const char *calib_mask;      /* token-mask input: NULL finds attention_mask, "none": none
                                  * (hpcz_calib_mask_resolve) */
    const char *calib_table;     /* a saved table (hpcz_calib_table_save) instead of calibrating */
    const char *data;            /* data for the gates and the fallback (NULL: calib) */
    const char *labels;          /* .npy of class indices per data sample, or NULL */
    const hpcz_gate *gates;
    size_t n_gates;
    int auto_fallback;           /* leave layers float until the gates hold (hpcz_autofallback) */
    double budget_s;             /* > 0: time limit of that search */
    int allow_requantize;        /* else a model with quantization nodes fails */
    int keep_original;           /* keep the original in the result (for a comparison) */
    int threads;
    const char *output;          /* write the model here ("-": stdout), or NULL: not written */
    int in_place;                /* the output may replace the input's files */
    hpcz_job_hooks hooks;
} hpcz_quantize_opts;
/* `hpcz quantize`'s defaults (hpcz_quantize_recipe_init's). */
void hpcz_quantize_opts_init(hpcz_quantize_opts *o);
/* Every choice checked before any work: the recipe, calib_method and the
 * pipeline (HPCZ_ERR_USAGE, one line naming the option). */
hpcz_status hpcz_quantize_check(const hpcz_quantize_opts *o, hpcz_error *err);

/* Nodes of the quantized op types, by op type (MatMulNBits counts as MatMul). */
typedef struct hpcz_op_tally {
    const char *op;
    size_t quantized, kept;
} hpcz_op_tally;

typedef struct hpcz_quantize_result {
    char pipeline[2048];          /* what ran */
    uint64_t in_bytes, out_bytes; /* file sizes (out: what was or would be written) */
    hpcz_model_summary before, after;
    hpcz_op_tally ops[32];
    size_t n_ops;
    char **notes;                 /* "pass: note" of every pass, in order */
    size_t n_notes;
    hpcz_quantize_recipe recipe;  /* the choices resolved (algo, block, ...) */
    hpcz_calib_table *table;      /* the ranges used, or NULL */
    hpcz_fallback_result fallback;
    hpcz_model *orig;             /* keep_original: the input model as it was */
} hpcz_quantize_result;
/* Quantizes *m (its path names it in errors): the preset's clean-ups, then
 * calibration on the cleaned model (after SmoothQuant), the pipeline, the
 * NaN/Inf check (float16: repair) on the data, auto-fallback, and the output
 * written atomically. *m may be replaced by another model (the old one
 * freed). res is filled as far as the job went; release it always. */
hpcz_status hpcz_quantize_run(hpcz_model **m, const hpcz_quantize_opts *o, hpcz_quantize_result *res,
                              hpcz_error *err);
void hpcz_quantize_result_release(hpcz_quantize_result *res);
/* `hpcz quantize`'s summary (text), its --dry-run plan and its JSON (schema
 * "hpcz.quantize" version 1, docs/json.md); in: the input's path as shown. */
void hpcz_quantize_write_text(FILE *f, const hpcz_quantize_opts *o, const hpcz_quantize_result *res);
void hpcz_quantize_write_plan(FILE *f, const hpcz_quantize_result *res);
/* The layers auto-fallback left float (or that it needed none). */
void hpcz_quantize_write_fallback(FILE *f, const hpcz_quantize_opts *o, const hpcz_quantize_result *res);
void hpcz_quantize_write_json(FILE *f, const char *in, const hpcz_quantize_opts *o,
                              const hpcz_quantize_result *res);

typedef struct hpcz_prune_opts {
    hpcz_prune_recipe recipe;    /* the preset's choices (have_calib, targeted are set from below) */
    const char *passes;          /* a pipeline run instead of the recipe's, or NULL */
    const char *calib;           /* data for data-aware passes and the budgets, or NULL */
    size_t calib_samples;
    const char *calib_mask;      /* as hpcz_quantize_opts.calib_mask */
    const char *data;            /* data for MACs and the output delta (NULL: calib unless random) */
    /* >= 0: a budget met by per-layer sensitivity (hpcz_sensitivity_plan; each
     * chosen layer is said as a note) */
    int64_t target_params, target_macs;
    int keep_original;           /* keep the original in the result (for a comparison) */
    int measure_delta;           /* compare with the original on the data (res->delta) */
    int threads;
    const char *output;          /* write the model here ("-": stdout), or NULL */
    int in_place;
    hpcz_job_hooks hooks;
} hpcz_prune_opts;
/* `hpcz prune`'s defaults (the recipe's, with fold 0 and reconstruct -1). */
void hpcz_prune_opts_init(hpcz_prune_opts *o);
/* The recipe and the pipeline checked before any work (HPCZ_ERR_USAGE). */
hpcz_status hpcz_prune_check(const hpcz_prune_opts *o, hpcz_error *err);

/* A pruned layer: a constant float weight of the selected op types. */
typedef struct hpcz_prune_layer {
    const hpcz_node *node;       /* valid while the pruned model lives */
    int64_t numel, numel_after;
    int64_t zeros_before, zeros_after;
} hpcz_prune_layer;

typedef struct hpcz_prune_result {
    char pipeline[2048];         /* what ran (with a budget: the chosen ratios) */
    hpcz_model_summary before, after;
    hpcz_prune_layer *layers;
    size_t n_layers;
    int have_macs;
    hpcz_macs macs_before, macs_after;
    hpcz_model *orig;            /* keep_original: the input model as it was */
    hpcz_compare_result *delta;  /* measure_delta: outputs against the original */
    char delta_error[1024];      /* why delta is NULL when it was asked for */
} hpcz_prune_result;
/* Prunes m in place (its path names it in errors): with a budget, the
 * pipeline per-layer sensitivity chooses, else the recipe's (or passes);
 * layers, parameters, zeros and MACs before and after, the output's change,
 * and the output written atomically. res is filled as far as the job went;
 * release it always. */
hpcz_status hpcz_prune_run(hpcz_model *m, const hpcz_prune_opts *o, hpcz_prune_result *res, hpcz_error *err);
void hpcz_prune_result_release(hpcz_prune_result *res);
/* `hpcz prune`'s report (text), the outputs' change on data (r: res->delta),
 * its JSON (schema "hpcz.prune" 1; out NULL: not written), and
 * --sensitivity's table and JSON ("hpcz.sensitivity" 1). */
void hpcz_prune_write_text(FILE *f, const hpcz_prune_result *res, int dry_run);
void hpcz_prune_write_delta(FILE *f, const hpcz_compare_result *r, const char *data);
void hpcz_prune_write_json(FILE *f, const char *in, const char *out, const hpcz_prune_result *res);
void hpcz_sensitivity_write_text(FILE *f, const hpcz_sensitivity *s, const char *data);
void hpcz_sensitivity_write_json(FILE *f, const hpcz_sensitivity *s, const char *method);
/* A pass, its options with their types and defaults (`hpcz passes`). */
void hpcz_pass_write_help(FILE *f, const hpcz_pass *p);
/* ---------------------------------------------------------------- end of the jobs */

#ifdef __cplusplus
}
#endif
#endif /* HPCZ_H */
