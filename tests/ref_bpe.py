#!/usr/bin/python3
"""ref_bpe.py - algoprog's BPE trainer and encoder against a plain Python reference.

usage: ref_bpe.py ALGOPROG_BINARY WORKDIR

The reference is written for clarity, not speed: the same GPT-4 pre-tokenisation (Debian's
python3-regex), a full recount of every pair before each merge (the C trainer updates counts
incrementally), the same tie-break (highest count, then smallest (left id, right id)), and
tiktoken's rank-based merging for encoding. On a ~22 KB fixture the two must produce the same
token table, id for id, and the same encodings, token for token.
"""
import os
import subprocess
import sys
from collections import Counter

import regex

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import apformat  # noqa: E402

SEP = b"\x1e\n"
VOCAB = 1000


def fixture():
    # Real English text present on every Debian system, plus lines that exercise the pattern.
    base = open("/usr/share/common-licenses/GPL-3", "rb").read()[:20000]
    extra = ("Numbers 1234567 and 3.14159, years 1811-1818; it's, we'll, they've, I'M, you'd.\n"
             "Unicode: naïve café, Zürich, Ελληνικά, русский текст, 日本語のテキスト, emoji 🙂🚀!\n"
             "Whitespace:    four spaces,\ttab,\n\n\nthree newlines, trailing   \n"
             "Code: for (int i = 0; i < n; i++) { x[i] += y[i] * 2; } // done\n"
             "Longwordwithoutanyspaces" * 4 + "\n")
    return base[:10000] + SEP + base[10000:] + SEP + extra.encode()


def chunks(pattern, text):
    """Pre-tokens of a document: every match, plus any bytes between matches (none for valid UTF-8)."""
    s = text.decode("utf-8")
    out, pos = [], 0
    for m in pattern.finditer(s):
        if m.start() > pos:
            out.append(s[pos:m.start()].encode())
        out.append(m.group().encode())
        pos = m.end()
    if pos < len(s):
        out.append(s[pos:].encode())
    return out


def train(pattern, text, vocab_size):
    words = Counter()
    for doc in text.split(SEP):
        words.update(chunks(pattern, doc))
    tokens = [bytes([b]) for b in range(256)] + [SEP]
    index = {t: i for i, t in enumerate(tokens) if i != 256}
    seqs = [(list(w), c) for w, c in words.items()]
    while len(tokens) < vocab_size:
        counts = Counter()
        for sym, c in seqs:
            for a, b in zip(sym, sym[1:]):
                counts[(a, b)] += c
        if not counts:
            break
        (a, b), n = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        if n <= 0:
            break
        new = tokens[a] + tokens[b]
        if new in index:
            nid = index[new]
        else:
            nid = len(tokens)
            tokens.append(new)
            index[new] = nid
        for k, (sym, c) in enumerate(seqs):
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(nid)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            seqs[k] = (out, c)
    return tokens


def encode_chunk(ranks, chunk):
    if chunk in ranks:
        return [ranks[chunk]]
    parts = list(range(len(chunk) + 1))
    while len(parts) > 2:
        best, bi = None, -1
        for i in range(len(parts) - 2):
            r = ranks.get(chunk[parts[i]:parts[i + 2]])
            if r is not None and (best is None or r < best):
                best, bi = r, i
        if best is None:
            break
        del parts[bi + 1]
    return [ranks[chunk[parts[i]:parts[i + 1]]] for i in range(len(parts) - 1)]


def encode(pattern, ranks, text):
    out = []
    docs = text.split(SEP)
    for k, doc in enumerate(docs):
        for ch in chunks(pattern, doc):
            out += encode_chunk(ranks, ch)
        if k + 1 < len(docs):
            out.append(256)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    fx = os.path.join(work, "fixture.txt")
    text = fixture()
    open(fx, "wb").write(text)
    tok = os.path.join(work, "fixture.tok")
    subprocess.run([binary, "tokenize", "train", fx, f"vocab={VOCAB}", f"out={tok}"], check=True,
                   stdout=subprocess.DEVNULL)
    c_tokens, specials, pat_str = apformat.read_tokenizer(tok)
    pattern = regex.compile(pat_str)
    ref_tokens = train(pattern, text, VOCAB)
    failures = 0
    if c_tokens != ref_tokens:
        failures += 1
        first = next((i for i, (x, y) in enumerate(zip(c_tokens, ref_tokens)) if x != y),
                     min(len(c_tokens), len(ref_tokens)))
        print(f"FAIL token tables differ at id {first}: C {c_tokens[first:first + 3]} vs "
              f"reference {ref_tokens[first:first + 3]} (sizes {len(c_tokens)} / {len(ref_tokens)})")
    else:
        print(f"ok   token tables identical: {len(c_tokens)} tokens ({len(c_tokens) - 257} merges), "
              f"e.g. {c_tokens[257:262]}")
    if specials != {256: "<|endoftext|>"}:
        failures += 1
        print(f"FAIL specials {specials}")
    ranks = {t: i for i, t in enumerate(ref_tokens) if i != 256}
    extra = os.path.join(work, "extra.txt")
    open(extra, "wb").write("It's 2024: “quotes”, ümlauts and 😀 emoji; x=42;\n\n  indented   text\t\tend\n".encode()
                            * 3)
    for name, path in (("fixture", fx), ("extra", extra)):
        shard = os.path.join(work, name + ".shard")
        subprocess.run([binary, "tokenize", "encode", path, f"tokenizer={tok}", f"out={shard}"], check=True,
                       stdout=subprocess.DEVNULL)
        c_ids = list(apformat.read_shard(shard).tokens)
        ref_ids = encode(pattern, ranks, open(path, "rb").read())
        if c_ids != ref_ids:
            failures += 1
            first = next((i for i, (x, y) in enumerate(zip(c_ids, ref_ids)) if x != y), min(len(c_ids), len(ref_ids)))
            print(f"FAIL {name}: encodings differ at token {first}: C {c_ids[first:first + 5]} vs "
                  f"reference {ref_ids[first:first + 5]}")
        else:
            print(f"ok   {name}: {len(c_ids)} tokens identical ({len(open(path, 'rb').read()) / len(c_ids):.2f} "
                  "bytes/token)")
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
