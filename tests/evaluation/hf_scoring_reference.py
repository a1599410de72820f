"""The Hugging Face side of tests/evaluation/scoring_test.cpp: a random GPT2LMHeadModel saved to DIR/hf, and, computed
with it in float32, (1) lm-evaluation-harness-style continuation log-likelihoods and greedy flags (the whole of
context + continuation in one forward, truncated to the last n_positions + 1 tokens, as lm-eval's HFLM does), and
(2) sliding-window perplexities with explicit per-token labels. Writes DIR/reference.json.

usage: hf_scoring_reference.py DIR
"""
import json
import os
import random
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    work = sys.argv[1]
    torch.set_num_threads(1)
    torch.manual_seed(3)
    cfg = GPT2Config(vocab_size=61, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.save_pretrained(os.path.join(work, "hf"), safe_serialization=True)
    model.eval()
    rng = random.Random(9)
    max_length = cfg.n_positions

    def loglikelihood(context, continuation):
        whole = (context + continuation)[-(max_length + 1):][:-1]
        inp = torch.tensor([whole])
        with torch.no_grad():
            logits = torch.log_softmax(model(inp).logits.float(), dim=-1)[0]
        n = len(continuation)
        logits = logits[len(whole) - n:]
        cont = torch.tensor(continuation)
        greedy = bool((logits.argmax(-1) == cont).all())
        lp = torch.gather(logits, 1, cont.unsqueeze(-1)).squeeze(-1)
        return float(lp.sum()), greedy

    requests = []
    for q in range(30):
        context = [rng.randrange(61) for _ in range(rng.choice([1, 2, 5, 12, 31, 40]))]
        choices = []
        for c in range(rng.randint(1, 5)):
            choices.append([rng.randrange(61) for _ in range(rng.randint(1, 8))])
        # A greedy continuation, so that is_greedy is true somewhere.
        ids = list(context)[-max_length:]
        greedy = []
        with torch.no_grad():
            for _ in range(rng.randint(1, 4)):
                nxt = int(model(torch.tensor([ids[-max_length:]])).logits[0, -1].argmax())
                greedy.append(nxt)
                ids.append(nxt)
        choices.append(greedy)
        for cont in choices:
            lp, g = loglikelihood(context, cont)
            requests.append({"context": context, "continuation": cont, "logprob": lp, "is_greedy": g})

    seq = [rng.randrange(61) for _ in range(150)]
    perplexities = []
    for window, stride in [(32, 32), (32, 16), (32, 1), (20, 7), (2, 1), (32, 31)]:
        nll, count, prev_end, begin = 0.0, 0, 0, 0
        while begin < len(seq):
            end = min(begin + window, len(seq))
            first = max(prev_end, begin + 1)
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([seq[begin:end]])).logits.double(), -1)[0]
            for pos in range(first, end):
                nll -= float(logp[pos - begin - 1, seq[pos]])
                count += 1
            prev_end = end
            if end == len(seq):
                break
            begin += stride
        perplexities.append({"window": window, "stride": stride, "nll_sum": nll, "tokens": count})
    json.dump({"requests": requests, "sequence": seq, "perplexity": perplexities},
              open(os.path.join(work, "reference.json"), "w"))


if __name__ == "__main__":
    main()
