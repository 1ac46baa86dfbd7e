/*
 * tensorproto.c - standalone TensorProto files (ONNX test data .pb).
 */
#include "onnx_internal.h"

static void free_tensor_proto(void *p)
{
    onnx__tensor_proto__free_unpacked(p, NULL);
}

hpcz_tensor *hpcz_tensorproto_load_buffer(const void *buf, size_t len, hpcz_error *err)
{
    if (hpcz_wire_check(buf, len, &onnx__tensor_proto__descriptor, HPCZ_PROTO_MAX_DEPTH, err)) {
        hpcz_error_prefix(err, "not a TensorProto");
        return NULL;
    }
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) {
        hpcz_fail(err, HPCZ_ERR_PARSE, "not a TensorProto (protobuf decoding failed)");
        return NULL;
    }
    hpcz_model *m = hpcz_model_new();
    if (!m) {
        onnx__tensor_proto__free_unpacked(tp, NULL);
        hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->priv->proto = tp;
    m->priv->proto_free = free_tensor_proto;
    m->priv->payloads = &hpcz_onnx_payloads;
    hpcz_tensor *t;
    if (hpcz_onnx_tensor_from_proto(m, tp, &t, err)) {
        hpcz_model_free(m);
        return NULL;
    }
    return t;
}

hpcz_tensor *hpcz_tensorproto_load(const char *path, hpcz_error *err)
{
    uint8_t *buf;
    size_t len;
    if (hpcz_file_read(path, (uint64_t)4 << 30, &buf, &len, err))
        return NULL;
    hpcz_tensor *t = hpcz_tensorproto_load_buffer(buf, len, err);
    free(buf);
    return t;
}

hpcz_status hpcz_tensorproto_serialize(const hpcz_tensor *ct, uint8_t **out, size_t *out_len,
                                       hpcz_error *err)
{
    hpcz_tensor *t = (hpcz_tensor *)ct;
    Onnx__TensorProto tp;
    if (t->src && !t->dirty && !t->external) {
        tp = *(const Onnx__TensorProto *)t->src;
    } else {
        if (t->src)
            tp = *(const Onnx__TensorProto *)t->src;
        else
            onnx__tensor_proto__init(&tp);
        const void *data = hpcz_tensor_data(t, err);
        if (!data && t->numel)
            return err->status;
        tp.n_float_data = tp.n_int32_data = tp.n_string_data = 0;
        tp.n_int64_data = tp.n_double_data = tp.n_uint64_data = tp.n_external_data = 0;
        tp.has_data_location = 0;
        tp.name = (char *)t->name;
        tp.has_data_type = 1;
        tp.data_type = t->dtype;
        tp.n_dims = (size_t)t->ndim;
        tp.dims = t->dims;
        tp.has_raw_data = 1;
        tp.raw_data.data = (uint8_t *)data;
        tp.raw_data.len = hpcz_dtype_nbytes(t->dtype, t->numel);
    }
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    *out = malloc(n ? n : 1);
    if (!*out)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    *out_len = onnx__tensor_proto__pack(&tp, *out);
    return HPCZ_OK;
}

hpcz_status hpcz_tensorproto_canonicalize(const void *buf, size_t len, uint8_t **out,
                                          size_t *out_len, hpcz_error *err)
{
    if (hpcz_wire_check(buf, len, &onnx__tensor_proto__descriptor, HPCZ_PROTO_MAX_DEPTH, err))
        return err->status;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp)
        return hpcz_fail(err, HPCZ_ERR_PARSE, "not a TensorProto (protobuf decoding failed)");
    size_t n = onnx__tensor_proto__get_packed_size(tp);
    *out = malloc(n ? n : 1);
    if (!*out) {
        onnx__tensor_proto__free_unpacked(tp, NULL);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    *out_len = onnx__tensor_proto__pack(tp, *out);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return HPCZ_OK;
}
