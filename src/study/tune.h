/* tune.h - how an arm gets its learning rate: the sweep policy.
 *
 * A study with lr_sweep = K sweeps K multipliers of the preset's learning rate (lr_sweep_factor
 * apart) at one or two budgets (lr_sweep_budgets), on the middle size of each budget's profile,
 * with lr_sweep_seeds seeds (alloc.h plans them). Arms that share a recipe and differ only in
 * their allocation rule share one sweep (the first such arm leads it). When the leader's last sweep
 * run finishes, tune_settle_arm:
 *   1. scores each multiplier at each sweep budget by its mean validation bits per byte over the
 *      seeds (a diverged seed scores as infinitely bad);
 *   2. if the best multiplier is at an edge of the grid, grows the grid by two multipliers past
 *      that edge (at most lr_sweep_extend times per budget) and waits for them;
 *   3. refines the best multiplier with a parabola through it and its two neighbours in
 *      (log multiplier, score), kept between the neighbours;
 *   4. with two sweep budgets, fits log lr against log N through the two optima (slope clamped to
 *      [-1, 0.25]: rates fall with size, never faster than 1/N) and gives every main run of the group
 *      the rate of its own N; with one, the same rate for every size;
 *   5. records each arm's rate and how it was chosen, and releases its runs.
 * Sweep runs are judged on the validation half of the held-out text and never become frontier
 * points (the test half is what studies report). The registry stores and releases; the choices
 * are made here. */
#ifndef AP_TUNE_H
#define AP_TUNE_H

#include "core/status.h"
#include "study/registry.h"

#define TUNE_SLOPE_MIN (-1.0)
#define TUNE_SLOPE_MAX 0.25

/* Settles the sweep led by arm_id if it is complete and its group's runs still wait; grows the
 * grid instead when its best rate is at an edge. Does nothing otherwise. */
int tune_settle_arm(Registry *r, int arm_id, Status *st);
/* Settles every complete sweep whose runs still wait (after a crash between finishing and settling). */
int tune_settle_pending(Registry *r, Status *st);

#endif
