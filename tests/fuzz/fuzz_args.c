/* Command-line overrides (key=value ...): the input split at NUL or newline bytes into argv. */
#include "fuzz.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1), *argv[64];
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    char *p = buf;
    for (size_t i = 0; i <= size && argc < 64; i++)
        if (buf[i] == '\0' || buf[i] == '\n') {
            buf[i] = '\0';
            argv[argc++] = p;
            p = buf + i + 1;
        }
    Config c;
    config_defaults(&c);
    Status st = {0};
    if (config_apply_args(&c, argc, argv, &st) == 0) config_resolve(&c, &st);
    free(buf);
    return 0;
}
