#!/usr/bin/python3
"""Compares wristssl's PNG and JPEG decoding with an independent decoder (PIL + numpy) on real files,
including ones not bundled in the repo (../shared/data). DICOM: scripts/check_dicom_decoder.py.

For each file: `WRISTSSL inspect FILE --out OUT.png` (16-bit grey PNG of the decoded image) versus PIL's
decode (16-bit grey as is; 8-bit grey as is; colour -> Rec. 601 luma) scaled to [0, 1]. JPEGs that PIL
itself reports as truncated must be refused by wristssl with a `truncated` error.

  /usr/bin/python3 scripts/check_decoders.py build/wristssl ../shared/data/grazpedwri-dx/images \
      ../shared/data/fracatlas/images --max-files 400
Exits 1 if any file differs by more than --tol (default 2/255: libjpeg's Y channel vs PIL's RGB->L).
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image, ImageFile

ImageFile.LOAD_TRUNCATED_IMAGES = False


def reference(path):
    im = Image.open(path)
    im.load()
    if im.mode in ("I;16", "I;16B", "I"):
        return np.asarray(im).astype(np.float64) / 65535.0
    if im.mode in ("RGB", "RGBA", "P", "CMYK"):
        rgb = np.asarray(im.convert("RGB")).astype(np.float64)
        return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    return np.asarray(im.convert("L")).astype(np.float64) / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wristssl")
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--max-files", type=int, default=0, help="per folder, evenly spaced (0 = all)")
    ap.add_argument("--tol", type=float, default=2.0 / 255)
    a = ap.parse_args()
    worst, n, bad, refused = 0.0, 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for folder in a.folders:
            files = sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs
                           if f.lower().endswith((".png", ".jpg", ".jpeg")))
            if a.max_files and len(files) > a.max_files:
                files = [files[i * len(files) // a.max_files] for i in range(a.max_files)]
            for path in files:
                out = os.path.join(tmp, "x.png")
                try:
                    ref = reference(path)
                except OSError as e:  # PIL: truncated / broken
                    r = subprocess.run([a.wristssl, "inspect", path], capture_output=True, text=True)
                    ok = r.returncode != 0 and "truncated" in r.stderr
                    refused += ok
                    bad += not ok
                    print(f"{'refused ' if ok else 'ACCEPTED'} {path}: PIL says {e}; wristssl: {r.stderr.strip()[:120]}")
                    continue
                r = subprocess.run([a.wristssl, "inspect", path, "--out", out], capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAILED   {path}: {r.stderr.strip()}")
                    bad += 1
                    continue
                got = np.asarray(Image.open(out)).astype(np.float64) / 65535.0
                if got.shape != ref.shape:
                    print(f"SHAPE    {path}: {got.shape} vs {ref.shape}")
                    bad += 1
                    continue
                d = np.abs(got - ref)
                worst = max(worst, d.max())
                n += 1
                if d.max() > a.tol:
                    bad += 1
                    print(f"DIFF     {path}: max {d.max():.2e} mean {d.mean():.2e}")
    print(f"{n} files compared with PIL: worst max abs difference {worst:.2e} (tolerance {a.tol:.2e}); "
          f"{refused} truncated files refused; {bad} problems")
    sys.exit(1 if bad else 0)


main()
