#!/usr/bin/python3
"""Reference checkpoints and outputs for CoeffTune's checkpoint loaders.

Writes three tiny models, each as its publishing library lays it out on disk, with the outputs that library's
forward pass gives on a fixed batch:

  hf-bert-sequence-classification/  transformers' BertForSequenceClassification (keys under "bert.", a pooler,
                                    a classifier fed by the pooler), config.json as save_pretrained writes it
  hf-bert-model/                    the same encoder and pooler as a bare BertModel (no prefix, no classifier,
                                    and the legacy embeddings.position_ids buffer older checkpoints carry)
  hf-vit-image-classification/      transformers' ViTForImageClassification (keys under "vit.", no pooler)
  timm-vit/                         timm's VisionTransformer (fused attn.qkv, pos_embed with a class slot,
                                    LayerNorm eps 1e-6), config.json in timm's hub format

The models below are written in plain PyTorch. Module nesting and attribute names follow transformers'
modeling_bert.py / modeling_vit.py and timm's vision_transformer.py, so the state-dict keys come out of the
module tree exactly as those libraries would name them; nothing is renamed by hand. Neither library is imported.

Weights are random (fixed seed) and stored in float32. Outputs are computed in float64 from those float32
weights, so expected.json holds the exact answer up to float64 rounding; the float32 error of this same
forward (PyTorch, CPU) is recorded beside it. The script also checks that the fixtures can tell right from
wrong: each plausible misreading of a layout (head count, LayerNorm eps, GELU flavour, q/k/v order, pooling,
...) must move the outputs by far more than the tolerance the C# tests use, or the script stops.

Run from anywhere:  /usr/bin/python3 tools/reference/make_model_fixtures.py
Needs only PyTorch (Debian's python3-torch). The C# tests read the committed files and never need Python.
"""

import json
import math
import os
import re
import struct
import sys

import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "CoeffTune.Tests", "Fixtures", "Models"))

# The C# tests compare with an absolute tolerance of 2e-5 (see ReferenceCheckpointTests.cs); a wrong reading of
# the layout must change some output by at least 20 times that to count as detected.
TEST_TOLERANCE = 2e-5
MIN_DETECTION = 20 * TEST_TOLERANCE


# --------------------------------------------------------------------------------------------------------------
# safetensors, written by hand: u64 little-endian header length, a JSON header, then the raw little-endian bytes.

_DTYPES = {torch.float32: ("F32", "<f"), torch.int64: ("I64", "<q")}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        code, fmt = _DTYPES[t.dtype]
        values = t.detach().contiguous().view(-1).tolist()
        blob = struct.pack("<%d%s" % (len(values), fmt[1]), *values)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the safetensors library writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """Reads back what write_safetensors wrote (a check of the writer, not a general reader)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    out = {}
    for name, h in header.items():
        begin, end = h["data_offsets"]
        fmt = {"F32": "f", "I64": "q"}[h["dtype"]]
        count = (end - begin) // struct.calcsize(fmt)
        values = struct.unpack("<%d%s" % (count, fmt), body[begin:end])
        dtype = torch.float32 if h["dtype"] == "F32" else torch.int64
        out[name] = torch.tensor(values, dtype=dtype).view(h["shape"])
    return out


# --------------------------------------------------------------------------------------------------------------
# Options that let the same code run the published architecture and the misreadings it must be told apart from.

class Options:
    def __init__(self, heads, eps, gelu="none", post_norm_vit=False):
        self.heads = heads          # attention heads used to split the width
        self.eps = eps              # LayerNorm epsilon
        self.gelu = gelu            # "none": erf GELU (transformers' "gelu", torch.nn.GELU); "tanh": approximation
        self.post_norm_vit = post_norm_vit


def gelu(x, opts):
    return F.gelu(x, approximate=opts.gelu)


def layer_norm(x, ln, opts):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, opts.eps)


def split_heads(x, heads):
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def attend(q, k, v, heads, additive_mask=None):
    """softmax(q k^T / sqrt(head width) + mask) v over heads, merged back to (B, N, D)."""
    b, n, d = q.shape
    q, k, v = split_heads(q, heads), split_heads(k, heads), split_heads(v, heads)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
    if additive_mask is not None:
        scores = scores + additive_mask
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)


# --------------------------------------------------------------------------------------------------------------
# BERT as transformers' modeling_bert.py: post-LN layers, erf GELU, pooler = tanh(dense(h[:, 0])).

class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        # Absolute positions 0..n-1 whatever the padding; transformers keeps them in a non-persistent buffer.
        self.register_buffer("position_ids", torch.arange(c["max_position_embeddings"]).unsqueeze(0), persistent=False)

    def forward(self, ids, types, opts):
        positions = self.position_ids[:, :ids.shape[1]]
        x = self.word_embeddings(ids) + self.token_type_embeddings(types) + self.position_embeddings(positions)
        return self.dropout(layer_norm(x, self.LayerNorm, opts))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, mask, opts):
        return attend(self.query(x), self.key(x), self.value(x), opts.heads, mask)


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, h, residual, opts):
        return layer_norm(self.dropout(self.dense(h)) + residual, self.LayerNorm, opts)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, mask, opts):
        return self.output(self.self(x, mask, opts), x, opts)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x, opts):
        return gelu(self.dense(x), opts)


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, h, residual, opts):
        return layer_norm(self.dropout(self.dense(h)) + residual, self.LayerNorm, opts)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, mask, opts):
        a = self.attention(x, mask, opts)
        return self.output(self.intermediate(a, opts), a, opts)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, mask, opts):
        for layer in self.layer:
            x = layer(x, mask, opts)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c)

    def forward(self, ids, attention_mask, token_type_ids, opts):
        # transformers' extended mask: 0 on real keys, the dtype's most negative value on padding, per key.
        additive = (1.0 - attention_mask[:, None, None, :].to(self.dtype)) * torch.finfo(self.dtype).min
        hidden = self.encoder(self.embeddings(ids, token_type_ids, opts), additive, opts)
        return hidden, self.pooler(hidden)

    @property
    def dtype(self):
        return self.pooler.dense.weight.dtype


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.classifier = nn.Linear(c["hidden_size"], c["num_labels"])

    def forward(self, ids, attention_mask, token_type_ids, opts, pool="pooler"):
        hidden, pooled = self.bert(ids, attention_mask, token_type_ids, opts)
        if pool == "mean":  # a misreading: the classifier fed by mean pooling instead of the pooler
            m = attention_mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * m).sum(1) / m.sum(1)
        elif pool == "cls":  # a misreading: the [CLS] state without the pooler
            pooled = hidden[:, 0]
        return hidden, pooled, self.classifier(self.dropout(pooled))


# --------------------------------------------------------------------------------------------------------------
# ViT as transformers' modeling_vit.py: pre-LN layers, [CLS] first, learned positions for CLS + patches,
# final layernorm, classifier on the [CLS] token (ViTForImageClassification builds ViTModel without a pooler).

class ViTPatchEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.projection = nn.Conv2d(c["num_channels"], c["hidden_size"], c["patch_size"], stride=c["patch_size"])

    def forward(self, pixels):
        return self.projection(pixels).flatten(2).transpose(1, 2)


class ViTEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        patches = (c["image_size"] // c["patch_size"]) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c["hidden_size"]))
        self.patch_embeddings = ViTPatchEmbeddings(c)
        self.position_embeddings = nn.Parameter(torch.zeros(1, patches + 1, c["hidden_size"]))
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, pixels):
        x = self.patch_embeddings(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.dropout(x + self.position_embeddings)


class ViTSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, opts):
        return attend(self.query(x), self.key(x), self.value(x), opts.heads)


class ViTSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, h):
        return self.dropout(self.dense(h))  # the residual is added in ViTLayer


class ViTAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = ViTSelfAttention(c)
        self.output = ViTSelfOutput(c)

    def forward(self, x, opts):
        return self.output(self.attention(x, opts))


class ViTIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x, opts):
        return gelu(self.dense(x), opts)


class ViTOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, h, residual):
        return self.dropout(self.dense(h)) + residual


class ViTLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = ViTAttention(c)
        self.intermediate = ViTIntermediate(c)
        self.output = ViTOutput(c)
        self.layernorm_before = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.layernorm_after = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x, opts):
        if opts.post_norm_vit:  # a misreading: BERT-style post-LN
            x = layer_norm(x + self.attention(x, opts), self.layernorm_before, opts)
            return layer_norm(self.output(self.intermediate(x, opts), x), self.layernorm_after, opts)
        x = self.attention(layer_norm(x, self.layernorm_before, opts), opts) + x
        return self.output(self.intermediate(layer_norm(x, self.layernorm_after, opts), opts), x)


class ViTEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([ViTLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, opts):
        for layer in self.layer:
            x = layer(x, opts)
        return x


class ViTModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = ViTEmbeddings(c)
        self.encoder = ViTEncoder(c)
        self.layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, pixels, opts):
        return layer_norm(self.encoder(self.embeddings(pixels), opts), self.layernorm, opts)


class ViTForImageClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vit = ViTModel(c)
        self.classifier = nn.Linear(c["hidden_size"], c["num_labels"])

    def forward(self, pixels, opts, pool="cls"):
        seq = self.vit(pixels, opts)
        feature = seq[:, 0] if pool == "cls" else seq[:, 1:].mean(1)
        return feature, self.classifier(feature)


# --------------------------------------------------------------------------------------------------------------
# ViT as timm's vision_transformer.py (defaults: class token, pos_embed covering it, qkv_bias, pre-LN blocks,
# LayerNorm eps 1e-6, nn.GELU, global_pool 'token', final norm before the head).

class PatchEmbed(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = nn.Conv2d(c["in_chans"], c["embed_dim"], c["patch_size"], stride=c["patch_size"])

    def forward(self, pixels):
        return self.proj(pixels).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["embed_dim"]
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x, opts, order=(0, 1, 2)):
        b, n, d = x.shape
        # The fused output axis is laid out [3][heads][head width]: queries, then keys, then values.
        qkv = self.qkv(x).reshape(b, n, 3, opts.heads, d // opts.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[order[0]], qkv[order[1]], qkv[order[2]]
        merge = lambda t: t.transpose(1, 2).reshape(b, n, d)
        return self.proj(attend(merge(q), merge(k), merge(v), opts.heads))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        hidden = int(c["embed_dim"] * c["mlp_ratio"])
        self.fc1 = nn.Linear(c["embed_dim"], hidden)
        self.fc2 = nn.Linear(hidden, c["embed_dim"])

    def forward(self, x, opts):
        return self.fc2(gelu(self.fc1(x), opts))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm1 = nn.LayerNorm(c["embed_dim"], eps=1e-6)
        self.attn = Attention(c)
        self.norm2 = nn.LayerNorm(c["embed_dim"], eps=1e-6)
        self.mlp = Mlp(c)

    def forward(self, x, opts, order):
        if opts.post_norm_vit:
            x = layer_norm(x + self.attn(x, opts, order), self.norm1, opts)
            return layer_norm(x + self.mlp(x, opts), self.norm2, opts)
        x = x + self.attn(layer_norm(x, self.norm1, opts), opts, order)
        return x + self.mlp(layer_norm(x, self.norm2, opts), opts)


class VisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        patches = (c["img_size"] // c["patch_size"]) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c["embed_dim"]))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, c["embed_dim"]))
        self.patch_embed = PatchEmbed(c)
        self.blocks = nn.Sequential(*[Block(c) for _ in range(c["depth"])])
        self.norm = nn.LayerNorm(c["embed_dim"], eps=1e-6)
        self.head = nn.Linear(c["embed_dim"], c["num_classes"])

    def forward(self, pixels, opts, order=(0, 1, 2), pool="token"):
        x = self.patch_embed(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x, opts, order)
        x = layer_norm(x, self.norm, opts)
        feature = x[:, 0] if pool == "token" else x[:, 1:].mean(1)
        return feature, self.head(feature)


# --------------------------------------------------------------------------------------------------------------
# Weights: every tensor random from one generator, LayerNorm affine far from 1/0. The embeddings that feed the
# first LayerNorm are tiny (variance ~1e-6), so that LayerNorm's eps (1e-12 for transformers, 1e-6 for timm)
# changes its output by tens of percent. GELU's erf and tanh forms differ by at most 4.7e-4 (near |x| = 2.7),
# an even function of x: where GELU's output is small (x around -2) that difference is a large part of it. The
# MLP's first bias is therefore centred on -2 and its second layer weighted up, so the tanh form moves the
# outputs well beyond float32 noise.

MLP_IN = re.compile(r"(\.intermediate\.dense|\bmlp\.fc1)\.bias$")
MLP_OUT = re.compile(r"(\.layer\.\d+\.output\.dense|\bmlp\.fc2)\.weight$")

def randomize(model, seed, small_prefixes):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = "LayerNorm" in name or "layernorm" in name or ".norm" in name or name.startswith("norm")
            if any(name.startswith(s) for s in small_prefixes):
                p.copy_(torch.randn(p.shape, generator=g) * 1e-3)
            elif is_norm and leaf == "weight":
                p.copy_(1.0 + 0.4 * torch.randn(p.shape, generator=g))
            elif is_norm and leaf == "bias":
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif MLP_IN.search(name):
                p.copy_(-2.0 + 0.5 * torch.randn(p.shape, generator=g))
            elif leaf == "bias":
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                gain = 3.0 if MLP_OUT.search(name) else 1.6
                p.copy_(torch.randn(p.shape, generator=g) * (gain / math.sqrt(fan_in)))
    return g


def flat(t):
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]}


def exact(t):
    """Values that are exact in float32 and short in decimal (inputs): written as they are."""
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def max_diff(a, b):
    return (a.double() - b.double()).abs().max().item()


def check_detected(name, reference, variants):
    """Each variant (a misreading) must move some output by at least MIN_DETECTION."""
    report = {}
    for label, outputs in variants.items():
        d = max(max_diff(r, o) for r, o in zip(reference, outputs))
        report[label] = float("%.3g" % d)
        print("  %-44s max change %.3g" % (label, d))
        if d < MIN_DETECTION:
            sys.exit("%s: the misreading '%s' changes the outputs by only %.3g (< %.3g): the fixture cannot catch it"
                     % (name, label, d, MIN_DETECTION))
    return report


def save(name, state, config, expected):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.safetensors")
    write_safetensors(path, state)
    back = read_safetensors(path)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state), "safetensors round trip"
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    if expected is not None:
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump(expected, f, separators=(",", ":"))
            f.write("\n")
    sizes = {fn: os.path.getsize(os.path.join(folder, fn)) for fn in sorted(os.listdir(folder))}
    print("wrote %s: %s" % (os.path.relpath(folder), ", ".join("%s %d B" % kv for kv in sizes.items())))


def provenance(model, extra):
    return dict({
        "generator": "tools/reference/make_model_fixtures.py",
        "reference": model,
        "torch": torch.__version__,
        "computed_in": "float64, from the float32 weights stored in model.safetensors",
    }, **extra)


# --------------------------------------------------------------------------------------------------------------

def make_bert():
    config = {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": 40,
        "hidden_size": 24,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 16,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
        "problem_type": "single_label_classification",
    }
    config["num_labels"] = len(config["id2label"])  # transformers derives it from id2label; kept for readers
    model = BertForSequenceClassification(config)
    randomize(model, seed=20240611, small_prefixes=("bert.embeddings.word_", "bert.embeddings.position_",
                                                    "bert.embeddings.token_type_"))
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[config["pad_token_id"]] = 0  # as transformers initialises it
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # Three right-padded rows: a short single text, a pair (token types 0 then 1), a full-length pair.
    # 2 = [CLS], 3 = [SEP], 0 = [PAD].
    ids = torch.tensor([
        [2, 17, 8, 25, 3, 0, 0, 0, 0, 0],
        [2, 11, 30, 3, 6, 39, 14, 3, 0, 0],
        [2, 5, 22, 9, 3, 33, 12, 27, 18, 3],
    ])
    mask = (ids != 0).long()
    types = torch.tensor([
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    ])

    right = Options(heads=config["num_attention_heads"], eps=config["layer_norm_eps"])

    def run(m, opts, pool="pooler", type_ids=types):
        hidden, pooled, logits = m(ids, mask, type_ids, opts, pool)
        mk = mask.to(hidden.dtype).unsqueeze(-1)
        mean = (hidden * mk).sum(1) / mk.sum(1)
        return hidden, mean, pooled, logits

    with torch.no_grad():
        f32 = run(model, right)
        m64 = BertForSequenceClassification(config).double()
        m64.load_state_dict({k: v.double() for k, v in state.items()})
        m64.eval()
        ref = run(m64, right)
        names = ["last_hidden_state", "mean_pooled", "pooler_output", "logits"]
        f32_err = {n: float("%.3g" % max_diff(a, b)) for n, a, b in zip(names, f32, ref)}
        print("hf-bert-sequence-classification: float32 error of PyTorch's own forward", f32_err)
        detection = check_detected("bert", ref, {
            "heads 12 (the loader's guess for width 24)": run(m64, Options(12, 1e-12)),
            "heads 1": run(m64, Options(1, 1e-12)),
            "LayerNorm eps 1e-6 (timm's)": run(m64, Options(4, 1e-6)),
            "LayerNorm eps 1e-5 (torch's default)": run(m64, Options(4, 1e-5)),
            "GELU tanh approximation": run(m64, Options(4, 1e-12, gelu="tanh")),
            "classifier on mean pooling": run(m64, right, pool="mean"),
            "classifier on [CLS] without the pooler": run(m64, right, pool="cls"),
            "token types ignored": run(m64, right, type_ids=torch.zeros_like(types)),
        })

    expected = provenance(
        "transformers BertForSequenceClassification (modeling_bert.py), eval mode, re-implemented in plain PyTorch",
        {
            "float32_error_of_reference": f32_err,
            "misreadings_max_change": detection,
            "inputs": {"input_ids": exact(ids), "attention_mask": exact(mask), "token_type_ids": exact(types)},
            "outputs": {n: flat(t) for n, t in zip(names, ref)},
            "notes": "mean_pooled is sentence-transformers' mean over real tokens (attention_mask 1); "
                     "pooler_output is tanh(pooler.dense(last_hidden_state[:, 0])); logits = classifier(pooler_output).",
        })
    save("hf-bert-sequence-classification", state, config, expected)

    # The same encoder as a bare BertModel: no "bert." prefix, no classifier, and the position_ids buffer that
    # checkpoints saved before transformers made it non-persistent still carry.
    base = {k[len("bert."):]: v for k, v in state.items() if k.startswith("bert.")}
    base = dict([("embeddings.position_ids", torch.arange(config["max_position_embeddings"]).unsqueeze(0))]
                + list(base.items()))
    base_config = {k: v for k, v in config.items() if k not in ("id2label", "label2id", "num_labels", "problem_type")}
    base_config["architectures"] = ["BertModel"]
    save("hf-bert-model", base, base_config, None)


def make_hf_vit():
    config = {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "image_size": 16,
        "patch_size": 4,
        "num_channels": 3,
        "hidden_size": 24,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "qkv_bias": True,
        "encoder_stride": 4,
        "id2label": {str(i): "LABEL_%d" % i for i in range(5)},
        "label2id": {"LABEL_%d" % i: i for i in range(5)},
    }
    config["num_labels"] = len(config["id2label"])
    model = ViTForImageClassification(config)
    randomize(model, seed=20240612, small_prefixes=("vit.embeddings.cls_token", "vit.embeddings.position_",
                                                    "vit.embeddings.patch_embeddings.projection.weight"))
    with torch.no_grad():
        model.vit.embeddings.patch_embeddings.projection.bias.mul_(1e-2)  # keeps the first LayerNorm's input tiny
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    pixels = pixel_batch(seed=11, channels=3, size=16)
    right = Options(heads=4, eps=1e-12)

    def run(m, opts, pool="cls"):
        return m(pixels.to(m.classifier.weight.dtype), opts, pool)

    with torch.no_grad():
        f32 = run(model, right)
        m64 = ViTForImageClassification(config).double()
        m64.load_state_dict({k: v.double() for k, v in state.items()})
        m64.eval()
        ref = run(m64, right)
        names = ["cls_feature", "logits"]
        f32_err = {n: float("%.3g" % max_diff(a, b)) for n, a, b in zip(names, f32, ref)}
        print("hf-vit-image-classification: float32 error of PyTorch's own forward", f32_err)
        detection = check_detected("hf-vit", ref, {
            "heads 1 (the loader's guess for width 24)": run(m64, Options(1, 1e-12)),
            "heads 12": run(m64, Options(12, 1e-12)),
            "LayerNorm eps 1e-6 (timm's)": run(m64, Options(4, 1e-6)),
            "GELU tanh approximation": run(m64, Options(4, 1e-12, gelu="tanh")),
            "post-norm layers": run(m64, Options(4, 1e-12, post_norm_vit=True)),
            "mean of patch tokens instead of [CLS]": run(m64, right, pool="mean"),
        })

    expected = provenance(
        "transformers ViTForImageClassification (modeling_vit.py), eval mode, re-implemented in plain PyTorch",
        {
            "float32_error_of_reference": f32_err,
            "misreadings_max_change": detection,
            "inputs": {"pixel_values": exact(pixels)},
            "outputs": {n: flat(t) for n, t in zip(names, ref)},
            "notes": "cls_feature is vit.layernorm(encoder output)[:, 0], the classifier's input.",
        })
    save("hf-vit-image-classification", state, config, expected)


def make_timm_vit():
    args = {"img_size": 16, "patch_size": 4, "in_chans": 3, "num_classes": 5, "embed_dim": 24, "depth": 2,
            "num_heads": 4, "mlp_ratio": 2.0}
    model = VisionTransformer(args)
    randomize(model, seed=20240613, small_prefixes=("cls_token", "pos_embed", "patch_embed.proj.weight"))
    with torch.no_grad():
        model.patch_embed.proj.bias.mul_(1e-2)
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    pixels = pixel_batch(seed=12, channels=3, size=16)
    right = Options(heads=4, eps=1e-6)

    def run(m, opts, order=(0, 1, 2), pool="token"):
        return m(pixels.to(m.head.weight.dtype), opts, order, pool)

    with torch.no_grad():
        f32 = run(model, right)
        m64 = VisionTransformer(args).double()
        m64.load_state_dict({k: v.double() for k, v in state.items()})
        m64.eval()
        ref = run(m64, right)
        names = ["cls_feature", "logits"]
        f32_err = {n: float("%.3g" % max_diff(a, b)) for n, a, b in zip(names, f32, ref)}
        print("timm-vit: float32 error of PyTorch's own forward", f32_err)
        detection = check_detected("timm-vit", ref, {
            "heads 1 (the loader's guess for width 24)": run(m64, Options(1, 1e-6)),
            "heads 12": run(m64, Options(12, 1e-6)),
            "qkv split as k, q, v": run(m64, right, order=(1, 0, 2)),
            "qkv split as q, v, k": run(m64, right, order=(0, 2, 1)),
            "qkv split as v, k, q": run(m64, right, order=(2, 1, 0)),
            "LayerNorm eps 1e-12 (transformers')": run(m64, Options(4, 1e-12)),
            "LayerNorm eps 1e-5 (torch's default)": run(m64, Options(4, 1e-5)),
            "GELU tanh approximation": run(m64, Options(4, 1e-6, gelu="tanh")),
            "post-norm blocks": run(m64, Options(4, 1e-6, post_norm_vit=True)),
            "average pooling instead of the class token": run(m64, right, pool="avg"),
        })

    # timm's hub config.json: architecture, num_classes, num_features, global_pool, the model_args that override
    # the architecture's defaults (timm.create_model(architecture, **model_args) rebuilds it), pretrained_cfg.
    # It names no LayerNorm eps (timm's is fixed at 1e-6) and keeps the head count only inside model_args; the
    # architecture's own default (vit_tiny: 3 heads of 64) does not apply here.
    config = {
        "architecture": "vit_tiny_patch16_224",
        "num_classes": args["num_classes"],
        "num_features": args["embed_dim"],
        "global_pool": "token",
        "model_args": args,
        "pretrained_cfg": {
            "tag": "coefftune_fixture",
            "custom_load": False,
            "input_size": [3, 16, 16],
            "fixed_input_size": True,
            "interpolation": "bicubic",
            "crop_pct": 0.9,
            "crop_mode": "center",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "num_classes": args["num_classes"],
            "pool_size": None,
            "first_conv": "patch_embed.proj",
            "classifier": "head",
        },
    }
    expected = provenance(
        "timm VisionTransformer (timm/models/vision_transformer.py, timm/layers/attention.py) with default "
        "options, eval mode, re-implemented in plain PyTorch",
        {
            "num_heads": args["num_heads"],
            "float32_error_of_reference": f32_err,
            "misreadings_max_change": detection,
            "inputs": {"pixel_values": exact(pixels)},
            "outputs": {n: flat(t) for n, t in zip(names, ref)},
            "notes": "cls_feature is norm(blocks output)[:, 0] (global_pool 'token'), the head's input.",
        })
    save("timm-vit", state, config, expected)


def pixel_batch(seed, channels, size, batch=3):
    """Pixels as a normalised image would have them, in [-1, 1], on a grid of 1/64: exact in float32."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-64, 65, (batch, channels, size, size), generator=g).float() / 64.0


def main():
    print("torch", torch.__version__, "->", OUT)
    make_bert()
    make_hf_vit()
    make_timm_vit()


if __name__ == "__main__":
    main()
