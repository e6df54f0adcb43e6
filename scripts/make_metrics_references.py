#!/usr/bin/python3
"""Writes the score files and reference figures that tests/metrics/*_test.cpp check the C++ metrics against.

Independent implementation: scikit-learn for curves, areas, confusion counts and F1; scipy's Wilson interval
(binomtest(...).proportion_ci) cross-checked against the Wilson formula written out here; exact fractions
for Youden's J and target-sensitivity thresholds; numpy for percentiles. Run with the system Python, which
has scikit-learn, numpy and scipy:

    /usr/bin/python3 scripts/make_metrics_references.py

Output (deterministic for a fixed seed): tests/fixtures/metrics/{tiny,ties_grouped,ties_imbalanced,
continuous}.csv and tests/fixtures/metrics/reference.json.
"""

import csv
import json
import math
import os
from fractions import Fraction

import numpy as np
from scipy.stats import binomtest, norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "metrics")
Z = norm.ppf(0.975)
THRESHOLDS = [0.5, 0.3, 0.75]
BAND_POINTS = 101
CAL_BINS = 10


def wilson(k, n):
    """Wilson score interval, written out; checked against scipy below."""
    p = k / n
    den = 1 + Z * Z / n
    center = (p + Z * Z / (2 * n)) / den
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, center - half)
    hi = 1.0 if k == n else min(1.0, center + half)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert abs(lo - ci.low) < 1e-12 and abs(hi - ci.high) < 1e-12, (k, n, lo, ci.low, hi, ci.high)
    return {"num": k, "den": n, "value": p, "lo": float(ci.low), "hi": float(ci.high)}


def proportion(k, n):
    return wilson(k, n) if n > 0 else {"num": k, "den": n, "value": 0.0, "lo": 0.0, "hi": 1.0}


def at_threshold(y, s, t):
    pred = (s >= t).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    acc = proportion(tp + tn, len(y))
    prec = proportion(tp, tp + fp)
    rec = proportion(tp, tp + fn)
    assert abs(acc["value"] - accuracy_score(y, pred)) < 1e-15
    assert abs(prec["value"] - precision_score(y, pred, zero_division=0)) < 1e-15
    assert abs(rec["value"] - recall_score(y, pred)) < 1e-15
    return {
        "threshold": t,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": acc,
        "precision": prec,
        "recall": rec,
        "specificity": proportion(tn, tn + fp),
        "npv": proportion(tn, tn + fn),
        "f1": float(f1_score(y, pred, zero_division=0)),
    }


def youden(y, s):
    """Exact J with fractions; highest threshold on ties."""
    P, N = int(y.sum()), int(len(y) - y.sum())
    best, best_t = None, None
    for t in sorted(set(s.tolist()), reverse=True):
        tp = int(((s >= t) & (y == 1)).sum())
        fp = int(((s >= t) & (y == 0)).sum())
        j = Fraction(tp, P) - Fraction(fp, N)
        if best is None or j > best:
            best, best_t = j, t
    return best_t


def sensitivity_threshold(y, s, target):
    P = int(y.sum())
    for t in sorted(set(s.tolist()), reverse=True):
        tp = int(((s >= t) & (y == 1)).sum())
        if Fraction(tp, P) >= Fraction(target):  # exact, except target itself is the double nearest it
            return t
    raise AssertionError("unreachable")


def band_tpr(fpr, tpr, grid):
    """TPR at each grid FPR: max over ROC segments spanning it (top of a vertical segment)."""
    out = []
    for f in grid:
        best = 0.0
        for x0, y0, x1, y1 in zip(fpr[:-1], tpr[:-1], fpr[1:], tpr[1:]):
            if x0 <= f <= x1:
                v = y1 if x1 == x0 or f == x1 else y0 + (f - x0) / (x1 - x0) * (y1 - y0)
                best = max(best, v)
        out.append(best)
    return out


def calibration(y, s, bins):
    """ECE and bins by the documented rule: bin = min(floor(s * bins), bins - 1)."""
    idx = np.minimum(np.floor(s * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        c = int(m.sum())
        if c:
            ms, fr = float(s[m].mean()), float(y[m].mean())
            ece += c / len(y) * abs(ms - fr)
            w = wilson(int(y[m].sum()), c)
            rows.append({"count": c, "mean_score": ms, "fraction_positive": fr, "lo": w["lo"], "hi": w["hi"]})
        else:
            rows.append({"count": 0})
    return {"bins": bins, "ece": ece, "table": rows}


def reference(name, y, s, groups):
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    prec, rec, pthr = precision_recall_curve(y, s)
    grid = [k / (BAND_POINTS - 1) for k in range(BAND_POINTS)]
    ref = {
        "file": name + ".csv",
        "n": len(y),
        "n_positive": int(y.sum()),
        "distinct_scores": len(set(s.tolist())),
        "auroc": float(roc_auc_score(y, s)),
        "auprc": float(average_precision_score(y, s)),
        # sklearn's first ROC threshold is a stand-in for +infinity: left out.
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": thr[1:].tolist()},
        # Reversed to recall-increasing order, the C++ order; the first point (recall 0, precision 1) has no
        # threshold.
        "pr": {"recall": rec[::-1].tolist(), "precision": prec[::-1].tolist(), "threshold": pthr[::-1].tolist()},
        "at_threshold": [at_threshold(y, s, t) for t in THRESHOLDS],
        "youden_threshold": youden(y, s),
        "sensitivity_threshold": {str(t): sensitivity_threshold(y, s, t) for t in (0.95, 0.8)},
        "band_grid_points": BAND_POINTS,
        "band_tpr": band_tpr(fpr.tolist(), tpr.tolist(), grid),
        "calibration": calibration(y, s, CAL_BINS),
        "n_groups": len(set(groups)) if groups is not None else 0,
    }
    # AUROC as Mann-Whitney U with exact fractions: must equal sklearn's trapezoid.
    pos, neg = s[y == 1], s[y == 0]
    u = sum(Fraction(int((neg < p).sum())) + Fraction(int((neg == p).sum()), 2) for p in pos)
    assert abs(float(u / (len(pos) * len(neg))) - ref["auroc"]) < 1e-14
    if name == "continuous":
        # No score on a bin edge: sklearn's calibration_curve bins agree with the documented rule.
        prob_true, prob_pred = calibration_curve(y, s, n_bins=CAL_BINS, strategy="uniform")
        ref["sklearn_calibration"] = {"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist()}
        rows = [r for r in ref["calibration"]["table"] if r["count"]]
        assert np.allclose([r["fraction_positive"] for r in rows], prob_true, atol=1e-12)
        assert np.allclose([r["mean_score"] for r in rows], prob_pred, atol=1e-12)
    return ref


def write_csv(name, header, rows):
    with open(os.path.join(OUT, name + ".csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    refs = {}

    # Hand-workable: one tie across classes at 0.8.
    y = np.array([1, 0, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.8, 0.4, 0.3, 0.1])
    write_csv("tiny", ["label", "score"], zip(y.tolist(), s.tolist()))
    refs["tiny"] = reference("tiny", y, s, None)

    # 400 images of ~130 patients (1-5 views each), label per patient, scores rounded to 0.1: heavy ties.
    groups, y, s = [], [], []
    g = 0
    while len(y) < 400:
        size = int(rng.integers(1, 6))
        label = int(rng.random() < 0.4)
        for _ in range(min(size, 400 - len(y))):
            groups.append("P%03d" % g)
            y.append(label)
            raw = rng.normal(0.62 if label else 0.38, 0.2)
            s.append(round(float(np.clip(raw, 0.0, 1.0)), 1))
        g += 1
    y, s = np.array(y), np.array(s)
    write_csv("ties_grouped", ["group", "label", "score"], zip(groups, y.tolist(), s.tolist()))
    refs["ties_grouped"] = reference("ties_grouped", y, s, groups)

    # 250 images, 20% positive, score column first, an extra column, labels written as 0.0 / 1.0.
    y = (rng.random(250) < 0.2).astype(int)
    s = np.round(np.clip(rng.normal(0.3 + 0.35 * y, 0.18), 0, 1), 1)
    write_csv("ties_imbalanced", ["score", "note", "label"],
              [(sv, "view%d" % (i % 3), "%.1f" % yv) for i, (sv, yv) in enumerate(zip(s.tolist(), y.tolist()))])
    refs["ties_imbalanced"] = reference("ties_imbalanced", y, s, None)

    # 300 images with continuous scores in (0, 1) (no ties, none on a bin edge), for calibration vs sklearn.
    y = (rng.random(300) < 0.35).astype(int)
    s = 1 / (1 + np.exp(-rng.normal(-0.6 + 1.6 * y, 1.0)))
    write_csv("continuous", ["label", "score"], zip(y.tolist(), [repr(float(v)) for v in s]))
    refs["continuous"] = reference("continuous", y, s, None)

    values = rng.normal(0.8, 0.05, 37).tolist()
    qs = [0.0, 2.5, 25.0, 50.0, 97.5, 100.0]
    refs_out = {
        "generator": "scripts/make_metrics_references.py",
        "z": Z,
        "files": refs,
        "percentile": {"values": values, "p": qs, "expected": np.percentile(values, qs).tolist()},
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(refs_out, f, indent=1)
        f.write("\n")
    for k, r in refs.items():
        print("%-16s n=%d pos=%d distinct=%d auroc=%.6f ap=%.6f youden=%s" %
              (k, r["n"], r["n_positive"], r["distinct_scores"], r["auroc"], r["auprc"], r["youden_threshold"]))


if __name__ == "__main__":
    main()
