/*
 * passes.h - the pass registry and helpers shared by passes.
 *
 * Adding a pass takes three edits:
 *   1. lib/passes/NAME.c: a static option table (hpcz_pass_opt[], zero-terminated),
 *      a run function `static hpcz_status run(hpcz_model *, const hpcz_pass_args *,
 *      hpcz_pass_ctx *, hpcz_error *)`, and `const hpcz_pass hpcz_pass_NAME = {...}`;
 *   2. its declaration below (extern const hpcz_pass hpcz_pass_NAME;);
 *   3. a row in the table in lib/passes/registry.c (and the file in meson.build).
 * The option table gives parsing, defaults, validation and `hpcz passes` help
 * for free. A pass changes the model only through the IR API, reports what it
 * did with hpcz_pass_note, and leaves a model that hpcz_model_verify accepts.
 */
#ifndef HPCZ_PASSES_H
#define HPCZ_PASSES_H

#include "internal.h"

extern const hpcz_pass hpcz_pass_fold_bn;
extern const hpcz_pass hpcz_pass_eliminate;
extern const hpcz_pass hpcz_pass_dce;

/* ---- helpers */

/* The constant tensor behind v: its initializer, or the value of the Constant
 * node that produces it; NULL when v is computed at run time. */
hpcz_tensor *hpcz_value_const(const hpcz_value *v);

/* Use counts of every value in g (including reads from nested subgraphs and
 * graph outputs), stored in value->aux. */
void hpcz_count_uses(hpcz_graph *g);

/* Makes the node's output `out` the same value as its input `in` and marks the
 * node dead (aux = -1; call hpcz_graph_sweep). Keeps graph output names: when
 * `out` is a graph output, the producer of `in` is renamed instead, if that is
 * safe. Returns false (and changes nothing) when it cannot. Needs fresh use
 * counts (hpcz_count_uses). */
bool hpcz_bypass_node(hpcz_graph *g, hpcz_node *n, hpcz_value *in, hpcz_value *out);

/* Fresh unique value/tensor name "<base>_<suffix>[_N]" in g's scope. */
const char *hpcz_unique_name(hpcz_graph *g, const char *base, const char *suffix);

/* A new float32 initializer in g, with an owned zeroed payload. */
hpcz_tensor *hpcz_new_float_init(hpcz_graph *g, const char *name, int ndim, const int64_t *dims,
                                 hpcz_error *err);

/* Makes t safe to modify for node use: if the value has other users, copies it
 * into a new initializer and rewires `user`'s input `idx`. Returns the tensor to
 * write, or NULL on error. The payload is materialized and owned. */
hpcz_tensor *hpcz_writable_weight(hpcz_graph *g, hpcz_node *user, size_t idx, hpcz_error *err);

#endif
