"""Python's collections.Counter for tests/dataprep/corpus_stats_test.cpp: writes OUT (JSON) with 400 seeded documents
(mixed case incl. non-ASCII "Über", "ΟΔΟΣ", "İ"; punctuation attached, standalone and non-ASCII; Unicode whitespace
and newlines), the Counter of [w.strip(string.punctuation) for w in text.lower().split()] over them (empty words
dropped) sorted by count descending then word, and the summed code points, words and "\n"-lines.
usage: corpus_stats_reference.py OUT
"""
import collections
import json
import random
import string
import sys

rng = random.Random(1717)
WORDS = ("he she him her his hers man woman the a of river stone Über ΟΔΟΣ İstanbul naïve café x y z Mr. Mrs. "
         "mother father GIRL Boy").split()
PUNCT = list(string.punctuation) + ["—", "’", "«", "…"]
SPACES = [" ", " ", " ", "\n", "\n\n", "\t", "\u00a0", "\u2003", "\x1c", "\r\n"]


def word():
    w = rng.choice(WORDS)
    r = rng.random()
    if r < 0.2:
        w = w.upper()
    elif r < 0.3:
        w = rng.choice(PUNCT) + w
    elif r < 0.45:
        w = w + rng.choice(PUNCT) * rng.randint(1, 2)
    elif r < 0.5:
        w = rng.choice(PUNCT) * rng.randint(1, 3)
    return w


docs = []
for _ in range(400):
    t = "".join(word() + rng.choice(SPACES) for _ in range(rng.randint(0, 30)))
    docs.append(t if rng.random() < 0.5 else t.rstrip())
counter = collections.Counter(
    w for d in docs for w in (x.strip(string.punctuation) for x in d.lower().split()) if w)
vocab = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
lines = sum(d.count("\n") + (1 if d and not d.endswith("\n") else 0) for d in docs)
with open(sys.argv[1], "w") as f:
    json.dump({"docs": docs, "vocab": vocab, "chars": sum(map(len, docs)), "words": sum(len(d.split()) for d in docs),
               "lines": lines}, f, ensure_ascii=False)
