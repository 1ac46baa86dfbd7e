"""Anchor: onnxconverter-common's float16 conversion.

    .venv-anchors/bin/python scripts/anchors/fp16_anchor.py     (after scripts/anchors/setup.sh)

float16.convert_float_to_float16(model, keep_io_types=True) (onnxconverter-common
1.16.0, default min_positive_val=1e-7 / max_finite_val=1e4: constants outside are
clamped) on:

* samples/digits_cnn.onnx and samples/digits_mlp.onnx: top-1, drop, logit SQNR,
  size, wall time of load + convert + save (best of 5), evaluated by
  common.evaluate (ONNX Runtime CPU, one thread);
* the "ranges" model of common.make_ranges_model (BatchNorm var 1e8, a 2^20 Mul,
  a Clip min 1e-10 before Log; float16 cannot hold those constants), and the
  same without the Mul ("ranges_nomul": with the Mul, clamping var to 1e4 and
  2^20 to 1e4 nearly cancel): SQNR of the output against float32 on a seeded
  input, whether it stays finite, how many outputs became exactly 0, the largest
  difference, and which constants the conversion changed by more than 1%.

Rows go to build/anchors/results/fp16_anchor.json; a markdown table is printed.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import onnx  # noqa: E402
import onnxconverter_common  # noqa: E402
from onnxconverter_common import float16  # noqa: E402

TOOL = "onnxconverter-common %s" % onnxconverter_common.__version__
METHOD = "convert_float_to_float16 keep_io_types"


def convert(src: Path, dst: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about every clamped constant
        m = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(m, str(dst))


def main() -> int:
    out = common.fresh_dir("fp16")
    rows = []
    for model, src in common.MODELS.items():
        dst = out / f"{model}.fp16.onnx"
        seconds = common.timed(lambda: convert(src, dst))
        rows.append(common.row(TOOL, METHOD, model, common.evaluate(model, dst), seconds))
    for name, with_mul in common.RANGES_MODELS.items():
        src = out / f"{name}.onnx"
        common.make_ranges_model(src, with_mul)
        dst = out / f"{name}.fp16.onnx"
        seconds = common.timed(lambda: convert(src, dst))
        try:
            m = common.evaluate_ranges(src, dst)
        except Exception as e:  # ORT refusing the model is a result too
            m = {"size": common.file_size(dst), "note": "ORT cannot run it: %s" % str(e).split(" : ")[-1]}
        changed = common.changed_constants(src, dst)
        note = m.pop("note") + ("; constants changed: " + changed if changed else "")
        rows.append(common.row(TOOL, METHOD, name, m, seconds, note))
    common.save_rows("fp16_anchor", rows)
    print(common.markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
