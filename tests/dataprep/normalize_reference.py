"""Python's unicodedata.normalize for tests/dataprep/normalize_test.cpp: writes OUT (JSON) with, for every code
point Python assigns (category not Cn, surrogates excluded) and for 3000 seeded strings of letters and combining
marks, the NFC, NFD, NFKC and NFKD forms, and Python's Unicode data version.
usage: normalize_reference.py OUT
"""
import json
import random
import sys
import unicodedata


def main():
    texts = [chr(c) for c in range(0x110000)
             if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    rng = random.Random(17)
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u0903", "\u093c", "\u3099", "\u309a", "\u05b0", "\u0f71"]
    bases = list("aeiouAEOUnNcCsSzZ") + ["\u3046", "\u304b", "\u1100", "\u1161", "\u11a8", "\uac00", "\u0915", "\u212b"]
    for _ in range(3000):
        texts.append("".join(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 3)))
                             for _ in range(rng.randint(1, 4))))
    out = {"version": unicodedata.unidata_version, "texts": texts,
           "forms": {f: [unicodedata.normalize(f, t) for t in texts] for f in ("NFC", "NFD", "NFKC", "NFKD")}}
    json.dump(out, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)


if __name__ == "__main__":
    main()
