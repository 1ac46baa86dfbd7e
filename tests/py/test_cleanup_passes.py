"""Clean-up passes (fold-bn, eliminate, dce) checked by running the model before
and after on the same inputs with ONNX Runtime: outputs equal within 1e-5
(relative to the output's scale), the removed nodes really gone, the result
valid for onnx.checker.

Usage: python test_cleanup_passes.py HPCZ SOURCE_ROOT
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harness import HPCZ, ROOT, check, tally

TMP = tempfile.mkdtemp(prefix="hpcz-passes-")
rng = np.random.default_rng(0)


def run_ort(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def hpcz_passes(src, passes):
    dst = os.path.join(TMP, os.path.basename(src) + "." + passes.replace(",", "_") + ".onnx")
    r = subprocess.run([HPCZ, "convert", src, "-o", dst, "--passes", passes],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
    return dst if r.returncode == 0 else None


def same_outputs(a_path, b_path, feeds, tol=1e-5):
    a, b = run_ort(a_path, feeds), run_ort(b_path, feeds)
    worst = max(float(np.max(np.abs(x - y)) / max(1.0, float(np.max(np.abs(x))))) for x, y in zip(a, b))
    return worst <= tol, worst


def op_count(path, op):
    return sum(n.op_type == op for n in onnx.load(path).graph.node)


def save(model, name):
    path = os.path.join(TMP, name)
    onnx.save(model, path)
    return path


def bn_params(prefix, c):
    return [numpy_helper.from_array(v.astype(np.float32), prefix + s) for s, v in (
        ("_g", rng.uniform(0.5, 2, c)), ("_b", rng.normal(size=c)),
        ("_m", rng.normal(size=c)), ("_v", rng.uniform(0.1, 3, c)))]


def model_gemm_bn():
    # Gemm(transB=1, alpha, beta, C of shape [1,N]) -> BN; MatMul -> BN; one weight shared
    w = numpy_helper.from_array(rng.normal(size=(8, 16)).astype(np.float32), "W")
    c = numpy_helper.from_array(rng.normal(size=(1, 8)).astype(np.float32), "C")
    w2 = numpy_helper.from_array(rng.normal(size=(8, 8)).astype(np.float32), "W2")
    nodes = [
        helper.make_node("Gemm", ["x", "W", "C"], ["g"], name="gemm", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("BatchNormalization", ["g", "bn1_g", "bn1_b", "bn1_m", "bn1_v"], ["h"],
                         name="bn1", epsilon=1e-3),
        helper.make_node("MatMul", ["h", "W2"], ["k"], name="mm"),
        helper.make_node("BatchNormalization", ["k", "bn2_g", "bn2_b", "bn2_m", "bn2_v"], ["y"], name="bn2"),
        helper.make_node("MatMul", ["h", "W2"], ["z"], name="mm_shared"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 8])],
                          initializer=[w, c, w2] + bn_params("bn1", 8) + bn_params("bn2", 8),
                          # MatMul+BN folds when the MatMul's input is known to be 2-D
                          value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, [4, 8])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def model_noops():
    shape = numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Identity", ["x"], ["a"], name="id1"),
        helper.make_node("Dropout", ["a"], ["b"], name="drop"),
        helper.make_node("Transpose", ["b"], ["c"], name="tr", perm=[0, 1, 2]),
        helper.make_node("Reshape", ["c", "shape"], ["d"], name="rs"),
        helper.make_node("Cast", ["d"], ["e"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Relu", ["e"], ["f"], name="relu"),
        helper.make_node("Identity", ["f"], ["y"], name="id_out"),  # output name must survive
        helper.make_node("Sigmoid", ["x"], ["unused"], name="dead"),
        helper.make_node("Exp", ["unused"], ["unused2"], name="dead2"),
    ]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3, 4]) for n in "abcd"]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
                          initializer=[shape], value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def model_foldable():
    # a weight transposed at run time, a bias computed from two constants, a
    # shape computed from a constant tensor: all foldable; x stays dynamic
    w = numpy_helper.from_array(rng.normal(size=(8, 16)).astype(np.float32), "Wt")
    b1 = numpy_helper.from_array(rng.normal(size=(8,)).astype(np.float32), "b1")
    b2 = numpy_helper.from_array(rng.normal(size=(8,)).astype(np.float32), "b2")
    shp_src = numpy_helper.from_array(np.zeros((4, 2), np.float32), "shape_src")
    nodes = [
        helper.make_node("Transpose", ["Wt"], ["W"], name="tr_w", perm=[1, 0]),
        helper.make_node("Add", ["b1", "b2"], ["b"], name="bias_sum"),
        helper.make_node("Constant", [], ["two"], name="c2", value=numpy_helper.from_array(np.array(2.0, np.float32))),
        helper.make_node("Mul", ["b", "two"], ["b2x"], name="bias_scale"),
        helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b2x"], ["a"], name="add_bias"),
        helper.make_node("Shape", ["shape_src"], ["s"], name="shape_of_const"),
        helper.make_node("Reshape", ["a", "s"], ["y"], name="reshape"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2])],
                          initializer=[w, b1, b2, shp_src])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def main():
    cnn = os.path.join(ROOT, "samples", "digits_cnn.onnx")
    x = np.load(os.path.join(ROOT, "samples", "digits", "test_input.npy"))
    out = hpcz_passes(cnn, "fold-bn,dce")
    check(out is not None, "fold-bn,dce runs on digits_cnn")
    ok, worst = same_outputs(cnn, out, {"input": x})
    check(ok, "digits_cnn after fold-bn: outputs equal (worst relative diff %.2e)" % worst)
    check(op_count(out, "BatchNormalization") == 0, "digits_cnn: every BatchNormalization folded")
    bn_inputs = {i for n in onnx.load(cnn).graph.node if n.op_type == "BatchNormalization"
                 for i in n.input[1:]}
    left = bn_inputs & {i.name for i in onnx.load(out).graph.initializer}
    check(len(bn_inputs) == 16 and not left, "digits_cnn: the 16 BatchNorm parameter tensors are gone")
    onnx.checker.check_model(out, full_check=True)

    src = save(model_gemm_bn(), "gemm_bn.onnx")
    feeds = {"x": rng.normal(size=(4, 16)).astype(np.float32)}
    out = hpcz_passes(src, "fold-bn,dce")
    ok, worst = same_outputs(src, out, feeds)
    check(ok, "Gemm(transB, alpha, beta, C[1,N])+BN and MatMul+BN folded: outputs equal (%.2e)" % worst)
    check(op_count(out, "BatchNormalization") == 0, "gemm/matmul: both BatchNormalization nodes folded")
    m = onnx.load(out)
    check(any(i.name == "W2" for i in m.graph.initializer), "shared MatMul weight kept for its other user")
    onnx.checker.check_model(m, full_check=True)

    src = save(model_noops(), "noops.onnx")
    feeds = {"x": rng.normal(size=(2, 3, 4)).astype(np.float32)}
    out = hpcz_passes(src, "eliminate,dce")
    ok, worst = same_outputs(src, out, feeds)
    check(ok, "eliminate,dce: outputs equal (%.2e)" % worst)
    m = onnx.load(out)
    ops = sorted(n.op_type for n in m.graph.node)
    check(ops == ["Relu"], "eliminate,dce leaves only Relu (got %s)" % ops)
    check([o.name for o in m.graph.output] == ["y"], "graph output name kept")
    check("shape" not in [i.name for i in m.graph.initializer], "unused Reshape shape removed")
    onnx.checker.check_model(m, full_check=True)

    src = save(model_foldable(), "foldable.onnx")
    feeds = {"x": rng.normal(size=(1, 16)).astype(np.float32)}
    out = hpcz_passes(src, "fold-constants,dce")
    ok, worst = same_outputs(src, out, feeds)
    check(ok, "fold-constants,dce: outputs equal (%.2e)" % worst)
    m = onnx.load(out)
    ops = sorted(n.op_type for n in m.graph.node)
    check(ops == ["Add", "MatMul", "Reshape"], "constant chains evaluated away (left: %s)" % ops)
    onnx.checker.check_model(m, full_check=True)

    sys.exit(tally())


if __name__ == "__main__":
    main()
