"""algoprog bench as a smoke test: the quick mode runs end to end, the JSON has every section with
sane values, the PyTorch peer is found and gives a ratio, and bad options are clear errors.
No timing thresholds here (they belong to `make bench`): only that numbers exist and are positive.
Not even ratios of two timings (a product above the FMA peak, a training MFU over 100%): on a busy
machine the peak can be measured low, so the bench itself prints a warning for that instead."""
import json
import os
import subprocess
import sys

algoprog, work, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
# the sanitizer build's test passes --sanitized (its ratios mean nothing); no check here reads ratios now
extra = [a for a in extra if a != "--sanitized"]
os.makedirs(work, exist_ok=True)
fails = []


def check(cond, what):
    if not cond:
        fails.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([algoprog, "bench", *args], capture_output=True, text=True, timeout=600)


out = os.path.join(work, "bench.json")
if os.path.exists(out):
    os.remove(out)
r = run("--quick", "--threads", "1", "--archs", "llama", "--json", out, *extra)
print(r.stdout)
check(r.returncode == 0, f"quick bench exits 0 (got {r.returncode}: {r.stderr.strip()})")
d = json.load(open(out))
check(d["quick"] is True and d["cores"] >= 1, "header fields")
check(d["peak"] and all(p["best"] > 0 for p in d["peak"]), "FMA peak measured")
check(d["sgemm"] and all(s["best"] > 0 and s["pct_peak"] > 0 for s in d["sgemm"]), "sgemm measured")
names = {k["kernel"] for k in d["kernels"]}
for k in ("attention", "attention (GEMMs)", "attention hd16", "attention hd16 (GEMMs)", "attention (reference)",
          "layernorm", "rmsnorm", "softmax + cross-entropy"):
    check(k in names, f"kernel {k} timed")
check(all(k["fwd_ms"] > 0 and k["bwd_ms"] > 0 for k in d["kernels"]), "kernel times positive")
t = d["train"]
check(len(t) == 1 and t[0]["config"] == "tiny" and t[0]["arch"] == "llama", "one training row")
row = t[0]
check(row["tokens_per_s"] > 0 and row["gflops"] > 0 and row["pct_peak"] > 0, "training throughput")
check(row["flops_per_token"] > 0 and row["params"] > row["nonemb_params"] > 0, "exact FLOPs and params")
check(row["rss_mib"] > 0 and row["gen_tokens_per_s"] > 0, "peak RSS and generation measured")
# the peer (Debian python3-torch is installed by `make test`) must run and give a ratio
check(row.get("torch_tokens_per_s", 0) > 0 and row.get("ratio", 0) > 0, "PyTorch peer ratio present")
check("training" in r.stdout and "geometric mean" in r.stdout, "table and summary printed")

for args, msg in ((["--configs", "huge"], "unknown name 'huge'"), (["--threads", "0"], "--threads"),
                  (["--bogus"], "unknown bench option"), (["--steps", "-3"], "--steps")):
    r = run(*args)
    check(r.returncode != 0 and msg in r.stderr, f"bad option {args} is a clear error (got {r.stderr.strip()!r})")
r = run("--quick", "--threads", "1", "--archs", "gpt2", "--no-peer", "--no-gen", "--json",
        os.path.join(work, "no", "such", "dir", "b.json"))
check(r.returncode != 0 and "cannot create" in r.stderr, "unwritable --json path is an error")

print("bench smoke:", "FAILED " + "; ".join(fails) if fails else "ok")
sys.exit(1 if fails else 0)
