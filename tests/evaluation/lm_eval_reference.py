"""The lm-evaluation-harness side of tests/evaluation/harness_test.cpp. Makes, in DIR:
  hf/            a GPT-2 (random weights, n_positions 128) with a byte-level BPE tokenizer trained here, saved with
                 save_pretrained: the model both harnesses evaluate
  *.jsonl        the documents of four local tasks, and their task YAMLs in lm-eval's own format (the same files
                 `troupe eval run` reads): a 3-shot multiple-choice task with a description, a 4-shot one drawing
                 from its own test split (rendered targets, custom delimiters), a 2-shot generate_until task with
                 stop strings, and a loglikelihood task
  reference.json lm_eval.simple_evaluate's per-sample arguments, responses and metrics, and its aggregates
usage: lm_eval_reference.py DIR
"""
import json
import os
import random
import sys

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tokenizers import ByteLevelBPETokenizer  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast  # noqa: E402

WORDS = ("cat dog bird fish red blue green small big the a on in under over near sat ran flew swam what which "
         "where is are two three four plus minus equals yes no maybe answer question").split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_model(work):
    rng = random.Random(0)
    texts = [sentence(rng, rng.randint(3, 12)) + rng.choice([".", "?", "!", "\n"]) for _ in range(400)]
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(texts, vocab_size=400, min_frequency=2, special_tokens=[])
    tok.add_special_tokens(["<|endoftext|>"])  # after the ordinary tokens, as GPT-2's 50256
    hf = GPT2TokenizerFast(tokenizer_object=tok._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                           unk_token="<|endoftext|>")
    hf.save_pretrained(os.path.join(work, "hf"))
    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(hf), n_positions=128, n_embd=48, n_layer=2, n_head=4, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=hf.eos_token_id, eos_token_id=hf.eos_token_id)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(os.path.join(work, "hf"), safe_serialization=True)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def make_tasks(work):
    rng = random.Random(7)
    mc = []
    for i in range(40):
        choices = [sentence(rng, rng.randint(1, 4)) for _ in range(rng.randint(2, 4))]
        if i % 7 == 0:
            choices[0] = "ünïcode " + choices[0]  # acc_norm counts characters, not bytes
        mc.append({"question": sentence(rng, rng.randint(3, 9)), "choices": choices, "answer": rng.randrange(len(choices))})
    write_jsonl(f"{work}/mc_test.jsonl", mc[:30])
    write_jsonl(f"{work}/mc_train.jsonl", mc[30:])
    with open(f"{work}/mc.yaml", "w") as f:
        f.write(f"""task: troupe_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {work}/mc_test.jsonl
    train: {work}/mc_train.jsonl
test_split: test
fewshot_split: train
output_type: multiple_choice
description: "Pick the right answer.\\n\\n"
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
num_fewshot: 3
metric_list:
  - metric: acc
  - metric: acc_norm
""")
    # The same documents drawing their examples from the test split itself: each document is left out of its own.
    with open(f"{work}/mc_self.yaml", "w") as f:
        f.write(f"""task: troupe_mc_self
dataset_path: json
dataset_kwargs:
  data_files:
    test: {work}/mc_test.jsonl
test_split: test
fewshot_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: " => "
fewshot_delimiter: "\n"
num_fewshot: 4
""")
    gen = [{"q": sentence(rng, rng.randint(2, 6)), "a": sentence(rng, rng.randint(1, 3))} for _ in range(24)]
    write_jsonl(f"{work}/gen_test.jsonl", gen)
    with open(f"{work}/gen.yaml", "w") as f:
        f.write(f"""task: troupe_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {work}/gen_test.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{q}}}}\\nA:"
doc_to_target: " {{{{a}}}}"
target_delimiter: ""
num_fewshot: 2
generation_kwargs:
  until: ["\\n", "?"]
  max_gen_toks: 12
  do_sample: false
metric_list:
  - metric: exact_match
""")
    # Answer extraction as chain-of-thought tasks do it: three regex pipelines (a 2-group pattern, a 1-group pattern with
    # a fallback, the last match of a pattern), a majority vote over 3 repeats and exact_match's options. Targets
    # alternate between a word and the fallback, so both matches and non-matches score.
    cot = [{"q": sentence(rng, rng.randint(2, 6)), "a": rng.choice(WORDS) if i % 2 else "[INVALID]"} for i in range(16)]
    write_jsonl(f"{work}/cot_test.jsonl", cot)
    with open(f"{work}/cot.yaml", "w") as f:
        f.write(f"""task: troupe_cot
dataset_path: json
dataset_kwargs:
  data_files:
    test: {work}/cot_test.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{q}}}}\\nA:"
doc_to_target: a
repeats: 3
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 16
  do_sample: false
filter_list:
  - name: pair
    filter:
      - function: regex
        regex_pattern: "(cat|dog|bird|fish) (\\\\w+)|(\\\\w+) (sat|ran)"
      - function: take_first
  - name: after-the
    filter:
      - function: regex
        regex_pattern: "(?:the|a) (\\\\w+)"
        fallback: "[invalid]"
      - function: take_first
  - name: last-word
    filter:
      - function: regex
        regex_pattern: "\\\\b(\\\\w+)\\\\W*$"
        group_select: -1
      - function: remove_whitespace
      - function: take_first
  - name: maj@2
    filter:
      - function: take_first_k
        k: 2
      - function: regex
        regex_pattern: "(\\\\w+)"
      - function: majority_vote
      - function: take_first
metric_list:
  - metric: exact_match
    ignore_case: true
    ignore_punctuation: true
    regexes_to_ignore: ["^\\\\s+", "xyz"]
""")
    ll = [{"text": sentence(rng, rng.randint(2, 6)), "cont": " " + sentence(rng, rng.randint(1, 5))} for _ in range(20)]
    write_jsonl(f"{work}/ll_test.jsonl", ll)
    with open(f"{work}/ll.yaml", "w") as f:
        f.write(f"""task: troupe_ll
dataset_path: json
dataset_kwargs:
  data_files:
    test: {work}/ll_test.jsonl
test_split: test
output_type: loglikelihood
doc_to_text: text
doc_to_target: cont
metric_list:
  - metric: perplexity
  - metric: acc
""")


def main():
    work = os.path.abspath(sys.argv[1])
    torch.set_num_threads(1)
    make_model(work)
    make_tasks(work)
    import lm_eval
    from lm_eval.tasks import TaskManager
    tm = TaskManager(include_path=work)
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={work}/hf,dtype=float32",
                                  tasks=["troupe_mc", "troupe_mc_self", "troupe_gen", "troupe_ll", "troupe_cot"], task_manager=tm, log_samples=True,
                                  batch_size=1, device="cpu")
    ref = {"results": {}, "samples": {}}
    for task, res in out["results"].items():
        ref["results"][task] = {k: v for k, v in res.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for task, samples in out["samples"].items():
        rows = []
        for s in sorted(samples, key=lambda s: (s["filter"], s["doc_id"])):
            rows.append({"doc_id": s["doc_id"], "filter": s["filter"], "all_resps": s["resps"], "arguments": [list(a) if isinstance(a, tuple) else a for a in s["arguments"]],
                         "resps": s["filtered_resps"],
                         "metrics": {m: s[m] for m in s["metrics"]}})
        ref["samples"][task] = rows
    with open(os.path.join(work, "reference.json"), "w") as f:
        json.dump(ref, f, default=str)


if __name__ == "__main__":
    main()
