#!/usr/bin/python3
"""Compares wristssl's DICOM decoder with an independent pydicom reference.

For every *.dcm file in FOLDER (or the single FILE given), the reference is computed with pydicom:
frame 0 -> apply_modality_lut -> VOI (the file's first window centre/width, else its first VOI LUT, else the
min-max of the modality-transformed values) -> [0, 1] -> MONOCHROME1 inverted so that bone is bright.
wristssl's output comes from `WRISTSSL inspect FILE --out OUT.png` (a 16-bit grey PNG, 0..65535).
Prints per-file max / mean absolute difference (in [0, 1] units) and exits 1 if a file exceeds --tol.

Needs the Debian python (/usr/bin/python3) with pydicom, numpy, PIL and python3-gdcm (for JPEG, JPEG-LS and
JPEG 2000 pixel data).

  /usr/bin/python3 scripts/check_dicom_decoder.py build/tools/wristssl/wristssl samples/dicom
  /usr/bin/python3 scripts/check_dicom_decoder.py --reference-only samples/dicom   # reference numbers only
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

try:  # GDCM (pydicom's JPEG / JPEG-LS / JPEG 2000 handler here) prints its errors to stderr: keep it quiet
    import gdcm

    gdcm.Trace.WarningOff()
    gdcm.Trace.ErrorOff()
except (ImportError, AttributeError):
    pass


def _frame0(ds):
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"not a single-sample image (shape {arr.shape})")
    return arr


def reference(path):
    """Returns (image in [0,1] as float64 HxW, description of the VOI applied)."""
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        # No meta header (e.g. a bare implicit VR little endian data set): tell pydicom how it is encoded.
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    photometric = str(ds.PhotometricInterpretation).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric {photometric} not handled")
    stored = _frame0(ds)
    x = apply_modality_lut(stored, ds).astype(np.float64)

    if "WindowCenter" in ds and "WindowWidth" in ds:
        centre = ds.WindowCenter
        width = ds.WindowWidth
        centre = float(centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        func = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper()
        if func == "SIGMOID":
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - centre) / width))
        else:
            # PS3.3 C.11.2.1.2.1, the linear function pydicom's apply_voi_lut uses, with its output range
            # [y_min, y_max] mapped to [0, 1].
            c, w = centre - 0.5, width - 1.0
            if w <= 0:
                w = 1.0
            y = np.clip((x - c) / w + 0.5, 0.0, 1.0)
        voi = f"window c={centre:g} w={width:g} {func}"
    elif "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2])
        y = apply_voi_lut(x, ds, index=0, prefer_lut=True).astype(np.float64)
        y = np.clip(y / float(2 ** bits - 1), 0.0, 1.0)
        voi = "VOI LUT"
    else:
        lo, hi = float(x.min()), float(x.max())
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        voi = f"min-max [{lo:g}, {hi:g}]"
    if photometric == "MONOCHROME1":
        y = 1.0 - y
    return y, voi


def read_png16(path):
    from PIL import Image

    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a grey PNG, got shape {arr.shape}")
    return arr.astype(np.float64) / 65535.0


def list_files(target):
    if os.path.isdir(target):
        return sorted(os.path.join(target, f) for f in os.listdir(target) if f.lower().endswith(".dcm"))
    return [target]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wristssl", nargs="?", help="path to the wristssl binary (omit with --reference-only)")
    ap.add_argument("target", help="a folder of .dcm files, or one file")
    ap.add_argument("--tol", type=float, default=0.01, help="largest allowed max abs difference (default 0.01)")
    ap.add_argument("--reference-only", action="store_true",
                    help="print the reference mean and a few pixels per file, run nothing")
    args = ap.parse_args()
    if not args.reference_only and not args.wristssl:
        ap.error("give the wristssl binary, or --reference-only")

    failed = False
    with tempfile.TemporaryDirectory(prefix="check_dicom_") as tmp:
        for path in list_files(args.target):
            name = os.path.basename(path)
            ref_error = None
            try:
                ref, voi = reference(path)
            except Exception as e:  # noqa: BLE001 - report and go on
                ref_error = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            if args.reference_only:
                if ref_error:
                    print(f"{name}: no reference: {ref_error}")
                    continue
                h, w = ref.shape
                pts = [(0, 0), (h // 2, w // 2), (h // 4, (3 * w) // 4), ((3 * h) // 4, w // 4), (h - 1, w - 1)]
                vals = ", ".join(f"({r},{c})={ref[r, c]:.6f}" for r, c in pts)
                print(f"{name}: {w}x{h} {voi} mean={ref.mean():.6f} min={ref.min():.6f} max={ref.max():.6f} {vals}")
                continue
            out = os.path.join(tmp, name + ".png")
            proc = subprocess.run([args.wristssl, "inspect", path, "--out", out], capture_output=True, text=True)
            ok = proc.returncode == 0 and os.path.exists(out)
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            detail = detail[-1][:200] if detail else f"rc={proc.returncode}"
            if ref_error:
                # Nothing to compare with (e.g. no Pixel Data, or a codec pydicom lacks): not a failure.
                print(f"{name}: no reference ({ref_error}); wristssl {'decoded it' if ok else 'rejected it: ' + detail}")
                continue
            if not ok:
                print(f"{name}: wristssl failed: {detail}  FAIL")
                failed = True
                continue
            h, w = ref.shape
            got = read_png16(out)
            if got.shape != ref.shape:
                print(f"{name}: shape {got.shape} != reference {ref.shape}")
                failed = True
                continue
            diff = np.abs(got - ref)
            bad = diff.max() > args.tol
            failed |= bad
            print(f"{name}: {w}x{h} {voi}: max_abs_diff={diff.max():.6f} mean_abs_diff={diff.mean():.6f} "
                  f"p99={np.percentile(diff, 99):.6f}{'  FAIL' if bad else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
