"""What the Python tests share: their arguments, check() and its tally, the
hpcz runner and an ONNX Runtime session. Each test is run by tests/py/run.sh
as `python test_X.py HPCZ ROOT [MORE...]`; run.sh points TMPDIR at a folder
of its own and removes it afterwards, so temporary folders made here go too.
"""
import subprocess
import sys

HPCZ, ROOT = sys.argv[1:3]

_tally = {"passed": 0, "failed": 0}


def check(cond, what):
    """Records one assertion: PASS or FAIL and what it was, flushed at once."""
    _tally["passed" if cond else "failed"] += 1
    print("PASS" if cond else "FAIL", what, flush=True)
    return cond


def failed():
    return _tally["failed"]


def tally():
    """Prints the totals; returns the exit status (1 when any check failed)."""
    print("%d passed, %d failed" % (_tally["passed"], _tally["failed"]), flush=True)
    return 1 if _tally["failed"] else 0


def hpcz(*args):
    """Runs the hpcz binary under test; its stderr is echoed when it fails."""
    r = subprocess.run([HPCZ, *args], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr, end="", flush=True)
    return r


def quantize_into(folder, src, name, *args):
    """hpcz quantize SRC -o FOLDER/NAME ARGS: the output's path (None when
    it failed; its stderr is echoed then) and the stderr."""
    import os
    dst = os.path.join(folder, name)
    r = subprocess.run([HPCZ, "quantize", src, "-o", dst, *args], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr, flush=True)
    return (dst if r.returncode == 0 else None), r.stderr


def sqnr(ref, out):
    """Signal-to-quantization-noise ratio of out against ref, in dB."""
    import numpy as np
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(1e-30, np.sum((ref - out) ** 2)))


def session(path, level=None):
    """An ONNX Runtime CPU session with warnings silenced (optimisation level
    `level` when given, ORT's default otherwise)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if level is not None:
        so.graph_optimization_level = level
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_optimized_graph(path):
    """The model's graph as ONNX Runtime runs it (its QDQ propagation and
    other fusions at ORT_ENABLE_EXTENDED applied; no NCHWc layout), read back
    from the optimized model it writes next to `path`."""
    import onnx
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = path + ".ort.onnx"
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return onnx.load(so.optimized_model_filepath).graph


def ort_optimized_ops(path):
    """Op types of the model as ONNX Runtime runs it (ort_optimized_graph)."""
    return [n.op_type for n in ort_optimized_graph(path).node]


def calib_folder(parent, name="calib", **arrays):
    """A calibration folder PARENT/NAME holding one INPUT.npy per keyword
    argument (INPUT=array); its path."""
    import os
    import numpy as np
    d = os.path.join(parent, name)
    os.makedirs(d, exist_ok=True)
    for k, v in arrays.items():
        np.save(os.path.join(d, k + ".npy"), v)
    return d


def graph_maps(g):
    """A graph's nodes by name, the node producing each value, and its
    initializers as numpy arrays."""
    from onnx import numpy_helper
    return ({n.name: n for n in g.node}, {o: n for n in g.node for o in n.output},
            {t.name: numpy_helper.to_array(t) for t in g.initializer})
