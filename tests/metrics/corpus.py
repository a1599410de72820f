"""The shared, seeded test corpus of the metric reference tests: hypothesis/reference pairs that a metric must score
exactly as its Python reference does. Varied on purpose: empty strings, Unicode (accents, Greek with final sigma,
German sharp s, dotted capital I, CJK, emoji, non-breaking and other Unicode spaces), punctuation and HTML entities,
numbers with separators, hyphens, contractions, repeated words, casing, and hypotheses made from their references by
dropping, swapping, substituting, inflecting and re-casing words (so that scores spread over (0, 1), not only 0 and 1).

make_pairs(seed, n, refs) -> (hyps, refs_per_pair) with len(refs_per_pair[i]) == refs for every i.
"""
import random

WORDS = (
    "the a an of to and in is was he she it they we you for on that with as at by from this be are have had not "
    "but or cat cats dog dogs run running runs ran quick quickly brown fox jumps jumped over lazy sleeping slept "
    "house houses mouse mice child children went goes going gone good better best bad worse worst happy happiness "
    "study studies studied studying generous generously organization organizational connect connected connection "
    "city cities policy policies argue argued argument relate related relational agreement agree agreed car cars "
    "automobile motor vehicle big large huge small little tiny fast rapid speak talk said say says tell told "
    "report reported reporter president government election elections market markets price prices rose fell "
    "percent year years day days week today yesterday tomorrow people person man men woman women world country"
).split()
UNICODE = ["café", "naïve", "Straße", "ΣΟΦΟΣ", "σοφός", "İstanbul", "東京", "北京大学", "😀", "Ünïcödé", "résumé",
           "Ålborg", "ﬁle", "Kelvin\u212a", "niño", "Ærø", "Привет", "мир", "עברית", "العربية", "ǅemal", "Ⅻ", "²"]
PUNCT = [".", ",", "!", "?", ";", ":", "'", '"', "(", ")", "[", "]", "-", "--", "...", "&", "&quot;", "&amp;",
         "&lt;", "&gt;", "/", "@", "#", "$", "%", "*", "+", "=", "<", ">", "`", "~", "^", "|", "{", "}", "\\", "_",
         "«", "»", "“", "”", "—", "–", "…", "¿", "¡", "·"]
NUMBERS = ["1", "42", "3.14", "1,000", "2,500.75", "-5", "10-20", "1990s", "0.5%", "$100", "7th", "2024", "12:30"]
SPACES = [" ", " ", " ", " ", "  ", "\t", "\u00a0", "\u2009", "\u3000"]
CONTRACTIONS = ["don't", "it's", "can't", "o'clock", "rock'n'roll", "well-known", "e-mail", "U.S.", "Dr.", "etc."]


def _token(rng):
    r = rng.random()
    if r < 0.68:
        w = rng.choice(WORDS)
        c = rng.random()
        if c < 0.1:
            w = w.capitalize()
        elif c < 0.13:
            w = w.upper()
        return w
    if r < 0.78:
        return rng.choice(PUNCT)
    if r < 0.86:
        return rng.choice(NUMBERS)
    if r < 0.94:
        return rng.choice(UNICODE)
    return rng.choice(CONTRACTIONS)


def _join(rng, tokens):
    if not tokens:
        return ""
    out = tokens[0]
    for t in tokens[1:]:
        # Punctuation often attaches to the word before it, as in real text.
        if t in (".", ",", "!", "?", ";", ":", "...", "…") and rng.random() < 0.7:
            out += t
        else:
            out += rng.choice(SPACES) + t
    if rng.random() < 0.05:
        out = rng.choice(SPACES) + out
    if rng.random() < 0.05:
        out = out + rng.choice(SPACES)
    return out


def _sentence(rng, length):
    return [_token(rng) for _ in range(length)]


def _perturb(rng, tokens):
    out = list(tokens)
    edits = rng.randint(0, max(1, len(out) // 2))
    for _ in range(edits):
        op = rng.random()
        if op < 0.3 and out:
            del out[rng.randrange(len(out))]
        elif op < 0.55:
            out.insert(rng.randrange(len(out) + 1), _token(rng))
        elif op < 0.75 and out:
            out[rng.randrange(len(out))] = _token(rng)
        elif op < 0.9 and len(out) > 1:
            i = rng.randrange(len(out) - 1)
            out[i], out[i + 1] = out[i + 1], out[i]
        elif out:
            i = rng.randrange(len(out))
            out[i] = out[i].lower() if rng.random() < 0.5 else out[i].capitalize()
    return out


def make_pairs(seed=1234, n=500, refs=1):
    rng = random.Random(seed)
    hyps, all_refs = [], []
    for i in range(n):
        kind = i % 25
        base = _sentence(rng, rng.randint(1, 30))
        rs = [_join(rng, _perturb(rng, base)) for _ in range(refs)]
        if kind == 0:
            hyp = ""
        elif kind == 1:
            hyp = _join(rng, base)
            rs[0] = ""
        elif kind == 2:
            hyp, rs = "", [""] * refs
        elif kind == 3:
            hyp = rs[0]  # identical to a reference
        elif kind == 4:
            hyp = _join(rng, _sentence(rng, rng.randint(1, 10)))  # unrelated
        elif kind == 5:
            hyp = rng.choice(WORDS)  # one word
        elif kind == 6:
            hyp = " ".join([rng.choice(WORDS)] * rng.randint(2, 8))  # repeated word
        elif kind == 7:
            hyp = rng.choice(SPACES) * 3  # whitespace only
        else:
            hyp = _join(rng, _perturb(rng, base))
        hyps.append(hyp)
        all_refs.append(rs)
    return hyps, all_refs
