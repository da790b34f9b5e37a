/* config.c - the switch registry and everything derived from it (see config.h). */
#include "config/config.h"

#include "core/fileio.h"
#include "core/ini.h"
#include "core/json.h"
#include "core/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const FAMILY_NAMES[] = {"transformer", "lstm", NULL};
static const char *const LSTM_STATE_NAMES[] = {"carry", "reset", NULL};
static const char *const NORM_NAMES[] = {"layernorm", "rmsnorm", NULL};
static const char *const NORMPOS_NAMES[] = {"pre", "post", NULL};
static const char *const POS_NAMES[] = {"learned", "sinusoidal", "rope", "none", "alibi", NULL};
static const char *const ROPE_SCALING_NAMES[] = {"none", "linear", "ntk", "yarn", NULL};
static const char *const ACT_NAMES[] = {"gelu", "relu", "relu2", "swiglu", "geglu", NULL};
static const char *const INIT_NAMES[] = {"normal", "gpt2", "xavier", NULL};
static const char *const OPT_NAMES[] = {"sgd", "adam", "adamw", "muon", "lion", "schedulefree", NULL};
static const char *const ATTENTION_NAMES[] = {"mha", "mla", NULL};
static const char *const MOE_ROUTER_NAMES[] = {"softmax", "sigmoid", NULL};
static const char *const MOE_BALANCE_NAMES[] = {"none", "aux", "bias", NULL};
static const char *const SCHED_NAMES[] = {"constant", "linear", "cosine", "invsqrt", "wsd", NULL};
static const char *const NONFINITE_NAMES[] = {"stop", "rollback", NULL};
static const char *const FINAL_EVAL_NAMES[] = {"both", "validation", "test", NULL};
static const char *const GEMM_NAMES[] = {"auto", "onednn", "openblas", NULL};
static const char *const PRECISION_NAMES[] = {"fp32", "bf16", NULL};

#define OFF(f) offsetof(Config, f)
#define BIG 1e300

/* One row per switch. Order here is the order of docs/RECIPES.md and of checkpoint headers. */
static const ConfigKey KEYS[] = {
    /* ---- model ---- */
    {"family", "model", KEY_ENUM, OFF(family), "transformer", FAMILY_NAMES, 0, 0, 1,
     "Model family: a decoder-only transformer, or a multi-layer LSTM.",
     "Vaswani et al. 2017; Hochreiter & Schmidhuber 1997"},
    {"vocab", "model", KEY_INT, OFF(vocab), "0", NULL, 0, 1 << 22, 1,
     "Vocabulary size; 0 takes it from the tokenizer.", ""},
    {"context", "model", KEY_INT, OFF(context), "256", NULL, 1, 1 << 20, 1,
     "Context length T (tokens per training sequence).", ""},
    {"d_model", "model", KEY_INT, OFF(d_model), "128", NULL, 1, 1 << 16, 1, "Residual stream width.", ""},
    {"n_layers", "model", KEY_INT, OFF(n_layers), "4", NULL, 1, 1024, 1, "Number of transformer blocks.", ""},
    {"n_heads", "model", KEY_INT, OFF(n_heads), "4", NULL, 1, 1024, 1,
     "Query heads; head dim = d_model / n_heads.", ""},
    {"n_kv_heads", "model", KEY_INT, OFF(n_kv_heads), "0", NULL, 0, 1024, 1,
     "Key/value heads: n_heads = MHA, 1 = MQA, between = GQA; 0 means n_heads.",
     "Shazeer 2019 (MQA); Ainslie et al. 2023 (GQA)"},
    {"attention", "model", KEY_ENUM, OFF(attention), "mha", ATTENTION_NAMES, 0, 0, 1,
     "mha: heads with their own queries and n_kv_heads key/value heads (MHA, GQA, MQA); mla: multi-head latent "
     "attention, keys and values up-projected from a kv_lora_rank latent plus a shared RoPE key of rope_head_dim "
     "floats, so the KV cache holds kv_lora_rank + rope_head_dim floats per token and layer (needs pos = rope).",
     "Vaswani et al. 2017 (MHA); DeepSeek-AI 2024 (V2: MLA)"},
    {"window", "model", KEY_INT, OFF(window), "0", NULL, 0, 1 << 20, 1,
     "Sliding-window attention: each query sees itself and the window-1 keys before it (0: every earlier key). "
     "Key blocks outside every window are skipped and not counted; the KV cache keeps the last window positions "
     "in use.",
     "Child et al. 2019; Beltagy et al. 2020 (Longformer); Jiang et al. 2023 (Mistral)"},
    {"kv_lora_rank", "model", KEY_INT, OFF(kv_lora_rank), "0", NULL, 0, 1 << 16, 1,
     "mla: width of the key/value latent (what the KV cache stores); 0 = d_model/4.", "DeepSeek-AI 2024 (V2)"},
    {"q_lora_rank", "model", KEY_INT, OFF(q_lora_rank), "0", NULL, 0, 1 << 16, 1,
     "mla: queries through a normalised latent of this width (saves activation memory); 0 = a direct projection.",
     "DeepSeek-AI 2024 (V2)"},
    {"rope_head_dim", "model", KEY_INT, OFF(rope_head_dim), "0", NULL, 0, 1 << 16, 1,
     "mla: floats of each query/key head carrying RoPE (the key part shared by all heads); the rest of the head "
     "dim carries no position; 0 = half the head dim.",
     "DeepSeek-AI 2024 (V2: decoupled RoPE)"},
    {"d_ff", "model", KEY_INT, OFF(d_ff), "0", NULL, 0, 1 << 20, 1,
     "MLP hidden width; 0 = 4*d_model, or for gated units 8*d_model/3 rounded to the nearest multiple of 8 "
     "(so parameter counts match).",
     ""},
    {"norm", "model", KEY_ENUM, OFF(norm), "layernorm", NORM_NAMES, 0, 0, 1, "Normalisation layer.",
     "Ba et al. 2016 (LayerNorm); Zhang & Sennrich 2019 (RMSNorm)"},
    {"norm_position", "model", KEY_ENUM, OFF(norm_position), "pre", NORMPOS_NAMES, 0, 0, 1,
     "post: x = norm(x + f(x)) as in the original Transformer; pre: x = x + f(norm(x)) with a final norm.",
     "Vaswani et al. 2017 (post); Radford et al. 2019 / Xiong et al. 2020 (pre)"},
    {"parallel_block", "model", KEY_BOOL, OFF(parallel_block), "false", NULL, 0, 0, 1,
     "x = x + attn(norm(x)) + mlp(norm(x)): attention and MLP read the same normed input (one norm per block, "
     "no ln2), instead of the MLP reading the attention's output. Pre-norm only. Same FLOPs.",
     "Wang & Komatsuzaki 2021 (GPT-J); Chowdhery et al. 2022 (PaLM)"},
    {"unet_skips", "model", KEY_BOOL, OFF(unet_skips), "false", NULL, 0, 0, 1,
     "U-net skip connections: with Le = n_layers / 2, layer Le + i adds w_i times the output of layer Le - 1 - i to "
     "its input (w_i learned, from 1), so the late layers see the early ones' features directly. Pre-norm only. "
     "Adds n_layers / 2 parameters and no matmul FLOPs.",
     "Ronneberger et al. 2015 (U-Net); Jordan et al. 2024 (modded-nanogpt speedrun)"},
    {"norm_eps", "model", KEY_FLOAT, OFF(norm_eps), "1e-5", NULL, 0, 1, 1, "Epsilon inside norms.", ""},
    {"pos", "model", KEY_ENUM, OFF(pos), "learned", POS_NAMES, 0, 0, 1,
     "Position information. alibi: no embedding; each head h of H adds -m_h (i - j) to the score of query i for "
     "key j, m_h = 2^(-8 (h+1) / H).",
     "Vaswani et al. 2017 (sinusoidal); Radford et al. 2018 (learned); Su et al. 2021 (RoPE); Press et al. 2022 "
     "(ALiBi)"},
    {"rope_base", "model", KEY_FLOAT, OFF(rope_base), "10000", NULL, 1, 1e12, 1, "RoPE frequency base theta.",
     "Su et al. 2021"},
    {"rope_scaling", "model", KEY_ENUM, OFF(rope_scaling), "none", ROPE_SCALING_NAMES, 0, 0, 1,
     "Context extension of RoPE by rope_factor s: linear divides positions by s (position interpolation); ntk "
     "raises the base to base * s^(d/(d-2)); yarn interpolates only the long wavelengths (a ramp between 1 and 32 "
     "turns per original context) and multiplies attention logits by (0.1 ln s + 1)^2. For evaluation beyond the "
     "training length (`algoprog eval RUN eval_context=N`) or a short fine-tune at a longer context.",
     "Chen et al. 2023 (position interpolation); bloc97 2023 (NTK-aware); Peng et al. 2023 (YaRN)"},
    {"rope_factor", "model", KEY_FLOAT, OFF(rope_factor), "1", NULL, 1, 1024, 1,
     "The context extension factor s of rope_scaling.", ""},
    {"rope_original_context", "model", KEY_INT, OFF(rope_original_context), "0", NULL, 0, 1 << 24, 1,
     "yarn: the context the model was trained at; 0 means context / rope_factor.", ""},
    {"act", "model", KEY_ENUM, OFF(act), "gelu", ACT_NAMES, 0, 0, 1, "MLP activation (swiglu/geglu are gated).",
     "Hendrycks & Gimpel 2016 (GELU); So et al. 2021 (ReLU^2); Shazeer 2020 (GLU variants)"},
    {"qk_norm", "model", KEY_BOOL, OFF(qk_norm), "false", NULL, 0, 0, 1,
     "RMSNorm of each query and key head (learned gain per head dim) before positions.",
     "Dehghani et al. 2023; Wortsman et al. 2023"},
    {"softcap", "model", KEY_FLOAT, OFF(softcap), "0", NULL, 0, 1e6, 1,
     "Logit soft-cap: logits = c*tanh(logits/c); 0 is off.", "Gemma 2 (2024); modded-nanogpt"},
    {"z_loss", "model", KEY_FLOAT, OFF(z_loss), "0", NULL, 0, 1, 0,
     "Adds z_loss * mean (log Z)^2 (Z: the softmax normaliser of the logits) to the training loss, keeping the "
     "logits from drifting; 1e-4 in PaLM. Reported losses stay the cross-entropy. Transformers, main head.",
     "Chowdhery et al. 2022 (PaLM); Wortsman et al. 2023"},
    {"tie_embeddings", "model", KEY_BOOL, OFF(tie_embeddings), "true", NULL, 0, 0, 1,
     "Share the token embedding with the output head.", "Press & Wolf 2017"},
    {"bias", "model", KEY_BOOL, OFF(bias), "true", NULL, 0, 0, 1, "Biases in linear layers and LayerNorm.", ""},
    {"emb_scale", "model", KEY_BOOL, OFF(emb_scale), "false", NULL, 0, 0, 1,
     "Multiply token embeddings by sqrt(d_model).", "Vaswani et al. 2017"},
    {"init", "model", KEY_ENUM, OFF(init), "gpt2", INIT_NAMES, 0, 0, 1,
     "normal: N(0, init_std) everywhere; gpt2: residual output projections scaled by 1/sqrt(2*n_layers); "
     "xavier: uniform Glorot for matrices, N(0, d^-1/2) embeddings.",
     "Radford et al. 2019; Glorot & Bengio 2010"},
    {"init_std", "model", KEY_FLOAT, OFF(init_std), "0.02", NULL, 0, 10, 1, "Std of normal initialisation.", ""},
    {"mup_base_width", "model", KEY_INT, OFF(mup_base_width), "0", NULL, 0, 1 << 16, 1,
     "muP: parametrise relative to a base model of this d_model (m = d_model / base), so a learning rate tuned at "
     "one width holds at others. Hidden matrices start at init_std/sqrt(m) and take Adam-family steps of lr/m; "
     "matrices into a fixed-size output (the router, MLA's down-projections to kv_lora_rank and rope_head_dim) start "
     "at init_std/m with steps of lr/m; embeddings, norms, biases and the head keep theirs, and the logits are "
     "multiplied by 1/m. Decoupled weight decay stays lr*weight_decay per step. Equals the standard model at the "
     "base width. Transformers; init normal or gpt2; not with optimizer=sgd (Muon's own scaling updates its "
     "matrices). 0 is off.",
     "Yang et al. 2022 (Tensor Programs V, muP)"},
    {"zero_init_proj", "model", KEY_BOOL, OFF(zero_init_proj), "false", NULL, 0, 0, 1,
     "Start the attention output and MLP output projections (and an untied head) at zero, so every block begins "
     "as the identity. No FLOP cost.",
     "modded-nanogpt records (2024); cf. Zhang et al. 2019 (Fixup)"},
    {"value_embeds", "model", KEY_INT, OFF(value_embeds), "0", NULL, 0, 1024, 1,
     "Value embeddings: the first N layers add a per-token embedding to their attention values, "
     "v = l0*v + l1*ve[token], with learned mixing scalars. Adds N*vocab*kv_dim parameters, no matmul FLOPs.",
     "modded-nanogpt records (2024)"},
    {"moe_experts", "model", KEY_INT, OFF(moe_experts), "0", NULL, 0, 4096, 1,
     "Mixture of experts: routed experts in each MoE layer's MLP (0: dense MLPs). Dropless: every token reaches "
     "its moe_top_k experts, computed as one product per expert over its tokens. FLOPs count the active experts "
     "only; `algoprog config` shows total and active parameters.",
     "Shazeer et al. 2017; Fedus et al. 2021 (Switch); Dai et al. 2024 (DeepSeekMoE)"},
    {"moe_top_k", "model", KEY_INT, OFF(moe_top_k), "2", NULL, 1, 4096, 1,
     "Routed experts per token (at most moe_experts).", "Shazeer et al. 2017; Lepikhin et al. 2020 (top-2)"},
    {"moe_shared_experts", "model", KEY_INT, OFF(moe_shared_experts), "0", NULL, 0, 4096, 1,
     "Shared experts every token goes through, beside the routed ones (run as one MLP of their total width).",
     "Dai et al. 2024 (DeepSeekMoE)"},
    {"moe_d_ff", "model", KEY_INT, OFF(moe_d_ff), "0", NULL, 0, 1 << 20, 1,
     "Hidden width of each expert (routed and shared); 0 = d_ff. Fine-grained experts: many narrow ones.",
     "Dai et al. 2024 (fine-grained expert segmentation)"},
    {"moe_router", "model", KEY_ENUM, OFF(moe_router), "softmax", MOE_ROUTER_NAMES, 0, 0, 1,
     "Router scores: softmax over experts (gates are the chosen experts' probabilities, as DeepSeek-V2), or "
     "sigmoid per expert (gates are the chosen scores normalised to sum 1, as DeepSeek-V3).",
     "DeepSeek-AI 2024 (V2: softmax; V3: sigmoid)"},
    {"moe_balance", "model", KEY_ENUM, OFF(moe_balance), "aux", MOE_BALANCE_NAMES, 0, 0, 1,
     "Load balancing: aux adds moe_aux_weight * sum_e f_e P_e per layer to the training loss (f: fraction of "
     "routed slots, times experts; P: mean normalised score); bias adds a per-expert bias to the scores for "
     "choosing experts only, moved by moe_bias_rate against each step's load (no loss term); none.",
     "Fedus et al. 2021 (aux loss); Wang et al. 2024 / DeepSeek-V3 (auxiliary-loss-free bias)"},
    {"moe_aux_weight", "model", KEY_FLOAT, OFF(moe_aux_weight), "0.01", NULL, 0, 100, 0,
     "moe_balance = aux: weight alpha of the balance loss.", "Fedus et al. 2021"},
    {"moe_bias_rate", "model", KEY_FLOAT, OFF(moe_bias_rate), "0.001", NULL, 0, 100, 0,
     "moe_balance = bias: each step, b_e += rate * sign(mean load - load_e).", "DeepSeek-AI 2024 (V3: 0.001)"},
    {"moe_every", "model", KEY_INT, OFF(moe_every), "1", NULL, 1, 1024, 1,
     "With experts: the last layer of every group of this many is MoE, the others dense (1: every layer).",
     "Lepikhin et al. 2020 (every other layer)"},
    {"mtp_depth", "model", KEY_INT, OFF(mtp_depth), "0", NULL, 0, 16, 1,
     "Multi-token prediction: D sequential modules; module k combines the previous depth's hidden state with "
     "the embedding of token i+k, runs one more transformer block and predicts token i+k+1 through the shared "
     "head. Training only: held-out loss and sampling stay next-token; the modules' FLOPs are counted.",
     "Gloeckle et al. 2024; DeepSeek-AI 2024 (V3: sequential MTP)"},
    {"mtp_weight", "model", KEY_FLOAT, OFF(mtp_weight), "0.3", NULL, 0, 100, 0,
     "mtp_depth > 0: the training loss adds mtp_weight times the modules' mean cross-entropy.",
     "DeepSeek-AI 2024 (V3: 0.3, then 0.1)"},
    {"lstm_hidden", "model", KEY_INT, OFF(lstm_hidden), "0", NULL, 0, 1 << 16, 1,
     "LSTM hidden size per layer; 0 means d_model.", ""},
    {"lstm_proj", "model", KEY_BOOL, OFF(lstm_proj), "false", NULL, 0, 0, 1,
     "LSTMP: project each layer's hidden state (lstm_hidden) down to d_model.", "Sak et al. 2014; Jozefowicz et al. 2016"},
    {"lstm_state", "model", KEY_ENUM, OFF(lstm_state), "carry", LSTM_STATE_NAMES, 0, 0, 0,
     "Truncated BPTT: carry the hidden state across consecutive chunks of each batch row's stream (as LSTM LMs "
     "were trained), or reset it every chunk.",
     "Zaremba et al. 2014"},
    /* ---- optim ---- */
    {"optimizer", "optim", KEY_ENUM, OFF(optimizer), "adamw", OPT_NAMES, 0, 0, 0,
     "sgd (with momentum), adam (L2 in the gradient), adamw (decoupled decay), muon (Newton-Schulz "
     "orthogonalised momentum for hidden matrices, AdamW at adam_lr for the rest), lion (the sign of an "
     "interpolated momentum, beta1 and beta2 as its two coefficients, decoupled decay; one moment of state), "
     "schedulefree (schedule-free AdamW: gradients at an interpolation of an Adam-normalised SGD sequence and its "
     "running average, which evaluations use; warmup only, needs schedule = constant).",
     "Kingma & Ba 2015; Loshchilov & Hutter 2019; Jordan et al. 2024 (Muon); Chen et al. 2023 (Lion); "
     "Defazio et al. 2024 (schedule-free)"},
    {"lr", "optim", KEY_FLOAT, OFF(lr), "1e-3", NULL, 0, 100, 0, "Peak learning rate.", ""},
    {"beta1", "optim", KEY_FLOAT, OFF(beta1), "0.9", NULL, 0, 0.999999, 0, "Adam beta1.", ""},
    {"beta2", "optim", KEY_FLOAT, OFF(beta2), "0.95", NULL, 0, 0.9999999, 0, "Adam beta2.", ""},
    {"eps", "optim", KEY_FLOAT, OFF(eps), "1e-8", NULL, 0, 1, 0, "Adam epsilon.", ""},
    {"weight_decay", "optim", KEY_FLOAT, OFF(weight_decay), "0.1", NULL, 0, 10, 0,
     "Weight decay, applied to matrices and embeddings only (never norms or biases).", ""},
    {"momentum", "optim", KEY_FLOAT, OFF(momentum), "0.9", NULL, 0, 0.999999, 0, "SGD momentum.", ""},
    {"grad_clip", "optim", KEY_FLOAT, OFF(grad_clip), "1.0", NULL, 0, 1e9, 0,
     "Clip the global gradient norm to this value; 0 is off.", "Pascanu et al. 2013"},
    {"ema_decay", "optim", KEY_FLOAT, OFF(ema_decay), "0", NULL, 0, 0.99999, 0,
     "Evaluate on an exponential moving average of the weights (decay per step, warmed up as min(d, (1+t)/(10+t)) "
     "so the start is not held at the initialisation); training is unchanged. Costs a copy of the parameters; "
     "checkpoints keep it (e.NAME). 0 is off.",
     "Polyak & Juditsky 1992 (averaging); Izmailov et al. 2018; Sanyal et al. 2023 (EMA in LM pre-training)"},
    {"schedule", "optim", KEY_ENUM, OFF(schedule), "cosine", SCHED_NAMES, 0, 0, 0,
     "Learning-rate schedule after warmup.",
     "Vaswani et al. 2017 (invsqrt); Loshchilov & Hutter 2017 (cosine); Hu et al. 2024 (WSD)"},
    {"warmup", "optim", KEY_INT, OFF(warmup), "0", NULL, 0, 1 << 30, 0, "Linear warmup steps.", ""},
    {"window_warmup", "optim", KEY_FLOAT, OFF(window_warmup), "0", NULL, 0, 1, 0,
     "Attention-window warmup: training attends over a window that grows linearly from window_start to the model's "
     "own (window, or the whole context) over this fraction of the steps, in multiples of 16 positions; evaluations "
     "and sampling use the model's own. FLOPs count each step's window. 0 is off; the speedrun grows it over the "
     "whole run (1).",
     "Jordan et al. 2024 (modded-nanogpt: attention window warmup)"},
    {"window_start", "optim", KEY_INT, OFF(window_start), "64", NULL, 1, 1 << 20, 0,
     "The training window at step 0 under window_warmup.", ""},
    {"batch_warmup", "optim", KEY_FLOAT, OFF(batch_warmup), "0", NULL, 0, 1, 0,
     "Batch-size ramp: the batch grows linearly from batch_start rows to batch over this fraction of the steps, "
     "in multiples of batch_start; tokens, FLOPs and data are counted per step, and a study plans the run's steps "
     "from the mean. The learning-rate schedule stays by step. Transformers. 0 is off.",
     "Brown et al. 2020 (GPT-3); DeepSeek-AI 2024 (DeepSeek-V3)"},
    {"batch_start", "optim", KEY_INT, OFF(batch_start), "0", NULL, 0, 1 << 20, 0,
     "Rows at step 0 under batch_warmup; 0 means batch/4 (at least 1).", ""},
    {"seq_warmup", "optim", KEY_FLOAT, OFF(seq_warmup), "0", NULL, 0, 1, 0,
     "Sequence-length warmup: training rows are the first L tokens of each window, L growing linearly from "
     "seq_start to context over this fraction of the steps in multiples of 8 (the rest of each window is skipped, "
     "as in the paper's truncation); evaluations use the whole context. Tokens and FLOPs are counted per step. "
     "Transformers. 0 is off.",
     "Li et al. 2022 (sequence length warmup)"},
    {"seq_start", "optim", KEY_INT, OFF(seq_start), "0", NULL, 0, 1 << 20, 0,
     "Row length at step 0 under seq_warmup; 0 means context/8 (at least 8).", ""},
    {"min_lr_frac", "optim", KEY_FLOAT, OFF(min_lr_frac), "0.1", NULL, 0, 1, 0,
     "Final learning rate as a fraction of the peak (linear, cosine, wsd).", ""},
    {"decay_frac", "optim", KEY_FLOAT, OFF(decay_frac), "0.2", NULL, 0, 1, 0,
     "WSD: fraction of steps spent in the final linear decay.", "Hu et al. 2024 (MiniCPM)"},
    {"adam_lr", "optim", KEY_FLOAT, OFF(adam_lr), "0", NULL, 0, 100, 0,
     "muon: learning rate of the AdamW part (embeddings, head, norms, biases); 0 means lr.", ""},
    {"muon_momentum", "optim", KEY_FLOAT, OFF(muon_momentum), "0.95", NULL, 0, 0.999999, 0,
     "muon: Nesterov momentum of the orthogonalised update.", "Jordan et al. 2024"},
    /* ---- train ---- */
    {"data", "train", KEY_STRING, OFF(data), "", NULL, 0, 0, 0,
     "A corpus (name under data/, or its directory; see `algoprog corpus`) or a plain text file.", ""},
    {"tokenizer", "train", KEY_STRING, OFF(tokenizer), "bytes", NULL, 0, 0, 1,
     "bytes, or a tokenizer file / name under data/tokenizers (see `algoprog tokenize`).", ""},
    {"val_frac", "train", KEY_FLOAT, OFF(val_frac), "0.1", NULL, 0.001, 0.5, 0,
     "Text files only: fraction of the tokens held out (the end). Corpora carry their own split.", ""},
    {"max_unique_tokens", "train", KEY_U64, OFF(max_unique_tokens), "0", NULL, 0, 0, 0,
     "Train on only this many unique tokens, repeating them for as many epochs as the run needs; 0 = all.",
     "Muennighoff et al. 2023"},
    {"data_epochs", "train", KEY_FLOAT, OFF(data_epochs), "0", NULL, 0, 1e6, 0,
     "Train on the first tokens/data_epochs unique tokens, so the run sees them this many times whatever its "
     "length (a study's arms at every budget and size); a fresh run sets max_unique_tokens from it. 0 is off; "
     "1 refuses a corpus too small to give every token once.",
     "Muennighoff et al. 2023 (data-constrained scaling)"},
    {"init_from", "train", KEY_STRING, OFF(init_from), "", NULL, 0, 0, 0,
     "Start from a finished run's parameters (its directory; same tokenizer and shapes) with a fresh optimiser and "
     "schedule: a fine-tune, e.g. at a longer context with rope_scaling. This run's FLOPs count its own steps only.",
     "Chen et al. 2023 (position interpolation fine-tune); Peng et al. 2023 (YaRN)"},
    {"teacher", "train", KEY_STRING, OFF(teacher), "", NULL, 0, 0, 0,
     "Knowledge distillation: a finished run's directory (its checkpoint.bin) whose model, run on every batch, "
     "gives soft targets; the training loss becomes (1 - distill_weight) x cross-entropy + distill_weight x T^2 "
     "KL(teacher || student) at temperature T = distill_temperature. Same tokenizer and vocabulary, a context at "
     "least as long; the teacher's forward FLOPs are counted apart (final.json teacher_flops). Transformer students; "
     "not with z_loss. Reported losses stay the cross-entropy.",
     "Hinton et al. 2015; Busbridge et al. 2025 (distillation scaling laws)"},
    {"distill_weight", "train", KEY_FLOAT, OFF(distill_weight), "0.5", NULL, 0, 1, 0,
     "With a teacher: the distillation term's weight (1: soft targets only).", ""},
    {"distill_temperature", "train", KEY_FLOAT, OFF(distill_temperature), "1", NULL, 0.05, 100, 0,
     "With a teacher: the softmax temperature of both models' distributions in the distillation term.", ""},
    {"eval_contexts", "train", KEY_STRING, OFF(eval_contexts), "", NULL, 0, 0, 0,
     "Multiples of the context (e.g. 2,4,8) at which the final evaluation also reads the test half, in windows "
     "that long: RoPE runs with each rope_scaling (none, linear, ntk, yarn at factor = the multiple), other "
     "positions as they are; final.json context_eval holds the loss overall and past the training context. "
     "Learned positions have none past it and are refused. \"\" is off.",
     "Press et al. 2022 (ALiBi); Peng et al. 2023 (YaRN); claim C8"},
    {"steps", "train", KEY_INT, OFF(steps), "1000", NULL, 0, 1 << 30, 0, "Optimiser steps.", ""},
    {"batch", "train", KEY_INT, OFF(batch), "16", NULL, 1, 1 << 20, 0, "Sequences per step.", ""},
    {"seed", "train", KEY_U64, OFF(seed), "1", NULL, 0, 0, 0, "Seed of initialisation and data order.", ""},
    {"eval_every", "train", KEY_INT, OFF(eval_every), "100", NULL, 1, 1 << 30, 0,
     "Evaluate held-out loss every this many steps (and at the end).", ""},
    {"eval_tokens", "train", KEY_INT, OFF(eval_tokens), "65536", NULL, 1, 1 << 30, 0,
     "Held-out tokens per evaluation during training, from the validation half of the held-out text (rounded "
     "up to whole batches, capped by the half).", ""},
    {"final_eval_tokens", "train", KEY_INT, OFF(final_eval_tokens), "131072", NULL, 0, 1 << 30, 0,
     "Tokens of each held-out half (validation, test; see final_eval) evaluated when the run ends; 0: the whole "
     "half. The test loss is what studies report, the validation loss what learning-rate sweeps choose by.", ""},
    {"final_eval", "train", KEY_ENUM, OFF(final_eval), "both", FINAL_EVAL_NAMES, 0, 0, 0,
     "Held-out halves evaluated when the run ends; the other half's loss is left empty (null). Studies evaluate "
     "a learning-rate sweep on validation and a main run on test, the one half each is judged by.",
     ""},
    {"checkpoint_every", "train", KEY_INT, OFF(checkpoint_every), "500", NULL, 0, 1 << 30, 0,
     "Write a checkpoint every this many steps (0: only at the end).", ""},
    {"log_every", "train", KEY_INT, OFF(log_every), "10", NULL, 0, 1 << 30, 0,
     "Progress line every this many steps (0: only at evaluations).", ""},
    {"threads", "train", KEY_INT, OFF(threads), "0", NULL, 0, 1024, 0, "Threads; 0 uses every core.", ""},
    {"gemm", "train", KEY_ENUM, OFF(gemm), "auto", GEMM_NAMES, 0, 0, 0,
     "Library of the matrix products: onednn (JIT kernels for the CPU's widest vectors), openblas, or auto "
     "(oneDNN when the build has it, by the shape rule of docs/BENCH.md; else OpenBLAS). Results are bit-identical "
     "run to run for a given library and thread count, and differ between libraries by rounding.",
     ""},
    {"precision", "train", KEY_ENUM, OFF(precision), "fp32", PRECISION_NAMES, 0, 0, 0,
     "Precision of the matrix products: fp32, or bf16 (inputs rounded to bfloat16, fp32 accumulation, fp32 "
     "weights, gradients and optimiser state) on oneDNN's matmul; products too small to gain (the rule in "
     "docs/BENCH.md) stay fp32. bf16 needs oneDNN and a CPU with AVX512-BF16 or AMX, and fails where they are "
     "missing. It cannot change when resuming.",
     "Kalamkar et al. 2019 (bfloat16 training)"},
    {"on_nonfinite", "train", KEY_ENUM, OFF(on_nonfinite), "stop", NONFINITE_NAMES, 0, 0, 0,
     "A NaN/Inf loss or gradient norm: stop with the step, or roll back to the last checkpoint and halve the "
     "learning rate (at most 3 times; each recorded in metrics.jsonl).",
     ""},
    {"memory_limit", "train", KEY_FLOAT, OFF(memory_limit), "0", NULL, 0, 1e6, 0,
     "Refuse a run whose estimated memory (GB) exceeds this; 0 = the memory available when it starts.", ""},
    {"fault_nan_step", "train", KEY_INT, OFF(fault_nan_step), "0", NULL, 0, 1 << 30, 0,
     "Testing aid: poison the training loss at this step (until a rollback) to exercise on_nonfinite; 0 = off.",
     ""},
    {"out", "train", KEY_STRING, OFF(out), "", NULL, 0, 0, 0, "Run directory (metrics, checkpoints).", ""},
};

#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

const ConfigKey *config_keys(int *n_out) {
    if (n_out) *n_out = N_KEYS;
    return KEYS;
}

const ConfigKey *config_key_find(const char *key) {
    const char *dot = strchr(key, '.');
    for (int i = 0; i < N_KEYS; i++) {
        if (dot) {
            size_t slen = (size_t)(dot - key);
            if (strlen(KEYS[i].section) == slen && !strncmp(KEYS[i].section, key, slen) &&
                !strcmp(KEYS[i].key, dot + 1))
                return &KEYS[i];
        } else if (!strcmp(KEYS[i].key, key)) {
            return &KEYS[i];
        }
    }
    return NULL;
}

const char *config_enum_name(const char *key, int value) {
    const ConfigKey *k = config_key_find(key);
    if (!k || k->type != KEY_ENUM || value < 0) return "?";
    for (int i = 0; k->choices[i]; i++)
        if (i == value) return k->choices[i];
    return "?";
}

/* Levenshtein distance, for "did you mean" hints on misspelt keys. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

static int unknown_key(const char *key, Status *st) {
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; i < N_KEYS; i++) {
        int d = edit_distance(key, KEYS[i].key);
        if (d < bestd) {
            bestd = d;
            best = KEYS[i].key;
        }
    }
    if (best) return status_fail(st, AP_EINVAL, "unknown key '%s' (did you mean '%s'?)", key, best);
    return status_fail(st, AP_EINVAL, "unknown key '%s' (see docs/RECIPES.md for the list)", key);
}

static void list_choices(const ConfigKey *k, char *buf, size_t size) {
    buf[0] = '\0';
    for (int i = 0; k->choices[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? "|" : "", k->choices[i]);
    }
}

static int set_value(Config *c, const ConfigKey *k, const char *value, Status *st) {
    char *field = (char *)c + k->offset;
    char *end;
    switch (k->type) {
    case KEY_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return status_fail(st, AP_EINVAL, "key '%s': '%s' is not an integer", k->key, value);
        if ((double)v < k->min || (double)v > k->max)
            return status_fail(st, AP_EINVAL, "key '%s': %lld is out of range [%.0f, %.0f]", k->key, v, k->min,
                               k->max);
        *(int *)field = (int)v;
        return 0;
    }
    case KEY_U64: {
        errno = 0;
        if (value[0] == '-') return status_fail(st, AP_EINVAL, "key '%s': must not be negative", k->key);
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end)
            return status_fail(st, AP_EINVAL, "key '%s': '%s' is not an unsigned integer", k->key, value);
        *(uint64_t *)field = (uint64_t)v;
        return 0;
    }
    case KEY_FLOAT: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return status_fail(st, AP_EINVAL, "key '%s': '%s' is not a finite number", k->key, value);
        if (v < k->min || v > k->max)
            return status_fail(st, AP_EINVAL, "key '%s': %g is out of range [%g, %g]", k->key, v, k->min, k->max);
        *(double *)field = v;
        return 0;
    }
    case KEY_BOOL: {
        static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off"};
        for (int i = 0; i < 4; i++) {
            if (!strcmp(value, yes[i])) return *(int *)field = 1, 0;
            if (!strcmp(value, no[i])) return *(int *)field = 0, 0;
        }
        return status_fail(st, AP_EINVAL, "key '%s': '%s' is not a boolean (true|false)", k->key, value);
    }
    case KEY_ENUM: {
        for (int i = 0; k->choices[i]; i++)
            if (!strcmp(value, k->choices[i])) return *(int *)field = i, 0;
        char allowed[256];
        list_choices(k, allowed, sizeof allowed);
        return status_fail(st, AP_EINVAL, "key '%s': '%s' is not one of %s", k->key, value, allowed);
    }
    case KEY_STRING:
        if (strlen(value) >= CONFIG_PATH_MAX)
            return status_fail(st, AP_EINVAL, "key '%s': value longer than %d bytes", k->key, CONFIG_PATH_MAX - 1);
        snprintf(field, CONFIG_PATH_MAX, "%s", value);
        return 0;
    }
    return status_fail(st, AP_EINTERNAL, "key '%s' has no type", k->key);
}

int config_eval_contexts(const Config *c, int *out, int max, Status *st) {
    int n = 0;
    const char *p = c->eval_contexts;
    while (*p) {
        char *end;
        errno = 0;
        long m = strtol(p, &end, 10);
        if (errno || end == p || m < 2 || m > 64 || (n && m <= out[n - 1]) || n == max ||
            (*end && *end != ',') || (long)c->context * m > (1L << 20))
            return status_fail(st, AP_EINVAL, "eval_contexts=%s: expected up to %d increasing whole multiples of the "
                               "context from 2 to 64, comma-separated (e.g. 2,4,8)", c->eval_contexts, max);
        out[n++] = (int)m;
        p = *end ? end + 1 : end;
    }
    return n;
}

int config_set(Config *c, const char *key, const char *value, Status *st) {
    const ConfigKey *k = config_key_find(key);
    if (!k) {
        const char *dot = strchr(key, '.');
        return unknown_key(dot ? dot + 1 : key, st);
    }
    return set_value(c, k, value, st);
}

void config_get(const Config *c, const ConfigKey *k, char *buf, size_t size) {
    const char *field = (const char *)c + k->offset;
    switch (k->type) {
    case KEY_INT: snprintf(buf, size, "%d", *(const int *)field); break;
    case KEY_U64: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case KEY_FLOAT: snprintf(buf, size, "%.17g", *(const double *)field); break;
    case KEY_BOOL: snprintf(buf, size, "%s", *(const int *)field ? "true" : "false"); break;
    case KEY_ENUM: snprintf(buf, size, "%s", k->choices[*(const int *)field]); break;
    case KEY_STRING: snprintf(buf, size, "%s", field); break;
    }
}

void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_KEYS; i++) {
        Status st;
        if (set_value(c, &KEYS[i], KEYS[i].def, &st)) abort(); /* a bad default is our bug */
    }
}

int config_find_recipe(const char *name, char *path, size_t size, Status *st) {
    if (strchr(name, '/') || strstr(name, ".ini")) {
        if (!file_exists(name)) return status_fail(st, AP_EINVAL, "recipe file '%s' does not exist", name);
        snprintf(path, size, "%s", name);
        return 0;
    }
    const char *env = getenv("ALGOPROG_RECIPES");
    const char *dirs[] = {env, "recipes", ALGOPROG_SOURCE_DIR "/recipes"};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        snprintf(path, size, "%s/%s.ini", dirs[i], name);
        if (file_exists(path)) return 0;
    }
    return status_fail(st, AP_EINVAL,
                       "no recipe named '%s' (looked for %s.ini in $ALGOPROG_RECIPES, ./recipes and %s/recipes)",
                       name, name, ALGOPROG_SOURCE_DIR);
}

static int load_recipe_depth(Config *c, const char *name, int depth, Status *st) {
    if (depth > 8) return status_fail(st, AP_EINVAL, "recipe '%s': 'base' chain deeper than 8 (a cycle?)", name);
    char path[1024];
    if (config_find_recipe(name, path, sizeof path, st)) return -1;
    IniFile ini;
    if (ini_load(&ini, path, st)) return -1;
    int rc = 0;
    for (int i = 0; i < ini.n && !rc; i++) {
        IniEntry *e = &ini.entries[i];
        if (!strcmp(e->key, "base")) {
            if (i != 0 || e->section[0]) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: 'base' must be the first key, before any section", path,
                                 e->line);
                break;
            }
            rc = load_recipe_depth(c, e->value, depth + 1, st);
            if (rc) status_wrap(st, "%s:%d", path, e->line);
            continue;
        }
        const ConfigKey *k = config_key_find(e->key);
        if (!k) {
            unknown_key(e->key, st);
            rc = status_wrap(st, "%s:%d", path, e->line);
            break;
        }
        if (strcmp(e->section, k->section)) {
            rc = status_fail(st, AP_EINVAL, "%s:%d: key '%s' belongs in section [%s], not [%s]", path, e->line,
                             e->key, k->section, e->section[0] ? e->section : "(none)");
            break;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(ini.entries[j].key, e->key)) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: key '%s' repeats line %d", path, e->line, e->key,
                                 ini.entries[j].line);
                break;
            }
        if (!rc && set_value(c, k, e->value, st)) rc = status_wrap(st, "%s:%d", path, e->line);
    }
    ini_free(&ini);
    return rc;
}

int config_load_recipe(Config *c, const char *name_or_path, Status *st) {
    return load_recipe_depth(c, name_or_path, 0, st);
}

int config_apply_args(Config *c, int argc, char **argv, Status *st) {
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i])
            return status_fail(st, AP_EINVAL, "argument '%s' is not of the form key=value", argv[i]);
        char key[128];
        size_t klen = (size_t)(eq - argv[i]);
        if (klen >= sizeof key) return status_fail(st, AP_EINVAL, "argument key too long: '%s'", argv[i]);
        memcpy(key, argv[i], klen);
        key[klen] = '\0';
        if (config_set(c, key, eq + 1, st)) return -1;
    }
    return 0;
}

int config_resolve(Config *c, Status *st) {
    if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
    if (c->optimizer == OPT_SCHEDULEFREE && c->schedule != SCHED_CONSTANT)
        return status_fail(st, AP_EINVAL, "optimizer=schedulefree replaces the learning-rate schedule (warmup only): "
                                          "set schedule = constant");
    if (c->optimizer == OPT_SCHEDULEFREE && c->ema_decay > 0)
        return status_fail(st, AP_EINVAL, "optimizer=schedulefree evaluates its own average: ema_decay must be 0");
    if (c->family == FAMILY_LSTM) {
        if (c->lstm_hidden == 0) c->lstm_hidden = c->d_model;
        if (c->lstm_proj && c->lstm_hidden <= c->d_model)
            return status_fail(st, AP_EINVAL, "lstm_proj projects lstm_hidden=%d down to d_model=%d: make it larger",
                               c->lstm_hidden, c->d_model);
        if (!c->lstm_proj && c->tie_embeddings && c->lstm_hidden != c->d_model)
            return status_fail(st, AP_EINVAL,
                               "tie_embeddings needs lstm_hidden (%d) = d_model (%d), or lstm_proj = true",
                               c->lstm_hidden, c->d_model);
        if (c->n_layers > 12) return status_fail(st, AP_EINVAL, "n_layers=%d: an LSTM has at most 12", c->n_layers);
        if (c->value_embeds) return status_fail(st, AP_EINVAL, "value_embeds is a transformer switch");
        if (c->moe_experts) return status_fail(st, AP_EINVAL, "moe_experts is a transformer switch");
        if (c->mtp_depth) return status_fail(st, AP_EINVAL, "mtp_depth is a transformer switch");
        if (c->z_loss > 0) return status_fail(st, AP_EINVAL, "z_loss is a transformer switch");
        if (c->unet_skips) return status_fail(st, AP_EINVAL, "unet_skips is a transformer switch");
        if (c->window || c->window_warmup > 0)
            return status_fail(st, AP_EINVAL, "window and window_warmup are attention switches (transformers)");
        if (c->mup_base_width) return status_fail(st, AP_EINVAL, "mup_base_width is a transformer switch");
        if (c->teacher[0])
            return status_fail(st, AP_EINVAL, "teacher: distillation trains transformer students (the teacher may be "
                                              "any run)");
        if (c->batch_warmup > 0 || c->seq_warmup > 0)
            return status_fail(st, AP_EINVAL,
                               "batch_warmup and seq_warmup are transformer switches (an LSTM's streams keep one shape)");
        if (c->d_ff == 0) c->d_ff = 4 * c->d_model; /* unused by the LSTM; resolved for uniformity */
        double act = 4.0 * c->batch * c->context * (c->n_layers * 8.0 * c->lstm_hidden + 3.0 * c->d_model);
        if (act > 64e9)
            return status_fail(st, AP_EINVAL, "batch x context needs about %.0f GB of LSTM activations", act / 1e9);
        return 0;
    }
    if (c->value_embeds > c->n_layers)
        return status_fail(st, AP_EINVAL, "value_embeds=%d is more than n_layers=%d", c->value_embeds, c->n_layers);
    if (c->d_model % c->n_heads)
        return status_fail(st, AP_EINVAL, "d_model=%d is not divisible by n_heads=%d", c->d_model, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return status_fail(st, AP_EINVAL, "n_kv_heads=%d must divide n_heads=%d", c->n_kv_heads, c->n_heads);
    if (c->pos == POS_ROPE && config_head_dim(c) % 2)
        return status_fail(st, AP_EINVAL, "pos=rope needs an even head dim, d_model/n_heads = %d",
                           config_head_dim(c));
    if (c->pos == POS_SINUSOIDAL && c->d_model % 2)
        return status_fail(st, AP_EINVAL, "pos=sinusoidal needs an even d_model, got %d", c->d_model);
    if (c->attention == ATTN_MLA) {
        int hd = config_head_dim(c);
        if (c->n_kv_heads != c->n_heads)
            return status_fail(st, AP_EINVAL, "attention=mla has no key/value heads to share: leave n_kv_heads unset");
        if (c->pos != POS_ROPE)
            return status_fail(st, AP_EINVAL, "attention=mla carries positions in its decoupled RoPE part: set pos=rope");
        if (c->qk_norm || c->value_embeds)
            return status_fail(st, AP_EINVAL, "attention=mla does not combine with %s",
                               c->qk_norm ? "qk_norm" : "value_embeds");
        if (c->kv_lora_rank == 0) c->kv_lora_rank = c->d_model / 4 > 0 ? c->d_model / 4 : 1;
        if (c->rope_head_dim == 0) c->rope_head_dim = hd / 2 / 2 * 2;
        if (c->kv_lora_rank > c->d_model)
            return status_fail(st, AP_EINVAL, "kv_lora_rank=%d is more than d_model=%d: a latent must compress",
                               c->kv_lora_rank, c->d_model);
        if (c->q_lora_rank > c->d_model)
            return status_fail(st, AP_EINVAL, "q_lora_rank=%d is more than d_model=%d", c->q_lora_rank, c->d_model);
        if (c->rope_head_dim < 2 || c->rope_head_dim % 2 || c->rope_head_dim >= hd)
            return status_fail(st, AP_EINVAL,
                               "rope_head_dim=%d: it must be even, at least 2 and less than the head dim %d (the rest "
                               "carries no position)",
                               c->rope_head_dim, hd);
    }
    if (c->teacher[0] && c->z_loss > 0)
        return status_fail(st, AP_EINVAL, "teacher and z_loss do not combine yet (both fold into the head's gradient)");
    int multiples[CONFIG_MAX_EVAL_CONTEXTS];
    int n_multiples = config_eval_contexts(c, multiples, CONFIG_MAX_EVAL_CONTEXTS, st);
    if (n_multiples < 0) return -1;
    if (n_multiples && c->family == FAMILY_TRANSFORMER && c->pos == POS_LEARNED)
        return status_fail(st, AP_EINVAL, "eval_contexts=%s: learned positions (pos=learned) have none beyond the "
                           "training context", c->eval_contexts);
    if (c->rope_scaling && c->pos != POS_ROPE && c->attention != ATTN_MLA)
        return status_fail(st, AP_EINVAL, "rope_scaling=%s scales RoPE: it needs pos=rope (or attention=mla)",
                           config_enum_name("rope_scaling", c->rope_scaling));
    if (c->mup_base_width) {
        if (c->init == INIT_XAVIER)
            return status_fail(st, AP_EINVAL, "mup_base_width scales the initialisation itself: use init=normal or gpt2");
        if (c->optimizer == OPT_SGD)
            return status_fail(st, AP_EINVAL,
                               "mup_base_width has learning-rate rules for Adam-family optimisers and Muon, not sgd");
    }
    if (c->batch_warmup > 0) {
        if (c->batch_start == 0) c->batch_start = c->batch / 4 > 0 ? c->batch / 4 : 1;
        if (c->batch_start >= c->batch)
            return status_fail(st, AP_EINVAL, "batch_start=%d: the ramp must start below batch=%d", c->batch_start,
                               c->batch);
    }
    if (c->seq_warmup > 0) {
        if (c->seq_start == 0) c->seq_start = c->context / 8 > 8 ? c->context / 8 : 8;
        if (c->seq_start >= c->context)
            return status_fail(st, AP_EINVAL, "seq_start=%d: the warmup must start below context=%d", c->seq_start,
                               c->context);
    }
    if (c->window_warmup > 0 && c->window_start >= (c->window ? c->window : c->context))
        return status_fail(st, AP_EINVAL, "window_start=%d: the warmup must start below the model's window (%d)",
                           c->window_start, c->window ? c->window : c->context);
    if (c->unet_skips && c->norm_position != NORMPOS_PRE)
        return status_fail(st, AP_EINVAL, "unet_skips needs norm_position=pre (the skips join the residual stream)");
    if (c->unet_skips && c->n_layers < 2)
        return status_fail(st, AP_EINVAL, "unet_skips needs n_layers >= 2 (an encoder half and a decoder half)");
    if (c->parallel_block && c->norm_position != NORMPOS_PRE)
        return status_fail(st, AP_EINVAL, "parallel_block needs norm_position=pre (both branches read one norm)");
    if (c->mtp_depth >= c->context)
        return status_fail(st, AP_EINVAL, "mtp_depth=%d needs a context longer than %d tokens", c->mtp_depth,
                           c->mtp_depth);
    if (c->moe_experts > 0) {
        if (c->moe_top_k > c->moe_experts)
            return status_fail(st, AP_EINVAL, "moe_top_k=%d is more than moe_experts=%d", c->moe_top_k,
                               c->moe_experts);
        if (c->moe_every > c->n_layers)
            return status_fail(st, AP_EINVAL, "moe_every=%d is more than n_layers=%d: no layer would be MoE",
                               c->moe_every, c->n_layers);
    }
    if (c->d_ff == 0) {
        if (config_is_gated(c)) {
            int f = (8 * c->d_model + 12) / 24 * 8; /* 8d/3 rounded to the nearest multiple of 8 */
            c->d_ff = f > 0 ? f : 8;
        } else {
            c->d_ff = 4 * c->d_model;
        }
    }
    if (c->moe_experts > 0 && c->moe_d_ff == 0) c->moe_d_ff = c->d_ff;
    if (c->vocab != 0 && c->vocab < 2) return status_fail(st, AP_EINVAL, "vocab=%d: need at least 2", c->vocab);
    /* Refuse shapes whose activations could never fit, before anything is allocated. */
    double T = c->context, B = c->batch, L = c->n_layers, H = c->n_heads;
    double act_bytes = 4.0 * L * B * T * (H * T + 16.0 * c->d_model + 3.0 * c->d_ff);
    if (act_bytes > 64e9)
        return status_fail(st, AP_EINVAL,
                           "batch=%d x context=%d x n_layers=%d needs about %.0f GB of activations; reduce them",
                           c->batch, c->context, c->n_layers, act_bytes / 1e9);
    return 0;
}

/* The keys as "key = value" lines; sections: a "[section]" line before each section's first key. */
static char *keys_to_text(const Config *c, int model_only, int sections) {
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = '\0';
    const char *section = "";
    for (int i = 0; i < N_KEYS; i++) {
        if (model_only && !KEYS[i].model_key) continue;
        char val[CONFIG_PATH_MAX + 8];
        config_get(c, &KEYS[i], val, sizeof val);
        int header = sections && strcmp(section, KEYS[i].section);
        size_t need = strlen(KEYS[i].key) + strlen(val) + 8 + (header ? strlen(KEYS[i].section) + 4 : 0);
        if (len + need >= cap) {
            cap = 2 * cap + need;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        if (header) {
            section = KEYS[i].section;
            len += (size_t)snprintf(out + len, cap - len, "%s[%s]\n", len ? "\n" : "", section);
        }
        /* Strings are quoted so that spaces and '#' survive the INI reader. */
        len += (size_t)snprintf(out + len, cap - len, KEYS[i].type == KEY_STRING ? "%s = \"%s\"\n" : "%s = %s\n",
                                KEYS[i].key, val);
    }
    return out;
}

char *config_to_text(const Config *c, int model_only) { return keys_to_text(c, model_only, 0); }

char *config_to_recipe(const Config *c) { return keys_to_text(c, 0, 1); }

int config_from_text(Config *c, const char *text, size_t len, const char *name, Status *st) {
    IniFile ini;
    if (ini_parse(&ini, text, len, name, st)) return -1;
    int rc = 0;
    for (int i = 0; i < ini.n && !rc; i++)
        if (config_set(c, ini.entries[i].key, ini.entries[i].value, st))
            rc = status_wrap(st, "%s:%d", name, ini.entries[i].line);
    ini_free(&ini);
    return rc;
}

void config_write_markdown(FILE *f) {
    const char *section = "";
    for (int i = 0; i < N_KEYS; i++) {
        const ConfigKey *k = &KEYS[i];
        if (strcmp(section, k->section)) {
            section = k->section;
            fprintf(f, "\n### [%s]\n\n| key | type | default | allowed | what it does | origin |\n|---|---|---|---|---|---|\n",
                    section);
        }
        char allowed[256] = "";
        switch (k->type) {
        case KEY_ENUM: list_choices(k, allowed, sizeof allowed); break;
        case KEY_BOOL: snprintf(allowed, sizeof allowed, "true\\|false"); break;
        case KEY_INT: snprintf(allowed, sizeof allowed, "%.0f .. %.0f", k->min, k->max); break;
        case KEY_FLOAT: snprintf(allowed, sizeof allowed, "%g .. %g", k->min, k->max); break;
        case KEY_U64: snprintf(allowed, sizeof allowed, "0 .. 2^64-1"); break;
        case KEY_STRING: snprintf(allowed, sizeof allowed, "text"); break;
        }
        /* '|' inside a table cell must be escaped */
        char esc[512];
        size_t j = 0;
        for (const char *p = allowed; *p && j + 3 < sizeof esc; p++) {
            if (*p == '|' && (p == allowed || p[-1] != '\\')) esc[j++] = '\\';
            esc[j++] = *p;
        }
        esc[j] = '\0';
        static const char *type_names[] = {"int", "u64", "float", "bool", "enum", "string"};
        fprintf(f, "| `%s` | %s | `%s` | %s | %s | %s |\n", k->key, type_names[k->type], k->def[0] ? k->def : "\"\"",
                esc, k->doc, k->origin);
    }
}

char *config_to_json(const Config *c) {
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    for (int i = 0; i < N_KEYS; i++) {
        char val[CONFIG_PATH_MAX + 8];
        config_get(c, &KEYS[i], val, sizeof val);
        jw_key(&w, KEYS[i].key);
        /* numbers and booleans exactly as config_get prints them (%.17g, all 64 bits of u64) */
        if (KEYS[i].type == KEY_STRING || KEYS[i].type == KEY_ENUM) jw_string(&w, val);
        else jw_raw(&w, val);
    }
    jw_object_end(&w);
    if (b.failed) {
        sb_free(&b);
        return NULL;
    }
    return b.s;
}

int config_from_json(Config *c, const char *json, Status *st) {
    JsonDoc doc;
    if (json_parse(&doc, json, strlen(json), "config JSON", st)) return -1;
    int rc = 0;
    if (doc.root->type != JSON_OBJECT) rc = status_fail(st, AP_ECORRUPT, "config JSON is not an object of keys");
    for (const JsonValue *v = doc.root->child; v && !rc; v = v->next) {
        const char *val = NULL;
        switch (v->type) {
        case JSON_STRING:
            if (strlen(v->string) != v->len)
                rc = status_fail(st, AP_ECORRUPT, "config JSON: key '%s': the value contains a \\u0000", v->key);
            val = v->string;
            break;
        case JSON_NUMBER: val = v->string; break; /* as written: u64 seeds keep every digit */
        case JSON_BOOL: val = v->boolean ? "true" : "false"; break;
        default:
            rc = status_fail(st, AP_ECORRUPT, "config JSON: key '%s': expected a string, number or boolean, got %s", v->key,
                             v->type == JSON_NULL ? "null" : v->type == JSON_ARRAY ? "an array" : "an object");
        }
        if (!rc && config_set(c, v->key, val, st)) rc = status_wrap(st, "config JSON");
    }
    json_free(&doc);
    return rc;
}
