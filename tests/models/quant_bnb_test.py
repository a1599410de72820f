"""`troupe quantize --scheme nf4` against bitsandbytes on the same weights: a random Hugging Face GPT-2 saved by
transformers, quantized by Troupe; every layer's packed codes, block absmax (plain and double-quantized: codes,
second-level absmax, offset) and dequantized weight equal bitsandbytes.functional.quantize_4bit /
dequantize_4bit's, and the stored code books equal bitsandbytes' NF4 table and dynamic map. Also checks the
int8 and int4 directories load back (`troupe generate` on them) and a bad scheme's error."""
import json
import os
import sys
import tempfile

import bitsandbytes.functional as bnbf
import torch
from safetensors import safe_open
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402

CLI = os.environ["TROUPE_CLI"]


def layer_weights(model):
    """Troupe layer name -> weight [out, in] (GPT-2's Conv1D stores [in, out])."""
    out = {}
    sd = model.state_dict()
    for name, t in sd.items():
        if name.endswith(".weight") and any(k in name for k in ("c_attn", "c_proj", "c_fc")):
            out[name[: -len(".weight")]] = t.t().contiguous()
    out["transformer.wte"] = sd["transformer.wte.weight"].contiguous()
    return out


def main():
    work = tempfile.mkdtemp(prefix="troupe-quant-bnb-")
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_head=4, n_embd=128, n_positions=64, vocab_size=320)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():  # weights of several scales, so blocks have different absmax
        for i, p in enumerate(model.parameters()):
            p.mul_(1.0 + 0.5 * i)
    model.save_pretrained(f"{work}/hf", safe_serialization=True)
    weights = layer_weights(model)

    for dq in (True, False):
        out = f"{work}/nf4_{int(dq)}"
        args = [CLI, "quantize", "--model", f"{work}/hf", "--out", out, "--scheme", "nf4", "--embedding"]
        if not dq:
            args.append("--no-double-quant")
        r = run_checked(args, 0)
        check("quantized 9 layers" in r.stdout, f"layer count printed:\n{r.stdout}")
        info = json.load(open(f"{out}/quantization.json"))
        check(info["scheme"] == "nf4" and info["double_quant"] == dq and info["group"] in (0, 64), f"record: {info}")
        with safe_open(f"{out}/model.safetensors", "pt") as f:
            meta = f.metadata()
            check(meta["format"] == "troupe-quantized", f"metadata format: {meta.get('format')}")
            nf4 = f.get_tensor("quantization.nf4_code_book")
            check(torch.equal(nf4, bnbf.get_4bit_type("nf4", device="cpu")), "NF4 code book equals bitsandbytes'")
            if dq:
                dyn = f.get_tensor("quantization.dynamic_code_book")
                check(torch.equal(dyn, bnbf.create_dynamic_map(signed=True)), "dynamic map equals bitsandbytes'")
            for name, w in weights.items():
                ties = 0
                packed, state = bnbf.quantize_4bit(w, blocksize=64, compress_statistics=dq, quant_type="nf4")
                ours = f.get_tensor(name + ".qweight")
                check(torch.equal(ours, packed.view(-1)), f"{name}: packed codes equal (dq={dq})")
                if dq:
                    check(torch.equal(f.get_tensor(name + ".qabsmax_scale"), state.state2.absmax),
                          f"{name}: second-level absmax equal")
                    offset = f.get_tensor(name + ".qabsmax_offset")
                    check(torch.equal(offset.view(()), state.offset.view(())), f"{name}: offset equal")
                    q_abs = f.get_tensor(name + ".qabsmax").long()
                    # The 8-bit codes of the absmax values: the nearest entry of the dynamic map, as bitsandbytes'
                    # quantize_block means. Its CPU binary search (BinSearch's Direct2 bucket table) can return the
                    # neighbour when a value lies within float noise of the midpoint of two entries: such a code may
                    # differ from ours by one, and only there.
                    _, raw = torch.ops.bitsandbytes.quantize_4bit.default(w, 64, "nf4", torch.uint8)
                    second = state.state2.absmax.repeat_interleave(256)[: q_abs.numel()]
                    z = (raw - state.offset) / second
                    differ = (q_abs != state.absmax.long()).nonzero().view(-1)
                    for i in differ.tolist():
                        a, b = sorted((q_abs[i].item(), state.absmax[i].item()))
                        mid = (dyn[a] + dyn[b]) / 2
                        check(b == a + 1 and abs(z[i].item() - mid.item()) < 2e-5,
                              f"{name}: absmax code {i} differs beyond a midpoint tie: ours {q_abs[i].item()}, "
                              f"bitsandbytes {state.absmax[i].item()}, value {z[i].item()}")
                    check(len(differ) <= max(1, q_abs.numel() // 100), f"{name}: {len(differ)} absmax ties")
                    ties = len(differ)
                    absmax = (dyn[q_abs].view(-1) * second) + offset
                else:
                    absmax = f.get_tensor(name + ".qscale")
                    check(torch.equal(absmax, state.absmax), f"{name}: absmax equal")
                codes = torch.stack([ours >> 4, ours & 15], -1).view(-1).long()
                ours_dq = (nf4[codes].view(-1, 64) * absmax.view(-1, 1)).view(w.shape)
                theirs = bnbf.dequantize_4bit(packed, state)
                if not dq or ties == 0:
                    check(torch.equal(ours_dq, theirs), f"{name}: dequantized weight equal (dq={dq}), "
                          f"max diff {(ours_dq - theirs).abs().max().item()}")
                else:  # equal outside the blocks whose absmax code was a midpoint tie
                    same = (q_abs == state.absmax.long()).repeat_interleave(64).view(w.shape)
                    check(torch.equal(ours_dq[same], theirs[same]), f"{name}: dequantized weight equal off ties")

    # every scheme's directory loads and generates
    for scheme in ("int8", "int4", "nf4", "int8_dynamic"):
        out = f"{work}/{scheme}"
        run_checked([CLI, "quantize", "--model", f"{work}/hf", "--out", out, "--scheme", scheme, "--embedding"], 0)
        r = run_checked([CLI, "generate", "--checkpoint", out, "--prompt-ids", "1,2,3", "-n", "4", "--no-stop",
                         "--json"], 0)
        try:
            rows = json.loads(r.stdout)
            check(len(rows[0]["ids"]) == 4, f"{scheme}: 4 new tokens: {r.stdout}")
        except (ValueError, KeyError, IndexError) as e:
            check(False, f"{scheme}: generate JSON: {e}: {r.stdout}")
        info = json.load(open(f"{out}/quantization.json"))
        check(info["weight_bytes"] < info["fp32_weight_bytes"] / 3, f"{scheme}: smaller: {info}")

    r = run_checked([CLI, "quantize", "--model", f"{work}/hf", "--out", f"{work}/bad", "--scheme", "int3"], 2)
    check("int3" in r.stderr and "int8" in r.stderr, f"bad scheme named with the choices: {r.stderr}")
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
