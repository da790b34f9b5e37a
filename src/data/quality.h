/* quality.h - derived corpora along a quality axis (claim C10): documents degraded on purpose,
 * and documents kept by a score.
 *
 * A derived corpus is a corpus like any other (train.txt, val.txt, manifest.json) whose training
 * documents are a transformation of another corpus's, and whose held-out text is a byte-for-byte
 * copy of the source's: every corpus derived from one source is evaluated on the same clean text,
 * so a study can compare them at equal compute. Degradation replaces a chosen fraction of the
 * documents by a shuffled-word version of themselves (the same words and bytes, no word order);
 * filtering keeps the best-scoring fraction (the score comes from elsewhere: a reference model's
 * bits per byte in train/score.h, or a seeded random draw as the control). All choices are
 * functions of the seed and the text only, so the same command makes the same corpus. */
#ifndef AP_QUALITY_H
#define AP_QUALITY_H

#include "core/status.h"
#include "data/corpus.h"

#include <stddef.h>
#include <stdint.h>

/* One document of a separator-terminated text: bytes [off, off + len), separator excluded. */
typedef struct {
    size_t off, len;
} DocSpan;

/* The documents of text (each followed by TOK_DOC_SEPARATOR; a last one without it counts too).
 * *spans is malloc'ed. */
int quality_docs(const unsigned char *text, size_t len, DocSpan **spans, size_t *n, Status *st);

/* doc with its words (maximal runs of non-space bytes) permuted by a generator seeded with seed,
 * the whitespace between them left in place: same length, same bytes, no word order. out must
 * hold len bytes. */
void quality_shuffle_words(const unsigned char *doc, size_t len, uint64_t seed, unsigned char *out);

/* Marks exactly round(frac * n) of n documents (a seeded uniform choice) in mark[]. */
void quality_choose(size_t n, double frac, uint64_t seed, unsigned char *mark);

/* Marks in keep[] the round(frac * n) documents (at least 1) with the lowest score, ties broken by
 * position; returns the highest kept score (the threshold). NaN scores are never kept. */
double quality_keep_lowest(const double *score, size_t n, double frac, unsigned char *keep);

/* How a derived corpus was made (its manifest's "derived" member). */
typedef struct {
    char source[128];          /* the source corpus's name */
    char source_sha256[65];    /* of the source's train.txt */
    double noise;              /* fraction of documents shuffled, 0: none */
    char score[16];            /* "perplexity", "random" or "" (no filtering) */
    char model[512];           /* the reference run scoring documents, when score = perplexity */
    double keep;               /* fraction of documents kept (1: all) */
    double threshold;          /* the highest kept score (bits per byte for perplexity) */
    uint64_t seed;
    uint64_t docs_in, docs_noised, docs_kept;
} Derivation;

/* Writes DATA_DIR/NAME: train documents = the spans of text marked in keep (in their order), each
 * separated as usual, val.txt copied from src unchanged, and a manifest naming the derivation. */
int quality_write_corpus(Corpus *out, const Corpus *src, const char *name, const char *data_dir,
                         const unsigned char *text, const DocSpan *spans, size_t n, const unsigned char *keep,
                         const Derivation *how, Status *st);

#endif
