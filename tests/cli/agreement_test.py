"""`troupe data agreement` end to end against the reference packages run here: on random labelling records of
several sizes, prompt lengths (K) and rating ranges, every pair's Cohen's kappa equals scikit-learn's
cohen_kappa_score (ratings with labels 1..7: unweighted, linear, quadratic; preferences i better / tie / j better),
Fleiss' kappa equals statsmodels' fleiss_kappa(aggregate_raters(...)[0]) on the prompts every labeller labelled, and
the pairwise agreements equal a direct count, all within 1e-12; undefined kappas are null where the references
return NaN; and bad inputs fail with exit code 2 naming file:line and key."""
import itertools
import json
import math
import os
import random
import sys
import tempfile
import warnings

import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402

CLI = os.environ["TROUPE_CLI"]
warnings.simplefilter("ignore")  # undefined kappas warn; their NaN is under test
FLAGS = ["fails_instruction", "hallucination", "harmful", "moral_judgement"]


def dense(scores):
    """Dense ranks (1 = best) of scores, higher = better; equal scores tie."""
    order = sorted(set(scores), reverse=True)
    return [order.index(s) + 1 for s in scores]


def make_records(rng, labellers, prompts, rating_range, coverage):
    """Records of correlated labellers: each judges noisy copies of a hidden quality per response."""
    records = []
    lo, hi = rating_range
    for p in range(prompts):
        k = rng.randint(2, 5)
        quality = [rng.randint(lo, hi) for _ in range(k)]
        base = {"id": f"p{p}", "prompt": f"prompt {p}", "responses": [f"r{p}.{i}" for i in range(k)]}
        for name in labellers:
            if rng.random() > coverage[name]:
                continue
            if rng.random() < 0.05:
                records.append({**base, "labeller": name, "skipped": True, "comment": "", "time": "t",
                                "seconds": 1.0})
                continue
            ratings = [min(hi, max(lo, q + rng.choice([-1, 0, 0, 1]))) for q in quality]
            ranks = dense([r + rng.choice([0, 0, 0.5]) * (rng.random() < 0.3) for r in ratings])
            flags = [sorted(rng.sample(FLAGS, rng.randint(0, 1))) for _ in range(k)]
            records.append({**base, "labeller": name, "ranks": ranks, "ratings": ratings, "flags": flags,
                            "comment": "", "time": "2026-05-01T00:00:00Z", "seconds": 3.5})
    return records


def pref(ranks, i, j):
    return 0 if ranks[i] < ranks[j] else 1 if ranks[i] == ranks[j] else 2


def expected(records):
    """The statistics computed here from the records, with scikit-learn and statsmodels."""
    last = {}
    for r in records:
        last[(r["id"], r["labeller"])] = r
    by_id = {}
    for (pid, name), r in last.items():
        if not r.get("skipped"):
            by_id.setdefault(pid, {})[name] = r
    names = sorted({n for recs in by_id.values() for n in recs})
    out = {"pairs": {}, "labellers": names}
    strict_total = agree_total = 0
    for a, b in itertools.combinations(names, 2):
        ra, rb, pa, pb = [], [], [], []
        for recs in by_id.values():
            if a in recs and b in recs:
                ra += recs[a]["ratings"]
                rb += recs[b]["ratings"]
                k = len(recs[a]["ranks"])
                for i, j in itertools.combinations(range(k), 2):
                    pa.append(pref(recs[a]["ranks"], i, j))
                    pb.append(pref(recs[b]["ranks"], i, j))
        if not ra:
            continue
        strict = [(x, y) for x, y in zip(pa, pb) if x != 1 and y != 1]
        agree = sum(x == y for x, y in strict)
        strict_total += len(strict)
        agree_total += agree
        out["pairs"][(a, b)] = {
            "rating_items": len(ra),
            "rating_kappa": cohen_kappa_score(ra, rb, labels=list(range(1, 8))),
            "rating_kappa_linear": cohen_kappa_score(ra, rb, labels=list(range(1, 8)), weights="linear"),
            "rating_kappa_quadratic": cohen_kappa_score(ra, rb, labels=list(range(1, 8)), weights="quadratic"),
            "rating_agreement": float(np.mean(np.array(ra) == np.array(rb))),
            "preference_items": len(pa),
            "preference_kappa": cohen_kappa_score(pa, pb, labels=[0, 1, 2]),
            "preference_agreement": agree / len(strict) if strict else math.nan,
            "strict_pairs": len(strict),
            "preference_agreement_with_ties": float(np.mean(np.array(pa) == np.array(pb))),
        }
    out["preference_agreement"] = agree_total / strict_total if strict_total else math.nan
    full = [recs for recs in by_id.values() if all(n in recs for n in names)]
    rat = [[recs[n]["ratings"][i] for n in names] for recs in full for i in range(len(recs[names[0]]["ratings"]))]
    prf = [[pref(recs[n]["ranks"], i, j) for n in names] for recs in full
           for i, j in itertools.combinations(range(len(recs[names[0]]["ranks"])), 2)]
    with np.errstate(all="ignore"):
        out["fleiss_prompts"] = len(full)
        out["fleiss_rating"] = fleiss_kappa(aggregate_raters(np.array(rat))[0]) if rat else math.nan
        out["fleiss_preference"] = fleiss_kappa(aggregate_raters(np.array(prf))[0]) if prf else math.nan
    return out


def same(got, want, what):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        check(got is None, f"{what}: {got}, the reference is NaN (expected null)")
    else:
        check(got is not None and abs(got - want) <= 1e-12, f"{what}: {got} vs reference {want}")


def write_split(d, tag, records):
    """One file per labeller, so that several files are read."""
    paths = []
    for name in sorted({r["labeller"] for r in records}):
        path = os.path.join(d, f"{tag}-{name}.jsonl")
        with open(path, "w") as f:
            for r in records:
                if r["labeller"] == name:
                    f.write(json.dumps(r) + "\n")
        paths.append(path)
    return paths


def compare(d, tag, records):
    paths = write_split(d, tag, records)
    got = json.loads(run_checked([CLI, "data", "agreement", *paths, "--json"]).stdout)
    want = expected(records)
    check([x["name"] for x in got["labellers"]] == want["labellers"], f"{tag}: labellers {got['labellers']}")
    check(len(got["pairs"]) == len(want["pairs"]), f"{tag}: {len(got['pairs'])} pairs, expected {len(want['pairs'])}")
    for p in got["pairs"]:
        w = want["pairs"].get((p["a"], p["b"]), {})
        for key, value in w.items():
            same(p[key], value, f"{tag} {p['a']}-{p['b']} {key}")
    same(got["preference_agreement"], want["preference_agreement"], f"{tag} pooled preference agreement")
    check(got["fleiss"]["prompts"] == want["fleiss_prompts"], f"{tag}: fleiss prompts {got['fleiss']['prompts']}")
    same(got["fleiss"]["rating_kappa"], want["fleiss_rating"], f"{tag} fleiss ratings")
    same(got["fleiss"]["preference_kappa"], want["fleiss_preference"], f"{tag} fleiss preferences")
    return got


def main():
    d = tempfile.mkdtemp(prefix="troupe-agreement-")
    rng = random.Random(1905)
    scenarios = [(["ann", "bob"], 5, (1, 7)), (["ann", "bob", "cy"], 40, (1, 7)), (["a", "b", "c", "d"], 200, (3, 6)),
                 (["x", "y"], 120, (1, 2)), (["x", "y", "z"], 60, (2, 5))]
    kappas = []
    for n, (names, prompts, rating_range) in enumerate(scenarios):
        coverage = {name: 1.0 if i < 2 else 0.7 for i, name in enumerate(names)}
        got = compare(d, f"s{n}", make_records(rng, names, prompts, rating_range, coverage))
        kappas += [p["rating_kappa"] for p in got["pairs"] if p["rating_kappa"] is not None]
    check(len(kappas) >= 8 and max(kappas) - min(kappas) > 0.05, f"the scenarios barely differ: {kappas}")

    # Perfect agreement: kappas 1; everything in one category (one rating, all ties): NaN in sklearn and statsmodels.
    base = {"prompt": "p", "responses": ["a", "b", "c"], "flags": [[], [], []], "comment": "", "time": "t",
            "seconds": 1}
    perfect = [{**base, "id": str(i), "labeller": n, "ranks": [1, 2, 2], "ratings": [6, 3 + i % 2, 3 + i % 2]}
               for i in range(6) for n in ("p", "q")]
    got = compare(d, "perfect", perfect)
    check(got["pairs"][0]["rating_kappa"] == 1.0 and got["pairs"][0]["preference_agreement"] == 1.0,
          f"perfect agreement: {got['pairs'][0]}")
    flat = [{**base, "id": str(i), "labeller": n, "ranks": [1, 1, 1], "ratings": [4, 4, 4]}
            for i in range(4) for n in ("p", "q", "r")]
    got = compare(d, "flat", flat)
    check(got["pairs"][0]["rating_kappa"] is None and got["fleiss"]["rating_kappa"] is None,
          f"one category: {got['pairs'][0]} {got['fleiss']}")
    check(math.isnan(cohen_kappa_score([4] * 12, [4] * 12, labels=list(range(1, 8)))), "sklearn: NaN expected")
    table = run_checked([CLI, "data", "agreement", *write_split(d, "flat", flat)]).stdout
    check("undef" in table and "p - q" in table and "Fleiss" in table, f"table:\n{table}")

    # Errors, exit code 2: one labeller; a malformed record (file:line: key); ids that mean different items.
    one = write_split(d, "one", [r for r in flat if r["labeller"] == "p"])
    r = run_checked([CLI, "data", "agreement", *one], expect=2)
    check("at least 2 labellers" in r.stderr and "p (4 prompts)" in r.stderr, f"one labeller: {r.stderr}")
    bad = os.path.join(d, "bad.jsonl")
    with open(bad, "w") as f:
        f.write(json.dumps(flat[0]) + "\n" + json.dumps({**flat[1], "ratings": [4, 9, 4]}) + "\n")
    r = run_checked([CLI, "data", "agreement", bad], expect=2)
    check(f"{bad}:2: key 'ratings': expected an array of 3 integers in 1..7" in r.stderr, f"bad rating: {r.stderr}")
    with open(bad, "w") as f:
        f.write(json.dumps(flat[0]) + "\n" + json.dumps({**flat[1], "ranks": [1, 3, 1]}) + "\n")
    r = run_checked([CLI, "data", "agreement", bad], expect=2)
    check(f"{bad}:2: key 'ranks'" in r.stderr and "rank 2" in r.stderr, f"bad ranks: {r.stderr}")
    with open(bad, "w") as f:
        f.write(json.dumps(flat[0]) + "\n" + json.dumps({**flat[1], "responses": ["a", "b", "X"]}) + "\n")
    r = run_checked([CLI, "data", "agreement", bad], expect=2)
    check(f"{bad}:1 and {bad}:2" in r.stderr, f"different responses: {r.stderr}")


main()
sys.exit(verdict())
