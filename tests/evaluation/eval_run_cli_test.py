"""`troupe eval run` end to end: a suite of two lm-eval task files on a Hugging Face GPT-2 directory (made by
lm_eval_reference.py's helpers, without running lm-eval), the printed table, results.json, samples_<task>.jsonl and
log.h5 (read with h5py), --limit and --num-fewshot, and clear errors with exit code 2."""
import json
import os
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_eval_reference as ref  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402

CLI = os.environ["TROUPE_CLI"]


def run(args, expect=0):
    return run_checked([CLI, "eval", "run", *args], expect, timeout=600)


def main():
    work = tempfile.mkdtemp(prefix="troupe-eval-run-")
    ref.make_model(work)
    ref.make_tasks(work)
    with open(f"{work}/suite.yaml", "w") as f:
        f.write("tasks: [mc.yaml, gen.yaml]\n")
    out = f"{work}/out"
    r = run([f"{work}/suite.yaml", "-c", f"{work}/hf", "-o", out, "--limit", "10", "--quiet"])
    check("|troupe_mc" in r.stdout and "acc_norm" in r.stdout and "exact_match" in r.stdout, f"table:\n{r.stdout}")
    res = json.load(open(f"{out}/results.json"))["results"]
    check(set(res) == {"troupe_mc", "troupe_gen"}, f"results tasks {list(res)}")
    check(res["troupe_mc"]["documents"] == 10 and res["troupe_mc"]["num_fewshot"] == 3, f"mc {res['troupe_mc']}")
    samples = [json.loads(l) for l in open(f"{out}/samples_troupe_mc.jsonl")]
    check(len(samples) == 10, "10 samples")
    acc = sum(s["values"]["acc"] for s in samples) / 10
    check(abs(acc - res["troupe_mc"]["metrics"]["acc"]) < 1e-12, "acc is the mean of the samples' acc")
    check(samples[0]["context"].startswith("Pick the right answer.\n\nQuestion: "), samples[0]["context"][:60])
    gen = [json.loads(l) for l in open(f"{out}/samples_troupe_gen.jsonl")]
    check(all("generation" in g and "\n" not in g["generation"] for g in gen), "generations cut at the stop string")
    with h5py.File(f"{out}/log.h5", "r") as f:
        check(abs(f["metrics/eval/troupe_mc/acc/value"][0] - res["troupe_mc"]["metrics"]["acc"]) < 1e-12, "h5 acc")
        tasks = [t.decode() for t in f["tables/eval_results/task"][:]]
        check(tasks.count("troupe_mc") == 2 and tasks.count("troupe_gen") == 1, f"h5 table {tasks}")
        check(f.attrs["status"] == "finished", "h5 status")
    r = run([f"{work}/mc.yaml", "-c", f"{work}/hf", "--num-fewshot", "0", "--limit", "3", "-o", f"{work}/o0", "--quiet"])
    zero = [json.loads(l) for l in open(f"{work}/o0/samples_troupe_mc.jsonl")]
    check(zero[0]["context"].count("Question:") == 1, "zero-shot has one question")

    r = run([f"{work}/mc.yaml", "-c", f"{work}/hf", "--limit", "8", "--perturb", "case:0.5", "-o", f"{work}/op",
             "--quiet"])
    res = json.load(open(f"{work}/op/results.json"))["results"]
    check(set(res) == {"troupe_mc", "troupe_mc[case:0.5]"}, f"perturbed results {list(res)}")
    check(res["troupe_mc[case:0.5]"]["perturbation"] == "case:0.5", "perturbation label")

    # Repeats and filter pipelines: every response and every pipeline's answer in the samples, METRIC,PIPELINE keys
    # in results.json and log.h5, the vote share of the majority-vote pipeline.
    r = run([f"{work}/cot.yaml", "-c", f"{work}/hf", "--limit", "4", "-o", f"{work}/ocot", "--quiet"])
    check("exact_match,after-the" in r.stdout and "vote_share,maj@2" in r.stdout, f"cot table:\n{r.stdout}")
    res = json.load(open(f"{work}/ocot/results.json"))["results"]["troupe_cot"]["metrics"]
    check({"exact_match,pair", "exact_match,after-the", "exact_match,last-word", "exact_match,maj@2",
           "vote_share,maj@2"} <= set(res), f"cot metrics {sorted(res)}")
    cot = [json.loads(l) for l in open(f"{work}/ocot/samples_troupe_cot.jsonl")]
    check(len(cot) == 4 and all(len(c["generations"]) == 3 for c in cot), "3 responses per document")
    check(all(set(c["filtered"]) == {"pair", "after-the", "last-word", "maj@2"} for c in cot), "4 answers each")
    check(all(c["filtered"]["maj@2"]["vote_share"] == 1.0 for c in cot), "greedy repeats vote unanimously")
    with h5py.File(f"{work}/ocot/log.h5", "r") as f:
        check(abs(f["metrics/eval/troupe_cot/exact_match,pair/value"][0] - res["exact_match,pair"]) < 1e-12, "h5 pipe")

    # The probes: bias on two occupations, toxicity of given texts.
    p = subprocess.run([CLI, "eval", "probe", "bias", "-c", f"{work}/hf", "--occupation", "nurse", "--occupation",
                        "farmer", "--json", f"{work}/bias.json"], capture_output=True, text=True, timeout=300)
    check(p.returncode == 0 and "share preferring he" in p.stdout, f"bias probe: {p.stdout}{p.stderr}")
    bias = json.load(open(f"{work}/bias.json"))
    diffs = [row["logp_he"] - row["logp_she"] for row in bias["rows"]]
    check(abs(bias["mean_difference"] - sum(diffs) / 2) < 1e-9, "bias mean difference")
    with open(f"{work}/texts.txt", "w") as f:
        f.write("what the hell\nnice\nshell\n")
    lexicon = os.path.join(os.environ["TROUPE_SOURCE_DIR"], "tests/fixtures/lexicons/afinn165.tsv")
    p = subprocess.run([CLI, "eval", "probe", "toxicity", "--texts", f"{work}/texts.txt", "--lexicon", lexicon,
                        "--json", f"{work}/tox.json"], capture_output=True, text=True, timeout=300)
    tox = json.load(open(f"{work}/tox.json"))
    check(p.returncode == 0 and tox["toxic"] == 1 and tox["texts"] == 3, f"toxicity: {tox} {p.stderr}")
    # Toxicity of a model's samples on chat prompts rendered by a chat template; without the template, an error.
    with open(f"{work}/chat.jsonl", "w") as f:
        f.write(json.dumps({"messages": [{"role": "user", "content": "the cat sat"}]}) + "\n")
        f.write(json.dumps({"prompt": "a dog ran"}) + "\n")
    with open(f"{work}/chat_config.json", "w") as f:
        json.dump({"chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                                    "{% if add_generation_prompt %}assistant:{% endif %}"}, f)
    tox_args = [CLI, "eval", "probe", "toxicity", "-c", f"{work}/hf", "--prompts", f"{work}/chat.jsonl", "--lexicon",
                lexicon, "--samples", "2", "--max-new-tokens", "6", "--json", f"{work}/tox2.json"]
    p = subprocess.run(tox_args + ["--chat-template", f"{work}/chat_config.json"], capture_output=True, text=True,
                       timeout=300)
    check(p.returncode == 0 and json.load(open(f"{work}/tox2.json"))["texts"] == 4, f"chat toxicity: {p.stderr}")
    p = subprocess.run(tox_args, capture_output=True, text=True, timeout=300)
    check(p.returncode == 2 and "chat.jsonl:1" in p.stderr and "--chat-template" in p.stderr,
          f"no template: {p.returncode} {p.stderr}")

    with open(f"{work}/bad.yaml", "w") as f:
        f.write(open(f"{work}/mc.yaml").read() + "process_results: !function utils.process\n")
    r = run([f"{work}/bad.yaml", "-c", f"{work}/hf", "--quiet"], expect=2)
    check("bad.yaml:" in r.stderr and "process_results" in r.stderr, f"bad key message: {r.stderr}")
    r = run([f"{work}/mc.yaml", "-c", f"{work}/nowhere", "--quiet"], expect=2)
    check("tokenizer" in r.stderr, f"missing model message: {r.stderr}")
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
