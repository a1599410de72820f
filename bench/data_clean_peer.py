"""The datatrove peer of bench/data_clean.sh, and its corpus.

`make WORK MB`: a seeded English-like JSONL corpus of at least MB megabytes (WORK/corpus.jsonl) and an evaluation
file (WORK/eval.jsonl) for Troupe's decontaminate stage. Words are drawn from a Zipf distribution over 213 common
English words and 20,000 syllable-built words; documents of 50-1,500 words in sentences and paragraphs. Planted so
that every stage does work: exact copies of earlier documents (5% of the documents), near copies with 0.5-2% of the
words replaced (5%), copies wrapped in HTML (2%), junk (4%: short documents, bullet lists, no stop words, repeated
lines, hashtags), and among the rest URLs (10%), e-mail or IP addresses (10%), mojibake (UTF-8 read as cp1252, 2%)
and up to 40 documents carrying a 13-word run of an evaluation item. The same file for the same MB on any machine.

`time OUT CMD...`: runs CMD (its output to CMD's own stdout/stderr), appends "wall_seconds cpu_seconds" (user + system
of CMD and its children) to OUT; exits with CMD's status. Both sides of the benchmark are timed through it.

`run WORK BANDS ROWS`: datatrove 0.10.1's equivalent of Troupe's matched pipeline on WORK/corpus.jsonl, one task,
one worker (LocalPipelineExecutor(tasks=1, workers=1)), timed wall-clock from the first stage to the last file
written, as six pipelines (datatrove's filters index documents by their position, so each dedup filter runs over the
files its signatures were taken from):
  1. JsonlReader -> FTFYFormatter (the fix_encoding part of ftfy) -> PIIFormatter -> GopherQualityFilter ->
     GopherRepetitionFilter -> JsonlWriter -> ExactDedupSignature (signature steps end a pipeline)
  2. ExactFindDedups
  3. JsonlReader -> ExactDedupFilter -> JsonlWriter -> MinhashDedupSignature
  4. MinhashDedupBuckets   5. MinhashDedupCluster
  6. JsonlReader -> MinhashDedupFilter -> JsonlWriter
MinHash as Troupe's dedup stage configures it: word 5-grams, BANDS x ROWS hashes (Troupe's LSH banding for threshold
0.8 and 128 permutations), seed 1, SHA-1 32-bit. Words come from datatrove's English word tokenizer (spaCy's blank
English tokenizer, shipped with spaCy: nothing is downloaded). Prints one JSON line: {"seconds", "documents_in",
"documents_out", "bytes_in", "removed": {stage: n}, "stage_seconds": {...}}.
"""
import json
import math
import os
import random
import shutil
import sys
import time

COMMON = (
    "the of and to a in is that it was for on are as with his they at be this from have or by one had not but what "
    "all were when we there can an your which their said if do will each about how up out them then she many some so "
    "these would other into has more her two like him see time could no make than first been its who now people my "
    "made over did down only way find use may water long little very after words called just where most know get "
    "through back much before go good new write our used me man too any day same right look think also around "
    "another came come work three word must because does part even place well such here take why things help put "
    "years different away again off went old number great tell men say small every found still between name should "
    "home big give air line set own under read last never us left end along while might next sound below saw "
    "something thought both few those always looked show large often together asked house world going want school "
    "important until form food keep children feet land side without boy once animals life enough took sometimes"
).split()
STOP = ["the", "be", "to", "of", "and", "that", "have", "with"]
SYLLABLES = ("ka lo mi ren tas vo nel dur pi sam fo gri tel bon ash cor lin ver mas tor pen hal sul dro fen mar "
             "quo zen bri ath ol ux im ep").split()
ACCENTED = ["café", "naïve", "résumé", "façade", "über", "fiancée", "coöperate", "soirée", "—"]


def vocabulary(rng):
    tail = set()
    while len(tail) < 20000:
        tail.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    tail = sorted(tail)
    rng.shuffle(tail)  # Zipf ranks in no alphabetical order
    words = COMMON + tail
    weights = [1.0 / (rank + 2.7) ** 1.02 for rank in range(len(words))]
    total, cum = 0.0, []
    for w in weights:
        total += w
        cum.append(total)
    return words, cum


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.words, self.cum = vocabulary(self.rng)

    def sentence(self, n):
        ws = self.rng.choices(self.words, cum_weights=self.cum, k=n)
        if self.rng.random() < 0.05:
            ws[self.rng.randrange(n)] = self.rng.choice(ACCENTED)
        if n > 6 and self.rng.random() < 0.15:
            ws[self.rng.randrange(n - 1)] += ","
        ws[0] = ws[0].capitalize()
        return " ".join(ws) + self.rng.choice(".....?!")

    def paragraph(self, words):
        out, left = [], words
        while left > 0:
            n = min(left, self.rng.randint(5, 25))
            out.append(self.sentence(max(n, 3)))
            left -= n
        return " ".join(out)

    def document(self):
        words = int(math.exp(self.rng.uniform(3.9, 7.3)))  # 50..1500, log-uniform
        paras, left = [], words
        while left > 0:
            n = min(left, self.rng.randint(40, 160))
            paras.append(self.paragraph(n))
            left -= n
        return "\n\n".join(paras)

    def near_copy(self, text, frac):
        ws = text.split(" ")
        for i in range(len(ws)):
            if self.rng.random() < frac:
                ws[i] = self.rng.choices(self.words, cum_weights=self.cum, k=1)[0]
        return " ".join(ws)

    def low_quality(self):
        kind = self.rng.randrange(5)
        if kind == 0:  # gopher_short_doc
            return self.sentence(self.rng.randint(4, 40))
        if kind == 1:  # bullet lines
            return "\n".join("- " + self.sentence(self.rng.randint(3, 8)) for _ in range(self.rng.randint(10, 30)))
        if kind == 2:  # no stop words
            tail = [w for w in self.words[len(COMMON):len(COMMON) + 3000]]
            return " ".join(self.rng.choice(tail) for _ in range(self.rng.randint(80, 300))) + "."
        if kind == 3:  # a line repeated
            line = self.sentence(12)
            return "\n".join([line] * self.rng.randint(8, 20) + [self.sentence(20) for _ in range(3)])
        return " ".join("#" + w for w in self.sentence(self.rng.randint(60, 200)).split())  # hashtags

    def url(self):
        host = self.rng.choice(["www.example.com", "docs.example.org", "blog.example.net"])
        return f"https://{host}/{self.rng.choice(self.words[150:])}/{self.rng.randint(1, 9999)}"

    def pii(self):
        if self.rng.random() < 0.5:
            return f"{self.rng.choice(self.words[150:])}.{self.rng.randint(1, 99)}@example.org"
        return ".".join(str(self.rng.randint(1, 223)) for _ in range(4))


def insert(rng, text, piece):
    ws = text.split(" ")
    ws.insert(rng.randrange(len(ws) + 1), piece)
    return " ".join(ws)


def make(work, megabytes):
    os.makedirs(work, exist_ok=True)
    g = Generator(17)
    evals = [g.sentence(30) for _ in range(200)]
    with open(f"{work}/eval.jsonl", "w") as f:
        for i, e in enumerate(evals):
            f.write(json.dumps({"id": i, "text": e}) + "\n")
    target, size, docs = megabytes * 1_000_000, 0, []
    tmp = f"{work}/corpus.jsonl.tmp"
    contaminated, index = 0, 0
    with open(tmp, "w", encoding="utf-8") as f:
        while size < target:
            r = g.rng.random()
            if r < 0.05 and docs:
                text = g.rng.choice(docs)
            elif r < 0.10 and docs:
                text = g.near_copy(g.rng.choice(docs), g.rng.choice([0.005, 0.01, 0.02]))
            elif r < 0.12 and docs:
                body = g.rng.choice(docs).split("\n\n")
                text = ("<html><head><title>t</title><style>p {color: red}</style></head><body>" +
                        "".join(f"<p>{p}</p>" for p in body) + "<script>track();</script></body></html>")
            elif r < 0.16:
                text = g.low_quality()
            else:
                text = g.document()
                if len(docs) < 20000:
                    docs.append(text)
                if g.rng.random() < 0.10:
                    text = insert(g.rng, text, g.url())
                if g.rng.random() < 0.10:
                    text = insert(g.rng, text, "write to " + g.pii())
                if g.rng.random() < 0.02:
                    text = text.encode("utf-8").decode("cp1252", errors="replace")
                if contaminated < 40 and g.rng.random() < 0.002:
                    run = " ".join(g.rng.choice(evals).split(" ")[5:18])
                    text = insert(g.rng, text, run)
                    contaminated += 1
            line = json.dumps({"id": index, "text": text}, ensure_ascii=False) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            index += 1
    os.replace(tmp, f"{work}/corpus.jsonl")


# ---- datatrove ---------------------------------------------------------------------------------------------------


def exact_content(doc):
    """Troupe's exact key is of NFC, whitespace-cleaned, lower-cased text; lower-casing is the part that matters
    here (the corpus is NFC and its whitespace regular)."""
    return doc.text.lower()


def run(work, bands, rows):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.exact_dedup import (ExactDedupConfig, ExactDedupFilter, ExactDedupSignature,
                                                      ExactFindDedups)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    out = f"{work}/datatrove"
    shutil.rmtree(out, ignore_errors=True)
    minhash = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=1,
                            hash_config=HashConfig(precision=32, hash_fc="sha1"))
    exact = ExactDedupConfig(content_getter=exact_content, hash_config=HashConfig(precision=64, hash_fc="sha1"))
    # ftfy.fix_encoding's repairs only, as Troupe's mojibake stage (no HTML unescaping or control-character removal).
    ftfy = FTFYFormatter(unescape_html=False, remove_terminal_escapes=False, fix_surrogates=False,
                         remove_control_chars=False)
    compression = None
    stages = {
        "filter": [JsonlReader(f"{work}", glob_pattern="corpus.jsonl", compression=compression), ftfy,
                   PIIFormatter(), GopherQualityFilter(), GopherRepetitionFilter(),
                   JsonlWriter(f"{out}/filtered", compression=compression),
                   ExactDedupSignature(f"{out}/exact_sigs", config=exact)],
        "exact_find": [ExactFindDedups(f"{out}/exact_sigs", f"{out}/exact_dups", config=exact)],
        "exact_filter": [JsonlReader(f"{out}/filtered", compression=compression),
                         ExactDedupFilter(f"{out}/exact_dups", config=exact),
                         JsonlWriter(f"{out}/exact_deduped", compression=compression),
                         MinhashDedupSignature(f"{out}/minhash_sigs", config=minhash)],
        "minhash_buckets": [MinhashDedupBuckets(f"{out}/minhash_sigs", f"{out}/minhash_buckets", config=minhash)],
        "minhash_cluster": [MinhashDedupCluster(f"{out}/minhash_buckets", f"{out}/minhash_remove", config=minhash)],
        "minhash_filter": [JsonlReader(f"{out}/exact_deduped", compression=compression),
                           MinhashDedupFilter(f"{out}/minhash_remove"),
                           JsonlWriter(f"{out}/out", compression=compression)],
    }
    stage_seconds, stats = {}, {}
    start = time.perf_counter()
    for name, pipeline in stages.items():
        t0 = time.perf_counter()
        tasks = minhash.num_buckets if name == "minhash_buckets" else 1
        executor = LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                                         logging_dir=f"{out}/logs/{name}")
        stats[name] = executor.run()
        stage_seconds[name] = time.perf_counter() - t0
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "stage_seconds": stage_seconds, **summarise(work, out)}))


def summarise(work, out):
    def count(folder):
        n, b = 0, 0
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                for line in f:
                    n += 1
                    b += len(json.loads(line)["text"].encode("utf-8"))
        return n, b
    n_in, b_in = count_file(f"{work}/corpus.jsonl")
    n_filtered, _ = count(f"{out}/filtered")
    n_exact, _ = count(f"{out}/exact_deduped")
    n_out, b_out = count(f"{out}/out")
    return {"documents_in": n_in, "bytes_in": b_in, "documents_out": n_out, "bytes_out": b_out,
            "removed": {"filters": n_in - n_filtered, "exact_duplicate": n_filtered - n_exact,
                        "near_duplicate": n_exact - n_out}}


def count_file(path):
    n, b = 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            n += 1
            b += len(json.loads(line)["text"].encode("utf-8"))
    return n, b


def time_command(out, argv):
    import resource
    import subprocess
    start = time.perf_counter()
    rc = subprocess.call(argv)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "a") as f:
        f.write(f"{wall:.3f} {usage.ru_utime + usage.ru_stime:.3f}\n")
    return rc


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "time":
        sys.exit(time_command(sys.argv[2], sys.argv[3:]))
    if cmd == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif cmd == "run":
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
