/*
 * run.c - what `hpcz run` does beyond the engine: inputs from .npy and
 * TensorProto files or a test-data folder, timed runs with a per-op and
 * per-node profile, outputs written as .npy, statistics of an array and the
 * difference of two, and the run as JSON (schema hpcz.run).
 */
#include "internal.h"
#include "qmath.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ arrays */

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

hpcz_status hpcz_array_load(const char *path, hpcz_array *a, hpcz_error *err)
{
    if (!ends_with(path, ".pb"))
        return hpcz_npy_load(path, a, err);
    hpcz_tensor *t = hpcz_tensorproto_load(path, err);
    if (!t)
        return err->status;
    hpcz_status st = hpcz_array_from_tensor(t, a, err);
    hpcz_model_free(t->model);
    return st;
}

hpcz_status hpcz_labels_load(const char *path, hpcz_array *out, hpcz_error *err)
{
    hpcz_array l;
    if (hpcz_npy_load(path, &l, err))
        return err->status;
    hpcz_status st = HPCZ_OK;
    if ((l.dtype != HPCZ_DTYPE_INT64 && l.dtype != HPCZ_DTYPE_INT32) || l.ndim != 1)
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "labels must be a 1-D int64 or int32 array of class indices");
    else if (l.dtype == HPCZ_DTYPE_INT64)
        return *out = l, HPCZ_OK;
    else if (!(st = hpcz_array_alloc(out, HPCZ_DTYPE_INT64, 1, l.dims, err)))
        for (int64_t i = 0; i < l.numel; i++)
            ((int64_t *)out->data)[i] = ((int32_t *)l.data)[i];
    hpcz_array_release(&l);
    return st;
}

static double value_at(const hpcz_array *a, int64_t i)
{
    switch (a->dtype) {
    case HPCZ_DTYPE_FLOAT: return ((const float *)a->data)[i];
    case HPCZ_DTYPE_DOUBLE: return ((const double *)a->data)[i];
    case HPCZ_DTYPE_FLOAT16: return hpcz_f16_to_f32(((const uint16_t *)a->data)[i]);
    case HPCZ_DTYPE_INT64: return (double)((const int64_t *)a->data)[i];
    case HPCZ_DTYPE_INT32: return ((const int32_t *)a->data)[i];
    case HPCZ_DTYPE_INT8: return ((const int8_t *)a->data)[i];
    case HPCZ_DTYPE_UINT8:
    case HPCZ_DTYPE_BOOL: return ((const uint8_t *)a->data)[i];
    default: return NAN;
    }
}

void hpcz_array_stats(const hpcz_array *a, hpcz_array_stat *s)
{
    double sum = 0;
    *s = (hpcz_array_stat){.min = INFINITY, .max = -INFINITY};
    for (int64_t e = 0; e < a->numel; e++) {
        double v = value_at(a, e);
        if (isnan(v)) {
            s->nan++;
            continue;
        }
        if (isinf(v))
            s->inf++;
        else
            s->finite++, sum += v;
        s->min = v < s->min ? v : s->min;
        s->max = v > s->max ? v : s->max;
    }
    s->mean = s->finite ? sum / (double)s->finite : NAN;
}

static int numeric(int dtype)
{
    return !isnan(value_at(&(hpcz_array){.dtype = dtype, .data = &(double){0}}, 0));
}

hpcz_status hpcz_array_diff(const hpcz_array *ref, const hpcz_array *got, hpcz_array_difference *d,
                            hpcz_error *err)
{
    char a[256], b[256];
    hpcz_array_describe(ref, a, sizeof a);
    hpcz_array_describe(got, b, sizeof b);
    if (ref->ndim != got->ndim || memcmp(ref->dims, got->dims, (size_t)ref->ndim * sizeof ref->dims[0]))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "shapes differ: expected %s, got %s", a, b);
    if (!numeric(ref->dtype) || !numeric(got->dtype))
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "cannot compare %s with %s", a, b);
    double se = 0, sr = 0, dot = 0, sg = 0;
    *d = (hpcz_array_difference){.count = (uint64_t)ref->numel};
    for (int64_t i = 0; i < ref->numel; i++) {
        double r = value_at(ref, i), g = value_at(got, i), e = fabs(r - g);
        if (isnan(r) != isnan(g) || (isinf(r) || isinf(g) ? r != g : 0)) {
            d->mismatched_nonfinite++;
            continue;
        }
        if (isnan(r) || isinf(r))
            continue;
        d->max_abs = e > d->max_abs ? e : d->max_abs;
        se += e * e, sr += r * r, sg += g * g, dot += r * g;
    }
    d->rmse = ref->numel ? sqrt(se / (double)ref->numel) : 0;
    d->cosine = sr > 0 && sg > 0 ? dot / sqrt(sr * sg) : (sr == sg ? 1.0 : 0.0);
    d->sqnr_db = se > 0 ? 10 * log10(sr / se) : INFINITY;
    return HPCZ_OK;
}

void hpcz_value_shape_str(const hpcz_value *v, char *buf, size_t cap)
{
    if (v->ndim < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < v->ndim && k < cap; i++) {
        const hpcz_dim *d = &v->dims[i];
        if (d->size >= 0)
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)d->size);
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? "," : "", d->param ? d->param : "?");
    }
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* ------------------------------------------------------------ inputs */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A tensor name as a file name: '/' and '\' become '_'. */
static void file_stem(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s", name);
    for (char *s = buf; *s; s++)
        if (*s == '/' || *s == '\\')
            *s = '_';
}

static hpcz_status load_inputs(hpcz_model *m, const hpcz_run_opts *o, hpcz_run_result *r, hpcz_error *err)
{
    hpcz_plan *p = r->plan;
    size_t ni = r->n_inputs;
    for (size_t k = 0; k < o->n_inputs; k++) {
        int i = hpcz_plan_input_index(p, o->input_names[k]);
        if (i < 0) {
            char names[1024] = "";
            size_t len = 0;
            for (size_t q = 0; q < ni && len < sizeof names; q++)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", q ? ", " : "",
                                        hpcz_plan_input(p, q)->name);
            return hpcz_fail(err, HPCZ_ERR_USAGE, "model has no input '%s' (inputs: %s)", o->input_names[k],
                             ni ? names : "none");
        }
        if (r->inputs[i].data || r->inputs[i].ndim)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "input '%s' given twice", o->input_names[k]);
        if (hpcz_array_load(o->input_files[k], &r->inputs[i], err)) {
            r->about = o->input_files[k];
            return err->status;
        }
    }
    for (size_t i = 0; o->inputs_dir && i < ni; i++) {
        const hpcz_value *v = hpcz_plan_input(p, i);
        char name[1024];
        file_stem(name, sizeof name, v->name);
        snprintf(r->about_buf, sizeof r->about_buf, "%s/%s.npy", o->inputs_dir, name);
        if (!file_exists(r->about_buf)) {
            size_t gi = 0;
            for (size_t q = 0; q < m->graph->n_inputs; q++)
                if (m->graph->inputs[q] == v)
                    gi = q;
            snprintf(r->about_buf, sizeof r->about_buf, "%s/input_%zu.pb", o->inputs_dir, gi);
        }
        if (!file_exists(r->about_buf))
            continue; /* reported as missing below */
        if (hpcz_array_load(r->about_buf, &r->inputs[i], err)) {
            r->about = r->about_buf;
            return err->status;
        }
    }
    for (size_t i = 0; i < ni; i++) {
        const hpcz_value *v = hpcz_plan_input(p, i);
        if (!r->inputs[i].data && !r->inputs[i].ndim && !r->inputs[i].dtype) {
            char shape[512];
            hpcz_value_shape_str(v, shape, sizeof shape);
            return hpcz_fail(err, HPCZ_ERR_USAGE, "missing input '%s' (%s %s)%s", v->name,
                             v->dtype ? hpcz_dtype_name(v->dtype) : "?", shape,
                             o->inputs_dir ? " in the --inputs folder" : "; pass --input NAME=FILE");
        }
        if (hpcz_plan_check_input(p, i, &r->inputs[i], err)) {
            r->about = m->path;
            return err->status;
        }
    }
    return HPCZ_OK;
}

/* The symbolic dimensions of m's inputs, each once, in order. */
static size_t dim_params(const hpcz_graph *g, const char **names, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const hpcz_value *v = g->inputs[i];
        for (int d = 0; v && d < v->ndim; d++) {
            const char *p = v->dims[d].param;
            int seen = !p || !*p;
            for (size_t k = 0; k < n && !seen; k++)
                seen = !strcmp(names[k], p);
            if (!seen && n < cap)
                names[n++] = p;
        }
    }
    return n;
}

hpcz_status hpcz_model_check_dims(const hpcz_model *m, const char *const *dims, size_t n_dims, size_t *bad,
                                  hpcz_error *err)
{
    const char *names[256];
    size_t n = dim_params(m->graph, names, 256);
    for (size_t i = 0; i < n_dims; i++) {
        int found = 0;
        for (size_t k = 0; k < n && !found; k++)
            found = !strcmp(names[k], dims[i]);
        if (found)
            continue;
        *bad = i;
        if (!n)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "the model's inputs have no symbolic dimensions");
        const char *near = hpcz_closest(dims[i], names, n, sizeof *names);
        char list[512];
        hpcz_list_names(list, sizeof list, names, n);
        if (near)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "the model has no symbolic dimension '%s'; did you mean '%s'?",
                             dims[i], near);
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the model has no symbolic dimension '%s' (it has %s)", dims[i], list);
    }
    return HPCZ_OK;
}

/* ------------------------------------------------------------ timing */

static int cmp_op(const void *a, const void *b)
{
    const hpcz_op_time *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : strcmp(x->op_type, y->op_type);
}

static int cmp_node(const void *a, const void *b)
{
    const hpcz_node_time *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : (x->k > y->k) - (x->k < y->k);
}

/* Per-node times into per-op-type sums and the nodes slowest first. */
static hpcz_status profile_sum(hpcz_run_result *r, const uint64_t *prof, hpcz_error *err)
{
    hpcz_plan *p = r->plan;
    size_t n = hpcz_plan_n_nodes(p);
    r->ops = calloc(n + 1, sizeof *r->ops);
    r->nodes = calloc(n + 1, sizeof *r->nodes);
    if (!r->ops || !r->nodes)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        const hpcz_node *nd = hpcz_plan_node(p, k);
        uint64_t flops = hpcz_plan_node_flops(p, k) * (uint64_t)r->runs;
        size_t q = 0;
        while (q < r->n_ops && strcmp(r->ops[q].op_type, nd->op_type))
            q++;
        if (q == r->n_ops)
            r->ops[r->n_ops++].op_type = nd->op_type;
        r->ops[q].ns += prof[k];
        r->ops[q].flops += flops;
        r->ops[q].nodes++;
        r->total_ns += prof[k];
        if (prof[k])
            r->nodes[r->n_nodes++] = (hpcz_node_time){nd, k, prof[k], flops};
    }
    qsort(r->ops, r->n_ops, sizeof *r->ops, cmp_op);
    qsort(r->nodes, r->n_nodes, sizeof *r->nodes, cmp_node);
    return HPCZ_OK;
}

static hpcz_status bench(hpcz_run_result *r, int profile, hpcz_error *err)
{
    size_t no = r->n_outputs, n_nodes = hpcz_plan_n_nodes(r->plan);
    double *times = calloc((size_t)r->runs, sizeof *times);
    uint64_t *prof = profile ? calloc(n_nodes + 1, sizeof *prof) : NULL;
    hpcz_array *o2 = calloc(no + 1, sizeof *o2);
    hpcz_status st = !times || (profile && !prof) || !o2 ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : HPCZ_OK;
    if (prof)
        hpcz_plan_set_profile(r->plan, prof);
    for (int k = 0; k < r->runs && !st; k++) {
        double t0 = hpcz_now_ms();
        st = hpcz_plan_run(r->plan, r->inputs, o2, err);
        times[k] = hpcz_now_ms() - t0;
        for (size_t i = 0; i < no; i++)
            hpcz_array_release(&o2[i]);
    }
    hpcz_plan_set_profile(r->plan, NULL);
    if (!st) {
        r->median_ms = hpcz_median_min(times, (size_t)r->runs, &r->min_ms);
    }
    if (!st && prof)
        st = profile_sum(r, prof, err);
    if (st)
        r->about = r->plan ? r->model_path : NULL;
    free(times);
    free(prof);
    free(o2);
    return st;
}

/* ------------------------------------------------------------ outputs */

static hpcz_status save_outputs(const char *outdir, hpcz_run_result *r, hpcz_error *err)
{
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST)
        return hpcz_fail(err, HPCZ_ERR_IO, "%s: cannot create folder: %s", outdir, strerror(errno));
    for (size_t i = 0; i < r->n_outputs; i++) {
        char name[1024];
        file_stem(name, sizeof name, hpcz_plan_output(r->plan, i)->name);
        size_t len = strlen(outdir) + strlen(name) + 8;
        if (!(r->files[i] = malloc(len)))
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        snprintf(r->files[i], len, "%s/%s.npy", outdir, name);
        if (hpcz_npy_save(r->files[i], &r->outputs[i], err)) {
            r->about = r->files[i];
            return err->status;
        }
    }
    return HPCZ_OK;
}

/* ------------------------------------------------------------ the run */

hpcz_status hpcz_run(hpcz_model *m, const hpcz_run_opts *o, hpcz_run_result *r, hpcz_error *err)
{
    memset(r, 0, sizeof *r);
    r->model_path = m->path;
    r->about = m->path;
    hpcz_plan_opts po = {.threads = o->threads, .n_dims = o->n_dims, .dim_names = o->dim_names,
                         .dim_values = o->dim_values};
    if (!(r->plan = hpcz_plan_new(m, &po, err)))
        return err->status;
    r->about = NULL;
    r->n_inputs = hpcz_plan_n_inputs(r->plan);
    r->n_outputs = hpcz_plan_n_outputs(r->plan);
    r->inputs = calloc(r->n_inputs + 1, sizeof *r->inputs);
    r->outputs = calloc(r->n_outputs + 1, sizeof *r->outputs);
    r->files = calloc(r->n_outputs + 1, sizeof *r->files);
    if (!r->inputs || !r->outputs || !r->files)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_status st = load_inputs(m, o, r, err);
    if (st)
        return st;
    if ((st = hpcz_plan_run(r->plan, r->inputs, r->outputs, err))) {
        r->about = m->path;
        return st;
    }
    r->runs = o->bench > 0 ? o->bench : 0;
    if (r->runs && (st = bench(r, o->profile, err)))
        return st;
    hpcz_plan_get_stats(r->plan, &r->stats);
    return o->outdir ? save_outputs(o->outdir, r, err) : HPCZ_OK;
}

void hpcz_run_result_release(hpcz_run_result *r)
{
    for (size_t i = 0; r->inputs && i < r->n_inputs; i++)
        hpcz_array_release(&r->inputs[i]);
    for (size_t i = 0; r->outputs && i < r->n_outputs; i++)
        hpcz_array_release(&r->outputs[i]);
    for (size_t i = 0; r->files && i < r->n_outputs; i++)
        free(r->files[i]);
    free(r->inputs);
    free(r->outputs);
    free(r->files);
    free(r->ops);
    free(r->nodes);
    hpcz_plan_free(r->plan);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ JSON */

static void json_arrays(hpcz_json *j, const char *key, const hpcz_run_result *r, int outputs)
{
    size_t n = outputs ? r->n_outputs : r->n_inputs;
    hpcz_json_array_begin(j, key);
    for (size_t i = 0; i < n; i++) {
        const hpcz_array *a = outputs ? &r->outputs[i] : &r->inputs[i];
        hpcz_json_object_begin(j, NULL);
        hpcz_json_string(j, "name", (outputs ? hpcz_plan_output : hpcz_plan_input)(r->plan, i)->name);
        hpcz_json_string(j, "dtype", hpcz_dtype_name(a->dtype));
        hpcz_json_array_begin(j, "shape");
        for (int d = 0; d < a->ndim; d++)
            hpcz_json_int(j, NULL, a->dims[d]);
        hpcz_json_array_end(j);
        if (outputs)
            hpcz_json_string(j, "file", r->files[i]);
        hpcz_json_object_end(j);
    }
    hpcz_json_array_end(j);
}

static void json_time(hpcz_json *j, const hpcz_run_result *r, uint64_t ns, uint64_t flops)
{
    hpcz_json_double(j, "ms_per_run", (double)ns / 1e6 / (double)r->runs);
    if (flops)
        hpcz_json_double(j, "gflops", (double)flops / (double)ns);
}

void hpcz_run_write_json(FILE *f, const char *model_path, const hpcz_run_result *r)
{
    const hpcz_plan_stats *s = &r->stats;
    hpcz_json j;
    hpcz_json_document(&j, f, "hpcz.run", 1);
    hpcz_json_string(&j, "model", model_path);
    hpcz_json_int(&j, "threads", s->threads);
    json_arrays(&j, "inputs", r, 0);
    json_arrays(&j, "outputs", r, 1);
    hpcz_json_object_begin(&j, "memory");
    hpcz_json_uint(&j, "peak_activation_bytes", s->arena_bytes + s->dynamic_peak);
    hpcz_json_uint(&j, "arena_bytes", s->arena_bytes);
    hpcz_json_uint(&j, "dynamic_peak_bytes", s->dynamic_peak);
    hpcz_json_uint(&j, "constant_bytes", s->const_bytes);
    hpcz_json_object_end(&j);
    hpcz_json_object_begin(&j, "nodes");
    hpcz_json_uint(&j, "run", s->n_nodes);
    hpcz_json_uint(&j, "folded", s->n_folded);
    hpcz_json_uint(&j, "dynamic", s->n_dynamic);
    hpcz_json_object_end(&j);
    if (r->runs) {
        hpcz_json_object_begin(&j, "bench");
        hpcz_json_int(&j, "runs", r->runs);
        hpcz_json_double(&j, "median_ms", r->median_ms);
        hpcz_json_double(&j, "min_ms", r->min_ms);
        hpcz_json_object_end(&j);
    }
    if (r->ops) {
        hpcz_json_array_begin(&j, "profile");
        for (size_t q = 0; q < r->n_ops; q++) {
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "op_type", r->ops[q].op_type);
            hpcz_json_uint(&j, "nodes", r->ops[q].nodes);
            json_time(&j, r, r->ops[q].ns, r->ops[q].flops);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
        hpcz_json_array_begin(&j, "nodes_by_time");
        for (size_t q = 0; q < r->n_nodes; q++) {
            const hpcz_node *nd = r->nodes[q].node;
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "name", nd->name ? nd->name : "");
            hpcz_json_string(&j, "op_type", nd->op_type);
            json_time(&j, r, r->nodes[q].ns, r->nodes[q].flops);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
    }
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}
