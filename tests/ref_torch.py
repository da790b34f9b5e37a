#!/usr/bin/python3
"""ref_torch.py - algoprog's transformer against an independent PyTorch implementation.

usage: ref_torch.py REF_DUMP_BIN WORKDIR

For each variant (every preset, plus switch combinations) ref_dump writes the model's initial
weights, one batch, its logits, loss and every gradient, and the parameters after a few
optimiser steps. This script rebuilds the same model in PyTorch from the config alone, computes
everything in float64 and compares. Error measure per tensor: max|ours - torch| / max|torch|.

The conventions a reimplementer needs (docs/RECIPES.md, "Model definitions": RoPE's pair layout,
the default d_ff, what N counts) are stated once here as code, checked against the bold line of
their paragraph in the doc, and through every variant against the trainer: a doc change without
a code change fails, and the reverse. Exits non-zero on any failure.
"""
import math
import os
import re
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import apformat  # noqa: E402

RECIPES_MD = os.path.join(ROOT, "docs", "RECIPES.md")
# docs/RECIPES.md, "RoPE pair layout": rotate-half pairs (x[i], x[i + hd/2]), not Meta's adjacent ones
ROPE_LAYOUT = "rotate-half"
# docs/RECIPES.md, "N = params_nonembedding": the tensors N leaves out (a tied head has none)
NOT_IN_N = {"wte", "wpe", "ve", "head"}

TOL = 1e-4
TINY = ["vocab=37", "context=8", "d_model=16", "n_layers=2", "n_heads=4", "batch=3", "steps=5",
        "warmup=2", "init_std=0.1"]
VARIANTS = [
    ("gpt2-2019", []),
    ("llama-2023", []),
    ("llama-2023", ["d_model=32"]),  # d_ff 88: 8d/3 to the nearest multiple of 8 (rounding down gives 80)
    ("vaswani-2017", []),
    ("llama-2023", ["qk_norm=true", "softcap=4", "n_kv_heads=1", "window=3"]),
    ("llama-2023", ["n_kv_heads=2", "act=relu2", "schedule=wsd", "decay_frac=0.4"]),
    ("gpt2-2019", ["act=geglu", "tie_embeddings=false", "pos=none", "optimizer=sgd", "lr=0.05"]),
    ("gpt2-2019", ["pos=sinusoidal", "bias=false", "emb_scale=true", "optimizer=adam", "weight_decay=0.01"]),
    ("vaswani-2017", ["norm=rmsnorm", "pos=rope", "rope_base=500", "act=gelu", "schedule=linear"]),
    ("speedrun-2025", []),
    ("speedrun-2025", ["act=swiglu", "n_kv_heads=2", "value_embeds=1", "weight_decay=0.05", "zero_init_proj=false"]),
    ("llama-2023", ["optimizer=muon", "lr=0.02", "adam_lr=0", "n_kv_heads=1"]),
    ("deepseek-2025", ["moe_d_ff=12", "moe_bias_rate=0.05"]),
    ("llama-2023", ["optimizer=lion", "lr=3e-4", "beta2=0.99", "weight_decay=0.5"]),
    ("gpt2-2019", ["optimizer=schedulefree", "schedule=constant", "warmup=2", "lr=3e-3", "weight_decay=0.3"]),
    ("gpt2-2019", ["z_loss=0.05", "softcap=4", "parallel_block=true"]),
    ("llama-2023", ["pos=alibi", "n_kv_heads=2", "window=5"]),
    ("llama-2023", ["parallel_block=true", "attention=mla", "mtp_depth=1", "window=5"]),
    ("llama-2023", ["z_loss=0.1", "mtp_depth=1"]),
    ("llama-2023", ["mtp_depth=2", "mtp_weight=0.5"]),
    ("gpt2-2019", ["mtp_depth=1", "norm_position=post", "softcap=3", "tie_embeddings=false", "bias=false"]),
    ("llama-2023", ["attention=mla"]),
    ("speedrun-2025", ["unet_skips=true", "n_layers=5", "value_embeds=1"]),
    ("llama-2023", ["unet_skips=true", "parallel_block=true", "mtp_depth=1"]),
    ("llama-2023", ["attention=mla", "q_lora_rank=8", "kv_lora_rank=6", "rope_head_dim=2", "optimizer=muon",
                    "lr=0.02"]),
    ("llama-2023", ["moe_experts=4", "moe_top_k=2", "moe_shared_experts=1", "moe_d_ff=8", "moe_aux_weight=0.1"]),
    ("gpt2-2019", ["moe_experts=3", "moe_top_k=2", "moe_router=sigmoid", "moe_balance=bias", "moe_bias_rate=0.05",
                   "moe_every=2", "act=relu2"]),
    ("llama-2023", ["moe_experts=4", "moe_top_k=1", "moe_d_ff=12", "optimizer=muon", "lr=0.02",
                    "moe_aux_weight=0.05"]),
    ("llama-2023", ["mup_base_width=8", "weight_decay=0.1"]),  # muP at twice the base width, tied head
    ("gpt2-2019", ["mup_base_width=32", "tie_embeddings=false", "pos=rope", "attention=mla", "kv_lora_rank=4", "mtp_depth=1",
                   "moe_experts=3", "moe_top_k=1", "softcap=4", "optimizer=lion", "lr=3e-4", "weight_decay=0.3"]),
    ("llama-2023", ["mup_base_width=4", "optimizer=schedulefree", "schedule=constant", "lr=3e-3",
                    "weight_decay=0.2"]),
    # distillation against fixed soft targets (ref_dump's test mode for teacher=)
    ("llama-2023", ["teacher=random", "distill_weight=0.7", "distill_temperature=2", "softcap=4"]),
    ("gpt2-2019", ["teacher=random", "distill_weight=1", "mtp_depth=1", "tie_embeddings=false"]),
    ("lstm-2016", []),
    ("lstm-2016", ["lstm_proj=true", "lstm_hidden=24", "softcap=5", "optimizer=adamw", "weight_decay=0.1"]),
    ("lstm-2016", ["lstm_state=reset", "tie_embeddings=false", "lstm_hidden=20", "n_layers=3"]),
]
NO_DECAY = {"ln1_w", "ln1_b", "ln2_w", "ln2_b", "lnf_w", "lnf_b", "bqkv", "bo", "bfc", "bproj", "q_norm", "k_norm",
            "mla_q_norm", "mla_kv_norm", "mtp_hnorm", "mtp_enorm", "mtp_lnf",
            "ve_lambda", "skip_w"}


def is_no_decay(name):
    return name in NO_DECAY or (name.startswith("l") and name.endswith(".b"))


def is_matrix(name):
    """Hidden weight matrices (Muon's domain): the transformer's projections, the router and the
    experts (each expert its own matrix), and the LSTM's."""
    return name in ("wqkv", "wo", "wfc", "wproj", "router", "moe_w1", "moe_w2", "moe_ws1", "moe_ws2") or \
        name.startswith("mla_w") or name == "mtp_proj" or \
        name.split(".")[-1] in ("w_ih", "w_hh", "w_p")


STATE = {"moe_bias"}  # moved by a rule after each step, never by the optimiser


def cfg_get(cfg, key, kind=str):
    v = cfg[key]
    if kind is bool:
        return v == "true"
    return kind(v)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def norm(cfg, x, w, b):
    eps = cfg_get(cfg, "norm_eps", float)
    if cfg["norm"] == "rmsnorm":
        return rmsnorm(x, w, eps)
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def rope(x, base, layout=None):
    """x (B, T, nh, hd) rotated by position. docs/RECIPES.md, "RoPE pair layout": rotate-half pairs
    (x[i], x[i + hd/2]); "adjacent" pairs (x[2i], x[2i + 1]) are Meta's, here only to check the
    documented weight conversion."""
    layout = layout or ROPE_LAYOUT
    T, hd = x.shape[1], x.shape[-1]
    half = hd // 2
    freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    if layout == "rotate-half":
        x0, x1 = x[..., :half], x[..., half:]
        return torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def meta_to_rotate_half(w, n_heads):
    """docs/RECIPES.md, "RoPE pair layout": a Meta-layout query or key projection (rows: heads x hd)
    in our layout, each head's even rows, then its odd ones (new row i = old row 2i, new row
    hd/2 + i = old row 2i + 1)."""
    hd = w.shape[0] // n_heads
    return w.reshape(n_heads, hd // 2, 2, -1).transpose(1, 2).reshape(w.shape)


def default_d_ff(cfg):
    """docs/RECIPES.md, "Default d_ff": 4d, or for gated units 8d/3 to the nearest multiple of 8 (at least 8)."""
    d = cfg_get(cfg, "d_model", int)
    if cfg["act"] in ("swiglu", "geglu"):
        return max(8, 8 * ((8 * d + 12) // 24))  # 8 * round(d / 3); d / 3 is never half-way
    return 4 * d


def params_nonembedding(shapes):
    """docs/RECIPES.md, "N = params_nonembedding": every parameter but the tensors in NOT_IN_N."""
    return sum(int(np.prod(shape)) for name, shape in shapes.items() if name not in NOT_IN_N)


def doc_definition(label):
    """The paragraph of docs/RECIPES.md whose bold line starts with label: (bold line, whole paragraph)."""
    for para in open(RECIPES_MD, encoding="utf-8").read().split("\n\n"):
        if para.startswith("**" + label):
            para = " ".join(para.split())
            return para[2:para.index("**", 2)], para
    return "", ""


def check_docs():
    """Each convention as docs/RECIPES.md states it against the code above; returns the failures."""
    problems = []
    head, para = doc_definition("RoPE pair layout")
    if ROPE_LAYOUT not in head or "rotates the pairs (x[i], x[i + hd/2])" not in para:
        problems.append(f"'RoPE pair layout' does not name {ROPE_LAYOUT} pairs (x[i], x[i + hd/2])")
    if "new row i = old row 2i, new row hd/2 + i = old row 2i + 1" not in para:
        problems.append("'RoPE pair layout' lost its Meta-layout conversion")
    # the documented conversion: Meta's adjacent pairs on Meta's weights give our attention scores
    g = torch.Generator().manual_seed(1)
    H, hd, C, T = 3, 8, 10, 6
    x = torch.randn(1, T, C, generator=g, dtype=torch.float64)
    wq, wk = (torch.randn(H * hd, C, generator=g, dtype=torch.float64) for _ in range(2))

    def scores(wq, wk, layout):
        q = rope((x @ wq.T).reshape(1, T, H, hd), 100.0, layout)
        k = rope((x @ wk.T).reshape(1, T, H, hd), 100.0, layout)
        return torch.einsum("bthd,bshd->bhts", q, k)

    meta = scores(wq, wk, "adjacent")
    ours = scores(meta_to_rotate_half(wq, H), meta_to_rotate_half(wk, H), ROPE_LAYOUT)
    if not rel_err(ours, meta) <= 1e-12:  # NaN fails too
        problems.append(f"the documented Meta-layout conversion changes attention scores ({rel_err(ours, meta):.1e})")
    head, para = doc_definition("Default d_ff")
    examples = [(int(a), int(b)) for a, b in re.findall(r"(\d+) → (\d+)", para)]
    if "nearest multiple of 8" not in head or len(examples) < 2:
        problems.append("'Default d_ff' does not state the nearest multiple of 8 with examples")
    for d, f in examples:
        rule = default_d_ff({"d_model": str(d), "act": "swiglu"})
        if rule != f:
            problems.append(f"'Default d_ff' says {d} → {f}, the rule gives {rule}")
    head, _ = doc_definition("N = `params_nonembedding`")
    left_out = set(re.findall(r"`(\w+)`", head)) - {"params_nonembedding"}
    if left_out != NOT_IN_N:
        problems.append(f"'N = params_nonembedding' leaves out {sorted(left_out)}, the code {sorted(NOT_IN_N)}")
    for p in problems:
        print(f"[FAIL] docs/RECIPES.md, 'Model definitions': {p}")
    if not problems:
        print("[ ok ] docs/RECIPES.md, 'Model definitions': RoPE layout and Meta conversion, d_ff rule, N")
    return len(problems)


def sinusoidal(T, C):
    pe = torch.zeros(T, C, dtype=torch.float64)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(0, C, 2, dtype=torch.float64)
    ang = pos / (10000.0 ** (i / C))
    pe[:, 0::2] = torch.sin(ang)
    pe[:, 1::2] = torch.cos(ang)
    return pe


def lstm_forward(cfg, p, inputs, state):
    """torch.nn.LSTM's own kernel (the _VF.lstm call its forward makes) run on our weights: one
    bias per layer (bias_hh is zero), gates in PyTorch's i, f, g, o order. nn.LSTM caches its
    flat weight list, so the weights are passed to the kernel directly."""
    E, L = cfg_get(cfg, "d_model", int), cfg_get(cfg, "n_layers", int)
    H = cfg_get(cfg, "lstm_hidden", int)
    proj = cfg_get(cfg, "lstm_proj", bool)
    R = E if proj else H
    flat = []
    for l in range(L):
        flat += [p[f"l{l}.w_ih"], p[f"l{l}.w_hh"], p[f"l{l}.b"], torch.zeros_like(p[f"l{l}.b"])]
        if proj:
            flat.append(p[f"l{l}.w_p"])
    x = p["wte"][inputs]
    B = inputs.shape[0]
    if state is None:
        state = (torch.zeros(L, B, R, dtype=torch.float64), torch.zeros(L, B, H, dtype=torch.float64))
    y, h_n, c_n = torch._VF.lstm(x, state, flat, True, L, 0.0, False, False, True)
    logits = y @ (p["wte"] if cfg_get(cfg, "tie_embeddings", bool) else p["head"]).T
    cap = cfg_get(cfg, "softcap", float)
    if cap > 0:
        logits = cap * torch.tanh(logits / cap)
    return logits, (h_n, c_n)


def mla_qkv(cfg, p, x, l):
    """Multi-head latent attention as docs/RECIPES.md states it: queries directly or through an
    RMS-normed latent; keys and values up from the RMS-normed kv latent, per head dn key floats
    then hd values; each key head ends in one RoPE key shared by all heads, queries rotate their
    last dr floats (rotate-half within those dr, frequencies over dr). No biases."""
    B, T = x.shape[:2]
    C, H = cfg_get(cfg, "d_model", int), cfg_get(cfg, "n_heads", int)
    hd, dr, Rq = C // H, cfg_get(cfg, "rope_head_dim", int), cfg_get(cfg, "q_lora_rank", int)
    dn, eps, base = hd - dr, cfg_get(cfg, "norm_eps", float), cfg_get(cfg, "rope_base", float)
    if Rq:
        q = rmsnorm(x @ p["mla_wdq"][l].T, p["mla_q_norm"][l], eps) @ p["mla_wuq"][l].T
    else:
        q = x @ p["mla_wq"][l].T
    q = q.reshape(B, T, H, hd)
    q = torch.cat([q[..., :dn], rope(q[..., dn:], base)], dim=-1)
    kvu = (rmsnorm(x @ p["mla_wdkv"][l].T, p["mla_kv_norm"][l], eps) @ p["mla_wukv"][l].T).reshape(B, T, H, dn + hd)
    kr = rope((x @ p["mla_wkr"][l].T).reshape(B, T, 1, dr), base)
    k = torch.cat([kvu[..., :dn], kr.expand(B, T, H, dr)], dim=-1)
    return q, k, kvu[..., dn:]


def mlp(cfg, x, w1, w2, Fd, b1=None, b2=None):
    fch = x @ w1.T
    if b1 is not None:
        fch = fch + b1
    act = cfg["act"]
    if act == "gelu":
        fcg = F.gelu(fch, approximate="tanh")
    elif act == "relu":
        fcg = F.relu(fch)
    elif act == "relu2":
        fcg = F.relu(fch) ** 2
    elif act == "swiglu":  # w1: the gate rows, then the up rows
        fcg = F.silu(fch[..., :Fd]) * fch[..., Fd:]
    elif act == "geglu":
        fcg = F.gelu(fch[..., :Fd], approximate="tanh") * fch[..., Fd:]
    out = fcg @ w2.T
    return out + b2 if b2 is not None else out


def moe(cfg, p, x, mi, stats):
    """DeepSeekMoE as docs/RECIPES.md states it: softmax or sigmoid scores, top-k of score + bias
    (the bias only chooses), gates = chosen scores (softmax) or chosen scores / their sum
    (sigmoid), shared experts on every token; each expert computed on every token and weighted by
    its gate (0 where not chosen), which gives the dropless layer's values and gradients."""
    E, K = cfg_get(cfg, "moe_experts", int), cfg_get(cfg, "moe_top_k", int)
    S, Fe = cfg_get(cfg, "moe_shared_experts", int), cfg_get(cfg, "moe_d_ff", int)
    sig = cfg["moe_router"] == "sigmoid"
    logits = x @ p["router"][mi].T
    s = torch.sigmoid(logits) if sig else logits.softmax(-1)
    key = s + p["moe_bias"][mi] if "moe_bias" in p else s
    topi = key.topk(K, dim=-1).indices
    gates = s.gather(-1, topi)
    if sig:
        gates = gates / gates.sum(-1, keepdim=True)
    out = mlp(cfg, x, p["moe_ws1"][mi], p["moe_ws2"][mi], S * Fe) if S else torch.zeros_like(x)
    for e in range(E):
        w = (gates * (topi == e)).sum(-1)
        out = out + w[..., None] * mlp(cfg, x, p["moe_w1"][mi * E + e], p["moe_w2"][mi * E + e], Fe)
    load = torch.stack([(topi == e).sum() for e in range(E)]).to(torch.float64)
    alpha = cfg_get(cfg, "moe_aux_weight", float)
    if cfg["moe_balance"] == "aux" and alpha > 0:
        N = x.shape[0] * x.shape[1]
        f = E / (K * N) * load
        pn = s / s.sum(-1, keepdim=True) if sig else s
        stats["aux"] = stats.get("aux", 0.0) + alpha * (f * pn.reshape(-1, E).mean(0)).sum()
    stats.setdefault("loads", []).append(load)
    return out


def block(cfg, p, x, l, inputs, stats):
    """Transformer block l (main layers 0..L-1, multi-token module k's block L+k-1) on x (B, T, C)."""
    B, T = x.shape[:2]
    C, H = cfg_get(cfg, "d_model", int), cfg_get(cfg, "n_heads", int)
    Hkv, Fd = cfg_get(cfg, "n_kv_heads", int), cfg_get(cfg, "d_ff", int)
    hd = C // H
    pre = cfg["norm_position"] == "pre"
    g = lambda name, l=None: (p[name] if l is None else p[name][l]) if name in p else None  # noqa: E731
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    W = cfg_get(cfg, "window", int)
    if W > 0:  # a sliding window: query i sees keys i-W+1 .. i
        mask = mask | torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-W)
    a_in = norm(cfg, x, g("ln1_w", l), g("ln1_b", l)) if pre else x
    if cfg.get("attention") == "mla":
        q, k, v = mla_qkv(cfg, p, a_in, l)
        Hkv = H
    else:
        qkv = a_in @ p["wqkv"][l].T
        if "bqkv" in p:
            qkv = qkv + p["bqkv"][l]
        q = qkv[..., :H * hd].reshape(B, T, H, hd)
        k = qkv[..., H * hd:(H + Hkv) * hd].reshape(B, T, Hkv, hd)
        v = qkv[..., (H + Hkv) * hd:].reshape(B, T, Hkv, hd)
    if cfg_get(cfg, "qk_norm", bool):
        eps = cfg_get(cfg, "norm_eps", float)
        q, k = rmsnorm(q, p["q_norm"][l], eps), rmsnorm(k, p["k_norm"][l], eps)
    if cfg["pos"] == "rope" and cfg.get("attention") != "mla":  # "RoPE pair layout": rotate-half pairs
        base = cfg_get(cfg, "rope_base", float)
        q, k = rope(q, base), rope(k, base)
    if l < cfg_get(cfg, "value_embeds", int):
        lam = p["ve_lambda"][l]
        v = lam[0] * v + lam[1] * p["ve"][l][inputs].reshape(B, T, Hkv, hd)
    k = k.repeat_interleave(H // Hkv, dim=2)
    v = v.repeat_interleave(H // Hkv, dim=2)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    if cfg["pos"] == "alibi":  # Press et al. 2022: head h adds -m_h (i - j), m_h = 2^(-8 (h+1) / H)
        slopes = 2.0 ** (-8.0 * torch.arange(1, H + 1, dtype=torch.float64) / H)
        dist = torch.arange(T, dtype=torch.float64)[:, None] - torch.arange(T, dtype=torch.float64)[None, :]
        att = att - slopes[None, :, None, None] * dist[None, None]
    att = att.masked_fill(mask, float("-inf")).softmax(-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)
    ao = y @ p["wo"][l].T
    if "bo" in p:
        ao = ao + p["bo"][l]
    res2 = x + ao
    if cfg_get(cfg, "parallel_block", bool):  # GPT-J / PaLM: the MLP reads the attention's normed input
        mlp_in = a_in
    elif pre:
        mlp_in = norm(cfg, res2, g("ln2_w", l), g("ln2_b", l))
    else:
        mlp_in = norm(cfg, res2, g("ln1_w", l), g("ln1_b", l))
    every = cfg_get(cfg, "moe_every", int)
    if cfg_get(cfg, "moe_experts", int) > 0 and l % every == every - 1:
        mo = moe(cfg, p, mlp_in, l // every, stats)
    else:
        d = l - l // every if cfg_get(cfg, "moe_experts", int) > 0 else l  # dense layers skip the MoE ones
        mo = mlp(cfg, mlp_in, p["wfc"][d], p["wproj"][d], Fd, g("bfc", d), g("bproj", d))
    res3 = (res2 if pre else mlp_in) + mo
    return res3 if pre else norm(cfg, res3, g("ln2_w", l), g("ln2_b", l))


def mup_ratio(cfg):
    """muP's base/d_model (1 without muP): the logit multiplier and the hidden steps' scale."""
    base = cfg_get(cfg, "mup_base_width", int) if "mup_base_width" in cfg else 0
    return base / cfg_get(cfg, "d_model", int) if base else 1.0


def mup_lr_mult(cfg, name):
    """Tensor Programs V, Table 3 (Adam): every width-scaled matrix but the input-like ones (out of
    a fixed-size latent) steps at lr * base/d; Muon's matrices keep their own scaling."""
    if not is_matrix(name) or name == "mla_wukv" or cfg["optimizer"] == "muon":
        return 1.0
    return mup_ratio(cfg)


def head_logits(cfg, p, x):
    logits = mup_ratio(cfg) * (x @ (p["wte"] if cfg_get(cfg, "tie_embeddings", bool) else p["head"]).T)
    cap = cfg_get(cfg, "softcap", float)
    return cap * torch.tanh(logits / cap) if cap > 0 else logits


def forward(cfg, p, inputs, stats=None):
    stats = {} if stats is None else stats
    B, T = inputs.shape
    C, L = cfg_get(cfg, "d_model", int), cfg_get(cfg, "n_layers", int)
    x = p["wte"][inputs] * (math.sqrt(C) if cfg_get(cfg, "emb_scale", bool) else 1.0)
    if cfg["pos"] == "learned":
        x = x + p["wpe"][:T]
    elif cfg["pos"] == "sinusoidal":
        x = x + sinusoidal(T, C)
    # unet_skips (modded-nanogpt): encoder outputs pushed, popped by the decoder layers with a weight
    skips, Le = [], L // 2 if cfg_get(cfg, "unet_skips", bool) else 0
    for l in range(L):
        if Le and l >= Le and skips:
            x = x + p["skip_w"][l - Le] * skips.pop()
        x = block(cfg, p, x, l, inputs, stats)
        if l < Le:
            skips.append(x)
    stats["hidden"] = x
    if cfg["norm_position"] == "pre":
        x = norm(cfg, x, p["lnf_w"], p.get("lnf_b"))
    return head_logits(cfg, p, x)


def mtp_loss(cfg, p, inputs, targets, stats):
    """DeepSeek-V3's sequential multi-token prediction as docs/RECIPES.md states it: module k takes
    the previous depth's hidden state at positions 0..T-k-1 (the main model's last block output
    first) and the embedding of token i+k, each normed (weights only), projects [h | e] to d_model,
    runs block L+k-1 and predicts token i+k+1 through its own norm and the shared head; the loss
    adds mtp_weight times the mean over depths of each depth's mean cross-entropy."""
    D, lam = cfg_get(cfg, "mtp_depth", int), cfg_get(cfg, "mtp_weight", float)
    C, L = cfg_get(cfg, "d_model", int), cfg_get(cfg, "n_layers", int)
    T = inputs.shape[1]
    h, total = stats["hidden"], 0.0
    scale = math.sqrt(C) if cfg_get(cfg, "emb_scale", bool) else 1.0
    for k in range(1, D + 1):
        Tk = T - k
        e = p["wte"][inputs[:, k:k + Tk]] * scale
        x = torch.cat([norm(cfg, h[:, :Tk], p["mtp_hnorm"][k - 1], None),
                       norm(cfg, e, p["mtp_enorm"][k - 1], None)], dim=-1) @ p["mtp_proj"][k - 1].T
        h = block(cfg, p, x, L + k - 1, inputs[:, k:k + Tk], stats)
        logits = head_logits(cfg, p, norm(cfg, h, p["mtp_lnf"][k - 1], None))
        V = logits.shape[-1]
        total = total + lam / D * F.cross_entropy(logits.reshape(-1, V), targets[:, k:k + Tk].reshape(-1),
                                                  ignore_index=-1)
    return total


def loss_of(cfg, p, inputs, targets, state=None, stats=None):
    """Cross-entropy (what the trainer reports), logits, the LSTM's state; stats collects the MoE
    balance loss ("aux", part of the trained loss) and the loads."""
    new_state = None
    if cfg["family"] == "lstm":
        logits, new_state = lstm_forward(cfg, p, inputs, state)
    else:
        stats = {} if stats is None else stats
        logits = forward(cfg, p, inputs, stats)
        if cfg_get(cfg, "mtp_depth", int) > 0:  # first: the modules' MoE layers add their balance loss
            mtp = mtp_loss(cfg, p, inputs, targets, stats)
            stats["aux"] = stats.get("aux", 0.0) + mtp
        z = cfg_get(cfg, "z_loss", float)
        if z > 0:  # PaLM's z-loss: z * mean over positions with a target of logsumexp(logits)^2
            keep = targets.reshape(-1) >= 0
            stats["aux"] = stats.get("aux", 0.0) + z * (logits.reshape(-1, logits.shape[-1])[keep].logsumexp(-1) ** 2).mean()
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1), logits, new_state


def bias_update(cfg, p, loads):
    """DeepSeek-V3's loss-free balancing after each step: b += rate * sign(mean load - load)."""
    if cfg.get("moe_balance") != "bias" or "moe_bias" not in p:
        return
    rate = cfg_get(cfg, "moe_bias_rate", float)
    with torch.no_grad():
        for mi, load in enumerate(loads):
            p["moe_bias"][mi] += rate * torch.sign(load.mean() - load)


def rel_err(ours, ref):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = np.abs(ref).max()
    return float(np.abs(ours - ref).max() / (scale if scale > 0 else 1.0))


def newton_schulz5(g, steps=5):
    """Muon's orthogonalisation, the quintic iteration of Jordan et al. 2024, in float64."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm() + 1e-7)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        A = x @ x.T
        x = a * x + (b * A + c * A @ A) @ x
    return x.T if tall else x


class Muon:
    """The reference Muon step: Nesterov momentum, then Newton-Schulz per layer and per row block
    (q|k|v of wqkv, gate|up of a gated wfc), scaled by sqrt(max(1, rows/cols))."""

    def __init__(self, params, blocks, lr, momentum, wd):
        self.params, self.blocks, self.lr, self.mu, self.wd = params, blocks, lr, momentum, wd
        self.buf = {n: torch.zeros_like(t) for n, t in params.items()}

    @torch.no_grad()
    def step(self, lr):
        for n, t in self.params.items():
            g = t.grad
            self.buf[n].mul_(self.mu).add_(g)
            u = g + self.mu * self.buf[n]
            mats = u if u.dim() == 3 else u.unsqueeze(0)
            pm = t if t.dim() == 3 else t.unsqueeze(0)
            for layer in range(mats.shape[0]):
                r0 = 0
                for rows in self.blocks(n):
                    blk = mats[layer, r0:r0 + rows]
                    o = newton_schulz5(blk)
                    scale = lr * math.sqrt(max(1.0, blk.shape[0] / blk.shape[1]))
                    pm[layer, r0:r0 + rows].mul_(1 - lr * self.wd).sub_(scale * o)
                    r0 += rows


class Lion(torch.optim.Optimizer):
    """Chen et al. 2023, Algorithm 2: update = sign(b1 m + (1 - b1) g), decoupled decay,
    then m = b2 m + (1 - b2) g."""

    def __init__(self, groups, lr, betas):
        super().__init__(groups, dict(lr=lr, betas=betas, weight_decay=0.0))

    @torch.no_grad()
    def step(self):
        for grp in self.param_groups:
            b1, b2 = grp["betas"]
            for t in grp["params"]:
                if t.grad is None:
                    continue
                m = self.state[t].setdefault("m", torch.zeros_like(t))
                t.mul_(1 - grp["lr"] * grp["weight_decay"]).sub_(grp["lr"] * torch.sign(b1 * m + (1 - b1) * t.grad))
                m.mul_(b2).add_((1 - b2) * t.grad)


class ScheduleFreeAdamW(torch.optim.Optimizer):
    """Defazio et al. 2024 (AdamWScheduleFree of their reference code, training mode), written from
    the paper's update: the parameters hold y; z is the Adam-normalised SGD sequence, x the average
    of z weighted by lr_max^2, y = (1 - b1) z + b1 x."""

    def __init__(self, groups, lr, betas, eps):
        super().__init__(groups, dict(lr=lr, betas=betas, eps=eps, weight_decay=0.0))
        self.k, self.lr_max, self.weight_sum = 0, -1.0, 0.0

    @torch.no_grad()
    def step(self):
        self.k += 1
        g0 = self.param_groups[0]
        b1, b2 = g0["betas"]
        lr = g0["lr"] / g0.get("mult", 1.0) * math.sqrt(1 - b2 ** self.k)
        self.lr_max = max(self.lr_max, lr)
        w = self.lr_max ** 2
        self.weight_sum += w
        c = w / self.weight_sum
        for grp in self.param_groups:
            for y in grp["params"]:
                st = self.state[y]
                if "z" not in st:
                    st["z"], st["v"] = y.clone(), torch.zeros_like(y)
                z, v = st["z"], st["v"]
                v.mul_(b2).add_((1 - b2) * y.grad * y.grad)
                d = y.grad / (v.sqrt() + grp["eps"]) + grp["weight_decay"] * y
                lr_g = lr * grp.get("mult", 1.0)
                y.add_(c * (z - y)).add_(lr_g * (b1 * (1 - c) - 1) * d)
                z.sub_(lr_g * d)

    @torch.no_grad()
    def eval_weights(self, y):
        b1 = self.param_groups[0]["betas"][0]
        z = self.state[y]["z"] if y in self.state else y
        return (y + (1 - 1 / b1) * (z - y)).detach()


def row_blocks(cfg):
    C, H = cfg_get(cfg, "d_model", int), cfg_get(cfg, "n_heads", int)
    hd, Hkv, Fd = C // H, cfg_get(cfg, "n_kv_heads", int), cfg_get(cfg, "d_ff", int)

    def blocks(name):
        if name == "wqkv":
            return [H * hd, Hkv * hd, Hkv * hd]
        gated = cfg["act"] in ("swiglu", "geglu")
        if name == "wfc" and gated:
            return [Fd, Fd]
        Fe, S = cfg_get(cfg, "moe_d_ff", int), cfg_get(cfg, "moe_shared_experts", int)
        if name == "moe_w1" and gated:
            return [Fe, Fe]
        if name == "moe_ws1" and gated:
            return [S * Fe, S * Fe]
        return None
    return blocks


def make_optimizer(cfg, params):
    params = {n: t for n, t in params.items() if n not in STATE}
    kind, lr = cfg["optimizer"], cfg_get(cfg, "lr", float)
    muon = None
    if kind == "muon":
        mats = {n: t for n, t in params.items() if is_matrix(n)}
        base = row_blocks(cfg)
        muon = Muon(mats, lambda n: base(n) or [mats[n].shape[-2]], lr, cfg_get(cfg, "muon_momentum", float),
                    cfg_get(cfg, "weight_decay", float))
        params = {n: t for n, t in params.items() if not is_matrix(n)}
        adam_lr = cfg_get(cfg, "adam_lr", float)
        kind, lr = "adamw", (adam_lr if adam_lr > 0 else lr)
    wd = cfg_get(cfg, "weight_decay", float)
    groups = {}  # by (decays, muP multiplier); a decoupled decay stays lr * wd under muP
    for n, t in params.items():
        mult, dec = mup_lr_mult(cfg, n), not is_no_decay(n)
        g = groups.setdefault((dec, mult), {"params": [], "mult": mult,
                                            "weight_decay": (wd if kind == "adam" else wd / mult) if dec else 0.0})
        g["params"].append(t)
    groups = list(groups.values())
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg_get(cfg, "momentum", float)), muon, lr
    betas = (cfg_get(cfg, "beta1", float), cfg_get(cfg, "beta2", float))
    if kind == "lion":
        return Lion(groups, lr, betas), muon, lr
    if kind == "schedulefree":
        return ScheduleFreeAdamW(groups, lr, betas, cfg_get(cfg, "eps", float)), muon, lr
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(groups, lr=lr, betas=betas, eps=cfg_get(cfg, "eps", float)), muon, lr


def objective(cfg, t, loss, logits, targets, stats):
    """What the backward minimises: the cross-entropy, or with soft targets q (a teacher's tempered
    softmax, "distill_q") (1 - w) CE + w T^2 KL(q || softmax(z/T)) over the positions with a target;
    plus the balance, z-loss and multi-token terms."""
    obj = loss
    if "distill_q" in t:
        w, T = cfg_get(cfg, "distill_weight", float), cfg_get(cfg, "distill_temperature", float)
        q = torch.tensor(t["distill_q"], dtype=torch.float64).reshape(-1, logits.shape[-1])
        keep = targets.reshape(-1) >= 0
        logs = F.log_softmax(logits.reshape(-1, logits.shape[-1]) / T, dim=-1)
        kl = (q * (torch.log(q.clamp_min(1e-300)) - logs)).sum(-1)[keep].mean()
        obj = (1 - w) * loss + w * T * T * kl
    return obj + stats.get("aux", 0.0)


def check_variant(dump_bin, workdir, idx, preset, extra):
    out = os.path.join(workdir, f"ref{idx}.bin")
    subprocess.run([dump_bin, out, preset] + TINY + extra, check=True)
    f = apformat.read(out)
    cfg, t = f.config, f.tensors
    names = [n[2:] for n in t if n.startswith("p.")]
    params = {n: torch.tensor(t["p." + n], dtype=torch.float64, requires_grad=True) for n in names}
    inputs = torch.tensor(t["inputs"], dtype=torch.long)
    targets = torch.tensor(t["targets"], dtype=torch.long)
    stats = {}
    loss, logits, _ = loss_of(cfg, params, inputs, targets, stats=stats)
    objective(cfg, t, loss, logits, targets, stats).backward()
    worst = {"logits": rel_err(t["logits"], logits.detach()), "loss": rel_err(t["loss"], loss.detach().reshape(1))}
    # the trainer's N and d_ff against the documented definitions (docs/RECIPES.md, "Model definitions")
    n_ref = params_nonembedding({n: t["p." + n].shape for n in names})
    worst["params_nonembedding"] = rel_err([int(f.meta["params_nonembedding"])], [n_ref])
    if cfg["family"] == "transformer" and not any(e.startswith("d_ff=") for e in extra):
        worst["default d_ff"] = 0.0 if cfg_get(cfg, "d_ff", int) == default_d_ff(cfg) else float("inf")
    # Entries whose exact gradient is zero (the key bias: softmax ignores a shift shared by all
    # scores) get float32 round-off as gradient, which Adam scales up to lr-sized steps of random
    # sign. They are excluded from the after-steps comparison, and counted.
    live = {}
    for n in names:
        if params[n].grad is None:  # state moved by a rule (the MoE router bias): no gradient
            params[n].grad = torch.zeros_like(params[n])
        worst["grad " + n] = rel_err(t["g." + n], params[n].grad)
        gabs = params[n].grad.abs()
        live[n] = ((gabs > 1e-7 * gabs.max()) | (gabs == 0)).numpy()
    excluded = sum(int((~m).sum()) for m in live.values())
    # optimiser steps on the same batch, clipping and lr schedule as recorded
    opt, muon, other_lr = make_optimizer(cfg, params)
    steps, clip = cfg_get(cfg, "steps", int), cfg_get(cfg, "grad_clip", float)
    lrs, peak = t["step_lrs"], cfg_get(cfg, "lr", float)
    carry = cfg["family"] == "lstm" and cfg["lstm_state"] == "carry"
    state = None
    for s in range(steps):
        opt.zero_grad(set_to_none=True)
        for q in params.values():
            q.grad = None
        stats = {}
        loss, logits, new_state = loss_of(cfg, params, inputs, targets, state, stats)
        if carry:  # the next chunk starts from this one's final state, with no gradient across
            state = tuple(x.detach() for x in new_state)
        objective(cfg, t, loss, logits, targets, stats).backward()
        norm_ = torch.nn.utils.clip_grad_norm_(list(params.values()), clip if clip > 0 else float("inf"))
        worst[f"step{s} loss"] = rel_err(t["step_losses"][s:s + 1], loss.detach().reshape(1))
        worst[f"step{s} grad norm"] = rel_err(t["step_grad_norms"][s:s + 1], norm_.detach().reshape(1))
        for grp in opt.param_groups:  # the schedule scales every learning rate alike
            grp["lr"] = other_lr * float(lrs[s]) / peak * grp.get("mult", 1.0)
        opt.step()
        if muon:
            muon.step(float(lrs[s]))
        bias_update(cfg, params, stats.get("loads", []))
    for n in names:
        worst[f"after {steps} steps {n}"] = rel_err(t["q." + n][live[n]], params[n].detach().numpy()[live[n]])
        if "x." + n in t and isinstance(opt, ScheduleFreeAdamW):  # the weights evaluations use
            x = opt.eval_weights(params[n]).numpy()
            worst[f"eval weights {n}"] = rel_err(t["x." + n][live[n]], x[live[n]])
    label = preset + (" " + " ".join(extra) if extra else "")
    bad = {k: v for k, v in worst.items() if not v <= TOL}
    top = max(worst.items(), key=lambda kv: kv[1])
    print(f"[{'FAIL' if bad else ' ok '}] {label}: {len(worst)} comparisons, worst {top[1]:.2e} ({top[0]})"
          + (f"; {excluded} zero-gradient entries left out of the after-steps check" if excluded else ""))
    for k, v in bad.items():
        print(f"        {k}: rel err {v:.2e} > {TOL:g}")
    return len(bad)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    dump_bin, workdir = sys.argv[1], sys.argv[2]
    os.makedirs(workdir, exist_ok=True)
    torch.manual_seed(0)
    failures = check_docs()
    failures += sum(check_variant(dump_bin, workdir, i, p, e) for i, (p, e) in enumerate(VARIANTS))
    print(f"{len(VARIANTS)} variants, {failures} failing comparisons (tolerance {TOL:g} relative)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
