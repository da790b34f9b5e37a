/* score.h - a trained model's bits per byte on each document of a text: the perplexity score
 * with which `algoprog corpus filter` keeps the documents a reference model finds most
 * predictable (Wenzek et al. 2020's CCNet filter, with a small model of our own; claim C10).
 *
 * The text is tokenized with the run's tokenizer (separators become end-of-text) and read in
 * consecutive windows of the run's context, as held-out evaluation reads text: each token is
 * predicted from the tokens before it in its window. A document's score is the sum of its tokens'
 * losses in bits over its bytes; end-of-text targets count for no document. */
#ifndef AP_SCORE_H
#define AP_SCORE_H

#include "core/status.h"

#include <stddef.h>

typedef struct {
    size_t tokens;   /* tokens scored */
    double seconds;  /* wall time of the forward passes and tokenization */
    char model[768]; /* the run's preset and size, for the corpus manifest */
} ScoreInfo;

/* bpb[0..n_docs) := the model in run_dir's bits per byte on each document of text (documents
 * separated by TOK_DOC_SEPARATOR; n_docs of them). Empty documents score NaN. verbose prints
 * progress to stderr. */
int score_documents(const char *run_dir, const unsigned char *text, size_t len, size_t n_docs, const size_t *doc_bytes,
                    double *bpb, ScoreInfo *info, int verbose, Status *st);

#endif
