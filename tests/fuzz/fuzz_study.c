/* A study file: [study] keys, [arm NAME] sections, budgets, allocation rules. */
#include "fuzz.h"
#include "study/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".ini");
    StudySpec s;
    Status st = {0};
    if (spec_load(&s, path, &st) == 0) spec_free(&s);
    unlink(path);
    return 0;
}
