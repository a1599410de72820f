"""ftfy 6.3.1's fix_encoding for tests/dataprep/markup_test.cpp: writes OUT (JSON) with seeded mojibake (random
Unicode text encoded to UTF-8 and decoded as cp1252 or Latin-1, some of it twice) and clean texts that must stay
as they are, each with ftfy.fix_encoding's result and the steps ftfy explains it with.
usage: markup_reference.py OUT
"""
import json
import random
import sys

import ftfy

ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz      ",
    "éèêëàâäçîïôöùûüÿñœæßÉÀÇÑ",
    "’‘“”–—…•€™°±×÷«»¿¡",
    "абвгдежзийклмнопрстуфхцчшщыэюяЖЯ",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "日本語中文字한국어ภาษาไทย",
    "😀🎉👍🚀",
    "ąćęłńóśźżčďěňřšťůž",
]


def unicode_text(rng):
    picks = rng.sample(ALPHABETS, rng.randint(1, 3))
    return "".join(rng.choice(rng.choice(picks)) for _ in range(rng.randint(1, 30)))


def mojibake(rng):
    text = unicode_text(rng)
    for _ in range(rng.choice([1, 1, 1, 2])):
        try:
            text = text.encode("utf-8").decode(rng.choice(["cp1252", "latin-1"]))
        except UnicodeDecodeError:
            break
    return text


def clean(rng):
    return rng.choice([
        lambda: unicode_text(rng),
        lambda: " ".join(rng.choice(["Café", "naïve", "résumé", "piñata", "Straße", "über", "£5", "50°C", "«oui»",
                                     "it’s", "ASCII", "text", "Ålborg", "Zoë", "coöperate", "¿qué?", "x²"])
                         for _ in range(rng.randint(1, 8))),
    ])()


def main():
    rng = random.Random(17)
    texts = [mojibake(rng) for _ in range(3000)] + [clean(rng) for _ in range(2000)]
    texts += ["CafÃ©", "itâ€™s", "sÃ³", "Ã³", "voilÃ le travail", "Ã¢â‚¬â„¢", "Café", "plain ascii"]
    fixed, steps = [], []
    for t in texts:
        r = ftfy.fix_encoding_and_explain(t)
        fixed.append(r.text)
        steps.append([list(s) for s in r.explanation])
    json.dump({"texts": texts, "fixed": fixed, "steps": steps}, open(sys.argv[1], "w", encoding="utf-8"),
              ensure_ascii=False)


if __name__ == "__main__":
    main()
