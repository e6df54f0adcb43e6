#!/usr/bin/python3
"""The Python peer of `wristssl predict`: the TorchScript export of the same bundle run by Debian's
PyTorch (torch.jit.load), decoding and preprocessing the same folder of 16-bit PNGs with PIL and NumPy in
DataLoader worker processes, the same intra-op threads. Prints images/s over the folder (after one
warm-up pass, unless ONCE is given: then one pass, for timing the whole command).
Usage: predict_pytorch.py DIR THREADS [BATCH] [once]"""
import json, os, sys, time

import numpy as np
import torch
from PIL import Image

d, threads = sys.argv[1], int(sys.argv[2])
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
once = len(sys.argv) > 4 and sys.argv[4] == "once"
torch.set_num_threads(threads)
extra = {"wristssl.json": ""}
model = torch.jit.load(os.path.join(d, "model.torchscript"), _extra_files=extra)
model.eval()
meta = json.loads(extra["wristssl.json"])
pre = meta["preprocessing"]
size, mean, std = pre["input_size"], pre["normalization"]["mean"], pre["normalization"]["std"]
files = sorted(os.path.join(d, "images", f) for f in os.listdir(os.path.join(d, "images")))


class Folder(torch.utils.data.Dataset):
    def __len__(self):
        return len(files)

    def __getitem__(self, i):
        im = Image.open(files[i])
        a = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I") else 255.0)
        small = Image.fromarray(a, mode="F").resize((size, size), Image.BOX)  # area averaging, as wristssl
        x = (np.asarray(small, dtype=np.float32) - mean) / std
        return torch.from_numpy(x).unsqueeze(0)


loader = torch.utils.data.DataLoader(Folder(), batch_size=batch, num_workers=2)


def one_pass():
    out = []
    with torch.no_grad():
        for x in loader:
            out.append(model(x))
    return torch.cat(out)


if not once:
    one_pass()  # warm-up (TorchScript profiling runs, worker start)
t0 = time.perf_counter()
logits = one_pass()
s = time.perf_counter() - t0
print(json.dumps({"images": len(files), "seconds": round(s, 3), "images_per_s": round(len(files) / s, 2),
                  "threads": threads, "batch": batch, "torch": torch.__version__}))
