"""`troupe data clean` end to end: a JSONL corpus with planted duplicates, HTML, PII and junk through a YAML stage
list; the output documents, the printed report, the run log read with h5py (table clean_stages, scalars, status),
the same output with 2 threads as with 1, and a bad config failing with exit 2 and file:line."""
import json
import os
import random
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402

CLI = os.environ["TROUPE_CLI"]

SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "nel", "dur", "pi", "sam", "fo", "gri", "tel", "bon", "ash"]
STOP = ["the", "and", "of", "to", "with", "that"]


def doc(i, n=80):
    """A seeded document of pseudo-words and stop words: distinct documents share few word 5-grams."""
    rng = random.Random(i)
    words = []
    for k in range(n):
        w = rng.choice(STOP) if rng.random() < 0.3 else "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        words.append(w + ("." if k % 12 == 11 else ""))
    return " ".join(words)


def main():
    work = tempfile.mkdtemp(prefix="troupe-data-clean-")
    rows = [{"id": i, "text": doc(i)} for i in range(12)]
    rows.append({"id": 100, "text": rows[3]["text"]})                                  # an exact duplicate
    rows.append({"id": 101, "text": "<p>" + rows[5]["text"] + "</p><script>x()</script>"})  # a duplicate in HTML
    rows.append({"id": 102, "text": "too short"})                                       # gopher_short_doc
    rows.append({"id": 103, "text": doc(50) + " write to jane.doe@example.com or visit 8.8.8.8"})
    with open(f"{work}/in.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(f"{work}/clean.yaml", "w") as f:
        f.write(f"""inputs: [in.jsonl]
output: {work}/out/clean.jsonl
threads: 1
stages:
  - normalize: NFKC
  - html
  - whitespace
  - pii
  - gopher_quality
  - dedup: {{threshold: 0.8}}
  - stats
""")
    r = run_checked([CLI, "data", "clean", f"{work}/clean.yaml", "--quiet"], 0, timeout=300)
    out = [json.loads(l) for l in open(f"{work}/out/clean.jsonl")]
    ids = [o["id"] for o in out]
    check(100 not in ids and 101 not in ids and 102 not in ids, f"duplicates and the short doc removed: {ids}")
    check(ids == sorted(ids) and len(ids) == 13, f"input order kept, 13 kept: {ids}")
    pii = next(o for o in out if o["id"] == 103)["text"]
    check("jane.doe@example.com" not in pii and "8.8.8.8" not in pii, f"PII masked: {pii[-80:]}")
    check("13 of 16 documents kept" in r.stdout, f"summary line:\n{r.stdout}")
    with h5py.File(f"{work}/out/clean.jsonl.log.h5", "r") as f:
        stages = [s.decode() for s in f["tables/clean_stages/stage"][:]]
        check(stages == ["normalize", "html", "whitespace", "pii", "gopher_quality", "dedup", "stats"],
              f"stage rows {stages}")
        check(f["metrics/clean/documents_out/value"][0] == 13, "documents_out scalar")
        check(f.attrs["status"] == "finished", "log status")
    # Two threads, the same bytes.
    r = run_checked([CLI, "data", "clean", f"{work}/clean.yaml", "threads=2", "chunk_size=3",
                     f"output={work}/out2.jsonl", "--quiet"], 0, timeout=300)
    check(open(f"{work}/out2.jsonl").read() == open(f"{work}/out/clean.jsonl").read(), "2 threads = 1 thread")
    # A bad stage: exit 2, the file and line.
    with open(f"{work}/bad.yaml", "w") as f:
        f.write("inputs: [in.jsonl]\noutput: x.jsonl\nstages:\n  - normalise\n")
    r = run_checked([CLI, "data", "clean", f"{work}/bad.yaml", "--quiet"], 2, timeout=60)
    check("bad.yaml:4" in r.stderr and "normalise" in r.stderr, f"bad stage message: {r.stderr}")
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
