/* lbfgs.h - limited-memory BFGS (Nocedal 1980; Liu & Nocedal 1989) for small smooth problems.
 *
 * Minimises f over R^n given f and its gradient, with the two-loop recursion over the last m
 * steps and a backtracking line search that enforces the Armijo condition (the curvature pair is
 * skipped when y.s <= 0, keeping the inverse-Hessian estimate positive definite). Used by the
 * scaling-law fits, where n <= 5 and f is a sum over tens or hundreds of points. */
#ifndef AP_LBFGS_H
#define AP_LBFGS_H

/* Returns f(x) and writes its gradient into g. */
typedef double (*lbfgs_fn)(const double *x, double *g, void *ctx);

typedef struct {
    int max_iter;     /* default 500 */
    double gtol;      /* stop when |g|_inf <= gtol * max(1, |f|); default 1e-9 */
    double ftol;      /* stop when the relative decrease of f over 5 iterations < ftol; default 1e-14 */
} LbfgsOptions;

typedef struct {
    double f;
    int iterations;
    int converged; /* 1: gradient or decrease criterion met; 0: iteration limit or line search failure */
} LbfgsResult;

#define LBFGS_MAX_N 16

LbfgsResult lbfgs_minimize(int n, double *x, lbfgs_fn f, void *ctx, const LbfgsOptions *o);

#endif
