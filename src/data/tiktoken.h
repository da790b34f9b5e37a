/* tiktoken.h - the field's tokenizers (GPT-2/r50k, p50k, cl100k, o200k) from tiktoken's rank files.
 *
 * The npm package `tiktoken` ships encoders/NAME.json: {"pat_str": regex, "special_tokens":
 * {name: id}, "bpe_ranks": "! START tok tok ..."} where each tok is the base64 of a token's bytes
 * and its rank is START plus its position (a later "! N" restarts the count at N). Ranks are
 * ids and merge priorities at once, which is exactly algoprog's BPE rule (tokenizer.h), so an
 * import is a table conversion: ids without a token (gaps between the ranks and the specials)
 * become reserved specials that ordinary text never produces. */
#ifndef AP_TIKTOKEN_H
#define AP_TIKTOKEN_H

#include "core/status.h"
#include "data/tokenizer.h"

/* Reads a rank file (the JSON above) into *t named `name`. */
int tiktoken_import(Tokenizer *t, const char *json_path, const char *name, Status *st);
/* The encodings the npm package ships: gpt2, r50k_base, p50k_base, p50k_edit, cl100k_base, o200k_base. */
int tiktoken_known(const char *name);

#endif
