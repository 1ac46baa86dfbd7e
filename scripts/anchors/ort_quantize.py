"""Anchor: ONNX Runtime's own quantizers on the digits models.

    .venv-anchors/bin/python scripts/anchors/ort_quantize.py     (after scripts/anchors/setup.sh)

For samples/digits_cnn.onnx and samples/digits_mlp.onnx, with the 512 calibration
images of samples/digits/calib/input.npy (fed in batches of 64):

* quantize_static: QDQ, per_channel=True, activations QUInt8, weights QInt8,
  reduce_range False and True, calibrate_method MinMax / Entropy / Percentile
  (CalibPercentile=99.99, matching hpcz's percentile:99.99; ORT's default is
  99.999). The input is first run through quant_pre_process (symbolic shape
  inference + ORT's basic optimizations, which fold Conv+BatchNormalization),
  as ORT recommends; the pre-processing is part of the timed run.
* quantize_dynamic: QOperator, per channel, weights QInt8 and QUInt8 (it rewrites
  Gemm as MatMul first; Conv becomes ConvInteger, and ORT's CPU ConvInteger has
  no kernel for int8 weights, so the QInt8 CNN cannot run: reported as such).
* MatMulNBitsQuantizer: int4, block 32, asymmetric (ORT's default), QOperator
  (MatMulNBits contrib op). It only handles MatMul (and Gather): on the digits
  models, which use Gemm, it changes nothing. To give it work, each model is
  also rewritten Gemm(transB=1) -> MatMul(W^T) + Add(bias) (the rewrite itself
  is not timed) and quantized again; the same for 8 bits.

Each run is timed end to end (wall clock, in this process: model load, calibration,
quantization, save; best of 5 runs; excluding the one-time `import onnxruntime.quantization`,
printed separately). Every output is evaluated by common.evaluate (ONNX Runtime CPU,
one thread): top-1 on the 450-image test split, logit SQNR against the float
model, file size. Rows go to build/anchors/results/ort_quantize.json and a
markdown table is printed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

t0 = time.perf_counter()
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.matmul_nbits_quantizer import (  # noqa: E402
    DefaultWeightOnlyQuantConfig,
    MatMulNBitsQuantizer,
)
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402

IMPORT_S = time.perf_counter() - t0
logging.getLogger().setLevel(logging.WARNING)
CALIB_BATCH = 64
TOOL = "ORT " + onnxruntime.__version__


class Reader(CalibrationDataReader):
    def __init__(self, x: np.ndarray, batch: int = CALIB_BATCH):
        self.batches = [x[i : i + batch] for i in range(0, len(x), batch)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {common.INPUT_NAME: self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0


def quiet():
    """Swallow the progress lines ORT's calibrators print on stdout."""
    return contextlib.redirect_stdout(io.StringIO())


def gemm_to_matmul(src: Path, dst: Path) -> int:
    """Rewrite every Gemm(A, W, b) with transB=1, transA=0, alpha=beta=1 as MatMul(A, W^T) + Add(b)."""
    m = onnx.load(str(src))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    nodes, n_rewritten = [], 0
    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        ok = (n.op_type == "Gemm" and attrs.get("transA", 0) == 0 and attrs.get("transB", 0) == 1
              and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and n.input[1] in inits)
        if not ok:
            nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        wt = n.input[1] + "_T"
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), wt))
        if len(n.input) > 2 and n.input[2]:
            mm = n.output[0] + "_mm"
            nodes.append(helper.make_node("MatMul", [n.input[0], wt], [mm], name=n.name + "_matmul"))
            nodes.append(helper.make_node("Add", [mm, n.input[2]], [n.output[0]], name=n.name + "_bias"))
        else:
            nodes.append(helper.make_node("MatMul", [n.input[0], wt], [n.output[0]], name=n.name + "_matmul"))
        n_rewritten += 1
    used = {i for n in nodes for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))
    return n_rewritten


def main() -> int:
    out = common.fresh_dir("ort")
    calib = common.calib_input()
    rows = []

    def add(method, model, path, seconds, note=""):
        try:
            metrics = common.evaluate(model, path)
        except Exception as e:  # a model ORT made but cannot run: report it, go on
            msg = str(e).split(" : ")[-1].strip()
            print(f"{method} {model}: ORT cannot run the output: {msg}")
            rows.append(common.row(TOOL, method, model, {"size": common.file_size(path)}, seconds,
                                   (note + "; " if note else "") + "ORT cannot run it: " + msg))
            return
        r = common.row(TOOL, method, model, metrics, seconds, note)
        rows.append(r)
        print("%-40s %-12s top1 %6.2f  sqnr %6.1f dB  %8d B  %.3f s  %s" % (
            method, model, r["top1"], r["sqnr_db"], r["size"], seconds, note), flush=True)

    methods = [("minmax", CalibrationMethod.MinMax, {}),
               ("entropy", CalibrationMethod.Entropy, {}),
               ("percentile:99.99", CalibrationMethod.Percentile, {"CalibPercentile": 99.99})]
    for model, src in common.MODELS.items():
        # quantize_static, QDQ
        for rr in (False, True):
            for mname, method, extra in methods:
                pre = out / f"{model}.pre.onnx"
                dst = out / f"{model}.static.{mname.split(':')[0]}.rr{int(rr)}.onnx"
                def run(src=src, pre=pre, dst=dst, rr=rr, method=method, extra=extra):
                    with quiet():
                        quant_pre_process(str(src), str(pre))
                        quantize_static(str(pre), str(dst), Reader(calib), quant_format=QuantFormat.QDQ,
                                        per_channel=True, reduce_range=rr, activation_type=QuantType.QUInt8,
                                        weight_type=QuantType.QInt8, calibrate_method=method,
                                        extra_options=extra)
                add(f"quantize_static QDQ {mname}" + (" reduce_range" if rr else ""), model, dst,
                    common.timed(run))
        # quantize_dynamic (ORT's CPU ConvInteger has no int8-weight kernel: uint8 weights too)
        for wt, wname in ((QuantType.QInt8, "int8"), (QuantType.QUInt8, "uint8")):
            dst = out / f"{model}.dynamic.{wname}.onnx"
            def run(src=src, pre=pre, dst=dst, wt=wt):
                with quiet():
                    quant_pre_process(str(src), str(pre))
                    quantize_dynamic(str(pre), str(dst), per_channel=True, weight_type=wt)
            add(f"quantize_dynamic {wname} per-channel", model, dst, common.timed(run))
            rows[-1]["ops"] = common.op_histogram(dst)
        # MatMulNBits (int4 / int8 weight-only) on the model as is, then on the MatMul rewrite
        mm = out / f"{model}.matmul.onnx"
        n_gemm = gemm_to_matmul(src, mm)
        for bits in (4, 8):
            for variant, inp in (("as is", src), (f"Gemm->MatMul x{n_gemm}", mm)):
                if bits == 8 and variant == "as is":
                    continue
                dst = out / f"{model}.nbits{bits}.{'mm' if inp == mm else 'orig'}.onnx"
                def run(inp=inp, dst=dst, bits=bits):
                    with quiet():
                        cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=False, bits=bits,
                                                           quant_format=QuantFormat.QOperator)
                        q = MatMulNBitsQuantizer(onnx.load(str(inp)), algo_config=cfg)
                        q.process()
                        q.model.save_model_to_file(str(dst))
                try:
                    seconds = common.timed(run)
                except Exception as e:  # report, do not stop the other anchors
                    print(f"MatMulNBits int{bits} {model} {variant}: failed: {type(e).__name__}: {e}")
                    rows.append(common.row(TOOL, f"MatMulNBits int{bits} b32 ({variant})", model, {}, None,
                                           f"failed: {type(e).__name__}"))
                    continue
                n_nbits = sum(n.op_type == "MatMulNBits" for n in onnx.load(str(dst)).graph.node)
                note = f"{n_nbits} MatMulNBits" + (" (no MatMul: unchanged)" if n_nbits == 0 else "")
                add(f"MatMulNBits int{bits} b32 ({variant})", model, dst, seconds, note)

    common.save_rows("ort_quantize", rows)
    print()
    print(common.markdown_table(rows))
    print(f"\n(one-time `import onnxruntime.quantization` + onnx: {IMPORT_S:.3f} s, not in the times above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
