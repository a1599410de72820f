"""lm-evaluation-harness 0.4.13's Janitor for tests/dataprep/decontam_test.cpp: writes OUT (JSON) with
  texts:   seeded texts (mixed case, ASCII and non-ASCII punctuation and letters, Unicode whitespace) with
           Janitor.normalize_string of each and janitor.word_ngrams of that for n = 13 and n = 3;
  evals:   seeded evaluation items (some with standalone punctuation tokens), registered in a Janitor (n = 13);
  docs:    a planted training corpus: "clean" filler, "planted" (13 consecutive words of an eval item, case and
           attached punctuation changed) and "near" (12 such words, the 13th replaced), each with the Janitor's own
           verdict, i.e. whether clean_python finds a contaminated n-gram in it.
usage: decontam_reference.py OUT
"""
import contextlib
import io
import json
import random
import string
import sys

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # "C++ module not loaded"
    from lm_eval.decontamination.janitor import Janitor, word_ngrams, word_ngrams_indices

rng = random.Random(17)
LETTERS = string.ascii_letters + "éÉßÜñ"
PUNCT = list(string.punctuation) + ["—", "’", "“", "”", "…", "¿"]
SPACES = [" ", " ", " ", "  ", "\n", "\t", "\u00a0", "\u2003", "\x1c", "\u3000", "\r\n"]


def rand_word(letters=LETTERS):
    w = "".join(rng.choice(letters) for _ in range(rng.randint(1, 8)))
    r = rng.random()
    if r < 0.15:
        w = rng.choice(PUNCT) + w
    elif r < 0.35:
        w += rng.choice(PUNCT)
    elif r < 0.45:
        w = rng.choice(PUNCT) * rng.randint(1, 3)  # a word of punctuation only: gone after normalisation
    elif r < 0.5:
        i = rng.randint(0, len(w))
        w = w[:i] + rng.choice(PUNCT) + w[i:]
    return w


def rand_text(n_words):
    return "".join(rand_word() + rng.choice(SPACES) for _ in range(n_words))


jan13, jan3 = Janitor(ngram_n=13), Janitor(ngram_n=3)
texts = []
for i in range(300):
    t = rand_text(rng.randint(0, 40))
    if rng.random() < 0.5:
        t = rng.choice(SPACES) + t
    norm = jan13.normalize_string(t)
    assert norm == jan3.normalize_string(t)
    texts.append({"text": t, "normal": norm, "ngrams13": list(word_ngrams(norm, 13)), "ngrams3": list(word_ngrams(norm, 3))})

# evaluation items: lower-case vocabulary words, some standalone punctuation tokens between them
vocab = sorted({"".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9))) for _ in range(3000)})
filler = [w.upper()[::-1] + "q" for w in vocab]  # never an eval word, even after lower-casing
evals, eval_words = [], []
for i in range(60):
    ws = [rng.choice(vocab) for _ in range(rng.randint(14, 40))]
    toks = []
    for w in ws:
        toks.append(w.capitalize() if rng.random() < 0.2 else w)
        if rng.random() < 0.1:
            toks.append(rng.choice(["--", "-", "...", "?!"]))
    evals.append({"id": f"eval-{i}", "text": " ".join(toks)})
    eval_words.append(ws)
    jan13.register_contaminant_python(evals[-1]["text"])

def perturb(w):
    r = rng.random()
    if r < 0.3:
        return w.upper()
    if r < 0.5:
        return w.capitalize()
    if r < 0.6:
        return '"' + w + '",'
    if r < 0.7:
        i = rng.randint(1, len(w))
        return w[:i] + "'" + w[i:]
    return w + rng.choice(["", "", ".", ",", "!"])

def fill(k):
    return [rng.choice(filler) for _ in range(k)]

docs = []
for i in range(300):
    kind = ["clean", "planted", "near"][i % 3]
    e = rng.randrange(len(evals))
    ws = eval_words[e]
    if kind == "clean":
        body = fill(rng.randint(0, 60))
    else:
        k = 13 if kind == "planted" else 12
        s = rng.randint(0, len(ws) - k)
        body = fill(rng.randint(0, 20)) + [perturb(w) for w in ws[s:s + k]] + fill(rng.randint(1, 20))
    text = " ".join(body)
    hits = [ng for ng, _ in word_ngrams_indices(text, 13) if jan13.normalize_string(ng) in jan13.dirt_ngrams]
    docs.append({"text": text, "kind": kind, "eval_id": evals[e]["id"], "janitor_contaminated": bool(hits)})

with open(sys.argv[1], "w") as f:
    json.dump({"texts": texts, "evals": evals, "docs": docs, "dirt_ngrams": len(jan13.dirt_ngrams)}, f, ensure_ascii=False)
