"""Reference stems for tests/metrics/porter_stemmer_test.cpp: NLTK's PorterStemmer() (default mode, NLTK_EXTENSIONS)
on every word of the WordNet 3.0 index files, their capitalised and uppercased variants (a sample), the whitespace
tokens of the shared test corpus, and hand-picked words that reach the algorithm's corners and non-ASCII input.

usage: porter_reference.py OUT.json WORDNET_DIR   (writes {"words": [...], "stems": [...]})
"""
import json
import os
import sys

from nltk.stem.porter import PorterStemmer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

HAND = [
    "", "a", "I", "at", "is", "as", "by", "sky", "skies", "Skies", "dying", "lying", "tying", "news", "NEWS",
    "innings", "outings", "cannings", "howe", "proceed", "exceed", "succeed", "dies", "flies", "died", "spied",
    "caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered", "bled", "motoring", "sing",
    "conflated", "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed", "failing", "filing",
    "happy", "enjoy", "spy", "fly", "try", "relational", "conditional", "rational", "valenci", "hesitanci",
    "digitizer", "conformabli", "radicalli", "differentli", "vileli", "analogousli", "vietnamization",
    "predication", "operator", "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti",
    "sensitiviti", "sensibiliti", "rationalli", "hopefulli", "geologi", "theologi", "archaeologi", "triplicate",
    "formative", "formalize", "electriciti", "electrical", "hopeful", "goodness", "revival", "allowance",
    "inference", "airliner", "gyroscopic", "adjustable", "defensible", "irritant", "replacement", "adjustment",
    "dependent", "adoption", "homologou", "communism", "activate", "angulariti", "homologous", "effective",
    "bowdlerize", "probate", "rate", "cease", "controll", "roll", "generously", "organizational", "connection",
    "yyyy", "yyyyyyyyyyyyyyyyyyyyyy", "syzygy", "toy", "toying", "sayying", "yearly", "ye", "y", "yy", "ay", "oy",
    "eeds", "ings", "eed", "ied", "ies", "a*ding", "a*d", "*ding", "x*ded", "news's", "don't", "rock'n'roll",
    "well-known", "e-mail", "U.S.", "1990s", "3.14", "running", "Running", "RUNNING", "HaPpInEsS",
    "café", "cafés", "naïve", "naïvely", "Straße", "STRASSE", "ΣΟΦΟΣ", "σοφός", "İstanbul", "İİ", "İs", "İİİ",
    "東京", "😀", "😀s", "Ünïcödé", "Ünïcödéing", "résumés", "Ålborg", "ﬁle", "ﬁles", "Kelvin\u212a", "S\u212aY",
    "\u212aING", "niños", "Ærø", "Привет", "мир", "ǅemal", "Ⅻ", "²", "ßing", "ẞING", "ǰing", "ΐing", "ŉs",
    "aééing", "éé", "aéé", "hopp\u00e9ing", "y\u00e9y", "\u00e9ying", "\u00e9y", "b\u00e9y", "a\u0307ing",
]


def corpus_words():
    words = []
    for seed, refs in ((1, 1), (2, 3), (3, 2)):
        hyps, refs_per_pair = corpus.make_pairs(seed=seed, n=300, refs=refs)
        for text in hyps + [r for rs in refs_per_pair for r in rs]:
            words.extend(text.split())
    return words + corpus.WORDS + corpus.UNICODE + corpus.PUNCT + corpus.NUMBERS + corpus.CONTRACTIONS


def wordnet_words(wordnet_dir):
    words = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(wordnet_dir, "index." + pos), encoding="utf-8") as f:
            for line in f:
                if not line.startswith("  "):  # the license header's lines start with two spaces
                    words.append(line.split(" ", 1)[0])
    return words


def main():
    out, wordnet_dir = sys.argv[1], sys.argv[2]
    wordnet = wordnet_words(wordnet_dir)
    variants = [w.capitalize() for w in wordnet[::7]] + [w.upper() for w in wordnet[3::11]]
    words = list(dict.fromkeys(HAND + corpus_words() + wordnet + variants))
    stemmer = PorterStemmer()
    stems = [stemmer.stem(w) for w in words]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"words": words, "stems": stems, "wordnet_words": len(wordnet)}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
