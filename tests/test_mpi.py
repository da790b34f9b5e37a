#!/usr/bin/python3
"""test_mpi.py - algoprog over OpenMPI on localhost (mpirun -np K --oversubscribe).

usage: test_mpi.py ALGOPROG MPIEXEC WORKDIR

- data parallel: `mpirun -np 2 algoprog train` equals a one-process run with the same global batch
  up to floating-point summation order (documented tolerance: 1e-5 relative on every held-out loss)
- a study over 3 ranks (rank 0 hands out runs) gives exactly the single-process study's results,
  run by run; killed with SIGKILL midway and started again, it resumes and still does
- bad combinations are clear errors: a batch that does not split over the ranks, workers= under mpirun
"""
import json
import re
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_study import write_study  # noqa: E402

BIN, MPIEXEC, work = sys.argv[1], sys.argv[2], sys.argv[3]
FAILURES = []
ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0",  # OpenMPI keeps allocations until exit
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
ROOT = ["--allow-run-as-root"] if os.geteuid() == 0 else []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def mpirun(k, args, **kw):
    return [MPIEXEC] + ROOT + ["--oversubscribe", "-np", str(k), BIN] + args


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    return r


def kill_all(p):
    """SIGKILL mpirun and its ranks (OpenMPI puts each rank in its own process group, so killpg of
    mpirun's group leaves them running), then wait until every one is gone: a crash of the whole job."""
    def members():
        out = []
        for d in os.listdir("/proc"):
            try:
                f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split() if d.isdigit() else ["Z"]
                if f[0] != "Z" and int(f[3]) == p.pid:  # a zombie holds nothing
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return out
    for pid in members():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    p.wait(timeout=60)
    t0 = time.time()
    while members() and time.time() - t0 < 60:
        time.sleep(0.05)


def evals(d):
    return [json.loads(x) for x in open(os.path.join(d, "metrics.jsonl"))]


def bpb(out):
    db = sqlite3.connect(os.path.join(out, "registry.db"))
    # the loss each run is judged by: main runs evaluate only the test half at the end, sweeps the validation half
    r = db.execute("SELECT id, status, CASE kind WHEN 'main' THEN test_bpb ELSE val_bpb END FROM run"
                   " ORDER BY id").fetchall()
    db.close()
    return r


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "licenses.txt")
with open(data, "wb") as out:
    for f in sorted(os.listdir("/usr/share/common-licenses")):
        p = os.path.join("/usr/share/common-licenses", f)
        if os.path.isfile(p) and not os.path.islink(p):
            out.write(open(p, "rb").read())

print("data parallel training")
tiny = ["train", "llama-2023", f"data={data}", "d_model=64", "n_layers=2", "n_heads=4", "context=64", "batch=8",
        "eval_every=20", "eval_tokens=4096", "log_every=0", "threads=1", "steps=60", "checkpoint_every=20"]
one, two = os.path.join(work, "dp1"), os.path.join(work, "dp2")
r1 = run([BIN] + tiny + [f"out={one}"])
r2 = run(mpirun(2, tiny + [f"out={two}"]))
check(r1.returncode == 0 and r2.returncode == 0, f"both runs complete ({r2.stderr.strip()[-200:]})")
if r1.returncode == 0 and r2.returncode == 0:
    a, b = evals(one), evals(two)
    worst = max(abs(x["val_loss"] - y["val_loss"]) / x["val_loss"] for x, y in zip(a, b))
    check(len(a) == len(b) and worst < 1e-5, f"2 ranks = 1 process with the same global batch (worst rel diff {worst:.2e})")
    check(json.load(open(os.path.join(two, "final.json")))["tokens"] == json.load(open(os.path.join(one, "final.json")))["tokens"],
          "tokens counted over the global batch")
    # resume a data-parallel run: kill the ranks after the first checkpoint, then continue
    three = os.path.join(work, "dp3")
    p = subprocess.Popen(mpirun(2, tiny + [f"out={three}"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=ENV, start_new_session=True)
    t0 = time.time()
    while not os.path.exists(os.path.join(three, "checkpoint.bin")) and p.poll() is None and time.time() - t0 < 60:
        time.sleep(0.01)
    kill_all(p)
    killed_at = re.findall(r'"step": *(\d+)', open(os.path.join(three, "metrics.jsonl")).read()) \
        if os.path.exists(os.path.join(three, "metrics.jsonl")) else []
    r = run(mpirun(2, ["train", "--resume", three]))  # resumes with the run's own threads=1
    c = evals(three) if r.returncode == 0 else []
    got, want = [(x["step"], x["val_loss"]) for x in c], [(x["step"], x["val_loss"]) for x in b]
    diff = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    check(r.returncode == 0 and got == want,
          "a killed data-parallel run resumes to the same result as an uninterrupted one" +
          ("" if got == want else f" (exit {r.returncode}; {len(got)} vs {len(want)} evaluations, first difference at "
           f"{got[diff:diff + 1]} vs {want[diff:diff + 1]}; checkpoint step when killed: "
           f"{killed_at}; {r.stderr.strip()[-200:]})"))
r = run(mpirun(3, tiny + [f"out={os.path.join(work, 'dp_bad')}"]))
check(r.returncode != 0 and "does not split over 3 ranks" in r.stderr, "batch=8 over 3 ranks is a clear error")

print("a study over ranks")
spec = os.path.join(work, "micro.ini")
write_study(spec, data, budgets="4e9, 1.2e10, 3e10")  # the micro study of test_study.py
single, multi, killed = (os.path.join(work, n) for n in ("s1", "s3", "skill"))
t0 = time.time()
r = run([BIN, "study", "run", spec, f"out={single}", "threads=1", "--quiet"])
duration = time.time() - t0
check(r.returncode == 0, "single-process study")
r = run(mpirun(3, ["study", "run", spec, f"out={multi}", "threads=1"]))
check(r.returncode == 0 and "3 MPI ranks" in r.stdout, "study over 3 ranks" + ("" if r.returncode == 0 else ": " + r.stderr[-300:]))
check(bpb(multi) == bpb(single), "every run's result equals the single-process study's")
rng = random.Random(5)
kills = 0
for attempt in range(10):
    p = subprocess.Popen(mpirun(3, ["study", "run", spec, f"out={killed}", "threads=1", "--quiet"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    if attempt < 3:
        time.sleep(rng.uniform(0.5, max(0.6, duration * 0.7)))
        if p.poll() is None:
            kill_all(p)
            kills += 1
    try:
        p.wait(timeout=600)
    except subprocess.TimeoutExpired:
        kill_all(p)
    if p.returncode == 0:
        break
check(bpb(killed) == bpb(single), f"after {kills} SIGKILLs of every rank, a restart completes with equal results")
grouped = os.path.join(work, "s3g")
r = run(mpirun(3, ["study", "run", spec, f"out={grouped}", "threads=1", "ranks_per_run=2"]))
check(r.returncode == 0 and "(2 per run)" in r.stdout, "a study with ranks_per_run=2 (one group of 2 ranks)")
g, s1 = bpb(grouped), bpb(single)
worst = max(abs(a[2] - b[2]) / b[2] for a, b in zip(g, s1)) if len(g) == len(s1) else 1
# data parallel changes the summation order; over hundreds of steps of a tiny model that drifts
check(all(x[1] == "done" for x in g) and worst < 0.03, f"its results agree with the single-process study's "
      f"(worst {worst:.2%}; summation order differs)")
r = run(mpirun(2, ["study", "run", spec, f"out={os.path.join(work, 'sg')}", "ranks_per_run=2"]))
check(r.returncode != 0 and "1 + a multiple of 2 ranks" in r.stderr, "ranks_per_run that does not divide is an error")
r = run(mpirun(2, ["study", "run", spec, f"out={os.path.join(work, 'sw')}", "workers=2"]))
check(r.returncode != 0 and "drop workers=2" in r.stderr, "workers= under mpirun is a clear error")

print(f"{len(FAILURES)} failures")
sys.exit(1 if FAILURES else 0)
