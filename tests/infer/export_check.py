#!/usr/bin/python3
"""Checks the three exports of export_example against the native model's logits, each in its own runtime:
TorchScript with torch.jit.load, the torchvision state dict in torchvision's resnet18, and ONNX through
onnx.checker and ONNX Runtime (onnxruntime-node). Usage: export_check.py DIR NODE_RUNNER. Exit 77 when a
runtime is missing."""
import json, os, subprocess, sys

try:
    import numpy as np
    import torch, torchvision, onnx
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

d, runner = sys.argv[1], sys.argv[2]
shapes = [(2, 1, 64, 80), (1, 1, 96, 96)]
worst = {}

def check(name, got, want):
    diff = float(np.abs(got - want).max())
    worst[name] = max(worst.get(name, 0.0), diff)

ts = torch.jit.load(os.path.join(d, "model.torchscript"))
extra = {"wristssl.json": ""}
torch.jit.load(os.path.join(d, "model.torchscript"), _extra_files=extra)
meta = json.loads(extra["wristssl.json"])
assert meta["architecture"]["name"] == "resnet18", meta

# An lse-pooled model has no torchvision export (export_example checks it is refused).
tv = None
if os.path.exists(os.path.join(d, "model.torchvision")):
    tv = torchvision.models.resnet18(num_classes=2)
    tv.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    tv.load_state_dict(torch.load(os.path.join(d, "model.torchvision")), strict=True)
    tv.eval()
else:
    assert meta["architecture"]["pooling"]["kind"] == "lse", meta["architecture"]

model = onnx.load(os.path.join(d, "model.onnx"))
onnx.checker.check_model(model, full_check=True)
dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
assert dims[0] and dims[2] and dims[3], f"batch, height and width must be free: {dims}"

ort_missing = ""
for k, shape in enumerate(shapes):
    x = np.fromfile(os.path.join(d, f"input{k}.bin"), dtype="<f4").reshape(shape)
    want = np.fromfile(os.path.join(d, f"native{k}.bin"), dtype="<f4").reshape(shape[0], 2)
    with torch.no_grad():
        check("torchscript (torch.jit.load)", ts(torch.from_numpy(x)).numpy(), want)
        if tv is not None:
            check("torchvision resnet18 state dict", tv(torch.from_numpy(x)).numpy(), want)
    out = os.path.join(d, f"onnx{k}.bin")
    r = subprocess.run(["node", runner, os.path.join(d, "model.onnx"), os.path.join(d, f"input{k}.bin"),
                        ",".join(map(str, shape)), out], capture_output=True, text=True)
    if r.returncode != 0:
        if "cannot load onnxruntime-node" in r.stderr:
            ort_missing = r.stderr.strip()
            continue
        sys.exit(f"onnxruntime-node failed: {r.stderr}")
    check("onnx (onnxruntime-node)", np.fromfile(out, dtype="<f4").reshape(shape[0], 2), want)

print(json.dumps({"max_abs_diff_vs_native": worst}))
bad = {k: v for k, v in worst.items() if not v <= 1e-4}
if bad:
    sys.exit(f"exports differ from the native model by more than 1e-4: {bad}")
if ort_missing:
    print(f"skip: the ONNX graph passed onnx.checker but was not run: {ort_missing}")
    sys.exit(77)
