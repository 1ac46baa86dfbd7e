"""hpcz's ONNX writer checked by an independent reader (the PyPI onnx package).

1. Every model of ONNX's node conformance suite (when present) and every bundled
   sample goes through `hpcz convert`; onnx parses both files and their
   deterministic serializations must be equal.
2. Samples written by hpcz pass onnx.checker with full shape inference.
3. External data both ways: a model saved with external data by onnx is read by
   hpcz; a model written by hpcz with --external-data is read by onnx and by
   ONNX Runtime, with the same tensors and the same outputs as the original.

Usage: python test_onnx_interop.py HPCZ SOURCE_ROOT SUITE_DIR
"""
import concurrent.futures as cf
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HPCZ, ROOT, SUITE = sys.argv[1:4]
failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL", what, flush=True)


def canon(path):
    m = onnx.load(path, load_external_data=False)
    return m.SerializeToString(deterministic=True)


def convert(src, dst, *extra):
    r = subprocess.run([HPCZ, "convert", src, "-o", dst, *extra], capture_output=True, text=True)
    return r.returncode, r.stderr


def roundtrip(src, tmp):
    dst = os.path.join(tmp, "%d.onnx" % abs(hash(src)))
    rc, err = convert(src, dst)
    if rc != 0:
        return src, "hpcz convert exited %d: %s" % (rc, err.strip())
    same = canon(src) == canon(dst)
    os.unlink(dst)
    return src, None if same else "differs from the input after onnx's deterministic serialization"


def main():
    tmp = tempfile.mkdtemp(prefix="hpcz-interop-")
    models = sorted(glob.glob(os.path.join(SUITE, "node", "*", "model.onnx")))
    samples = sorted(glob.glob(os.path.join(ROOT, "samples", "**", "*.onnx"), recursive=True))
    if not models:
        print("note: ONNX node conformance suite not found at %s: checking the samples only" % SUITE)
    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for src, why in ex.map(lambda p: roundtrip(p, tmp), models + samples):
            check(why is None, "%s: %s" % (src, why))
    print("onnx reads %d of %d hpcz-written models as equal to their originals"
          % (passed, len(models) + len(samples)), flush=True)

    # checker with full shape inference on what hpcz writes
    for src in samples:
        dst = os.path.join(tmp, "checked.onnx")
        rc, err = convert(src, dst)
        try:
            onnx.checker.check_model(dst, full_check=True)
            ok = rc == 0
        except Exception as e:  # noqa: BLE001 - report any checker failure
            ok, err = False, str(e)
        check(ok, "%s: onnx.checker: %s" % (src, err))

    # external data written by onnx, read by hpcz
    cnn = os.path.join(ROOT, "samples", "digits_cnn.onnx")
    orig = onnx.load(cnn)
    ext_dir = os.path.join(tmp, "ext")
    os.makedirs(ext_dir)
    onnx.save_model(onnx.load(cnn), os.path.join(ext_dir, "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    rc, err = convert(os.path.join(ext_dir, "m.onnx"), os.path.join(tmp, "inline.onnx"))
    check(rc == 0, "hpcz reads onnx's external data: %s" % err)
    if rc == 0:
        back = onnx.load(os.path.join(tmp, "inline.onnx"))
        check(all(t.data_location != onnx.TensorProto.EXTERNAL for t in back.graph.initializer),
              "inline output has no external tensors")
        same = all(np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
                   for a, b in zip(orig.graph.initializer, back.graph.initializer))
        check(same and len(orig.graph.initializer) == len(back.graph.initializer),
              "external -> inline keeps every tensor")

    # external data written by hpcz, read by onnx and ONNX Runtime
    out = os.path.join(tmp, "hx", "m.onnx")
    os.makedirs(os.path.dirname(out))
    rc, err = convert(cnn, out, "--external-data=256")
    check(rc == 0 and os.path.exists(out + ".data"), "hpcz writes external data: %s" % err)
    raw = onnx.load(out, load_external_data=False)
    n_ext = sum(t.data_location == onnx.TensorProto.EXTERNAL for t in raw.graph.initializer)
    check(n_ext > 0, "tensors of 256 bytes and more are external (%d)" % n_ext)
    loaded = onnx.load(out)
    same = all(np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
               for a, b in zip(orig.graph.initializer, loaded.graph.initializer))
    check(same, "onnx reads hpcz's external data with the original values")
    try:
        import onnxruntime as ort
        x = np.load(os.path.join(ROOT, "samples", "digits", "test_input.npy"))[:16]
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        a = ort.InferenceSession(cnn, so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        b = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        check(np.array_equal(a, b), "ONNX Runtime gives the same logits on hpcz's external-data model")
    except ImportError:
        check(False, "onnxruntime missing from the test venv")

    total = passed + len(failures)
    print("%d passed, %d failed" % (passed, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
