"""datasketch 2.0's MinHash and MinHashLSH parameters for tests/dataprep/minhash_test.cpp: reads IN (JSON: "configs"
[[num_perm, seed, scheme]], "sets" [[shingle]], "pairs" [[i, j]], "grid" {"thresholds", "num_perms"}, "integrals"
[[threshold, b, r]]) and writes OUT with, per config, the permutations, every set's hashvalues (update_batch of the
shingles' UTF-8 bytes) and each pair's jaccard(); _optimal_param (default weights) over the grid; and the false
positive / negative integrals.
usage: minhash_reference.py IN OUT
"""
import json
import sys

from datasketch import MinHash
from datasketch.lsh import _false_negative_probability, _false_positive_probability, _optimal_param


def main():
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    out = {"configs": []}
    for num_perm, seed, scheme in spec["configs"]:
        sketches = []
        for shingles in spec["sets"]:
            m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
            m.update_batch([s.encode("utf-8") for s in shingles])
            sketches.append(m)
        perms = sketches[0].permutations
        out["configs"].append({
            "a": [int(v) for v in perms[0]], "b": [int(v) for v in perms[1]],
            "hashvalues": [[int(v) for v in m.hashvalues] for m in sketches],
            "jaccard": [sketches[i].jaccard(sketches[j]) for i, j in spec["pairs"]],
        })
    grid = spec["grid"]
    out["optimal"] = [[t, n, *_optimal_param(t, n, 0.5, 0.5)] for t in grid["thresholds"] for n in grid["num_perms"]]
    out["fp"] = [_false_positive_probability(t, b, r) for t, b, r in spec["integrals"]]
    out["fn"] = [_false_negative_probability(t, b, r) for t, b, r in spec["integrals"]]
    json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))


if __name__ == "__main__":
    main()
