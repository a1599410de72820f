"""Reference values for metrics/agreement.h, written to the JSON file named by argv[1]: scikit-learn's
cohen_kappa_score (weights None, 'linear', 'quadratic'; with and without `labels`) and statsmodels'
fleiss_kappa(aggregate_raters(data)[0]) on random label sets of several sizes and category counts, plus the edge
cases (perfect agreement, everything in one category, one rater constant). NaN (undefined) is written as null."""
import json
import math
import sys
import warnings

import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

warnings.simplefilter("ignore")  # the undefined cases warn; their NaN is the value under test


def num(x):
    x = float(x)
    return None if math.isnan(x) else x


def cohen_case(a, b, labels=None):
    a = [int(x) for x in a]
    b = [int(x) for x in b]
    out = {"a": a, "b": b, "labels": None if labels is None else [int(x) for x in labels]}
    for w in (None, "linear", "quadratic"):
        out[str(w)] = num(cohen_kappa_score(a, b, labels=labels, weights=w))
    return out


def fleiss_case(data):
    data = [[int(x) for x in row] for row in data]
    with np.errstate(all="ignore"):
        kappa = fleiss_kappa(aggregate_raters(np.array(data))[0])
    return {"ratings": data, "kappa": num(kappa)}


def main():
    rng = np.random.default_rng(20260519)
    cohen, fleiss = [], []
    for n in (1, 2, 5, 20, 100, 1000):
        for k in (2, 3, 5, 7, 10):
            values = rng.choice(np.arange(-20, 40), size=k, replace=False)  # arbitrary ints: weights use positions
            a = rng.choice(values, size=n)
            agree = rng.random(n) < 0.6  # correlated raters, so kappa spreads over (-1, 1)
            b = np.where(agree, a, rng.choice(values, size=n))
            cohen.append(cohen_case(a, b))
            labels = list(rng.permutation(np.concatenate([values, [99]])))  # a superset, in a shuffled order
            cohen.append(cohen_case(a, b, labels))
            if n >= 5:
                cohen.append(cohen_case(a, b, sorted(int(v) for v in values[: k - 1]) + [int(values[k - 1])]))
                if k > 2 and set(values[: k - 1].tolist()) & set(a.tolist()):  # a subset: other items are dropped
                    cohen.append(cohen_case(a, b, [int(v) for v in values[: k - 1]]))
    for k in (2, 4, 7):  # ratings 1..k on the scale 1..7, as `troupe data agreement` passes them
        a = rng.integers(1, k + 1, size=200)
        b = np.clip(a + rng.integers(-1, 2, size=200), 1, k)
        cohen.append(cohen_case(a, b, list(range(1, 8))))
    edge = [([1, 2, 3, 1], [1, 2, 3, 1]), ([4, 4, 4], [4, 4, 4]), ([1, 1, 1, 1], [1, 2, 1, 2]),
            ([1, 2, 1, 2], [2, 1, 2, 1]), ([0, 1, 2], [2, 1, 0]), ([5], [5])]
    for a, b in edge:
        cohen.append(cohen_case(a, b))
        cohen.append(cohen_case(a, b, [0, 1, 2, 3, 4, 5, 6, 7]))
    for subjects in (1, 3, 10, 50, 200):
        for raters in (2, 3, 5):
            for k in (2, 3, 7):
                values = rng.choice(np.arange(-5, 30), size=k, replace=False)
                truth = rng.choice(values, size=(subjects, 1))
                noise = rng.choice(values, size=(subjects, raters))
                data = np.where(rng.random((subjects, raters)) < 0.5, truth, noise)
                fleiss.append(fleiss_case(data))
    for data in ([[1, 1, 1], [2, 2, 2], [3, 3, 3]], [[2, 2], [2, 2], [2, 2]], [[1, 2], [2, 1]],
                 [[0, 0, 0], [0, 0, 1]], [[7, 7, 7, 7]]):
        fleiss.append(fleiss_case(data))
    with open(sys.argv[1], "w") as f:
        json.dump({"cohen": cohen, "fleiss": fleiss}, f)


main()
