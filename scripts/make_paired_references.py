#!/usr/bin/python3
"""Writes the fixture and reference figures that tests/metrics/paired_test.cpp checks the paired comparisons against.

Independent implementation: DeLong's structural components computed directly from their definition, with the
O(m n) comparison of every positive with every negative (psi = 1, 1/2, 0), not from midranks as the C++ does;
variances and covariances with numpy; the normal tail and Student's t quantiles from scipy.stats. Run with the
system Python after `apt-get install python3-scipy`:

    /usr/bin/python3 scripts/make_paired_references.py

Output (deterministic): tests/fixtures/metrics/paired.csv (group,label,score_a,score_b: two correlated
scorers with ties) and tests/fixtures/metrics/paired_reference.json.
"""

import csv
import json
import os

import numpy as np
from scipy.stats import norm, t

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "metrics")


def components(labels, scores):
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0), psi.mean()


def delong(labels, a, b):
    v10a, v01a, auc_a = components(labels, a)
    v10b, v01b, auc_b = components(labels, b)
    m, n = len(v10a), len(v01a)
    s10 = np.cov(np.vstack([v10a, v10b]))  # ddof 1
    s01 = np.cov(np.vstack([v01a, v01b]))
    s = s10 / m + s01 / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (auc_a - auc_b) / np.sqrt(var)
    return {
        "auroc_a": auc_a, "auroc_b": auc_b, "var_a": s[0, 0], "var_b": s[1, 1], "covariance": s[0, 1],
        "difference": auc_a - auc_b, "se": float(np.sqrt(var)), "z": float(z), "p": float(2 * norm.sf(abs(z))),
        "lo": float(auc_a - auc_b - norm.ppf(0.975) * np.sqrt(var)),
        "hi": float(auc_a - auc_b + norm.ppf(0.975) * np.sqrt(var)),
    }


def main():
    rng = np.random.default_rng(20261202)
    n_groups = 45
    rows = []
    for g in range(n_groups):
        size = int(rng.integers(1, 5))
        patient_effect = rng.normal(0, 0.6)
        for _ in range(size):
            label = int(rng.random() < 0.4)
            signal = 1.1 * label + patient_effect
            a = signal + rng.normal(0, 0.9)
            b = 0.6 * signal + rng.normal(0, 0.9) + 0.3 * (a - signal)  # correlated with a, weaker
            # Round to a coarse grid so that both scorers have ties, within and across classes.
            rows.append((f"G{g:03d}", label, round(a * 4) / 4, round(b * 4) / 4))
    with open(os.path.join(FIX, "paired.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["group", "label", "score_a", "score_b"])
        w.writerows(rows)
    labels = np.array([r[1] for r in rows])
    a = np.array([r[2] for r in rows])
    b = np.array([r[3] for r in rows])
    ref = {
        "delong": delong(labels, a, b),
        "delong_swapped": delong(labels, b, a),
        "images": len(rows),
        "groups": n_groups,
        "t_quantile_975": {str(df): float(t.ppf(0.975, df)) for df in [1, 2, 3, 4, 9, 29, 30, 31, 40, 60, 100, 1000]},
        "two_sided_p": {str(z): float(2 * norm.sf(abs(z))) for z in [0.0, 0.5, 1.959963984540054, -2.5, 4.0]},
    }
    with open(os.path.join(FIX, "paired_reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print(json.dumps(ref["delong"], indent=1))


if __name__ == "__main__":
    main()
