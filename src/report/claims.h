/* claims.h - the seeds' claims C1-C15 as a table, and their verdicts on a study's results.
 *
 * Each claim is one row: its text, how a study tests it (a comparison of two arms picked by
 * selectors, an ablation package, arithmetic, or another tool), and the verdict rule applied to
 * the measured CEG at the middle loss level (docs/CLAIMS.md writes the rules out). A selector
 * matches an arm by its preset, a key of its resolved recipe (equal to a value, or with "!v" any
 * other), and its allocation rule; a pair is the first reference arm with a matching candidate; a claim
 * whose arms the study lacks is "not tested" and names the study that would test it. A verdict
 * needs both frontiers determined (>= 4 budgets, noise estimated) and reads only loss levels both
 * arms reached; an interval with an infinite bound decides nothing. */
#ifndef AP_CLAIMS_H
#define AP_CLAIMS_H

#include "report/results.h"

typedef struct {
    const char *preset;     /* the arm's preset; NULL: any */
    const char *key, *value; /* a key of the arm's resolved recipe must have this value ("!v": any but v);
                              * NULL: any */
    int kaplan;             /* 1: allocation = kaplan; 0: any other rule */
    int same_preset;        /* 1: the same preset as the claim's reference arm */
} ArmSelector;

typedef enum {
    RULE_BEATS_AND_GROWS, /* cand beats ref (lower bound > 1) and the gain grows with scale */
    RULE_BEATS,           /* cand beats ref (lower bound > 1 at 2 or more levels), whatever the trend */
    RULE_BELOW,           /* the gain is below x (upper bound < x) */
    RULE_ABOUT,           /* the gain is about x: the interval inside [x / 1.5, 1.5 x] */
    RULE_ABLATION,        /* reverting one at a time costs more than reverting the package (C3) */
    RULE_RATES,           /* the seeds' rate arithmetic (C14) */
    RULE_SIMULATION,      /* a simulated world with one scale-dependent gain (C13) */
    RULE_KV_TRADE,        /* MQA loses to MHA and GQA or MLA win it back with a smaller KV cache (C7) */
    RULE_REPETITION,      /* the data-constrained law: 4 epochs near fresh, 16 clearly less (C11) */
    RULE_QUALITY,         /* derived corpora: noise costs compute, perplexity filtering saves it (C10) */
    RULE_CONTEXT,         /* YaRN keeps the loss past the training context, and beats no scaling (C8) */
    RULE_ELSEWHERE        /* tested by another tool or a study with other arms */
} VerdictRule;

typedef struct {
    const char *id, *text, *how;
    VerdictRule rule;
    double x;               /* RULE_BELOW, RULE_ABOUT */
    ArmSelector ref, cand, cand_alt; /* cand_alt: tried when no arm matches cand */
    const char *v_supports; /* RULE_ABOUT: the verdict's wording when it holds */
    const char *v_partial;  /* RULE_BEATS_AND_GROWS: beats, growth not detected */
    const char *v_low;      /* contradicts: no gain, or ref ahead */
    const char *v_high;     /* contradicts: more than the claim says */
    const char *x_text;     /* RULE_ABOUT: the claimed size in words ("about 2x", "2-3x") */
} ClaimSpec;

/* The attention arms C7 compares, MHA first (-1: absent). */
enum { KV_MHA, KV_GQA, KV_MQA, KV_MLA, KV_KINDS };

typedef struct {
    const ClaimSpec *spec;
    char result[1024];
    const char *verdict;
    int pair; /* index into Results.pairs, or -1 */
    int kv_arm[KV_KINDS]; /* C7: the arm of each attention kind, -1: absent */
    char verdict_buf[128];
} ClaimResult;

#define CLAIMS_MAX 16

/* The claim table, in id order. */
const ClaimSpec *claims_table(int *n);
/* The first arm matching sel (ref: the reference arm for same_preset), or -1. */
int claims_select(const Results *r, const ArmSelector *sel, int ref);
/* Every claim's verdict on results r (fitted, ablations measured); returns the count. */
int claims_evaluate(Results *r, ClaimResult *out, int max);
/* The attention kind of an arm's resolved recipe (KV_MHA...), -1 for a model without attention. */
int claims_attention_kind(const Config *c);
/* Verdict class for styling: supports, contradicts, undecided, not tested. */
const char *claims_verdict_class(const char *verdict);

#endif
