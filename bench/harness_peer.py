"""The lm-evaluation-harness peer of bench/harness.sh. `make WORK DOCS`: a GPT-2 (4 layers, width 256, 256
positions) with a byte-level BPE tokenizer and a 3-shot multiple-choice task and a 2-shot generation task of DOCS
documents each, in lm-eval's YAML (tests/evaluation/lm_eval_reference.py's generators, more documents and a larger
model). `run WORK TASK BATCH THREADS`: times lm_eval.simple_evaluate on the task (model loading and request building
included, as for Troupe's in-process figure), prints JSON {"seconds", "documents", "metrics"}.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "evaluation"))
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make(work, docs):
    import random

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    import lm_eval_reference as ref
    ref.make_model(work)  # tokenizer (and a small model, replaced below)
    tok = GPT2TokenizerFast.from_pretrained(os.path.join(work, "hf"))
    torch.manual_seed(2)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=256, n_layer=4, n_head=4, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(os.path.join(work, "hf"), safe_serialization=True)
    rng = random.Random(11)
    mc = []
    for _ in range(docs + 10):
        choices = [ref.sentence(rng, rng.randint(1, 6)) for _ in range(4)]
        mc.append({"question": ref.sentence(rng, rng.randint(5, 20)), "choices": choices, "answer": rng.randrange(4)})
    ref.write_jsonl(f"{work}/mc_test.jsonl", mc[:docs])
    ref.write_jsonl(f"{work}/mc_train.jsonl", mc[docs:])
    gen = [{"q": ref.sentence(rng, rng.randint(3, 10)), "a": ref.sentence(rng, 2)} for _ in range(docs)]
    ref.write_jsonl(f"{work}/gen_test.jsonl", gen)
    with open(f"{work}/mc.yaml", "w") as f:
        f.write(f"task: bench_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {work}/mc_test.jsonl\n"
                f"    train: {work}/mc_train.jsonl\ntest_split: test\nfewshot_split: train\noutput_type: multiple_choice\n"
                "doc_to_text: \"Question: {{question}}\\nAnswer:\"\ndoc_to_choice: \"{{choices}}\"\n"
                "doc_to_target: answer\nnum_fewshot: 3\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n")
    with open(f"{work}/gen.yaml", "w") as f:
        f.write(f"task: bench_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {work}/gen_test.jsonl\n"
                "test_split: test\noutput_type: generate_until\ndoc_to_text: \"Q: {{q}}\\nA:\"\n"
                "doc_to_target: \" {{a}}\"\ntarget_delimiter: \"\"\nnum_fewshot: 2\ngeneration_kwargs:\n"
                "  until: [\"\\n\"]\n  max_gen_toks: 16\n  do_sample: false\nmetric_list:\n  - metric: exact_match\n")


def run(work, task, batch, threads):
    import torch
    torch.set_num_threads(threads)
    import lm_eval
    from lm_eval.tasks import TaskManager
    tm = TaskManager(include_path=work)
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={work}/hf,dtype=float32", tasks=[task],
                                  task_manager=tm, batch_size=batch, device="cpu")
    seconds = time.perf_counter() - start
    res = out["results"][task]
    print(json.dumps({"seconds": seconds, "documents": res["sample_len"],
                      "metrics": {k: v for k, v in res.items() if isinstance(v, float)}}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
