#!/usr/bin/python3
"""Checks a finished `wristssl study` folder against its own inputs, independently of the C++:
folds grouped (no group in two folds, every labelled image in exactly one), the pretraining pool disjoint
from every labelled image and every group holding one, each run's test images exactly its fold, every arm
and fraction in the table, the paired figures consistent with the per-fold AUROCs, the page with its plot,
and a model bundle per arm.

    study_check.py STUDY_DIR
"""

import collections
import functools
import csv
import glob
import json
import math
import os
import statistics
import sys


def auroc(labels, scores):
    pos = [s for l, s in zip(labels, scores) if l == 1]
    neg = [s for l, s in zip(labels, scores) if l == 0]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main(out):
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    study = json.load(open(os.path.join(out, "study.json")))
    cfg = study["config"]
    k = study["folds"]
    # 1. Folds: whole groups, every labelled image once.
    for seed in study["seeds"]:
        folds = json.load(open(os.path.join(out, "splits", f"folds-seed{seed}.json")))
        by_group = collections.defaultdict(set)
        for r in folds:
            by_group[r["group"]].add(r["fold"])
        check(all(len(f) == 1 for f in by_group.values()), f"seed {seed}: a group in two folds")
        check(len({r["path"] for r in folds}) == len(folds), "an image listed twice in the folds")
        check({r["fold"] for r in folds} == set(range(k)), "a fold is empty")
        labelled_paths = {os.path.realpath(r["path"]) for r in folds}
        labelled_groups = {r["group"] for r in folds}
        fold_of = {r["path"]: r["fold"] for r in folds}
        # 3. Each run scored exactly its fold's (readable) images; together every labelled image once.
        for frac in study["fractions"]:
            for arm in study["arms"]:
                seen = collections.Counter()
                for f in range(k):
                    pct = ("%g" % (frac * 100)) + "pct"
                    done = json.load(open(os.path.join(out, "cv", arm, f"seed{seed}-fold{f}-{pct}", "done.json")))
                    for path, group, label, score in done["scores"]:
                        check(fold_of.get(path) == f, f"{arm} fold {f}: scored {path}, which is not in the fold")
                        seen[path] += 1
                    labels = [s[2] for s in done["scores"]]
                    scores = [s[3] for s in done["scores"]]
                    a = auroc(labels, scores)
                    if a is not None:
                        check(abs(a - done["test_auroc"]) < 1e-9, f"{arm} fold {f}: test AUROC {done['test_auroc']} != {a}")
                check(all(c == 1 for c in seen.values()), f"{arm}: an image scored twice")
                check(len(seen) >= 0.95 * len(fold_of), f"{arm} {frac}: only {len(seen)} of {len(fold_of)} images scored")
    # 2. The pretraining pool: nothing labelled, no group that holds a labelled image.
    pool = json.load(open(os.path.join(out, "pretrain_pool.json")))
    kept = [r for r in pool["records"] if r["part"] == "train"]
    check(len(kept) > 0, "empty pretraining pool")
    for r in kept:
        check(os.path.realpath(r["path"]) not in labelled_paths, f"labelled image in the pretraining pool: {r['path']}")
        check(r["group"] not in labelled_groups, f"pool image {r['path']} shares group {r['group']} with a labelled image")
    runs = glob.glob(os.path.join(out, "pretrain*", "config.json"))
    check(len(runs) > 0, "no pretraining run")
    for run in runs:
        used = json.load(open(run))["resolved"]["pretrain_images"]
        check(used == len(kept), f"{run}: pretrained on {used} images, the pool has {len(kept)}")
    # The runs' own scores, read back: per (arm, fraction, seed), each fold's test AUROC and the out-of-fold
    # scores by image.
    @functools.lru_cache(maxsize=None)
    def runs_of(arm, frac, seed):
        pct = ("%g" % (frac * 100)) + "pct"
        folds = [json.load(open(os.path.join(out, "cv", arm, f"seed{seed}-fold{f}-{pct}", "done.json"))) for f in range(k)]
        return [d["test_auroc"] for d in folds], {s[0]: (s[2], s[3]) for d in folds for s in d["scores"]}

    def check_paired(where, arm, other, frac, entry):
        """A paired comparison (against the baseline, or a further pair): its fold-paired mean difference and
        its DeLong difference recomputed from the two arms' own scores."""
        diffs = []
        for seed in study["seeds"]:
            for a, b in zip(runs_of(arm, frac, seed)[0], runs_of(other, frac, seed)[0]):
                if a is not None and b is not None:
                    diffs.append(a - b)
        if diffs:
            check(abs(entry["fold_paired_difference"]["mean"] - sum(diffs) / len(diffs)) < 1e-12,
                  f"{where}: fold-paired difference")
        pooled = entry["pooled"][0]
        check("delong" in pooled and "bootstrap" in pooled, f"{where}: no paired test")
        if "delong" not in pooled:
            return
        d = pooled["delong"]
        check(d["lo"] <= d["difference"] <= d["hi"] and 0 <= d["p"] <= 1, f"{where}: DeLong figures")
        (_, oa), (_, ob) = runs_of(arm, frac, study["seeds"][0]), runs_of(other, frac, study["seeds"][0])
        both = sorted(set(oa) & set(ob))
        labels = [oa[p][0] for p in both]
        expected = auroc(labels, [oa[p][1] for p in both]) - auroc(labels, [ob[p][1] for p in both])
        check(abs(d["difference"] - expected) < 1e-9, f"{where}: DeLong difference {d['difference']} != {expected}")

    # 4. The table: every arm at every fraction, with its interval, and paired figures for the non-baseline arms.
    rows = {(r["arm"], r["fraction"]): r for r in study["rows"]}
    for frac in study["fractions"]:
        for arm in study["arms"]:
            r = rows.get((arm, frac))
            check(r is not None and "auroc" in r, f"no AUROC for {arm} at {frac}")
            if r is None or "auroc" not in r:
                continue
            per_fold = [a for seed in study["seeds"] for a in runs_of(arm, frac, seed)[0] if a is not None]
            check(abs(r["auroc"]["mean"] - sum(per_fold) / len(per_fold)) < 1e-12, f"{arm} {frac}: mean AUROC")
            check(r["auroc"]["lo"] <= r["auroc"]["mean"] <= r["auroc"]["hi"], f"{arm} {frac}: interval")
            if arm != study["baseline"]:
                check_paired(f"{arm} {frac}", arm, study["baseline"], frac, r)
            # Sensitivity and specificity at the frozen thresholds: every run's test scores against the
            # threshold its validation images chose (score >= threshold is a fracture), summed.
            tp = fn = tn = fp = 0
            for seed in study["seeds"]:
                for f in range(k):
                    run = os.path.join(out, "cv", arm, f"seed{seed}-fold{f}-" + ("%g" % (frac * 100)) + "pct")
                    thr = json.load(open(os.path.join(run, "metrics_test.json")))["threshold"]
                    for row in csv.DictReader(open(os.path.join(run, "scores_test.csv"))):
                        fracture, label = float(row["score"]) >= thr, int(row["label"])
                        tp += label == 1 and fracture
                        fn += label == 1 and not fracture
                        tn += label == 0 and not fracture
                        fp += label == 0 and fracture
            ft = r.get("frozen_threshold")
            check(ft is not None and (ft["sensitivity"]["k"], ft["sensitivity"]["n"]) == (tp, tp + fn)
                  and (ft["specificity"]["k"], ft["specificity"]["n"]) == (tn, tn + fp),
                  f"{arm} {frac}: sensitivity / specificity at the frozen thresholds {ft} != {tp}/{tp + fn}, {tn}/{tn + fp}")
    # 4a. The further paired comparisons the config asks for: every pair at every fraction.
    compare = [tuple(p) for p in cfg.get("compare", [])]
    got = [(c["arm"], c["against"], c["fraction"]) for c in study.get("comparisons", [])]
    check(got == [(a, b, frac) for a, b in compare for frac in study["fractions"]], f"comparisons: {got}")
    for c in study.get("comparisons", []):
        check_paired(f"{c['arm']} against {c['against']} {c['fraction']}", c["arm"], c["against"], c["fraction"], c)
    # 4b. The verdicts: the best arm by mean AUROC, its DeLong interval widened for the number of arms
    # compared (Bonferroni, with Python's own normal quantile), the p-value multiplied by it.
    for v in study["verdicts"]:
        rows = [r for r in study["rows"] if r["fraction"] == v["fraction"] and r["arm"] != study["baseline"]]
        best = max(rows, key=lambda r: r["auroc"]["mean"])
        d = best["pooled"][0]["delong"]
        z = statistics.NormalDist().inv_cdf(1 - 0.025 / len(rows))
        check(v["best_arm"] == best["arm"] and v["arms_compared"] == len(rows), f"verdict {v['fraction']}: best arm")
        check(abs(v["lo"] - (d["difference"] - z * d["se"])) < 1e-9 and abs(v["hi"] - (d["difference"] + z * d["se"])) < 1e-9,
              f"verdict {v['fraction']}: adjusted interval")
        check(abs(v["p"] - min(1.0, len(rows) * d["p"])) < 1e-12, f"verdict {v['fraction']}: adjusted p")
        check(v["meets_target"] == (v["difference"] >= 0.03 and v["lo"] > 0), f"verdict {v['fraction']}: target")
    check(len(study["verdicts"]) == len(study["fractions"]), "a fraction without a verdict")
    # 5. The page and the bundles.
    html = open(os.path.join(out, "study.html")).read()
    check("<svg" in html and html.count('class="mark') >= len(study["arms"]), "study.html has no label-efficiency plot")
    for arm in study["arms"]:
        check(arm in html, f"{arm} missing from study.html")
        if cfg.get("final_models", True):
            check(os.path.getsize(os.path.join(out, arm, "model.wristssl")) > 1000, f"no bundle for {arm}")
    md = open(os.path.join(out, "study.md")).read()
    table_rows = [line for line in md.splitlines() if line.startswith("|")]
    comparison_rows = 2 + len(study.get("comparisons", [])) if study.get("comparisons", []) else 0
    check(len(table_rows) == 2 + len(study["arms"]) * len(study["fractions"]) + comparison_rows, "study.md rows")
    if study.get("comparisons", []):
        check("Further paired comparisons" in html, "study.html has no table of the further comparisons")
    check(sum(line.startswith("- At ") for line in md.splitlines()) == len(study["verdicts"]), "study.md verdicts")
    if failures:
        print("\n".join("FAIL: " + f for f in failures))
        return 1
    print(f"study {out}: folds, pool, runs, table, page and bundles check out "
          f"({len(study['arms'])} arms x {len(study['fractions'])} fractions x {k} folds x {len(study['seeds'])} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
