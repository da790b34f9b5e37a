/* config.h - every switch of a run, and the registry that describes them.
 *
 * A Config is one arm's full recipe: model shape and switches, optimiser, schedule, training and
 * data settings. Each field has one row in a declarative table (config.c): its key, section,
 * type, default, allowed values, range, documentation and origin. The INI reader, the
 * command-line overrides, validation messages, checkpoint headers and docs/RECIPES.md are all
 * generated from that table, so adding a switch means adding one field and one row. */
#ifndef AP_CONFIG_H
#define AP_CONFIG_H

#include "core/status.h"

#include <stdint.h>
#include <stdio.h>

/* Enum values are stored in checkpoints: only ever append. */
typedef enum { FAMILY_TRANSFORMER = 0, FAMILY_LSTM = 1 } ModelFamily;
typedef enum { LSTM_STATE_CARRY = 0, LSTM_STATE_RESET = 1 } LstmState;
typedef enum { NORM_LAYERNORM = 0, NORM_RMSNORM = 1 } NormKind;
typedef enum { NORMPOS_PRE = 0, NORMPOS_POST = 1 } NormPosition;
typedef enum { POS_LEARNED = 0, POS_SINUSOIDAL = 1, POS_ROPE = 2, POS_NONE = 3, POS_ALIBI = 4 } PosKind;
typedef enum { ACT_GELU = 0, ACT_RELU = 1, ACT_RELU2 = 2, ACT_SWIGLU = 3, ACT_GEGLU = 4 } ActKind;
typedef enum { INIT_NORMAL = 0, INIT_GPT2 = 1, INIT_XAVIER = 2 } InitKind;
typedef enum { OPT_SGD = 0, OPT_ADAM = 1, OPT_ADAMW = 2, OPT_MUON = 3, OPT_LION = 4, OPT_SCHEDULEFREE = 5 } OptimizerKind;
typedef enum { NONFINITE_STOP = 0, NONFINITE_ROLLBACK = 1 } NonfinitePolicy;
/* Which held-out halves the final evaluation reads (studies: sweeps the validation half, main runs the test half). */
typedef enum { FINAL_EVAL_BOTH = 0, FINAL_EVAL_VALIDATION = 1, FINAL_EVAL_TEST = 2 } FinalEval;
typedef enum { GEMMLIB_AUTO = 0, GEMMLIB_ONEDNN = 1, GEMMLIB_OPENBLAS = 2 } GemmLibKey;
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 } PrecisionKey;
typedef enum { ATTN_MHA = 0, ATTN_MLA = 1 } AttentionKind;
typedef enum { MOE_ROUTER_SOFTMAX = 0, MOE_ROUTER_SIGMOID = 1 } MoeRouter;
typedef enum { MOE_BALANCE_NONE = 0, MOE_BALANCE_AUX = 1, MOE_BALANCE_BIAS = 2 } MoeBalance;
typedef enum { SCHED_CONSTANT = 0, SCHED_LINEAR = 1, SCHED_COSINE = 2, SCHED_INVSQRT = 3, SCHED_WSD = 4 } ScheduleKind;

#define CONFIG_PATH_MAX 512
#define CONFIG_MAX_EVAL_CONTEXTS 8

typedef struct {
    /* [model] */
    int family;
    int vocab; /* 0: taken from the tokenizer */
    int context;
    int d_model;
    int n_layers;
    int n_heads;
    int n_kv_heads; /* 0: same as n_heads */
    int attention;     /* AttentionKind */
    int window;        /* sliding-window attention: keys per query; 0: all earlier ones */
    double window_warmup; /* training's window grows from window_start over this fraction of the steps */
    int window_start;
    double batch_warmup; /* the batch grows from batch_start rows over this fraction of the steps */
    int batch_start;
    double seq_warmup; /* training rows grow from seq_start tokens to context over this fraction */
    int seq_start;
    int kv_lora_rank;  /* mla: the latent keys and values come from; 0: d_model/4 */
    int q_lora_rank;   /* mla: queries through a latent of this width; 0: a direct projection */
    int rope_head_dim; /* mla: the decoupled RoPE part of each query/key head; 0: head dim / 2 */
    int d_ff;       /* 0: from act (4*d, or 8*d/3 for gated units) */
    int norm;
    int norm_position;
    int parallel_block; /* attention and MLP side by side on one norm */
    int unet_skips;     /* the second half of the layers reads the first half's outputs, mirrored */
    double norm_eps;
    int pos;
    double rope_base;
    int rope_scaling;          /* RopeScaleKind (kernels/ops.h): context extension of the RoPE tables */
    double rope_factor;        /* its scale s (1: none) */
    int rope_original_context; /* the context the model was trained at (yarn); 0: context / rope_factor */
    int act;
    int qk_norm;
    double softcap; /* 0: off */
    double z_loss;  /* coefficient of the mean (log Z)^2 in the training loss; 0: off */
    int tie_embeddings;
    int bias;
    int emb_scale;
    int init;
    double init_std;
    int mup_base_width; /* muP relative to a base model of this width; 0: standard parametrisation */
    int zero_init_proj;
    int value_embeds;
    int moe_experts;        /* routed experts per MoE layer; 0: dense MLPs */
    int moe_top_k;          /* experts each token is sent to */
    int moe_shared_experts; /* experts every token goes through */
    int moe_d_ff;           /* each expert's hidden width; 0: d_ff */
    int moe_router;         /* MoeRouter */
    int moe_balance;        /* MoeBalance */
    double moe_aux_weight;  /* alpha of the auxiliary balance loss */
    double moe_bias_rate;   /* gamma of the loss-free bias update */
    int moe_every;          /* every this many layers is MoE (the last of each group) */
    int mtp_depth;          /* multi-token prediction modules (0: next token only) */
    double mtp_weight;      /* lambda: their mean loss's weight in training */
    int lstm_hidden;
    int lstm_proj;
    int lstm_state;
    /* [optim] */
    int optimizer;
    double lr;
    double beta1, beta2, eps;
    double weight_decay;
    double momentum;
    double grad_clip; /* 0: off */
    double ema_decay; /* evaluation on an exponential moving average of the weights; 0: off */
    int schedule;
    int warmup;
    double min_lr_frac;
    double decay_frac;
    double adam_lr;
    double muon_momentum;
    /* [train] */
    char data[CONFIG_PATH_MAX];
    char tokenizer[CONFIG_PATH_MAX];
    double val_frac;
    uint64_t max_unique_tokens;
    char init_from[CONFIG_PATH_MAX]; /* a run directory whose parameters this run starts from; "": none */
    char teacher[CONFIG_PATH_MAX]; /* a run directory whose model distils into this one; "": none */
    double distill_weight;         /* the distillation term's share of the training loss */
    double distill_temperature;
    double data_epochs; /* > 0: max_unique_tokens is set so the run sees its data this many times */
    char eval_contexts[CONFIG_PATH_MAX]; /* "2,4,8": the final evaluation also reads these multiples of the context */
    int steps;
    int batch;
    uint64_t seed;
    int eval_every;
    int eval_tokens;
    int final_eval_tokens; /* 0: the whole held-out half */
    int final_eval;        /* FinalEval */
    int checkpoint_every;
    int log_every;
    int threads;
    int gemm; /* GemmLibKey */
    int precision; /* PrecisionKey: of the matrix products */
    int on_nonfinite; /* NONFINITE_STOP | NONFINITE_ROLLBACK */
    double memory_limit; /* GB; 0: what is available */
    int fault_nan_step;
    char out[CONFIG_PATH_MAX];
} Config;

typedef enum { KEY_INT, KEY_U64, KEY_FLOAT, KEY_BOOL, KEY_ENUM, KEY_STRING } KeyType;

typedef struct {
    const char *key;
    const char *section;
    KeyType type;
    size_t offset;
    const char *def;             /* default, as text */
    const char *const *choices;  /* enum names in value order, NULL-terminated */
    double min, max;             /* inclusive range for numbers */
    int model_key;               /* 1: part of the model's identity (must match when resuming/sampling) */
    const char *doc;
    const char *origin;
} ConfigKey;

/* The table, in documentation order; n_out receives its length. */
const ConfigKey *config_keys(int *n_out);
const ConfigKey *config_key_find(const char *key);

void config_defaults(Config *c);
/* Sets one key from text. `key` may be "key" or "section.key". */
int config_set(Config *c, const char *key, const char *value, Status *st);
/* Formats one key's value as text that config_set reads back exactly. */
void config_get(const Config *c, const ConfigKey *k, char *buf, size_t size);
/* Loads a recipe file (or preset name, see config_find_recipe) on top of c. A first key
 * `base = NAME` loads that recipe first, so presets can build on each other. */
int config_load_recipe(Config *c, const char *name_or_path, Status *st);
/* Applies "key=value" arguments; anything else is an error. */
int config_apply_args(Config *c, int argc, char **argv, Status *st);
/* Resolves derived values (n_kv_heads, d_ff) and checks every cross-key constraint. */
int config_resolve(Config *c, Status *st);
/* The multiples of the context listed in eval_contexts, increasing, into out (at most max); their count,
 * or -1 with a message when the list is malformed. */
int config_eval_contexts(const Config *c, int *out, int max, Status *st);
/* All keys as "key = value" lines (malloc'ed). model_only restricts to model keys. */
char *config_to_text(const Config *c, int model_only);
/* All keys as a recipe file (malloc'ed): the same lines under [model], [optim] and [train], which
 * config_load_recipe reads back (a run's config.ini). */
char *config_to_recipe(const Config *c);
/* All keys as one flat JSON object (malloc'ed): numbers as numbers, booleans as true/false. */
char *config_to_json(const Config *c);
/* Reads a flat JSON object of keys (as written by config_to_json) on top of c. */
int config_from_json(Config *c, const char *json, Status *st);
/* Reads text written by config_to_text (unknown keys are errors). */
int config_from_text(Config *c, const char *text, size_t len, const char *name, Status *st);
/* Finds a recipe: a path as given, or NAME -> recipes/NAME.ini in $ALGOPROG_RECIPES, ./recipes,
 * and the source tree. Returns 0 and fills path, or fails listing where it looked. */
int config_find_recipe(const char *name, char *path, size_t size, Status *st);
/* Writes the registry as a Markdown table (docs/RECIPES.md is generated from this). */
void config_write_markdown(FILE *f);
/* Head dimension and derived sizes. */
static inline int config_head_dim(const Config *c) { return c->d_model / c->n_heads; }
static inline int config_is_gated(const Config *c) { return c->act == ACT_SWIGLU || c->act == ACT_GEGLU; }
const char *config_enum_name(const char *key, int value);

#endif
