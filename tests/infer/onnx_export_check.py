#!/usr/bin/env python3
"""The ONNX export checked against onnx itself and an independent reference (onnx_export_check.sh).

  onnx_export_check.py prepare WORK   onnx.checker.check_model(full_check=True) on WORK/model.onnx, then
                                      writes the seeded inputs WORK/input_<case>.bin (raw float32)
  onnx_export_check.py compare WORK   recomputes the logits from WORK/weights.{json,bin} with
                                      torch.nn.functional in float64 and compares them with ONNX Runtime's
                                      WORK/output_<case>.bin; exit 1 when max |difference| > TOLERANCE

The reference knows ResNet-18 (strides, padding, pooling) on its own: it reads only the weights, never the
graph, so a wrong attribute or a mis-laid weight in the export shows up as a difference.
"""
import json
import sys

import numpy as np

# name -> input shape: non-square with batch 2, then a different square size (dynamic axes).
CASES = {"a": (2, 1, 64, 80), "b": (1, 1, 96, 96)}
TOLERANCE = 1e-4
SEED = 20240611


def prepare(work):
    import onnx

    model = onnx.load(f"{work}/model.onnx")
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    out = inferred.graph.output[0]
    dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    print(f"onnx {onnx.__version__}: check_model(full_check=True) passed; IR {model.ir_version}, "
          f"opset {model.opset_import[0].version}, {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers; output {out.name} {dims}")
    rng = np.random.default_rng(SEED)
    for name, shape in CASES.items():
        rng.standard_normal(shape).astype("<f4").tofile(f"{work}/input_{name}.bin")


def load_weights(work):
    import torch

    manifest = json.load(open(f"{work}/weights.json"))
    flat = np.fromfile(f"{work}/weights.bin", dtype="<f4")
    weights = {}
    for t in manifest["tensors"]:
        n = int(np.prod(t["shape"]))
        values = flat[t["offset"]:t["offset"] + n].reshape(t["shape"])
        weights[t["name"]] = torch.from_numpy(values.astype(np.float64))
    return weights


def resnet18(x, w):
    """torchvision's ResNet-18 forward with batch norm already folded into each conv's bias."""
    import torch.nn.functional as F

    def conv(h, name, stride, padding):
        return F.conv2d(h, w[name + ".weight"], w[name + ".bias"], stride=stride, padding=padding)

    h = F.relu(conv(x, "conv1", 2, 3))
    h = F.max_pool2d(h, kernel_size=3, stride=2, padding=1)
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            stride = 2 if layer > 1 and block == 0 else 1
            y = F.relu(conv(h, p + ".conv1", stride, 1))
            y = conv(y, p + ".conv2", 1, 1)
            shortcut = conv(h, p + ".downsample.0", stride, 0) if p + ".downsample.0.weight" in w else h
            h = F.relu(y + shortcut)
    h = F.adaptive_avg_pool2d(h, 1).flatten(1)
    return F.linear(h, w["fc.weight"], w["fc.bias"])


def compare(work):
    import torch

    torch.set_num_threads(1)
    w = load_weights(work)
    # Negative control: the same weights with conv1's kernels transposed (a plausible layout mistake).
    w_bad = dict(w, **{"conv1.weight": w["conv1.weight"].transpose(2, 3).contiguous()})
    worst, worst_bad = 0.0, float("inf")
    for name, shape in CASES.items():
        x = torch.from_numpy(np.fromfile(f"{work}/input_{name}.bin", dtype="<f4").reshape(shape))
        ref = resnet18(x.double(), w).numpy()
        ort = np.fromfile(f"{work}/output_{name}.bin", dtype="<f4").reshape(ref.shape)
        diff = float(np.max(np.abs(ort.astype(np.float64) - ref)))
        bad = float(np.max(np.abs(resnet18(x.double(), w_bad).numpy() - ref)))
        print(f"case {name} {list(shape)}: logits {np.array2string(ref.ravel(), precision=4)}; "
              f"max |onnxruntime - reference| = {diff:.3g}; with conv1 transposed {bad:.3g}")
        if not np.all(np.isfinite(ref)) or np.max(np.abs(ref)) < 1e-3:
            sys.exit(f"onnx_export_check: FAIL: reference logits are degenerate for case {name}")
        worst, worst_bad = max(worst, diff), min(worst_bad, bad)
    print(f"max abs difference {worst:.3g} (tolerance {TOLERANCE:g})")
    if worst_bad <= 10 * TOLERANCE:
        sys.exit("onnx_export_check: FAIL: the comparison cannot tell a transposed conv1 apart")
    if worst > TOLERANCE:
        sys.exit(f"onnx_export_check: FAIL: max abs difference {worst:.3g} > {TOLERANCE:g}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "compare"):
        sys.exit("usage: onnx_export_check.py prepare|compare WORK")
    {"prepare": prepare, "compare": compare}[sys.argv[1]](sys.argv[2])
