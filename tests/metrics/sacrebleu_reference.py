"""Reference values for tests/metrics/sacrebleu_test.cpp: sacreBLEU 2.6.0's BLEU, chrF/chrF++ and TER (corpus and
sentence level, several option sets) and its tokenizers, on the shared seeded corpus (corpus.make_pairs) with 1, 2
and 4 references, plus hand-picked tokenizer lines. Writes the inputs and sacrebleu's outputs as one JSON file.
One section per run (each GoogleTest case runs as its own process and needs only its own section).

Usage: sacrebleu_reference.py OUT.json SECTION
SECTION: tokenizers | bleu_corpus | bleu_sentence | chrf_corpus | chrf_sentence | ter_corpus | ter_sentence
"""
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import corpus  # noqa: E402
import sacrebleu  # noqa: E402
from sacrebleu.metrics.bleu import BLEU, BLEUScore  # noqa: E402
from sacrebleu.metrics.chrf import CHRF  # noqa: E402
from sacrebleu.metrics.ter import TER, TERScore  # noqa: E402
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a  # noqa: E402
from sacrebleu.tokenizers.tokenizer_char import TokenizerChar  # noqa: E402
from sacrebleu.tokenizers.tokenizer_intl import TokenizerV14International  # noqa: E402
from sacrebleu.tokenizers.tokenizer_ter import TercomTokenizer  # noqa: E402

# (seed, pairs, references per pair): 650 pairs in all.
VARIANTS = [(101, 250, 1), (102, 150, 1), (201, 150, 2), (401, 100, 4)]

BLEU_DEFAULTS = {"tokenize": "13a", "lowercase": False, "smooth_method": "exp", "smooth_value": None,
                 "max_ngram_order": 4, "effective_order": False}
BLEU_CORPUS = [
    {},
    {"lowercase": True},
    {"tokenize": "none"},
    {"tokenize": "intl"},
    {"tokenize": "char"},
    {"smooth_method": "none"},
    {"smooth_method": "floor"},
    {"smooth_method": "floor", "smooth_value": 0.25},
    {"smooth_method": "add-k"},
    {"smooth_method": "add-k", "smooth_value": 3},
    {"effective_order": True},
    {"max_ngram_order": 2},
    {"max_ngram_order": 6, "smooth_method": "none"},
    {"lowercase": True, "tokenize": "intl", "smooth_method": "floor"},
]
BLEU_SENTENCE = [
    {"effective_order": True},  # sacrebleu.sentence_bleu's defaults
    {"effective_order": True, "smooth_method": "floor"},
    {"effective_order": True, "smooth_method": "add-k"},
    {"effective_order": True, "smooth_method": "none"},
    {"effective_order": False},
    {"effective_order": True, "lowercase": True, "tokenize": "intl"},
    {"effective_order": True, "tokenize": "char", "max_ngram_order": 6},
]

CHRF_DEFAULTS = {"char_order": 6, "word_order": 0, "beta": 2, "lowercase": False, "whitespace": False,
                 "eps_smoothing": False}
CHRF_CORPUS = [
    {},
    {"word_order": 2},
    {"lowercase": True},
    {"whitespace": True},
    {"eps_smoothing": True},
    {"word_order": 2, "eps_smoothing": True},
    {"beta": 1},
    {"beta": 3, "char_order": 4, "word_order": 1},
    {"char_order": 0, "word_order": 2},
]
CHRF_SENTENCE = [
    {},
    {"word_order": 2},
    {"eps_smoothing": True},
    {"word_order": 2, "lowercase": True, "whitespace": True},
]

TER_DEFAULTS = {"normalized": False, "no_punct": False, "asian_support": False, "case_sensitive": False}
TER_CORPUS = [
    {},
    {"case_sensitive": True},
    {"normalized": True},
    {"no_punct": True},
    {"normalized": True, "asian_support": True},
    {"normalized": True, "no_punct": True, "asian_support": True, "case_sensitive": True},
]
TER_SENTENCE = [{}, {"normalized": True, "no_punct": True}]

# Tokenizer corner cases beyond the corpus: mteval's special strings, entities replaced in sequence, periods and
# commas next to digits, Unicode spaces and punctuation, CJK, possessives.
HAND_LINES = [
    "", " ", "\t", "<skipped>", "a<skipped>b", "end-\nof line", "two\nlines\n", "\n-dash",
    "&amp;lt; &quot;x&quot; &gt; &amp;amp; &AMP;", "1,000.50 and 3.14, 2-3 x-y 3-", "-3 a-3 3--4",
    "U.S.A. e.g., (hi) [x] {y} a.b,c", "é. .é ,é é, 5.é é.5", "a..b ,,c .,.,", "«quoted» “curly” — dash … ¿qué?",
    "Straße\u00a0ΣΟΦΟΣ\u3000東京。", "tab\tsep\u2009thin\u202fnarrow", "it's John's dog's 's 'S",
    "东京大学、北京。ひらがなカタカナ ㋀㍻", "１２３！？（）．，", "x\x1cy\x1dz", "a\u0085b", "$100 50% @home #tag ^_^ |p| ~t~ `k`",
    "ⅫⅫ ²³ ٣٤ 5.Ⅻ", "😀!😀 👍🏽.", "ﬁle Kelvin\u212a İstanbul", "trailing spaces   ", "\u3000\u3000lead",
]
TERCOM_OPTIONS = [
    {},
    {"case_sensitive": True},
    {"normalized": True},
    {"no_punct": True},
    {"normalized": True, "asian_support": True},
    {"no_punct": True, "asian_support": True},
    {"normalized": True, "no_punct": True, "asian_support": True, "case_sensitive": True},
]


def streams(refs_per_pair):
    """sacreBLEU's reference layout: one stream per reference index."""
    return [list(s) for s in zip(*refs_per_pair)]


def values_of(score):
    """The fields of a BLEUScore, CHRFScore or TERScore, and str(score)."""
    out = {"score": score.score, "format": str(score)}
    if isinstance(score, BLEUScore):
        out.update(counts=list(score.counts), totals=list(score.totals), precisions=list(score.precisions),
                   bp=score.bp, sys_len=score.sys_len, ref_len=score.ref_len)
    if isinstance(score, TERScore):
        out.update(num_edits=score.num_edits, ref_length=score.ref_length)
    return out


def corpus_section(metric_class, defaults, option_sets, hyps, refs):
    out = []
    for extra in option_sets:
        options = {**defaults, **extra}
        metric = metric_class(**options)
        values = values_of(metric.corpus_score(hyps, streams(refs)))
        values.update(options=options, signature=str(metric.get_signature()))
        out.append(values)
    return out


def sentence_section(metric_class, defaults, option_sets, hyps, refs):
    out = []
    for extra in option_sets:
        options = {**defaults, **extra}
        metric = metric_class(**options)
        scores = [values_of(metric.sentence_score(h, r)) for h, r in zip(hyps, refs)]
        out.append({"options": options, "signature": str(metric.get_signature()), "scores": scores})
    return out


SECTIONS = {
    "bleu_corpus": lambda h, r: corpus_section(BLEU, BLEU_DEFAULTS, BLEU_CORPUS, h, r),
    "bleu_sentence": lambda h, r: sentence_section(BLEU, BLEU_DEFAULTS, BLEU_SENTENCE, h, r),
    "chrf_corpus": lambda h, r: corpus_section(CHRF, CHRF_DEFAULTS, CHRF_CORPUS, h, r),
    "chrf_sentence": lambda h, r: sentence_section(CHRF, CHRF_DEFAULTS, CHRF_SENTENCE, h, r),
    "ter_corpus": lambda h, r: corpus_section(TER, TER_DEFAULTS, TER_CORPUS, h, r),
    "ter_sentence": lambda h, r: sentence_section(TER, TER_DEFAULTS, TER_SENTENCE, h, r),
}


def tokenizer_section(lines):
    t13a, tintl, tchar = Tokenizer13a(), TokenizerV14International(), TokenizerChar()
    tercom = [(options, TercomTokenizer(**{**TER_DEFAULTS, **options})) for options in TERCOM_OPTIONS]
    return {
        "lines": lines,
        "13a": [t13a(line) for line in lines],
        "intl": [tintl(line) for line in lines],
        "char": [tchar(line) for line in lines],
        "tercom": [{"options": {**TER_DEFAULTS, **options}, "tokens": [tok(line) for line in lines]}
                   for options, tok in tercom],
    }


def main():
    path, section = sys.argv[1], sys.argv[2]
    if section != "tokenizers" and section not in SECTIONS:
        sys.exit(f"unknown section {section!r}")
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)  # sentence BLEU without effective order warns
    out = {"version": sacrebleu.__version__, "section": section, "variants": []}
    all_lines = []
    for seed, n, nrefs in VARIANTS:
        hyps, refs = corpus.make_pairs(seed=seed, n=n, refs=nrefs)
        all_lines += hyps + [r for rs in refs for r in rs]
        if section in SECTIONS:
            out["variants"].append({"name": f"seed{seed}_n{n}_refs{nrefs}", "hyps": hyps, "refs": refs,
                                    "results": SECTIONS[section](hyps, refs)})
    if section == "tokenizers":
        out["tokenizers"] = tokenizer_section(HAND_LINES + sorted(set(all_lines)))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
