"""Anchor: PyTorch post-training static quantization (FX graph mode) and magnitude pruning.

    .venv-anchors/bin/python scripts/anchors/torch_ptq.py     (torch 2.9.1 from PyPI, setup.sh)
    /usr/bin/python3 scripts/anchors/torch_ptq.py             (Debian's python3-torch 1.13)

The digits models are rebuilt in PyTorch with the architectures of
scripts/make_samples.py (DigitsCNN and the MLP, copied here: importing that
script needs scipy/sklearn) and the weights read from samples/*.onnx (the ONNX
initializer names are the torch state_dict keys). The float torch model is
checked against ONNX Runtime's float logits first.

* PTQ: torch.ao.quantization FX graph mode, get_default_qconfig_mapping("fbgemm")
  (activations quint8 HistogramObserver with reduce_range=True, weights qint8
  per-channel symmetric), prepare_fx (fuses Conv+BN+ReLU) -> calibrate on the same
  512 images (batches of 64) -> convert_fx. (Debian's torch has no FBGEMM engine:
  there the "qnnpack" qconfig and engine are used, per-tensor, no reduce_range.) Timed: deepcopy + prepare + calibrate +
  convert (best of 5). Size: bytes of torch.save(state_dict).
* Pruning: torch.nn.utils.prune.global_unstructured(L1Unstructured) over every
  Conv2d and Linear weight at 50% and 80%, no fine-tuning, then prune.remove.
  Size: "-" (the tensors stay dense).

Accuracy and logit SQNR use common.top1 / common.sqnr_db, against the float torch
model, evaluated in PyTorch with one thread (a quantized torch model cannot be
run by ONNX Runtime). Rows go to build/anchors/results/torch_ptq.json.
"""

from __future__ import annotations

import copy
import io
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

warnings.filterwarnings("ignore")  # torch.ao.quantization deprecation notices
from torch.ao.quantization import get_default_qconfig_mapping  # noqa: E402
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx  # noqa: E402

TORCH = torch.__version__.split("+")[0]
# Debian's python3-torch 1.13 is built without FBGEMM: fall back to QNNPACK there.
ENGINE = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "qnnpack"
CALIB_BATCH = 64


class DigitsCNN(nn.Module):
    """scripts/make_samples.py's DigitsCNN (same module names, so the same state_dict keys)."""

    def __init__(self, channels: int = 16, wide: int = 32, classes: int = 10, eps: float = 1e-5):
        super().__init__()

        def conv_bn(cin, cout, k, groups=1):
            return nn.Sequential(
                nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout, eps=eps),
                nn.ReLU(),
            )

        self.stem = conv_bn(1, channels, 3)
        self.res = conv_bn(channels, channels, 3)
        self.depthwise = conv_bn(channels, channels, 3, groups=channels)
        self.pointwise = conv_bn(channels, wide, 1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(wide * 4 * 4, classes)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.res(x)
        x = self.pointwise(self.depthwise(x))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


def digits_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def load_from_onnx(model: str) -> nn.Module:
    m = onnx.load(str(common.MODELS[model]))
    eps = [helper.get_attribute_value(a) for n in m.graph.node if n.op_type == "BatchNormalization"
           for a in n.attribute if a.name == "epsilon"]
    net = DigitsCNN(eps=eps[0] if eps else 1e-5) if model == "digits_cnn" else digits_mlp()
    state = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{model}: weights do not match: missing {missing}, unexpected {unexpected}")
    return net.eval()


@torch.no_grad()
def logits(net: nn.Module, x: np.ndarray) -> np.ndarray:
    return net(torch.from_numpy(x)).numpy()


def state_bytes(net: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.tell()


def ptq(net: nn.Module, calib: np.ndarray) -> nn.Module:
    prepared = prepare_fx(copy.deepcopy(net).eval(), get_default_qconfig_mapping(ENGINE),
                          example_inputs=(torch.from_numpy(calib[:1]),))
    with torch.no_grad():
        for i in range(0, len(calib), CALIB_BATCH):
            prepared(torch.from_numpy(calib[i : i + CALIB_BATCH]))
    return convert_fx(prepared)


def global_prune(net: nn.Module, amount: float) -> nn.Module:
    net = copy.deepcopy(net)
    params = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)
    return net.eval()


def sparsity(net: nn.Module) -> float:
    ws = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return float(sum(int((w == 0).sum()) for w in ws)) / sum(w.numel() for w in ws)


def main() -> int:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.backends.quantized.engine = ENGINE
    x, labels = common.test_data()
    calib = common.calib_input()
    rows = []
    for model in common.MODELS:
        net = load_from_onnx(model)
        ref = logits(net, x)
        base = common.top1(ref, labels)
        check = ""
        try:  # the rebuilt model must be the ONNX model
            ort_ref = common.float_reference(model)
            check = "max |torch - ORT| float logits %.2g, same top-1: %s" % (
                float(np.max(np.abs(ref - ort_ref))), bool(np.array_equal(ref.argmax(1), ort_ref.argmax(1))))
        except ImportError:
            check = "onnxruntime not importable: rebuilt model not cross-checked"
        print(f"{model}: float torch top-1 {base:.2f}% ({check})", flush=True)
        rows.append(common.row(f"PyTorch {TORCH}", "float32 (rebuilt from ONNX)", model,
                               {"top1": base, "drop": 0.0, "sqnr_db": float("inf"), "size": state_bytes(net)},
                               None, check))

        holder = {}
        seconds = common.timed(lambda: holder.__setitem__("q", ptq(net, calib)))
        got = logits(holder["q"], x)
        acc = common.top1(got, labels)
        rows.append(common.row(f"PyTorch {TORCH}", f"PTQ FX {ENGINE} static int8", model,
                               {"top1": acc, "drop": base - acc, "sqnr_db": common.sqnr_db(ref, got),
                                "size": state_bytes(holder["q"])}, seconds, "size: torch.save(state_dict)"))
        for amount in (0.5, 0.8):
            seconds = common.timed(lambda: holder.__setitem__("p", global_prune(net, amount)))
            got = logits(holder["p"], x)
            acc = common.top1(got, labels)
            rows.append(common.row(f"PyTorch {TORCH}", f"prune global L1 {amount:.0%}", model,
                                   {"top1": acc, "drop": base - acc, "sqnr_db": common.sqnr_db(ref, got)},
                                   seconds, "sparsity %.1f%% of Conv/Linear weights, no fine-tuning"
                                   % (100 * sparsity(holder["p"]))))
    common.save_rows("torch_ptq", rows)
    print(common.markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
