"""datatrove's Gopher filters for tests/dataprep/quality_test.cpp: writes OUT (JSON) with seeded documents built to
cross every threshold of GopherQualityFilter and GopherRepetitionFilter (default thresholds), and for each its
words (datatrove's split_into_words, spaCy's blank English tokenizer) and both filters' reasons ("" = kept).
usage: quality_reference.py OUT
"""
import json
import random
import sys

from datatrove.data import Document
from datatrove.pipeline.filters.gopher_quality_filter import GopherQualityFilter
from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter
from datatrove.utils.text import split_into_words

STOP = ["the", "be", "to", "of", "and", "that", "have", "with"]
WORDS = ("model data train small large river stone window garden letter market winter summer number people "
         "system during between because history question language simple").split()
LONG = ["internationalisation", "counterrevolutionary", "electroencephalography", "incomprehensibilities"]
SHORT = ["a", "I", "an", "it", "is", "on", "at", "by", "us"]
NON_ALPHA = ["1999", "42", "3.5", "100", "7-8", "+", "=", "@"]


def word(rng, mix):
    r = rng.random()
    for pool, p in mix:
        if r < p:
            return rng.choice(pool)
        r -= p
    return rng.choice(WORDS)


def sentence(rng, mix, hashes):
    n = rng.randint(3, 14)
    ws = [word(rng, mix) for _ in range(n)]
    for i in range(len(ws)):
        r = rng.random()
        if not ws[i].isalpha():  # spaCy keeps emoticons such as "8)" and "=)" whole: not reproduced
            continue
        if r < hashes:
            ws[i] = "#" + ws[i]
        elif r < hashes + 0.04:
            ws[i] = "(" + ws[i] + ")"
        elif r < hashes + 0.07:
            ws[i] = '"' + ws[i] + '"'
        elif r < hashes + 0.10:
            ws[i] = ws[i] + "-" + rng.choice(WORDS)
    ws.append(rng.choice(WORDS))  # spaCy's "." after a symbol ("+." splits, "@." does not): not reproduced
    end = rng.choice([".", ".", ".", "!", "?", "...", "…", ",", ";"])  # no "):", an emoticon to spaCy
    return " ".join(ws) + end


def document(rng):
    mix = [(STOP, rng.choice([0.0, 0.02, 0.2, 0.3, 0.3])), (LONG, rng.choice([0.0] * 6 + [0.15, 0.9])),
           (SHORT, rng.choice([0.0] * 5 + [0.3, 0.9])), (NON_ALPHA, rng.choice([0.0] * 5 + [0.2, 0.5]))]
    hashes = rng.choice([0.0, 0.0, 0.05, 0.15])
    n_lines = rng.choice([3, 8, 20, 40])
    lines = []
    bullets = rng.choice([0.0, 0.0, 0.5, 0.95, 1.0])
    ellipsis = rng.choice([0.0, 0.0, 0.2, 0.4])
    for _ in range(n_lines):
        line = " ".join(sentence(rng, mix, hashes) for _ in range(rng.randint(1, 3)))
        if rng.random() < bullets:
            line = rng.choice(["- ", "• ", "  - "]) + line
        if rng.random() < ellipsis:
            line = line.rstrip(".!?,;:…") + rng.choice(["...", "…", "... "])
        lines.append(line)
    repeat = rng.choice(["none", "none", "line", "para", "ngram", "phrase"])
    if repeat == "line":
        for _ in range(rng.randint(1, max(1, n_lines // 2))):
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
    elif repeat == "ngram":
        lines[rng.randrange(len(lines))] += " " + " ".join(rng.choice(lines).split()[:8] * rng.randint(1, 4))
    elif repeat == "phrase":
        phrase = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
        for _ in range(rng.randint(2, 12)):
            i = rng.randrange(len(lines))
            lines[i] = lines[i] + " " + phrase
    sep = "\n\n" if repeat == "para" or rng.random() < 0.3 else "\n"
    text = sep.join(lines)
    if repeat == "para":
        paras = text.split("\n\n")
        text = "\n\n".join(paras + [rng.choice(paras) for _ in range(rng.randint(1, len(paras)))])
    return text


def main():
    rng = random.Random(17)
    quality, repetition = GopherQualityFilter(), GopherRepetitionFilter()
    docs = []
    for i in range(1500):
        text = document(rng)
        q = quality.filter(Document(text=text, id=str(i)))
        r = repetition.filter(Document(text=text, id=str(i)))
        docs.append({"text": text, "words": split_into_words(text),
                     "quality": "" if q is True else q[1], "repetition": "" if r is True else r[1]})
    json.dump({"docs": docs}, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)


if __name__ == "__main__":
    main()
