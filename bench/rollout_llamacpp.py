"""The llama.cpp peer of `troupe bench rollout` (bench/rollout.sh runs both on one model exported to GGUF).

Parallel decoding of P prompts x G samples x N new tokens, sampled (llama.cpp's dist sampler, one seeded chain per
sequence), no stop tokens: each prompt's tokens are decoded once and belong to all G of its sequences (llama.cpp's
shared-prefix KV cells, as examples/parallel shares its system prompt), in waves of at most 256 sequences
(LLAMA_MAX_SEQ), unified KV cache. And batch-1 greedy decode tokens/s: time(prompt + N tokens) - time(prompt + 1).
Prompts are the ids `troupe bench rollout` builds. Prints one JSON object. Not a correctness test (tests/models).
"""
import argparse
import json
import statistics
import time

import llama_cpp as L

MAX_SEQ = 256


def prompt_ids(p, length, vocab):
    return [(p * 7919 + i * 104729 + 1) % vocab for i in range(length)]


class Batch:
    def __init__(self, capacity, max_seqs):
        self.b = L.llama_batch_init(capacity, 0, max_seqs)

    def clear(self):
        self.b.n_tokens = 0

    def add(self, token, pos, seqs, logits):
        n = self.b.n_tokens
        self.b.token[n] = token
        self.b.pos[n] = pos
        self.b.n_seq_id[n] = len(seqs)
        for k, s in enumerate(seqs):
            self.b.seq_id[n][k] = s
        self.b.logits[n] = logits
        self.b.n_tokens = n + 1
        return n


def context(model, n_ctx, n_seq, n_batch, threads):
    p = L.llama_context_default_params()
    p.n_ctx = n_ctx
    p.n_batch = n_batch
    p.n_ubatch = min(n_batch, 512)
    p.n_seq_max = n_seq
    p.n_threads = threads
    p.n_threads_batch = threads
    p.kv_unified = True
    ctx = L.llama_init_from_model(model, p)
    if not ctx:
        raise SystemExit("llama.cpp: cannot create a context")
    return ctx


def decode(ctx, batch):
    rc = L.llama_decode(ctx, batch.b)
    if rc != 0:
        raise SystemExit(f"llama_decode failed: {rc}")


def sampler(seed):
    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
    return chain


def rollout(model, a):
    per_wave = max(1, MAX_SEQ // a.samples)
    wave_seqs = per_wave * a.samples
    length = a.prompt_len + a.new_tokens
    ctx = context(model, wave_seqs * length + 256, wave_seqs, max(per_wave * a.prompt_len, wave_seqs), a.threads)
    batch = Batch(max(per_wave * a.prompt_len, wave_seqs), a.samples)
    mem = L.llama_get_memory(ctx)
    generated = 0
    start = time.perf_counter()
    for first in range(0, a.prompts, per_wave):
        prompts = list(range(first, min(a.prompts, first + per_wave)))
        L.llama_memory_clear(mem, True)
        batch.clear()
        last_index = {}
        for j, p in enumerate(prompts):
            seqs = list(range(j * a.samples, (j + 1) * a.samples))
            ids = prompt_ids(p, a.prompt_len, a.vocab)
            for i, t in enumerate(ids):
                n = batch.add(t, i, seqs, i == len(ids) - 1)
            last_index[j] = n
        decode(ctx, batch)
        samplers = {}
        tokens = {}
        for j, p in enumerate(prompts):
            for s in range(a.samples):
                seq = j * a.samples + s
                samplers[seq] = sampler(p * a.samples + s)
                tokens[seq] = L.llama_sampler_sample(samplers[seq], ctx, last_index[j])
        generated += len(tokens)
        for step in range(1, a.new_tokens):
            batch.clear()
            order = sorted(tokens)
            for seq in order:
                batch.add(tokens[seq], a.prompt_len + step - 1, [seq], True)
            decode(ctx, batch)
            for i, seq in enumerate(order):
                tokens[seq] = L.llama_sampler_sample(samplers[seq], ctx, i)
            generated += len(order)
        for s in samplers.values():
            L.llama_sampler_free(s)
    seconds = time.perf_counter() - start
    L.llama_free(ctx)
    return generated / seconds, seconds


def decode_batch1(model, a):
    ctx = context(model, a.prompt_len + a.new_tokens + 8, 1, a.prompt_len, a.threads)
    batch = Batch(a.prompt_len, 1)
    greedy = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    L.llama_sampler_chain_add(greedy, L.llama_sampler_init_greedy())
    mem = L.llama_get_memory(ctx)

    def run(n):
        L.llama_memory_clear(mem, True)
        batch.clear()
        ids = prompt_ids(0, a.prompt_len, a.vocab)
        for i, t in enumerate(ids):
            batch.add(t, i, [0], i == len(ids) - 1)
        start = time.perf_counter()
        decode(ctx, batch)
        token = L.llama_sampler_sample(greedy, ctx, len(ids) - 1)
        out = [token]
        for step in range(1, n):
            batch.clear()
            batch.add(token, a.prompt_len + step - 1, [0], True)
            decode(ctx, batch)
            token = L.llama_sampler_sample(greedy, ctx, 0)
            out.append(token)
        return time.perf_counter() - start, out

    run(4)  # warm-up
    times = [run(a.new_tokens)[0] - run(1)[0] for _ in range(a.repeats)]
    tokens = run(a.new_tokens)[1]
    L.llama_free(ctx)
    return (a.new_tokens - 1) / statistics.median(times), tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-rollout", action="store_true")
    a = ap.parse_args()
    L.llama_backend_init()
    model = L.llama_model_load_from_file(a.gguf.encode(), L.llama_model_default_params())
    if not model:
        raise SystemExit(f"llama.cpp cannot load {a.gguf}")
    out = {"threads": a.threads}
    out["decode_tokens_per_s"], out["greedy_tokens"] = decode_batch1(model, a)
    if not a.skip_rollout:
        out["rollout_tokens_per_s"], out["rollout_seconds"] = rollout(model, a)
    L.llama_model_free(model)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
