#!/usr/bin/python3
"""Writes tests/fixtures: small PNG / JPEG variants made with PIL, and reference.json with the pixels an
independent decoder (PIL + numpy) reads from them and from the bundled real radiographs. The C++ tests
compare read_image against these numbers. Run from the repository root with Debian's /usr/bin/python3."""
import json, os
import numpy as np
from PIL import Image

out = "tests/fixtures"
os.makedirs(out, exist_ok=True)
src = Image.open("samples/fracatlas/images/Fractured/IMG0000319.jpg").convert("RGB")
crop = src.crop((280, 0, 344, 48))  # 64x48, the highest-contrast patch (bone edge)
grey = crop.convert("L")
g16 = (np.asarray(grey, dtype=np.uint16) * 257 + np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) % 251)

made = {
    "grey8.png": lambda p: grey.save(p),
    "rgb8.png": lambda p: crop.save(p),
    "rgba8.png": lambda p: crop.convert("RGBA").save(p),
    "palette.png": lambda p: grey.convert("P", palette=Image.ADAPTIVE, colors=32).save(p),
    "grey1.png": lambda p: grey.convert("1").save(p),
    "grey16.png": lambda p: Image.fromarray(g16).save(p),
    "grey.jpg": lambda p: grey.save(p, quality=90),
    "rgb.jpg": lambda p: crop.save(p, quality=90),
    "progressive.jpg": lambda p: grey.save(p, quality=85, progressive=True),
}
refs = {}
def ref_of(path):
    im = Image.open(path)
    if im.mode in ("I;16", "I;16B", "I"):
        a = np.asarray(im).astype(np.float64) / 65535.0
    elif im.mode in ("RGB", "RGBA", "P"):
        rgb = np.asarray(im.convert("RGB")).astype(np.float64)
        a = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    else:  # L, 1
        a = np.asarray(im.convert("L")).astype(np.float64) / 255.0
    return a

for name, make in made.items():
    if make is None:
        continue
    p = os.path.join(out, name)
    make(p)
    a = ref_of(p)
    refs[name] = {"width": a.shape[1], "height": a.shape[0], "pixels": [round(float(v), 6) for v in a.ravel()]}

for rel in ["samples/grazpedwri-dx/images/" + f for f in sorted(os.listdir("samples/grazpedwri-dx/images"))] + \
           ["samples/fracatlas/images/Fractured/IMG0000319.jpg", "samples/fracatlas/images/Non_fractured/" +
            sorted(os.listdir("samples/fracatlas/images/Non_fractured"))[0]]:
    im = Image.open(rel)
    if rel.endswith(".jpg"):
        a = np.asarray(im.convert("L")).astype(np.float64) / 255.0  # PIL: decode to RGB, then 601 luma
    else:
        a = ref_of(rel)
    h, w = a.shape
    probes = [(y, x) for y in (0, h // 3, h // 2, h - 1) for x in (0, w // 4, w // 2, w - 1)]
    refs[rel] = {"width": w, "height": h, "mean": float(a.mean()),
                 "probes": [[y, x, float(a[y, x])] for y, x in probes]}
json.dump(refs, open(os.path.join(out, "reference.json"), "w"), indent=0)
print("wrote", len(refs), "references")
