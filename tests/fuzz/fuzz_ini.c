/* INI text (recipes, study files) through the strict parser. */
#include "core/ini.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    IniFile ini;
    Status st = {0};
    if (ini_parse(&ini, (const char *)data, size, "fuzz.ini", &st) == 0) ini_free(&ini);
    return 0;
}
