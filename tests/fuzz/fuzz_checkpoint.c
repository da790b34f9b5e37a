/* A checkpoint: tensor file header, tensor table, checksums, [meta] and [config] text, then the
 * restore of parameters and optimiser state into the model its config describes (when that
 * model is small enough to build here). */
#include "fuzz.h"
#include "models/model.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".ckpt");
    TensorFile tf;
    Config cfg;
    TrainState ts;
    OptimMeta om;
    Status st = {0};
    if (checkpoint_open(path, &tf, &cfg, &ts, &om, &st) == 0) {
        size_t total = 0, nonemb = 0;
        int ok = config_resolve(&cfg, &st) == 0 && cfg.vocab >= 2; /* as trainer_resume and sampling do */
        if (ok) model_count_params(&cfg, &total, &nonemb);
        Model m;
        Rng rng;
        rng_seed(&rng, 1);
        if (ok && total < 1000000 && model_create(&m, &cfg, &rng, &st) == 0) {
            checkpoint_restore_params(&tf, m.ps, &st);
            model_free(&m);
        }
        tensorfile_free(&tf);
    }
    unlink(path);
    return 0;
}
