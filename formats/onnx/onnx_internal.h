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

/* A payload inside a serialized message: bytes [off, off + len) of the buffer. */
typedef struct hpcz_wire_span {
    size_t off, len;
} hpcz_wire_span;

/* Lists, in wire order, the payloads of length-delimited field `field` of every
 * message of type `target` inside buf (a message of type desc that passed
 * hpcz_wire_check) that are at least min_len bytes long. *spans is malloc'd. */
hpcz_status hpcz_wire_find_payloads(const uint8_t *buf, size_t len,
                                    const ProtobufCMessageDescriptor *desc,
                                    const ProtobufCMessageDescriptor *target, uint32_t field,
                                    size_t min_len, int max_depth, hpcz_wire_span **spans,
                                    size_t *n, hpcz_error *err);

/* A malloc'd copy of buf in which the payload of spans[i] is replaced by
 * markers[i * marker_len ...] (marker_len bytes) and the length of every
 * message around it re-encoded; the rest is copied as it is. */
hpcz_status hpcz_wire_replace_payloads(const uint8_t *buf, size_t len,
                                       const ProtobufCMessageDescriptor *desc,
                                       const hpcz_wire_span *spans, size_t n,
                                       const uint8_t *markers, size_t marker_len, uint8_t **out,
                                       size_t *out_len, hpcz_error *err);

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
