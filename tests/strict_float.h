/* strict_float.h - assert_float_equal that fails on NaN and infinities.
 *
 * cmocka 1.1.5 (Debian 12) decides "equal" by |a - b| <= eps, else by |a - b| <= largest * FLT_EPSILON,
 * and falls through to "equal" when both comparisons are false: a NaN on either side, or an
 * infinity against anything, passes every tolerance. A kernel that wrote NaN, or never wrote the
 * NaN a test had planted to prove it writes over its output, would pass. Include after <cmocka.h>. */
#ifndef ALGOPROG_STRICT_FLOAT_H
#define ALGOPROG_STRICT_FLOAT_H

#include <math.h>

#undef assert_float_equal
#define assert_float_equal(a, b, epsilon) strict_float_equal((float)(a), (float)(b), (float)(epsilon), __FILE__, __LINE__)

/* Finite values go to cmocka's comparison; otherwise both sides must be the same infinity or both NaN. */
static inline void strict_float_equal(float a, float b, float epsilon, const char *file, int line) {
    if (isfinite(a) && isfinite(b)) {
        _assert_float_equal(a, b, epsilon, file, line);
        return;
    }
    if ((isnan(a) && isnan(b)) || a == b) return;
    print_error("%f != %f (not finite)\n", (double)a, (double)b);
    _fail(file, line);
}

#endif
