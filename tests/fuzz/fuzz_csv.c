/* Points for the fits from any CSV (a study export or numbers copied from a paper). */
#include "fit/points.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".csv");
    PointSet ps;
    Status st = {0};
    if (points_read_csv(&ps, path, &st) == 0) points_free(&ps);
    unlink(path);
    return 0;
}
