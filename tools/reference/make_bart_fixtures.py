#!/usr/bin/python3
"""Reference checkpoint and outputs for CoeffTune's BART loader, model and greedy decoding.

Writes Fixtures/Models/hf-bart/: a tiny BART laid out as transformers' BartForConditionalGeneration lays it out
(config.json with its field names, model.safetensors whose keys come out of a module tree named as in
modeling_bart.py: model.shared, model.encoder.embed_positions, model.encoder.layers.{i}.self_attn.q_proj, ...,
final_logits_bias, and the tied copies model.encoder.embed_tokens / model.decoder.embed_tokens / lm_head as a
plain state_dict holds them), and expected.json with the outputs of BART's forward pass written here in plain
PyTorch from modeling_bart.py's definition: learned positions offset by 2, embeddings scaled by sqrt(d_model)
(scale_embedding true), layernorm_embedding, post-norm layers, exact GELU, q scaled by head_dim^-0.5 after its
bias, causal decoder self-attention, cross-attention masked by the source padding, the tied LM head plus
final_logits_bias. transformers is not imported.

The encoder and decoder have different head counts (4 and 3) and FFN widths, so a loader that mixes them up fails.
Outputs are computed in float64 from the float32 weights. Greedy decoding (uncached, from decoder_start_token_id,
stopping at eos, padding finished rows with pad) gives greedy_ids.

Run:  /usr/bin/python3 tools/reference/make_bart_fixtures.py   (needs only PyTorch)
"""

import json
import math
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_model_fixtures import write_safetensors  # noqa: E402

OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "CoeffTune.Tests", "Fixtures", "Models", "hf-bart"))

CONFIG = {
    "model_type": "bart",
    "architectures": ["BartForConditionalGeneration"],
    "vocab_size": 40,
    "d_model": 24,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 3,
    "encoder_ffn_dim": 48,
    "decoder_ffn_dim": 40,
    "max_position_embeddings": 16,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "decoder_start_token_id": 2,
    "scale_embedding": True,
    "activation_function": "gelu",
    "dropout": 0.1,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "is_encoder_decoder": True,
}


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, kv, key_mask=None, causal=False):
        b, t, d = x.shape
        s = kv.shape[1]
        hd = d // self.heads
        q = (self.q_proj(x) * hd ** -0.5).view(b, t, self.heads, hd).transpose(1, 2)
        k = self.k_proj(kv).view(b, s, self.heads, hd).transpose(1, 2)
        v = self.v_proj(kv).view(b, s, self.heads, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask.bool()[:, None, None, :], float("-inf"))
        if causal:
            scores = scores.masked_fill(torch.ones(t, s, dtype=torch.bool).triu(1), float("-inf"))
        w = scores.softmax(-1)
        return self.out_proj((w @ v).transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.self_attn = Attention(d, c["encoder_attention_heads"])
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, c["encoder_ffn_dim"])
        self.fc2 = nn.Linear(c["encoder_ffn_dim"], d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, mask):
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, mask))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.self_attn = Attention(d, c["decoder_attention_heads"])
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = Attention(d, c["decoder_attention_heads"])
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, c["decoder_ffn_dim"])
        self.fc2 = nn.Linear(c["decoder_ffn_dim"], d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, enc, enc_mask):
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, causal=True))
        x = self.encoder_attn_layer_norm(x + self.encoder_attn(x, enc, enc_mask))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class Stack(nn.Module):
    def __init__(self, c, shared, layer, n):
        super().__init__()
        self.embed_tokens = shared
        self.embed_positions = nn.Embedding(c["max_position_embeddings"] + 2, c["d_model"])
        self.layers = nn.ModuleList([layer(c) for _ in range(n)])
        self.layernorm_embedding = nn.LayerNorm(c["d_model"])
        self.scale = math.sqrt(c["d_model"]) if c["scale_embedding"] else 1.0

    def embed(self, ids):
        pos = torch.arange(ids.shape[1]) + 2
        return self.layernorm_embedding(self.embed_tokens(ids) * self.scale + self.embed_positions(pos)[None])


class BartModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.shared = nn.Embedding(c["vocab_size"], c["d_model"], padding_idx=c["pad_token_id"])
        self.encoder = Stack(c, self.shared, EncoderLayer, c["encoder_layers"])
        self.decoder = Stack(c, self.shared, DecoderLayer, c["decoder_layers"])


class BartForConditionalGeneration(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = BartModel(c)
        self.register_buffer("final_logits_bias", torch.zeros(1, c["vocab_size"]))
        self.lm_head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        self.lm_head.weight = self.model.shared.weight

    def encode(self, ids, mask):
        x = self.model.encoder.embed(ids)
        for layer in self.model.encoder.layers:
            x = layer(x, mask)
        return x

    def decode(self, dec_ids, enc, mask):
        x = self.model.decoder.embed(dec_ids)
        for layer in self.model.decoder.layers:
            x = layer(x, enc, mask)
        return self.lm_head(x) + self.final_logits_bias


# The seed was picked so that greedy decoding meets eos in both rows at different steps (one row is then
# padded) and stops before max steps: random tiny models mostly repeat one token forever.
EMBED_STD = 0.3
SEED = 21


def main():
    torch.manual_seed(SEED)
    c = CONFIG
    model = BartForConditionalGeneration(c)
    with torch.no_grad():
        # LayerNorm gains near 1 and small biases, as in a trained model, so that the last LayerNorm's bias does
        # not decide the argmax alone.
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.2 if name.endswith("weight") else 0.05)
            else:
                p.normal_(0, EMBED_STD if "embed" in name or "shared" in name else 0.3)
        model.final_logits_bias.normal_(0, 0.1)
    os.makedirs(OUT, exist_ok=True)
    state = {k: v.float() for k, v in model.state_dict().items()}
    expected_keys = {"model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                     "lm_head.weight", "final_logits_bias", "model.encoder.embed_positions.weight",
                     "model.decoder.layers.1.encoder_attn.out_proj.bias", "model.encoder.layernorm_embedding.weight"}
    assert expected_keys <= set(state), sorted(expected_keys - set(state))
    write_safetensors(os.path.join(OUT, "model.safetensors"), state)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(c, f, indent=2)

    model = model.double().eval()
    # Example 0 is padded by two (pad id 1, mask 0); the padded ids' embeddings must not reach the outputs.
    input_ids = torch.tensor([[0, 5, 17, 9, 2, 1, 1], [0, 33, 4, 21, 8, 12, 2]])
    attention_mask = (input_ids != c["pad_token_id"]).long()
    decoder_input_ids = torch.tensor([[2, 0, 7, 30, 11], [2, 0, 19, 3, 25]])
    with torch.no_grad():
        enc = model.encode(input_ids, attention_mask)
        logits = model.decode(decoder_input_ids, enc, attention_mask)
        # Greedy decoding, uncached: the whole decoder sequence at every step.
        steps = 6
        seq = torch.full((2, 1), c["decoder_start_token_id"])
        done = torch.zeros(2, dtype=torch.bool)
        step_logits = []
        for _ in range(steps):
            last = model.decode(seq, enc, attention_mask)[:, -1]
            step_logits.append(last)
            nxt = last.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, c["pad_token_id"]), nxt)
            seq = torch.cat([seq, nxt[:, None]], 1)
            done = done | (nxt == c["eos_token_id"])
            if done.all():
                break

    def entry(t):
        return {"shape": list(t.shape), "data": [float(x) if t.is_floating_point() else int(x) for x in t.reshape(-1).tolist()]}

    out = {
        "inputs": {"input_ids": entry(input_ids), "attention_mask": entry(attention_mask), "decoder_input_ids": entry(decoder_input_ids)},
        "outputs": {
            "encoder_last_hidden_state": entry(enc),
            "logits": entry(logits),
            "greedy_ids": entry(seq),
            "greedy_step_logits": entry(torch.stack(step_logits, 1)),
        },
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(out, f)
    print("wrote", OUT, "greedy:", seq.tolist())


if __name__ == "__main__":
    main()
