/* tune.h - how an arm gets its learning rate: the sweep policy.
 *
 * A study with lr_sweep = K trains K multipliers of each arm's preset learning rate at one budget
 * (alloc.h plans them). When the last of an arm's sweep runs finishes, tune_settle_arm picks the
 * multiplier with the lowest held-out bits per byte (ties: the smaller multiplier), records it and
 * how it was chosen, rewrites the arm's blocked runs with that rate (lr and, for Muon, adam_lr)
 * and releases them. A main run identical to the winning sweep run (same budget, model and seed)
 * takes the sweep run's result instead of training again.
 * The registry stores and releases; the choice is made here. */
#ifndef AP_TUNE_H
#define AP_TUNE_H

#include "core/status.h"
#include "study/registry.h"

/* Settles arm_id if its sweep is complete and its runs are still blocked; else does nothing. */
int tune_settle_arm(Registry *r, int arm_id, Status *st);
/* Settles every arm whose sweep finished but whose runs are still blocked (after a crash). */
int tune_settle_pending(Registry *r, Status *st);

#endif
