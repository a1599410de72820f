"""Reference values for the METEOR and WordNet tests (tests/metrics/meteor_test.cpp, wordnet_test.cpp), from NLTK 3.10:
nltk.translate.meteor_score with NLTK's WordNetCorpusReader over Debian's wordnet-base files.

usage: meteor_reference.py {meteor|wordnet} OUT.json [WORDNET_DIR]   (WORDNET_DIR: default /usr/share/wordnet)

NLTK reads WordNet from a directory of its own, made next to OUT.json: a copy of the data, index and exception files
(NLTK's path check refuses symlinks that leave the directory) plus the `lexnames` file Debian does not ship.
"""
import json
import os
import shutil
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

# The 45 lexicographer files of WordNet 3.0 (lexnames(5WN)), in file-number order.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession "
    "verb.social verb.stative verb.weather adj.ppl"
).split()
SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
SUFFIXES = ("noun", "verb", "adj", "adv")


def nltk_wordnet(out_dir, source):
    """A WordNetCorpusReader over a copy of `source` in out_dir/wordnet."""
    d = os.path.join(out_dir, "wordnet")
    os.makedirs(d, exist_ok=True)
    for s in SUFFIXES:
        for f in (f"data.{s}", f"index.{s}", f"{s}.exc"):
            shutil.copyfile(os.path.join(source, f), os.path.join(d, f))
    with open(os.path.join(d, "lexnames"), "w") as fp:
        for i, name in enumerate(LEXNAMES):
            fp.write(f"{i:02d}\t{name}\t{SYNTACTIC_CATEGORY[name.split('.')[0]]}\n")
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    nltk.data.path.append(d)

    class Reader(WordNetCorpusReader):
        # The reader maps OMW (other languages') synsets to this version through nltk_data's own WordNet, which is
        # not installed; English synsets, morphy and lemma names never use that map.
        def map_wn(self, version="wordnet"):
            return None

    warnings.simplefilter("ignore")  # "multilingual functions are not available"
    return Reader(d, None)


def corpus_variants():
    """(name, refs, seed, n, alpha, beta, gamma): >= 500 pairs in all, 1 and 3 references, default and other weights."""
    return [
        ("refs1_seed11", 1, 11, 200, 0.9, 3.0, 0.5),
        ("refs1_seed12", 1, 12, 150, 0.9, 3.0, 0.5),
        ("refs3_seed13", 3, 13, 150, 0.9, 3.0, 0.5),
        ("refs3_seed14", 3, 14, 100, 0.9, 3.0, 0.5),
        ("refs2_seed15_weights", 2, 15, 100, 0.75, 2.0, 0.3),
    ]


# Pairs built to reach the stem and synonym stages. NLTK matches synonyms on the Porter stems of the words left after
# the exact and stem stages, so "car"/"auto" match but "big"/"large" ("larg") and "automobile" ("automobil") do not.
HANDMADE = [
    ("the car moves fast", ["the automobile moved quickly"]),
    ("the automobile moved quickly", ["the car moves fast"]),
    ("the car is fast", ["the auto is quick"]),
    ("a big house", ["a large house"]),
    ("mice ran", ["a mouse runs"]),
    ("he went home", ["he goes home", "he did go home"]),
    ("she is better", ["she is good", "she is well"]),
    ("the children studied", ["the child studies", "kids study"]),
    ("they argued about policies", ["they argue about policy"]),
    ("the geese flew", ["the goose flies", "a goose fly"]),
    ("connected connections connect", ["connection connect connected"]),
    ("The Quick Brown Fox", ["the quick brown fox"]),
    ("dr. smith of the u.s.", ["doctor smith of the us"]),
    ("go go go", ["travel move go"]),
    ("fast rapid quick", ["quick fast rapid"]),
    ("happy happiness", ["felicity glad"]),
    ("the president said", ["the president told", "president says"]),
    ("worse worst bad", ["bad badly worst"]),
    ("the men and women", ["the man and woman", "men women"]),
    ("talk speak say tell", ["speak talk tell say"]),
    ("a", ["a"]),
    ("the", ["a"]),
    ("", ["something"]),
    ("something", [""]),
    ("cat dog", ["dog cat"]),
    ("the cat sat on the mat", ["the cat sat on the mat"]),
    ("on the mat the cat sat", ["the cat sat on the mat"]),
    ("ΣΟΦΟΣ Straße İstanbul", ["σοφός strasse i̇stanbul"]),
    ("car car car", ["auto auto car"]),
    ("cars autos", ["car auto"]),
]


def meteor_cases(wn):
    from nltk.translate.meteor_score import meteor_score

    variants = []
    for name, refs, seed, n, alpha, beta, gamma in corpus_variants():
        hyps, all_refs = corpus.make_pairs(seed=seed, n=n, refs=refs)
        variants.append((name, list(zip(hyps, all_refs)), alpha, beta, gamma))
    variants.append(("handmade", HANDMADE, 0.9, 3.0, 0.5))
    out = []
    for name, pairs, alpha, beta, gamma in variants:
        cases, total = [], 0.0
        for hyp, rs in pairs:
            score = meteor_score(
                [r.split() for r in rs], hyp.split(), wordnet=wn, alpha=alpha, beta=beta, gamma=gamma
            )
            cases.append({"hyp": hyp, "refs": rs, "score": score})
            total += score
        out.append({"name": name, "alpha": alpha, "beta": beta, "gamma": gamma, "cases": cases,
                    "corpus": total / len(cases)})
    return {"variants": out}


def wordnet_words(source):
    """Words to compare synsets and morphy on: the corpus's words and their stems, a sample of every index and
    exception file (with inflections added, so that every suffix rule fires), and cases of their own."""
    from nltk.stem.porter import PorterStemmer

    stemmer = PorterStemmer()
    words = set()
    for w in corpus.WORDS + corpus.UNICODE + corpus.CONTRACTIONS + corpus.NUMBERS + corpus.PUNCT:
        words.update({w, w.lower(), w.capitalize(), stemmer.stem(w)})
    hyps, all_refs = corpus.make_pairs(seed=21, n=150, refs=2)
    for text in hyps + [r for rs in all_refs for r in rs]:
        for w in text.split():
            words.update({w.lower(), stemmer.stem(w)})
    for s in SUFFIXES:
        with open(os.path.join(source, f"index.{s}")) as fp:
            lemmas = [line.split()[0] for line in fp if not line.startswith(" ")]
        for lemma in lemmas[::97]:
            words.update({lemma, lemma + "s", lemma + "es", lemma + "ed", lemma + "ing", lemma + "er", lemma + "est"})
        with open(os.path.join(source, f"{s}.exc")) as fp:
            forms = [line.split()[0] for line in fp if line.strip()]
        words.update(forms[::23])
    words.update(["mice", "went", "better", "best", "geese", "Dr.", "U.S.", "A", "", "ies", "s", "men", "axes",
                  "boxes", "churches", "wives", "oxen", "teeth", "studying", "larger", "hottest", "'s", "o'clock"])
    return sorted(words)


def wordnet_cases(wn):
    pos_of = {"n": "n", "v": "v", "a": "a", "s": "a", "r": "r"}  # NLTK reports satellites as 's', found via 'a'
    out = []
    for w in wordnet_words(sys.argv[3] if len(sys.argv) > 3 else "/usr/share/wordnet"):
        synsets = [[pos_of[s.pos()], s.offset(), s.lemma_names()] for s in wn.synsets(w)]
        morphy = [wn._morphy(w, p) for p in ("n", "v", "a", "r")]
        out.append({"word": w, "synsets": synsets, "morphy": morphy})
    return {"words": out}


def main():
    mode, out_path = sys.argv[1], sys.argv[2]
    source = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/wordnet"
    wn = nltk_wordnet(os.path.dirname(os.path.abspath(out_path)), source)
    result = meteor_cases(wn) if mode == "meteor" else wordnet_cases(wn)
    with open(out_path, "w") as fp:
        json.dump(result, fp, ensure_ascii=False)


if __name__ == "__main__":
    main()
