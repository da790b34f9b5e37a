/* spec.c - read and validate study files (see spec.h). */
#define _DEFAULT_SOURCE /* realpath */
#include "study/spec.h"

#include "core/fileio.h"
#include "core/ini.h"
#include "core/sha256.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Keys the study sets for every run; an arm may not change them. */
static const char *const STUDY_OWNED[] = {"d_model", "n_layers", "n_heads", "d_ff",  "lstm_hidden", "context",
                                          "batch",   "steps",    "tokenizer", "seed",     "out",
                                          "eval_every", "eval_tokens", "final_eval_tokens", "checkpoint_every", "log_every", "threads",
                                          "warmup", "vocab", NULL};

int spec_parse_budgets(const char *text, double *out, int max, Status *st) {
    const char *colon = strchr(text, ':');
    if (colon) {
        double a, b;
        int n;
        char extra;
        if (sscanf(text, "%lf:%lf:%d %c", &a, &b, &n, &extra) != 3 || !(a > 0) || !(b >= a) || n < 1 || n > max ||
            (n == 1 && b != a))
            return status_fail(st, AP_EINVAL, "budgets '%s': expected START:STOP:COUNT with 0 < START <= STOP, "
                               "1 <= COUNT <= %d", text, max), -1;
        for (int i = 0; i < n; i++) out[i] = n == 1 ? a : a * pow(b / a, (double)i / (n - 1));
        return n;
    }
    int n = 0;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
        char *end;
        errno = 0;
        double v = strtod(tok, &end);
        if (errno || *end || !(v > 0) || !isfinite(v))
            return status_fail(st, AP_EINVAL, "'%s' in '%s' is not a positive number", tok, text), -1;
        if (n == max) return status_fail(st, AP_EINVAL, "more than %d values in '%s'", max, text), -1;
        if (n > 0 && v <= out[n - 1])
            return status_fail(st, AP_EINVAL, "values in '%s' must increase", text), -1;
        out[n++] = v;
    }
    if (n == 0) return status_fail(st, AP_EINVAL, "no values in '%s'", text), -1;
    return n;
}

static int parse_int(const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

static int parse_dbl(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) return -1;
    *out = x;
    return 0;
}

/* The [study] keys: name, what it takes, default. */
static const char *const STUDY_KEYS[][3] = {
    {"name", "text", ""},
    {"data", "corpus or text file", ""},
    {"tokenizer", "bytes or a tokenizer", "bytes"},
    {"budgets", "START:STOP:COUNT or a list of FLOPs", ""},
    {"seeds", "1..100", "1"},
    {"extra_seeds", "0..100", "0"},
    {"allocation", "chinchilla|kaplan|isoflop|fixed", "chinchilla"},
    {"tokens_per_param", "0.01..10000", "20"},
    {"kaplan_exponent", "0.05..0.95", "0.73"},
    {"isoflop_points", "1..15", "3"},
    {"isoflop_step", "1.05..4", "1.41421356"},
    {"fixed_params", "a list of parameter counts", ""},
    {"fixed_tokens", "a list of token counts", ""},
    {"context", "2..65536", "256"},
    {"batch", "1..4096", "16"},
    {"lr_sweep", "0..15", "0"},
    {"lr_sweep_factor", "1.1..10", "2"},
    {"lr_sweep_budgets", "one or two budget indices, e.g. 0, 2", "0"},
    {"lr_sweep_seeds", "1..10", "2"},
    {"lr_sweep_extend", "0..10", "2"},
    {"warmup_frac", "0..0.5", "0.05"},
    {"eval_tokens", "1..1e9", "65536"},
    {"final_eval_tokens", "0..1e9 (0: the whole held-out half)", "131072"},
    {"evals_per_run", "1..1000", "10"},
    {"min_steps", "1..1e6", "300"},
    {"plateau_margin", "0..0.5", "0.02"},
    {"keep_checkpoints", "true|false", "false"},
};
#define N_STUDY_KEYS ((int)(sizeof STUDY_KEYS / sizeof STUDY_KEYS[0]))

static int set_study_key(StudySpec *s, const char *key, const char *v, Status *st) {
    int bad = 0;
    if (!strcmp(key, "name")) snprintf(s->name, sizeof s->name, "%s", v);
    else if (!strcmp(key, "data")) snprintf(s->data, sizeof s->data, "%s", v);
    else if (!strcmp(key, "tokenizer")) snprintf(s->tokenizer, sizeof s->tokenizer, "%s", v);
    else if (!strcmp(key, "budgets")) {
        s->n_budgets = spec_parse_budgets(v, s->budgets, STUDY_MAX_BUDGETS, st);
        if (s->n_budgets < 0) return -1;
    } else if (!strcmp(key, "seeds")) bad = parse_int(v, 1, 100, &s->seeds);
    else if (!strcmp(key, "extra_seeds")) bad = parse_int(v, 0, 100, &s->extra_seeds);
    else if (!strcmp(key, "allocation")) {
        int rule = alloc_rule_parse(v);
        bad = rule < 0;
        if (!bad) s->allocation = rule;
    } else if (!strcmp(key, "tokens_per_param")) bad = parse_dbl(v, 0.01, 1e4, &s->tokens_per_param);
    else if (!strcmp(key, "kaplan_exponent")) bad = parse_dbl(v, 0.05, 0.95, &s->kaplan_exponent);
    else if (!strcmp(key, "isoflop_points")) bad = parse_int(v, 1, 15, &s->isoflop_points);
    else if (!strcmp(key, "isoflop_step")) bad = parse_dbl(v, 1.05, 4, &s->isoflop_step);
    else if (!strcmp(key, "fixed_params") || !strcmp(key, "fixed_tokens")) {
        double *dst = key[6] == 'p' ? s->fixed_params : s->fixed_tokens;
        int n = spec_parse_budgets(v, dst, STUDY_MAX_BUDGETS, st);
        if (n < 0) return -1;
        if (s->n_fixed && n != s->n_fixed)
            return status_fail(st, AP_EINVAL, "fixed_params and fixed_tokens need the same number of values");
        s->n_fixed = n;
    } else if (!strcmp(key, "context")) bad = parse_int(v, 2, 65536, &s->context);
    else if (!strcmp(key, "batch")) bad = parse_int(v, 1, 4096, &s->batch);
    else if (!strcmp(key, "lr_sweep")) bad = parse_int(v, 0, 15, &s->lr_sweep);
    else if (!strcmp(key, "lr_sweep_factor")) bad = parse_dbl(v, 1.1, 10, &s->lr_sweep_factor);
    else if (!strcmp(key, "lr_sweep_budgets") || !strcmp(key, "lr_sweep_budget")) {
        double idx[STUDY_MAX_BUDGETS];
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v);
        for (char *c = buf; *c; c++) /* "0, 2" or "0 2" */
            if (*c == ',') *c = ' ';
        int n = 0;
        bad = 0;
        for (char *tok = strtok(buf, " "); tok && !bad; tok = strtok(NULL, " ")) {
            int k;
            bad = parse_int(tok, 0, STUDY_MAX_BUDGETS - 1, &k) || n == 2 || (n && k <= (int)idx[n - 1]);
            if (!bad) idx[n++] = k;
        }
        bad = bad || n == 0;
        for (int i = 0; !bad && i < n; i++) s->lr_sweep_budgets[i] = (int)idx[i];
        if (!bad) s->n_lr_sweep_budgets = n;
    } else if (!strcmp(key, "lr_sweep_seeds")) bad = parse_int(v, 1, 10, &s->lr_sweep_seeds);
    else if (!strcmp(key, "lr_sweep_extend")) bad = parse_int(v, 0, 10, &s->lr_sweep_extend);
    else if (!strcmp(key, "final_eval_tokens")) bad = parse_int(v, 0, 1000000000, &s->final_eval_tokens);
    else if (!strcmp(key, "plateau_margin")) bad = parse_dbl(v, 0, 0.5, &s->plateau_margin);
    else if (!strcmp(key, "warmup_frac")) bad = parse_dbl(v, 0, 0.5, &s->warmup_frac);
    else if (!strcmp(key, "eval_tokens")) bad = parse_int(v, 1, 1000000000, &s->eval_tokens);
    else if (!strcmp(key, "evals_per_run")) bad = parse_int(v, 1, 1000, &s->evals_per_run);
    else if (!strcmp(key, "min_steps")) bad = parse_int(v, 1, 1000000, &s->min_steps);
    else if (!strcmp(key, "keep_checkpoints")) {
        if (!strcmp(v, "true")) s->keep_checkpoints = 1;
        else if (!strcmp(v, "false")) s->keep_checkpoints = 0;
        else bad = 1;
    } else {
        return -2;
    }
    if (bad) {
        for (int i = 0; i < N_STUDY_KEYS; i++)
            if (!strcmp(STUDY_KEYS[i][0], key))
                return status_fail(st, AP_EINVAL, "study key '%s': '%s' is not %s", key, v, STUDY_KEYS[i][1]);
    }
    return 0;
}

static void defaults(StudySpec *s) {
    Status st;
    for (int i = 0; i < N_STUDY_KEYS; i++)
        if (STUDY_KEYS[i][2][0]) set_study_key(s, STUDY_KEYS[i][0], STUDY_KEYS[i][2], &st);
}

static int arm_finish(StudySpec *s, StudyArm *a, const char *where, Status *st) {
    Config *c = &a->cfg;
    config_defaults(c);
    if (!a->preset[0]) return status_fail(st, AP_EINVAL, "%s: arm '%s' has no preset", where, a->name);
    if (config_load_recipe(c, a->preset, st)) return status_wrap(st, "%s: arm '%s'", where, a->name);
    for (int i = 0; i < a->n_overrides; i++) {
        const char *key = a->overrides[i][0], *val = a->overrides[i][1];
        for (int k = 0; STUDY_OWNED[k]; k++)
            if (!strcmp(key, STUDY_OWNED[k]))
                return status_fail(st, AP_EINVAL,
                                   "%s: arm '%s' sets '%s', which the study decides for every arm (the size ladder, "
                                   "budgets and [study] keys)",
                                   where, a->name, key);
        if (config_set(c, key, val, st)) return status_wrap(st, "%s: arm '%s'", where, a->name);
    }
    /* runs an arm names (a teacher, a run to start from) must exist now, named so any worker or report finds them */
    char *named[2] = {c->teacher, c->init_from};
    const char *keys[2] = {"teacher", "init_from"};
    for (int k = 0; k < 2; k++) {
        char abs[PATH_MAX];
        if (!named[k][0]) continue;
        if (!realpath(named[k], abs) || strlen(abs) >= CONFIG_PATH_MAX)
            return status_fail(st, AP_EINVAL, "%s: arm '%s': %s '%s' not found: train that run first", where, a->name,
                               keys[k], named[k]);
        memcpy(named[k], abs, strlen(abs) + 1); /* it fits: checked above */
    }
    int own_data = 0; /* an arm may train on a corpus of its own (claim C10); study_run checks its held-out text */
    for (int i = 0; i < a->n_overrides; i++) own_data |= !strcmp(a->overrides[i][0], "data");
    if (!own_data) snprintf(c->data, sizeof c->data, "%s", s->data);
    snprintf(c->tokenizer, sizeof c->tokenizer, "%s", s->tokenizer);
    c->context = s->context;
    c->batch = s->batch;
    c->eval_tokens = s->eval_tokens;
    c->final_eval_tokens = s->final_eval_tokens;
    c->log_every = 0;
    c->vocab = 0;
    Config probe = *c; /* catch bad combinations now, before any run starts */
    if (config_resolve(&probe, st)) return status_wrap(st, "%s: arm '%s'", where, a->name);
    return 0;
}

/* Adds one generated arm: preset + the settings of the switches whose bit is set in mask. */
static int add_arm(StudySpec *s, const Ablation *ab, const char *name, unsigned mask, Status *st) {
    if (s->n_arms == STUDY_MAX_ARMS) return status_fail(st, AP_EINVAL, "ablation '%s': more than %d arms", ab->name,
                                                        STUDY_MAX_ARMS);
    for (int k = 0; k < s->n_arms; k++)
        if (!strcmp(s->arms[k].name, name)) return status_fail(st, AP_EINVAL, "arm '%s' appears twice", name);
    StudyArm *a = &s->arms[s->n_arms++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->preset, sizeof a->preset, "%s", ab->base);
    a->allocation = -1;
    for (int i = 0; i < ab->n_switches; i++) {
        if (!(mask & (1u << i))) continue;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", ab->settings[i]);
        for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
            char *eq = strchr(tok, '=');
            if (!eq || a->n_overrides == STUDY_MAX_OVERRIDES)
                return status_fail(st, AP_EINVAL, "ablation '%s', switch '%s': '%s' is not key=value", ab->name,
                                   ab->switches[i], tok);
            *eq = '\0';
            snprintf(a->overrides[a->n_overrides][0], 256, "%s", tok);
            snprintf(a->overrides[a->n_overrides++][1], 256, "%s", eq + 1);
        }
    }
    return 0;
}

static int expand_ablations(StudySpec *s, const char *path, Status *st) {
    for (int i = 0; i < s->n_ablations; i++) {
        const Ablation *ab = &s->ablations[i];
        if (!ab->base[0] || ab->n_switches < 2)
            return status_fail(st, AP_EINVAL, "%s: ablation '%s' needs a base and at least 2 switches", path, ab->name);
        unsigned all = (1u << ab->n_switches) - 1;
        char name[128];
        snprintf(name, sizeof name, "%s.base", ab->name);
        if (add_arm(s, ab, name, 0, st)) return -1;
        snprintf(name, sizeof name, "%s.full", ab->name);
        if (add_arm(s, ab, name, all, st)) return -1;
        for (int k = 0; k < ab->n_switches; k++) {
            snprintf(name, sizeof name, "%s+%s", ab->name, ab->switches[k]);
            if (add_arm(s, ab, name, 1u << k, st)) return -1;
            snprintf(name, sizeof name, "%s-%s", ab->name, ab->switches[k]);
            if (add_arm(s, ab, name, all & ~(1u << k), st)) return -1;
        }
        if (!ab->factorial) continue;
        if (ab->n_switches > ABLATION_MAX_FACTORIAL)
            return status_fail(st, AP_EINVAL, "%s: ablation '%s': design = factorial takes at most %d switches (2^k arms; "
                               "it has %d)", path, ab->name, ABLATION_MAX_FACTORIAL, ab->n_switches);
        /* the subsets not named above: two or more switches, and two or more left out */
        for (unsigned mask = 1; mask < all; mask++) {
            int bits = __builtin_popcount(mask);
            if (bits < 2 || bits > ab->n_switches - 2) continue;
            if (ablation_subset_name(ab, mask, name, sizeof s->arms[0].name))
                return status_fail(st, AP_EINVAL, "%s: ablation '%s': arm name '%s...' too long", path, ab->name, name);
            if (add_arm(s, ab, name, mask, st)) return -1;
        }
    }
    return 0;
}

int ablation_subset_name(const Ablation *ab, unsigned mask, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "%s", ab->name);
    for (int k = 0; k < ab->n_switches && n < size; k++)
        if (mask & (1u << k)) n += (size_t)snprintf(buf + n, size - n, "+%s", ab->switches[k]);
    return n < size ? 0 : -1;
}

static int spec_load_text(StudySpec *s, const char *path, Status *st);

int spec_load(StudySpec *s, const char *path, Status *st) {
    int rc = spec_load_text(s, path, st);
    if (rc) spec_free(s); /* every failure path: the text read so far */
    return rc;
}

static int spec_load_text(StudySpec *s, const char *path, Status *st) {
    memset(s, 0, sizeof *s);
    defaults(s);
    size_t len;
    if (file_read_all(path, &s->text, &len, 1 << 20, st)) return -1;
    sha256_hex(s->text, len, s->hash);
    IniFile ini;
    if (ini_parse(&ini, s->text, len, path, st)) return -1;
    int rc = 0, in_study = 0;
    StudyArm *arm = NULL;
    char where[600];
    for (int i = 0; i < ini.n && !rc; i++) {
        IniEntry *e = &ini.entries[i];
        snprintf(where, sizeof where, "%s:%d", path, e->line);
        if (!strcmp(e->section, "study")) {
            in_study = 1;
            int r = set_study_key(s, e->key, e->value, st);
            if (r == -2) {
                char names[1024] = "";
                for (int k = 0; k < N_STUDY_KEYS; k++) {
                    size_t l = strlen(names);
                    snprintf(names + l, sizeof names - l, "%s%s", k ? ", " : "", STUDY_KEYS[k][0]);
                }
                rc = status_fail(st, AP_EINVAL, "%s: unknown study key '%s' (study keys: %s)", where, e->key, names);
            } else if (r) {
                rc = status_wrap(st, "%s", where);
            }
            continue;
        }
        if (!strncmp(e->section, "ablation ", 9) && e->section[9]) {
            const char *name = e->section + 9;
            Ablation *ab = s->n_ablations ? &s->ablations[s->n_ablations - 1] : NULL;
            if (!ab || strcmp(ab->name, name)) {
                if (s->n_ablations == STUDY_MAX_ABLATIONS || strlen(name) >= sizeof ab->name) {
                    rc = status_fail(st, AP_EINVAL, "%s: too many ablations, or a name longer than 47", where);
                    break;
                }
                ab = &s->ablations[s->n_ablations++];
                snprintf(ab->name, sizeof ab->name, "%s", name);
            }
            if (!strcmp(e->key, "base")) {
                snprintf(ab->base, sizeof ab->base, "%s", e->value);
            } else if (!strcmp(e->key, "design")) {
                ab->factorial = !strcmp(e->value, "factorial");
                if (!ab->factorial && strcmp(e->value, "oat"))
                    rc = status_fail(st, AP_EINVAL,
                                     "%s: ablation '%s': design '%s' (use oat: one at a time and leave one out, or "
                                     "factorial: every subset of the switches)",
                                     where, name, e->value);
            } else if (!strncmp(e->key, "switch ", 7) && e->key[7] && ab->n_switches < ABLATION_MAX_SWITCHES) {
                snprintf(ab->switches[ab->n_switches], sizeof ab->switches[0], "%s", e->key + 7);
                snprintf(ab->settings[ab->n_switches++], sizeof ab->settings[0], "%s", e->value);
            } else {
                rc = status_fail(st, AP_EINVAL, "%s: ablation '%s': expected 'base = PRESET', 'design = oat|factorial' or "
                                 "'switch NAME = key=value ...' (at most %d switches)", where, name, ABLATION_MAX_SWITCHES);
            }
            continue;
        }
        if (strncmp(e->section, "arm ", 4) || !e->section[4]) {
            rc = status_fail(st, AP_EINVAL,
                             "%s: section [%s]: a study has [study], [arm NAME] and [ablation NAME] sections", where,
                             e->section[0] ? e->section : "(none)");
            break;
        }
        const char *name = e->section + 4;
        if (!arm || strcmp(arm->name, name)) {
            for (int k = 0; k < s->n_arms; k++)
                if (!strcmp(s->arms[k].name, name)) {
                    rc = status_fail(st, AP_EINVAL, "%s: arm '%s' appears twice", where, name);
                    break;
                }
            if (rc) break;
            if (s->n_arms == STUDY_MAX_ARMS) {
                rc = status_fail(st, AP_EINVAL, "%s: more than %d arms", where, STUDY_MAX_ARMS);
                break;
            }
            arm = &s->arms[s->n_arms++];
            snprintf(arm->name, sizeof arm->name, "%s", name);
            arm->allocation = -1;
        }
        if (!strcmp(e->key, "preset")) {
            snprintf(arm->preset, sizeof arm->preset, "%s", e->value);
        } else if (!strcmp(e->key, "allocation")) {
            arm->allocation = alloc_rule_parse(e->value);
            if (arm->allocation < 0)
                rc = status_fail(st, AP_EINVAL, "%s: arm '%s': allocation '%s' is not chinchilla|kaplan|isoflop|fixed",
                                 where, name, e->value);
        } else if (!config_key_find(e->key)) {
            Status tmp;
            Config scratch;
            config_defaults(&scratch);
            config_set(&scratch, e->key, e->value, &tmp); /* for the "did you mean" message */
            rc = status_fail(st, AP_EINVAL, "%s: arm '%s': %s (arm keys are 'preset' and recipe keys)", where, name,
                             tmp.msg);
        } else if (arm->n_overrides == STUDY_MAX_OVERRIDES) {
            rc = status_fail(st, AP_EINVAL, "%s: too many overrides in arm '%s'", where, name);
        } else {
            snprintf(arm->overrides[arm->n_overrides][0], 256, "%s", e->key);
            snprintf(arm->overrides[arm->n_overrides][1], 256, "%s", e->value);
            arm->n_overrides++;
        }
    }
    ini_free(&ini);
    if (rc) return -1;
    if (expand_ablations(s, path, st)) return -1;
    if (!in_study) return status_fail(st, AP_EINVAL, "%s: no [study] section", path);
    if (!s->name[0]) return status_fail(st, AP_EINVAL, "%s: [study] needs a name", path);
    if (!s->data[0]) return status_fail(st, AP_EINVAL, "%s: [study] needs data (a corpus or a text file)", path);
    if (s->allocation == ALLOC_FIXED ? s->n_fixed == 0 : s->n_budgets == 0)
        return status_fail(st, AP_EINVAL, "%s: [study] needs %s", path,
                           s->allocation == ALLOC_FIXED ? "fixed_params and fixed_tokens" : "budgets");
    if (s->n_arms == 0) return status_fail(st, AP_EINVAL, "%s: no [arm NAME] or [ablation NAME] sections", path);
    int nb = s->allocation == ALLOC_FIXED ? s->n_fixed : s->n_budgets;
    for (int i = 0; s->lr_sweep && i < s->n_lr_sweep_budgets; i++)
        if (s->lr_sweep_budgets[i] >= nb)
            return status_fail(st, AP_EINVAL, "%s: lr_sweep_budgets names budget %d, but there are only %d (0-based "
                               "indices)", path, s->lr_sweep_budgets[i], nb);
    for (int i = 0; i < s->n_arms; i++) {
        snprintf(where, sizeof where, "%s", path);
        if (arm_finish(s, &s->arms[i], where, st)) return -1;
    }
    return 0;
}

void spec_free(StudySpec *s) {
    free(s->text);
    s->text = NULL;
}
