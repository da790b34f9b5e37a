/* A recipe (INI of config keys) or a stored config (JSON, as the registry keeps it), then the
 * shape checks: the first byte picks the reader. Only resolves: building a model is memory's
 * business (the estimate is checked in the train tests). */
#include "fuzz.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    Config c;
    config_defaults(&c);
    Status st = {0};
    int rc;
    if (data[0] & 1) {
        rc = config_from_text(&c, (const char *)data + 1, size - 1, "fuzz.ini", &st);
    } else {
        char *json = malloc(size);
        memcpy(json, data + 1, size - 1);
        json[size - 1] = '\0';
        rc = config_from_json(&c, json, &st);
        free(json);
    }
    if (rc == 0) config_resolve(&c, &st);
    return 0;
}
