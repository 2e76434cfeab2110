"""Compute, with SciPy, the statistics that analyze computes, for the cases in a JSON file.

Usage: scipy_check.py CASES.json  → prints a JSON object with one result per case.
"""
import json
import sys

import numpy as np
from scipy import stats

cases = json.load(open(sys.argv[1]))
out = {}
for name, c in cases.items():
    kind = c["kind"]
    if kind == "wilcoxon":
        d = np.asarray(c["diffs"], dtype=float)
        if c["method"] == "exact":
            r = stats.wilcoxon(d, method="exact")
        else:
            r = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="approx")
        out[name] = {"statistic": float(r.statistic), "p_value": float(r.pvalue)}
    elif kind == "ks":
        a = np.asarray(c["a"], dtype=float)
        b = np.asarray(c["b"], dtype=float)
        r = stats.ks_2samp(a, b)
        en = len(a) * len(b) / (len(a) + len(b))
        slower = stats.ks_2samp(a, b, alternative="greater", method="asymp")
        out[name] = {
            "statistic": float(r.statistic),
            "p_value": float(stats.kstwobign.sf(np.sqrt(en) * r.statistic)),
            "slower": float(slower.statistic),
            "slower_p_value": float(slower.pvalue),
        }
    elif kind == "wilson":
        ci = stats.binomtest(c["k"], c["n"]).proportion_ci(confidence_level=0.95, method="wilson")
        out[name] = {"low": float(ci.low), "high": float(ci.high)}
    elif kind == "mcnemar":
        b, cc = c["b"], c["c"]
        if b + cc == 0:
            stat, p = 0, 1.0
        elif b + cc < 25:
            p = stats.binomtest(min(b, cc), b + cc, 0.5).pvalue
            stat = min(b, cc)
        else:
            stat = max(abs(b - cc) - 1, 0) ** 2 / (b + cc)
            p = stats.chi2.sf(stat, 1)
        out[name] = {"statistic": float(stat), "p_value": float(p)}
        # One-sided: more canary-only than baseline-only errors (b is canary-only).
        out[name]["greater_p_value"] = float(stats.binomtest(b, b + cc, 0.5, alternative="greater").pvalue) if b + cc else 1.0
    elif kind == "quantiles":
        v = np.asarray(c["values"], dtype=float)
        out[name] = {"quantiles": [float(x) for x in np.quantile(v, c["qs"])]}
    else:
        raise SystemExit(f"unknown case kind {kind}")
print(json.dumps(out))
