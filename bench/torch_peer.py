#!/usr/bin/python3
"""PyTorch CPU peer for `algoprog bench`.

`algoprog bench` runs this script next to its own C kernels. It trains (or, with --gen, generates
with) the same models in eager PyTorch, so that algoprog's throughput can be put next to a
well-known framework on the same machine, at the same moment and with the same thread budget.

Run it with Debian's interpreter, which has python3-torch 1.13 (fp32, OpenBLAS, OpenMP):

    /usr/bin/python3 bench/torch_peer.py --config NAME --arch ARCH --threads N --steps S
                                         [--warmup W] [--gen]

    NAME: tiny | small | medium | lstm     ARCH: gpt2 | llama (ignored for the lstm config)

It prints exactly one JSON line on stdout. Everything else (the KV-cache check, warnings) goes to
stderr.

What is measured (this follows /work/shared/perf_anchors.md, section 3):

* Training. One step is forward + mean cross-entropy + zero_grad(set_to_none=True) + backward +
  clip_grad_norm_(1.0) + AdamW.step (lr 3e-4, betas (0.9, 0.95), weight decay 0.1, default
  for-loop implementation). The input is one batch of random tokens, reused on every step.
  W warm-up steps are run first (default 2). Then S steps (default 10) are each timed with
  time.perf_counter.
  tokens_per_s = batch*context / median step time; tokens_per_s_best = batch*context / fastest step.
* Generation (--gen). Batch 1. A 1-token prompt, then greedy decoding of 255 new tokens under
  torch.no_grad(). The transformers use a preallocated KV cache per layer: k and v of shape
  (1, heads, context, head_dim), filled one position at a time. The LSTM carries its (h, c) state
  from token to token. Before timing, the cached logits are checked once against a full forward
  (to stderr). Then 2 warm-up and 5 timed generations; tokens_per_s = 255 / median time.
  --steps and --warmup do not apply to this mode.
* rss_mb is the peak resident set size of this process (getrusage ru_maxrss, KiB on Linux, / 1024).

The models match algoprog's bench configs:

    config  vocab  d_model  layers  heads  context  batch  llama d_ff
    tiny      256      128       4      4      256     16         384
    small    4096      256       6      8      256     16         704
    medium   8192      512       8      8      512      8        1408
    lstm      256      256       2      -      256     16           -   (embedding = hidden = 256)

* gpt2: pre-LayerNorm (with bias) and a final LayerNorm. Learned absolute position embedding.
  Fused QKV linear with bias. Causal multi-head attention written out as
  softmax(QK^T/sqrt(hd) + causal mask)·V: torch 1.13 has no fused SDPA, and torch.compile is not
  used. Output projection with bias. GELU(tanh) MLP of width 4d with biases. Residual adds.
  Tied embeddings: the head is the token embedding matrix, with no bias.
* llama: pre-RMSNorm (weight only, eps 1e-5, x * rsqrt(mean(x^2) + eps) * w) and a final
  RMSNorm. RoPE with the GPT-NeoX half-split pairing (base 10000) on q and k. Fused QKV linear.
  No biases anywhere. SwiGLU MLP with one fused linear d -> 2*d_ff, split into gate|up,
  silu(gate)*up, then a down projection d_ff -> d. Untied head (d -> vocab, no bias).
* lstm: token embedding, nn.LSTM(2 layers, batch_first; the default two bias vectors per layer),
  and an untied linear head without bias.

Everything is fp32. Weights are initialised N(0, 0.02); the init does not affect speed.

Threads: with only 2 cores, torch's OpenMP pool and OpenBLAS's pthread pool compete. The caller
sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (and OMP_WAIT_POLICY=PASSIVE for N > 1, the best
2-thread setup in perf_anchors.md). This script fills in the same defaults when they are missing.
It must do so before `import torch`, because both runtimes read them when they load. It then
calls torch.set_num_threads(N).

Memory: before torch is loaded, glibc malloc is told never to return freed memory to the kernel
(see tune_malloc). Otherwise eager PyTorch pays page faults for every large activation on every
step, which on this VM more than halves the small/medium training speed. The cost is a higher peak
RSS (about +40-50% on small/medium). TORCH_PEER_MALLOC=default turns this off.
"""

import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import sys
import time

CONFIGS = {
    #         vocab, d_model, layers, heads, context, batch, llama d_ff
    "tiny": dict(vocab=256, d=128, layers=4, heads=4, context=256, batch=16, d_ff=384),
    "small": dict(vocab=4096, d=256, layers=6, heads=8, context=256, batch=16, d_ff=704),
    "medium": dict(vocab=8192, d=512, layers=8, heads=8, context=512, batch=8, d_ff=1408),
    "lstm": dict(vocab=256, d=256, layers=2, heads=0, context=256, batch=16, d_ff=0),
}
ARCHS = ("gpt2", "llama")
GEN_NEW_TOKENS = 255  # after a 1-token prompt: 256 tokens = the small/tiny/lstm context
GEN_WARMUP, GEN_RUNS = 2, 5
KV_TOLERANCE = 1e-4


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description="PyTorch CPU peer for algoprog bench (one JSON line on stdout)")
    p.add_argument("--config", required=True, choices=sorted(CONFIGS))
    p.add_argument("--arch", required=True, help="gpt2 | llama (any value for --config lstm)")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--steps", type=int, default=10, help="timed training steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    p.add_argument("--gen", action="store_true", help="measure greedy generation instead of training")
    a = p.parse_args()
    if a.config == "lstm":
        a.arch = "lstm"
    elif a.arch not in ARCHS:
        p.error("--arch must be one of %s for --config %s" % ("|".join(ARCHS), a.config))
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        p.error("need --threads >= 1, --steps >= 1, --warmup >= 0")
    return a


args = parse_args()


def tune_malloc():
    """Keep freed memory in the process instead of handing it back to the kernel.

    Eager PyTorch allocates and frees every activation on every step. glibc serves blocks above
    its mmap threshold (at most 32 MiB) with fresh mmap()s, and it trims the heap top on free().
    Each reuse then costs page faults, and on this VM a fault costs about 10 us: 45 ms for a
    16 MiB tensor, against under 1 ms to compute on it. algoprog preallocates its buffers, so it
    never pays this; the peer should not either. PyTorch's CPU tuning guide suggests jemalloc or
    tcmalloc for the same reason. Here the fix is two mallopt() calls: no mmap-backed blocks
    (M_MMAP_MAX = 0) and no trimming (M_TRIM_THRESHOLD = SIZE_MAX). Set TORCH_PEER_MALLOC=default
    to measure with glibc's defaults instead.
    """
    if os.environ.get("TORCH_PEER_MALLOC", "") == "default":
        return
    try:
        libc = ctypes.CDLL(None)
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, -1) == 1  # -1: SIZE_MAX
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log("torch_peer: warning: mallopt() failed; running with the default malloc settings")


tune_malloc()

# Thread setup: must happen before torch (and the OpenBLAS it links) is loaded.
_n = str(args.threads)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    if os.environ.setdefault(_var, _n) != _n:
        log("torch_peer: warning: %s=%s but --threads %s" % (_var, os.environ[_var], _n))
if args.threads > 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """Weight-only RMSNorm: x * rsqrt(mean(x^2) + eps) * w, in fp32."""

    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    """GPT-NeoX rotary embedding: dim i is paired with dim i + hd/2. x: (B, H, T, hd); cos/sin: (T, hd/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention(nn.Module):
    """Causal multi-head attention with a fused QKV projection, written out (no fused SDPA)."""

    def __init__(self, d, heads, bias, use_rope):
        super().__init__()
        self.h, self.hd = heads, d // heads
        self.use_rope = use_rope
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        self.proj = nn.Linear(d, d, bias=bias)

    def forward(self, x, mask, cos, sin, cache=None, pos=0):
        B, T, C = x.shape
        # (B, T, 3C) -> 3 x (B, H, T, hd)
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.hd).permute(2, 0, 3, 1, 4)
        if self.use_rope:
            q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            # Write this chunk's keys/values into the preallocated cache, attend over 0..pos+T-1.
            kc, vc = cache
            kc[:, :, pos:pos + T] = k
            vc[:, :, pos:pos + T] = v
            k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        if T > 1:  # a single new query may see every cached position: no mask needed
            att = att + mask
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    """gpt2: GELU(tanh) MLP of width 4d with biases. llama: SwiGLU with one fused d -> 2*d_ff linear."""

    def __init__(self, d, d_ff, gated, bias):
        super().__init__()
        self.gated = gated
        self.fc = nn.Linear(d, 2 * d_ff if gated else d_ff, bias=bias)
        self.down = nn.Linear(d_ff, d, bias=bias)

    def forward(self, x):
        h = self.fc(x)
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h, approximate="tanh")
        return self.down(h)


class Block(nn.Module):
    def __init__(self, arch, d, heads, d_ff):
        super().__init__()
        llama = arch == "llama"
        norm = (lambda: RMSNorm(d)) if llama else (lambda: nn.LayerNorm(d))
        self.ln1, self.ln2 = norm(), norm()
        self.attn = Attention(d, heads, bias=not llama, use_rope=llama)
        self.mlp = MLP(d, d_ff, gated=llama, bias=not llama)

    def forward(self, x, mask, cos, sin, cache=None, pos=0):
        x = x + self.attn(self.ln1(x), mask, cos, sin, cache, pos)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """gpt2 or llama decoder-only LM (see the module docstring for the exact recipe)."""

    def __init__(self, arch, vocab, d, layers, heads, context, d_ff, **_):
        super().__init__()
        self.arch, self.context, self.heads, self.hd = arch, context, heads, d // heads
        llama = arch == "llama"
        self.wte = nn.Embedding(vocab, d)
        self.wpe = None if llama else nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(arch, d, heads, d_ff if llama else 4 * d) for _ in range(layers))
        self.lnf = RMSNorm(d) if llama else nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False) if llama else None  # gpt2: tied to wte
        # Additive causal mask (0 on and below the diagonal, -inf above).
        self.register_buffer("mask", torch.full((context, context), float("-inf")).triu(1), persistent=False)
        # RoPE tables for every position (half-split pairing, base 10000).
        hd = self.hd
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        ang = torch.outer(torch.arange(context, dtype=torch.float32), inv_freq)  # (T, hd/2)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)
        for p in self.parameters():  # N(0, 0.02) for matrices/embeddings, zeros for biases
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def new_cache(self):
        """One preallocated (k, v) pair per layer, each (1, heads, context, hd)."""
        shape = (1, self.heads, self.context, self.hd)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.blocks]

    def forward(self, idx, cache=None, pos=0):
        B, T = idx.shape
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe.weight[pos:pos + T]
        mask = self.mask[pos:pos + T, :pos + T]
        cos, sin = self.cos[pos:pos + T], self.sin[pos:pos + T]
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, cos, sin, None if cache is None else cache[i], pos)
        x = self.lnf(x)
        return self.head(x) if self.head is not None else F.linear(x, self.wte.weight)


class LSTMLM(nn.Module):
    """Embedding -> 2-layer nn.LSTM (embedding = hidden = d) -> untied linear head without bias."""

    def __init__(self, vocab, d, layers, **_):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.lstm = nn.LSTM(d, d, num_layers=layers, batch_first=True)
        self.head = nn.Linear(d, vocab, bias=False)
        nn.init.normal_(self.emb.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)

    def forward(self, idx, state=None):
        y, state = self.lstm(self.emb(idx), state)
        return self.head(y), state


def build_model(config, arch):
    c = CONFIGS[config]
    return LSTMLM(**c) if config == "lstm" else Transformer(arch, **c)


def logits_of(model, idx):
    out = model(idx)
    return out[0] if isinstance(out, tuple) else out


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def bench_train(model, c, steps, warmup):
    B, T, V = c["batch"], c["context"], c["vocab"]
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)  # for-loop impl
    data = torch.randint(0, V, (B, T + 1))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step():
        logits = logits_of(model, x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    model.train()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    if not math.isfinite(loss.item()):
        log("torch_peer: warning: non-finite loss %r" % loss.item())
    med, best = statistics.median(times), min(times)
    return dict(tokens_per_step=B * T, step_s_median=round(med, 6), step_s_best=round(best, 6),
                tokens_per_s=round(B * T / med, 1), tokens_per_s_best=round(B * T / best, 1))


@torch.no_grad()
def generate(model, prompt, n_new, cache=None):
    """Greedy decoding, one token per forward. Returns (tokens, per-step logits)."""
    toks, all_logits = [prompt], []
    tok = torch.tensor([[prompt]])
    state = None
    for pos in range(n_new):
        if isinstance(model, LSTMLM):
            logits, state = model(tok, state)
        else:
            logits = model(tok, cache=cache, pos=pos)
        last = logits[0, -1]
        all_logits.append(last)
        nxt = int(torch.argmax(last))
        toks.append(nxt)
        tok = torch.tensor([[nxt]])
    return toks, all_logits


def bench_gen(model, c):
    model.eval()
    if isinstance(model, Transformer) and GEN_NEW_TOKENS > model.context:
        raise SystemExit("torch_peer: context %d is too short for %d new tokens" % (model.context, GEN_NEW_TOKENS))
    cache = model.new_cache() if isinstance(model, Transformer) else None
    prompt = int(torch.randint(0, c["vocab"], (1,)))

    # Check once that incremental decoding (KV cache / carried LSTM state) reproduces a full
    # forward over the same tokens: at the last position, and at every position for good measure.
    toks, inc = generate(model, prompt, GEN_NEW_TOKENS, cache)
    with torch.no_grad():
        full = logits_of(model, torch.tensor([toks[:-1]]))[0]
    diff_last = (full[-1] - inc[-1]).abs().max().item()
    diff_all = (full - torch.stack(inc)).abs().max().item()
    log("torch_peer: %s decoding vs full forward: max abs logit diff %.3g at the last position, %.3g over all %d"
        % ("KV-cache" if cache is not None else "LSTM-state", diff_last, diff_all, len(inc)))
    if not diff_last <= KV_TOLERANCE:
        raise SystemExit("torch_peer: incremental decoding does not match the full forward (%.3g > %g)"
                         % (diff_last, KV_TOLERANCE))

    for _ in range(GEN_WARMUP):
        generate(model, prompt, GEN_NEW_TOKENS, cache)
    times = []
    for _ in range(GEN_RUNS):
        t0 = time.perf_counter()
        generate(model, prompt, GEN_NEW_TOKENS, cache)
        times.append(time.perf_counter() - t0)
    return dict(tokens_per_s=round(GEN_NEW_TOKENS / statistics.median(times), 1),
                tokens_per_s_best=round(GEN_NEW_TOKENS / min(times), 1))


def main():
    torch.manual_seed(1234)
    c = CONFIGS[args.config]
    model = build_model(args.config, args.arch)
    head = dict(impl="torch")
    if args.gen:
        head["mode"] = "gen"
    head.update(config=args.config, arch=args.arch, threads=args.threads)
    if args.gen:
        out = dict(head, **bench_gen(model, c))
    else:
        out = dict(head, steps=args.steps)
        out.update(bench_train(model, c, args.steps, args.warmup))
        out["params"] = sum(p.numel() for p in model.parameters())  # tied weights counted once
    out["rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
