"""Python's re on the cases of tests/metrics/py_regex_test.cpp: reads IN (a JSON list of {"pattern", "texts"}) and
writes OUT with, per case and text, re.findall as lists of groups (a 0- or 1-group match as a 1-element list),
re.sub(pattern, "", text) and whether re.search finds a match; a pattern Python rejects gets {"error": ...}.
usage: py_regex_reference.py IN OUT
"""
import json
import re
import sys


def main():
    cases = json.load(open(sys.argv[1], encoding="utf-8"))
    out = []
    for case in cases:
        try:
            rx = re.compile(case["pattern"])
        except re.error as e:
            out.append({"error": str(e)})
            continue
        rows = []
        for text in case["texts"]:
            found = rx.findall(text)
            groups = [list(m) if isinstance(m, tuple) else [m] for m in found]
            rows.append({"findall": groups, "sub": rx.sub("", text), "search": rx.search(text) is not None})
        out.append({"groups": rx.groups, "rows": rows})
    json.dump(out, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)


if __name__ == "__main__":
    main()
