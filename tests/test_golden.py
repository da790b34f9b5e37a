#!/usr/bin/python3
"""test_golden.py - a fixed micro study must export the same rows as the recorded one.

usage: test_golden.py ALGOPROG_BINARY WORKDIR [--update | --sanitized]

The study (2 arms x 2 budgets x 3 sizes, 3-point learning-rate sweeps at both budgets) trains on a text generated
here from a fixed seed, so nothing depends on the machine's files. Its `study export --csv` must
equal tests/fixtures/golden/{runs,metrics}.csv: every structural column exactly (plan, shapes,
tokens, FLOPs, chosen learning rates, configs, which run copies which) and every loss bit for bit.
Wall-clock columns (started_at, finished_at, elapsed_s) are left out of the comparison.
Sanitizer builds (--sanitized) compile the same code at -O1, which rounds differently, and a few
hundred training steps carry that to the percent level: there only what training does not decide
is compared (the plan, shapes, tokens, FLOPs, steps, evaluation points, every run finished once).
Which rates a sweep adds past the edge of its grid is decided by training, so the sanitizer
comparison leaves out those runs (and their metrics), keeping the sweeps' first grid.
A refactoring must leave this test green; a change that means to alter results regenerates the
fixture with --update and says why in its commit. Its arms pin gemm = openblas: its kernels are
the same on every x86-64 machine (the environment pins OPENBLAS_CORETYPE), where oneDNN picks its
own by CPU; test_ops holds oneDNN to the same reference.
"""
import csv
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "golden")
CLOCK = {"started_at", "finished_at", "elapsed_s"}

WORDS = ("the of and to in is was that for it with as his on be at by had not are but from or have an they "
         "which one you were her all she there would their we him been has when who will more no if out so "
         "said what up its about into than them can only other new some could time these two may then do "
         "first any my now such like our over man me even most made after also did many before must through "
         "back years where much your way well down should because each just those people how too little "
         "state good very make world still own see men work long get here between both life being under "
         "never day same another know while last might us great old year off come since against go came "
         "right used take three").split()

STUDY = """[study]
name = golden
data = {data}
tokenizer = bytes
budgets = 6e9, 1.2e10
seeds = 1
allocation = chinchilla
tokens_per_param = 0.25
isoflop_points = 3
context = 32
batch = 8
eval_tokens = 2048
final_eval_tokens = 4096
min_steps = 10
lr_sweep = 3
lr_sweep_factor = 4
lr_sweep_budgets = 0, 1
lr_sweep_seeds = 1
[arm gpt2]
preset = gpt2-2019
gemm = openblas
[arm llama]
preset = llama-2023
gemm = openblas
"""


def make_text(path):
    rng = random.Random(20261202)
    docs = []
    for d in range(120):
        sents = []
        for s in range(rng.randint(4, 12)):
            n = rng.randint(5, 16)
            w = [WORDS[min(int(rng.expovariate(0.03)), len(WORDS) - 1)] for _ in range(n)]
            sents.append(" ".join(w).capitalize() + rng.choice([".", ".", ".", "?", "!"]))
        docs.append(" ".join(sents))
    open(path, "w").write("\n\n".join(docs) + "\n")


def load(path, work=None):
    """Rows of a CSV; the work directory's path (in configs) becomes $WORK."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if work:
        rows = [{k: v.replace(work, "$WORK") for k, v in r.items()} for r in rows]
    return rows


def same_value(a, b):
    if a == b:
        return True, 0.0
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False, float("inf")
    return False, abs(x - y) / max(abs(x), abs(y), 1e-300)


# the first grid of every sweep (lr_sweep = 3, lr_sweep_factor = 4 above): planned, not decided by training
GRID = {0.25, 1.0, 4.0}

# what training cannot change: compared even in sanitizer builds
PLAN = {"run", "arm", "preset", "kind", "budget", "point", "seed", "target_params", "params", "params_nonembedding",
        "params_kaplan", "keep", "d_model", "n_layers", "tokens", "flops", "flops_6nd", "steps", "status", "attempts",
        "step", "epochs"}


def compare(name, have, want, plan_only=False):
    fails, worst = [], 0.0
    if len(have) != len(want):
        return [f"{name}: {len(have)} rows, the recorded study has {len(want)}"], 0.0
    for i, (h, w) in enumerate(zip(have, want)):
        if list(h) != list(w):
            return [f"{name}: columns {list(h)} differ from the recorded {list(w)}"], 0.0
        for col in w:
            if col in CLOCK or (plan_only and col not in PLAN):
                continue
            ok, rel = same_value(h[col], w[col])
            if not ok:
                worst = max(worst, rel)
                if len(fails) < 8:
                    fails.append(f"{name} row {i + 1} column {col}: {h[col]!r} != recorded {w[col]!r}")
    return fails, worst


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 2
    binary, work = sys.argv[1], sys.argv[2]
    update = len(sys.argv) == 4 and sys.argv[3] == "--update"
    plan_only = len(sys.argv) == 4 and sys.argv[3] == "--sanitized"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "golden.txt")
    make_text(data)
    spec = os.path.join(work, "golden.ini")
    open(spec, "w").write(STUDY.format(data=data))
    out = os.path.join(work, "study")
    env = dict(os.environ, OMP_NUM_THREADS="2")
    r = subprocess.run([binary, "study", "run", spec, f"out={out}", "threads=2", "--quiet"], capture_output=True,
                       text=True, env=env)
    if r.returncode != 0:
        print("FAIL study run:", r.returncode, r.stderr)
        return 1
    r = subprocess.run([binary, "study", "export", out, "--csv"], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL study export:", r.stderr)
        return 1
    if update:
        os.makedirs(FIXTURE, exist_ok=True)
        for f in ("runs.csv", "metrics.csv"):
            rows = load(os.path.join(out, f), work)
            with open(os.path.join(FIXTURE, f), "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]), quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
                w.writeheader()
                for row in rows:
                    w.writerow({k: ("" if k in CLOCK else v) for k, v in row.items()})
        print("fixture written to", FIXTURE)
        return 0
    failures, worst = [], 0.0
    have = {f: load(os.path.join(out, f), work) for f in ("runs.csv", "metrics.csv")}
    want = {f: load(os.path.join(FIXTURE, f)) for f in ("runs.csv", "metrics.csv")}
    if plan_only:
        for rows in (have, want):
            keep = {r["run"] for r in rows["runs.csv"] if r["kind"] != "lr_sweep" or float(r["lr_mult"]) in GRID}
            rows["runs.csv"] = [r for r in rows["runs.csv"] if r["run"] in keep]
            rows["metrics.csv"] = [r for r in rows["metrics.csv"] if r["run"] in keep]
    for f in ("runs.csv", "metrics.csv"):
        fl, wr = compare(f, have[f], want[f], plan_only)
        failures += fl
        worst = max(worst, wr)
    for f in failures:
        print("  FAIL", f)
    print(f"golden micro study: {len(failures)} differences (largest relative {worst:.3g}"
          f"{'; plan columns only (sanitizer build)' if plan_only else '; bit for bit'})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
