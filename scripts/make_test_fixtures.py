#!/usr/bin/env python3
"""Writes the small broken models under tests/data/bad/ that the CLI tests feed
to hpcz (each one must give a one-line error and exit status 1, never a crash),
and the valid but hostile ones under tests/data/hostile/ (names and shapes
that once hung or misled hpcz), and under tests/data/reference/digits8/ the digits
test_data_set_0 tensors as .npy (inputs and torch's logits, for the library
tests).

Usage: /usr/bin/python3 scripts/make_test_fixtures.py   (Debian's python3-onnx is enough)
The outputs are committed; rerun only to change them.
"""
import os
import struct

import onnx
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "bad")
HOSTILE = os.path.join(ROOT, "tests", "data", "hostile")


def save(model, name):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(model.SerializeToString())


def model_of(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="fixture")


def vi(name, shape=(1, 4)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def hostile_loops():
    os.makedirs(HOSTILE, exist_ok=True)
    # Loops that must never run: `hpcz prune` once ran the model to count
    # MACs and hung on 2^62 iterations, or grew to gigabytes stacking scan
    # outputs. A MatMul before the loop and one in its body.
    w0 = helper.make_tensor("w0", TensorProto.FLOAT, [4, 4], [((i * 7) % 9 - 4) / 4.0 for i in range(16)])
    w1 = helper.make_tensor("w1", TensorProto.FLOAT, [4, 4], [((i * 5) % 7 - 3) / 4.0 for i in range(16)])
    for name, trips, scan in (("loop_2e62.onnx", 2**62, False), ("loop_scan.onnx", 10**12, True)):
        body_out = [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), vi("h_out", (1, 4))]
        body_nodes = [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
                      helper.make_node("MatMul", ["h_in", "w1"], ["h_out"], name="body_mm")]
        if scan:
            body_nodes.append(helper.make_node("Identity", ["h_out"], ["s_out"], name="scan_copy"))
            body_out.append(vi("s_out", (1, 4)))
        body = helper.make_graph(
            body_nodes, "body",
            [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), vi("h_in", (1, 4))],
            body_out)
        trip = helper.make_tensor("trips", TensorProto.INT64, [], [trips])
        cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
        outs = [vi("y", (1, 4))] + ([vi("ys", (None, 1, 4))] if scan else [])
        m = model_of([helper.make_node("MatMul", ["x", "w0"], ["h"], name="mm"),
                      helper.make_node("Loop", ["trips", "cond", "h"], [o.name for o in outs],
                                       name="loop", body=body)],
                     [vi("x", (1, 4))], outs, [w0, w1, trip, cond])
        with open(os.path.join(HOSTILE, name), "wb") as f:
            f.write(m.SerializeToString())


def hostile():
    os.makedirs(HOSTILE, exist_ok=True)
    # a 600-character initializer name: quantize's new tensor names once
    # went through a 512-byte buffer and the retry loop never ended
    name = "layer_" + "w" * 594
    w = helper.make_tensor(name, TensorProto.FLOAT, [16, 8],
                           [((i * 37) % 23 - 11) / 10.0 for i in range(128)])
    m = model_of([helper.make_node("MatMul", ["x", name], ["y"], name="mm_" + "n" * 600)],
                 [vi("x", (1, 16))], [vi("y", (1, 8))], [w])
    with open(os.path.join(HOSTILE, "long_name.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    # NaN in a weight: quantizing it once gave 0 silently
    vals = [((i * 37) % 23 - 11) / 10.0 for i in range(128)]
    vals[77] = float("nan")
    w = helper.make_tensor("w", TensorProto.FLOAT, [16, 8], vals)
    m = model_of([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                 [vi("x", (1, 16))], [vi("y", (1, 8))], [w])
    with open(os.path.join(HOSTILE, "nan_weight.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    # Range whose element count overflows: once an empty tensor
    for name, dt, start, limit, delta in (
            ("range_float", TensorProto.FLOAT, 0.0, 3e38, 1e-38),
            ("range_int64", TensorProto.INT64, -2**63, 2**63 - 1, 1)):
        inits = [helper.make_tensor(k, dt, [], [v])
                 for k, v in (("start", start), ("limit", limit), ("delta", delta))]
        out = helper.make_tensor_value_info("y", dt, [None])
        g = helper.make_graph([helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="range")],
                              name, [], [out], initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="fixture")
        with open(os.path.join(HOSTILE, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())
    # outputs holding NaN and Inf: Sqrt and Log of [-1, 0, 4, 9]
    m = model_of([helper.make_node("Sqrt", ["x"], ["s"], name="sqrt"),
                  helper.make_node("Log", ["x"], ["l"], name="log")],
                 [vi("x", (4,))], [vi("s", (4,)), vi("l", (4,))])
    with open(os.path.join(HOSTILE, "sqrt_log.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    write_npy(os.path.join(HOSTILE, "sqrt_log_x.npy"), "<f4", (4,),
              struct.pack("<4f", -1.0, 0.0, 4.0, 9.0))

    # names that would rewrite a terminal (ESC), split a Markdown table (|,
    # backticks) and break JSON (a byte that is not UTF-8); the placeholder
    # "#FF#" becomes the byte 0xff after serializing (protobuf refuses to
    # set it)
    bad = "y\x1b[31m|`red`#FF#"
    m = model_of([helper.make_node("Relu", ["x"], [bad], name="relu\x1b]0;title\x07")],
                 [vi("x", ("batch", 4))], [vi(bad, ("batch", 4))])
    data = m.SerializeToString().replace(b"#FF#", b"\xff\xfe\x80\x80")
    with open(os.path.join(HOSTILE, "names.onnx"), "wb") as f:
        f.write(data)
    x = [(i % 5) - 2.0 for i in range(12)]
    write_npy(os.path.join(HOSTILE, "names_x.npy"), "<f4", (3, 4), struct.pack("<12f", *x))
    x[9] = float("nan")  # in sample 2
    write_npy(os.path.join(HOSTILE, "names_nan.npy"), "<f4", (3, 4), struct.pack("<12f", *x))
    # labels no class can match: once an accuracy figure all the same
    write_npy(os.path.join(HOSTILE, "labels_negative.npy"), "<i8", (3,), struct.pack("<3q", 0, -1, 2))
    write_npy(os.path.join(HOSTILE, "labels_huge.npy"), "<i8", (3,), struct.pack("<3q", 0, 2, 2**62))


def write_npy(path, descr, shape, payload):
    """A .npy file (format 1.0) without numpy."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d," % d for d in shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload)


def reference():
    """samples/digits/test_data_set_0 (8 test images, torch's logits for
    digits_cnn) as .npy: what docs/library.md's run example and the library
    unit tests feed and compare against."""
    src = os.path.join(ROOT, "samples", "digits", "test_data_set_0")
    dst = os.path.join(ROOT, "tests", "data", "reference", "digits8")
    os.makedirs(dst, exist_ok=True)
    for pb, npy in (("input_0.pb", "input.npy"), ("output_0.pb", "logits.npy")):
        t = onnx.load_tensor(os.path.join(src, pb))
        assert t.data_type == TensorProto.FLOAT
        payload = t.raw_data or struct.pack("<%df" % len(t.float_data), *t.float_data)
        write_npy(os.path.join(dst, npy), "<f4", tuple(t.dims), payload)


def main():
    reference()
    hostile()
    hostile_loops()
    os.makedirs(OUT, exist_ok=True)
    # a -> b -> a
    save(model_of([helper.make_node("Relu", ["b"], ["a"], name="first"),
                   helper.make_node("Relu", ["a"], ["b"], name="second")],
                  [vi("x")], [vi("b")]), "cycle.onnx")
    save(model_of([helper.make_node("Add", ["x", "missing"], ["y"], name="add")],
                  [vi("x")], [vi("y")]), "undefined_input.onnx")
    save(model_of([helper.make_node("Relu", ["x"], ["y"], name="r1"),
                   helper.make_node("Relu", ["x"], ["y"], name="r2")],
                  [vi("x")], [vi("y")]), "two_producers.onnx")
    # dims claiming 2^62 elements with 4 bytes of data
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**31, 2**31], raw_data=b"\0" * 4)
    save(model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                  [vi("x")], [vi("y")], [huge]), "huge_dims.onnx")
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=b"\0" * 12)
    save(model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                  [vi("x")], [vi("y")], [short]), "short_raw_data.onnx")
    esc = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4],
                      data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "../../../etc/passwd"), ("offset", "0"), ("length", "16")):
        e = esc.external_data.add()
        e.key, e.value = k, v
    save(model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                  [vi("x")], [vi("y")], [esc]), "external_escape.onnx")
    gone = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4],
                       data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "missing.bin"), ("offset", "0"), ("length", "16")):
        e = gone.external_data.add()
        e.key, e.value = k, v
    save(model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                  [vi("x")], [vi("y")], [gone]), "external_missing.onnx")
    # 300 levels of If-in-If, written directly in wire format:
    # GraphProto.node(1) -> NodeProto.attribute(5) -> AttributeProto.g(6) -> GraphProto ...
    inner = b""
    for _ in range(300):
        inner = field(1, field(5, field(6, inner)))
    with open(os.path.join(OUT, "deep_nesting.onnx"), "wb") as f:
        f.write(varint(1 << 3) + varint(8) + field(7, inner))
    # truncated: the first half of a real model
    with open(os.path.join(ROOT, "samples", "digits_cnn.onnx"), "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(OUT, "empty.onnx"), "wb"):
        pass
    with open(os.path.join(OUT, "not_onnx.txt"), "w") as f:
        f.write("this is a text file, not a model\n")


if __name__ == "__main__":
    main()
