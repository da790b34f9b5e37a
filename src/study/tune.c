/* tune.c - the learning-rate sweep policy (see tune.h). */
#include "study/tune.h"

#include "config/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int tune_settle_arm(Registry *r, int arm_id, Status *st) {
    RunRow *sweep = NULL, *blocked = NULL;
    int n_sweep = 0, n_blocked = 0;
    if (registry_runs(r, arm_id, RUN_LR_SWEEP, -1, 0, &sweep, &n_sweep, st)) return -1;
    int rc = registry_runs(r, arm_id, RUN_MAIN, RUN_BLOCKED, 1, &blocked, &n_blocked, st);
    const RunRow *best = NULL;
    double lo = INFINITY, hi = -INFINITY;
    int open_runs = 0;
    for (int i = 0; !rc && i < n_sweep; i++) {
        const RunRow *x = &sweep[i];
        open_runs += x->status != RUN_DONE;
        lo = fmin(lo, x->lr_mult), hi = fmax(hi, x->lr_mult);
        if (x->status != RUN_DONE || isnan(x->val_bpb)) continue;
        if (!best || x->val_bpb < best->val_bpb || (x->val_bpb == best->val_bpb && x->lr_mult < best->lr_mult))
            best = x;
    }
    if (rc || open_runs || n_blocked == 0 || !best) {
        if (!rc && !open_runs && n_blocked && !best)
            fprintf(stderr, "algoprog: the learning-rate sweep of arm %d gave no finite loss; its runs stay blocked\n",
                    arm_id);
        registry_runs_free(sweep, n_sweep);
        registry_runs_free(blocked, n_blocked);
        return rc;
    }
    double mult = best->lr_mult;
    char source[256];
    snprintf(source, sizeof source, "sweep: x%.4g of the preset lr was best (%.4f bits/byte)%s", mult, best->val_bpb,
             mult == lo || mult == hi ? "; at the edge of the swept range, widen it" : "");
    RunRelease *rel = calloc((size_t)n_blocked, sizeof *rel);
    if (!rel) rc = status_fail(st, AP_ENOMEM, "out of memory");
    int copy_to = 0;
    for (int i = 0; !rc && i < n_blocked; i++) {
        Config c;
        config_defaults(&c);
        if (config_from_json(&c, blocked[i].config, st)) {
            rc = status_wrap(st, "run %d", blocked[i].id);
            break;
        }
        c.lr *= mult;
        c.adam_lr *= mult;
        rel[i].run_id = blocked[i].id;
        rel[i].config = config_to_json(&c);
        if (!rel[i].config) rc = status_fail(st, AP_ENOMEM, "out of memory");
        /* the main run identical to the winning sweep run need not be trained again */
        const RunRow *m = &blocked[i];
        if (!copy_to && m->budget_index == best->budget_index && m->point == best->point && m->seed == best->seed)
            copy_to = m->id;
    }
    if (!rc) rc = registry_settle_arm(r, arm_id, mult, source, rel, n_blocked, best->id, copy_to, st);
    for (int i = 0; rel && i < n_blocked; i++) free((char *)rel[i].config);
    free(rel);
    registry_runs_free(sweep, n_sweep);
    registry_runs_free(blocked, n_blocked);
    return rc;
}

int tune_settle_pending(Registry *r, Status *st) {
    int ids[STUDY_MAX_ARMS];
    int n = registry_arms_to_settle(r, ids, STUDY_MAX_ARMS, st);
    for (int i = 0; i < n; i++)
        if (tune_settle_arm(r, ids[i], st)) return -1;
    return n < 0 ? -1 : 0;
}
