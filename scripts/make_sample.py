#!/usr/bin/python3
"""Builds the small attributed sample bundled in samples/ from ../shared/data (run once by a maintainer).

FracAtlas (CC BY 4.0): 64 fractured + 64 not fractured upper-extremity images of the evaluation subset
(hand==1, hardware==0, jpeg_truncated==0, cross_label_conflict==0), whole duplicate clusters, chosen with
a fixed seed, plus 2 truncated files (real bad input). GRAZPEDWRI-DX (CC BY 4.0): 3 of the 12 PNGs and
the dataset.csv rows of their patients.
"""
import csv, os, random, shutil, sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
dst = os.path.join(os.path.dirname(__file__), "..", "samples")
rng = random.Random(20261125)

rows = list(csv.DictReader(open(os.path.join(src, "fracatlas", "labels.csv"))))
ok = [r for r in rows if r["hand"] == "1" and r["hardware"] == "0" and r["jpeg_truncated"] == "0"
      and r["cross_label_conflict"] == "0" and int(r["width"]) * int(r["height"]) <= 500 * 500]
chosen = []
for label in ("fractured", "not_fractured"):
    clusters = sorted({r["dup_cluster"] for r in ok if r["label"] == label})
    rng.shuffle(clusters)
    picked = []
    for c in clusters:
        members = [r for r in ok if r["dup_cluster"] == c]
        if any(m["label"] != label for m in members):
            continue
        picked += members
        if len(picked) >= 64:
            break
    chosen += picked
trunc = sorted([r for r in rows if r["jpeg_truncated"] == "1"], key=lambda r: int(r["width"]) * int(r["height"]))[:2]
chosen += trunc
out = os.path.join(dst, "fracatlas")
shutil.rmtree(out, ignore_errors=True)
for r in chosen:
    os.makedirs(os.path.join(out, os.path.dirname(r["path"])), exist_ok=True)
    shutil.copy(os.path.join(src, "fracatlas", r["path"]), os.path.join(out, r["path"]))
with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(chosen)
print("fracatlas:", sum(r["label"] == "fractured" for r in chosen), "fractured,",
      sum(r["label"] == "not_fractured" for r in chosen), "not fractured,", len(trunc), "truncated")

g = os.path.join(dst, "grazpedwri-dx")
shutil.rmtree(g, ignore_errors=True)
os.makedirs(os.path.join(g, "images"))
stems = ["2425_1070629475_01_WRI-L2_F005", "1068_1253423501_03_WRI-L2_F010", "0004_0542630449_01_WRI-L1_M003"]
for s in stems:
    shutil.copy(os.path.join(src, "grazpedwri-dx", "images", s + ".png"), os.path.join(g, "images"))
raw = open(os.path.join(src, "grazpedwri-dx", "dataset.csv"), "rb").read().decode("utf-8-sig")
lines = raw.split("\r\n")
patients = {l.split(",")[1] for l in lines[1:] if l.split(",")[0] in stems}
keep = [lines[0]] + [l for l in lines[1:] if l and l.split(",")[1] in patients]
# Keep the original bytes' quirks: UTF-8 BOM and CRLF line ends.
open(os.path.join(g, "dataset.csv"), "wb").write(("\ufeff" + "\r\n".join(keep) + "\r\n").encode("utf-8"))
print("grazpedwri-dx:", len(stems), "images,", len(keep) - 1, "csv rows of", len(patients), "patients")
