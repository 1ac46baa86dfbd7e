/*
 * onnx_internal.h - shared between the ONNX reader and writer.
 */
#ifndef HPCZ_ONNX_INTERNAL_H
#define HPCZ_ONNX_INTERNAL_H

#include "internal.h"
#include "onnx.pb-c.h"

/* Checks the wire format of buf against desc without unpacking: nesting depth
 * at most max_depth and every length inside its parent. protobuf-c recurses
 * without a limit, so this guards the stack against hostile files. */
hpcz_status hpcz_wire_check(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                            int max_depth, hpcz_error *err);

/* Builds an IR tensor from a TensorProto (payload borrowed where possible).
 * For external data, model->priv->base_dir locates the files. */
hpcz_status hpcz_onnx_tensor_from_proto(hpcz_model *m, const Onnx__TensorProto *tp,
                                        hpcz_tensor **out, hpcz_error *err);

/* Builds a model over an unpacked ModelProto (the .hpcz reader's entry). Takes
 * ownership of `owner` in every case: owner_free(owner) runs when the model is
 * freed, or at once on failure; mp must stay valid until then. */
hpcz_model *hpcz_onnx_model_from_proto(const Onnx__ModelProto *mp, void *owner,
                                       void (*owner_free)(void *), const hpcz_load_opts *opts,
                                       const char *base_dir, hpcz_error *err);

#define HPCZ_PROTO_MAX_DEPTH 100

#endif
