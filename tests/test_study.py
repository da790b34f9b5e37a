#!/usr/bin/python3
"""test_study.py - the study engine end to end.

usage: test_study.py ALGOPROG_BINARY WORKDIR

- a micro study (2 arms x 2 budgets x 1 seed) runs to completion; every run hits its budget and
  its allocation rule; status and CSV / JSON exports agree with the registry
- kill -9 at random moments, rerun: the final rows equal the uninterrupted study's
- two workers never claim the same run
- a learning-rate sweep picks each arm's rate and reuses the winning run
- bad input (unknown keys, keys the study owns, budgets too small, missing data, another study's
  registry, a newer schema) is refused before any run starts
- SIGTERM / SIGINT during `study run` (one worker or two): exit 143 / 130 after checkpointing, nothing
  left running, the same command finishes with the uninterrupted study's rows
- two `study run` processes on one directory: both finish, no run trained twice
- a registry.db that is not SQLite, cut short, or another program's database, and an output
  directory that cannot be written: a one-line error from run, status and report
- a study whose data changed on disk since it began is refused with both checksums
- `corpus filter` derives corpora deterministically, held-out text untouched; arms may train on them
  (claim C10), not on corpora with other held-out text
- every subcommand answers --help with its usage
"""
import csv
import glob
import json
import math
import os
import re
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

FAILURES = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def run(args, **kw):
    r = subprocess.run([BIN] + args, capture_output=True, **kw)
    r.stdout, r.stderr = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    return r


def write_study(path, data, extra="", arms=None, budgets="6e9, 1.2e10"):
    arms = arms or "[arm gpt2]\npreset = gpt2-2019\n[arm llama]\npreset = llama-2023\nlr = 4e-3\n"
    open(path, "w").write(f"""[study]
name = micro
data = {data}
tokenizer = bytes
budgets = {budgets}
seeds = 1
allocation = chinchilla
context = 32
batch = 8
eval_tokens = 2048
final_eval_tokens = 4096
min_steps = 10
tokens_per_param = 0.25
isoflop_points = 1
{extra}
{arms}""")


def rows(out):
    db = sqlite3.connect(os.path.join(out, "registry.db"))
    # column 9: the loss a run is judged by, the only half its final evaluation reads (test for main
    # runs, validation for sweeps); both are checked not null where they must be
    r = db.execute("SELECT id, arm_id, kind, budget, seed, params_nonembedding, tokens, flops, status,"
                   " CASE kind WHEN 'main' THEN test_bpb ELSE val_bpb END,"
                   " attempts, lr_mult, copied_from FROM run ORDER BY id").fetchall()
    db.close()
    return r


def results(out):
    return [(r[0], r[2], r[8], r[9]) for r in rows(out)]


def test_micro(work, data):
    print("micro study")
    spec = os.path.join(work, "micro.ini")
    write_study(spec, data)
    out = os.path.join(work, "micro")
    t0 = time.time()
    r = run(["study", "run", spec, f"out={out}"])
    dt = time.time() - t0
    check(r.returncode == 0, f"study run exits 0 ({dt:.0f} s)" + ("" if r.returncode == 0 else ": " + r.stderr))
    rs = rows(out)
    check(len(rs) == 4 and all(x[8] == "done" for x in rs), f"{len(rs)} runs, all done")
    for x in rs:
        budget, flops, n, tokens = x[3], x[7], x[5], x[6]
        check(abs(flops / budget - 1) < 0.05, f"run {x[0]}: {flops:.4g} FLOPs for a {budget:.3g} budget")
    # chinchilla: the shape whose exact compute at D = r N is nearest the budget (r = 0.25 here)
    db = sqlite3.connect(os.path.join(out, "registry.db"))
    for rid, target, n, d in db.execute("SELECT id, target_params, params_nonembedding, tokens FROM run"):
        check(abs(math.log(n / target)) < math.log(1.5), f"run {rid}: N = {n} near the target {target:.0f}")
        check(0.25 / 2 < d / n < 0.25 * 2, f"run {rid}: {d / n:.3f} tokens per parameter, near the rule's 0.25")
    lr = db.execute("SELECT lr, lr_source FROM arm WHERE name='llama'").fetchone()
    check(abs(lr[0] - 4e-3) < 1e-12 and "preset" in lr[1], "an arm's override of lr is used and reported")
    db.close()
    s = run(["study", "status", out])
    check(s.returncode == 0 and "4 done" in s.stdout and "llama" in s.stdout and "bits/byte" in s.stdout,
          "study status prints the table")
    print("\n".join("    " + line for line in s.stdout.splitlines()))
    e = run(["study", "export", out, "--csv"])
    runs_csv = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
    metrics_csv = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    check(e.returncode == 0 and len(runs_csv) == 4 and len(metrics_csv) >= 4 * 10,
          f"CSV export: {len(runs_csv)} runs, {len(metrics_csv)} metric rows")
    check(rs[0][2] == "main" and abs(float(runs_csv[0]["test_bpb"]) - rs[0][9]) < 1e-12,
          "CSV values equal the registry's")
    check(all(x["val_bpb"] == "" and float(x["test_bpb"]) > 0 for x in runs_csv),
          "main runs evaluate the test half only at the end (their validation loss is empty)")
    e = run(["study", "export", out, "--json"])
    doc = json.load(open(os.path.join(out, "study.json")))
    check(e.returncode == 0 and len(doc) == 4 and doc[0]["metrics"] and doc[0]["config"]["d_model"] > 0,
          "JSON export nests metrics and configs")
    r = run(["study", "run", spec, f"out={out}"])
    check(r.returncode == 0 and "0 to go" in r.stdout, "running a finished study again does nothing")
    return out, spec, dt


def test_kill(work, spec, reference, duration):
    print("kill -9 and rerun")
    out = os.path.join(work, "killed")
    rng = random.Random(3)
    kills = 0
    for attempt in range(40):
        p = subprocess.Popen([BIN, "study", "run", spec, f"out={out}", "--quiet"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if attempt < 12:
            time.sleep(rng.uniform(0.05, 0.5 * duration))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
        p.wait()
        if p.returncode == 0:
            break
    check(all(x[2] == "done" for x in results(out)), f"study completes after {kills} SIGKILLs")
    same = [a[3] for a in results(out)] == [b[3] for b in results(reference)]
    check(same, "final rows equal the uninterrupted study's (val bits/byte, run by run)")
    if not same:
        print("   ", results(out), "\n   ", results(reference))


def test_disk_full(work, spec, reference):
    print("disk full (ulimit -f) during registry and checkpoint writes, then a rerun")
    out = os.path.join(work, "diskfull")
    for limit in (24 << 10, 96 << 10, 400 << 10):
        def limited():  # writes beyond the limit fail with EFBIG (SIGXFSZ ignored), as on a full disk
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        r = run(["study", "run", spec, f"out={out}", "--quiet"], preexec_fn=limited)
        if r.returncode == 0:
            break
        check(0 < r.returncode < 128 and "error" in r.stderr and len(r.stderr) < 2000,
              f"limit {limit >> 10} KiB: a clear error, no crash (rc {r.returncode}: {r.stderr.strip()[-150:]})")
    r = run(["study", "run", spec, f"out={out}", "--quiet"])
    check(r.returncode == 0, "after space is back the study completes" + ("" if r.returncode == 0 else ": " + r.stderr))
    check([a[3] for a in results(out)] == [b[3] for b in results(reference)],
          "and its rows equal the uninterrupted study's")


def test_workers(work, spec):
    print("two workers")
    out = os.path.join(work, "workers2")
    t0 = time.time()
    r = run(["study", "run", spec, f"out={out}", "workers=2"])
    dt = time.time() - t0
    rs = rows(out)
    check(r.returncode == 0 and all(x[8] == "done" for x in rs), f"workers=2 completes ({dt:.0f} s)")
    check(all(x[10] == 1 for x in rs), "every run was claimed exactly once")
    dirs = glob.glob(os.path.join(out, "runs", "*"))
    check(len(dirs) == len(rs), "one run directory per run")


def test_sweep(work, data):
    print("learning-rate sweep")
    spec = os.path.join(work, "sweep.ini")
    write_study(spec, data, extra="lr_sweep = 3\nlr_sweep_factor = 4\nlr_sweep_budgets = 0, 1\nlr_sweep_seeds = 2\n"
                "lr_sweep_extend = 1",
                arms="[arm llama]\npreset = llama-2023\n[arm llama-kaplan]\npreset = llama-2023\nallocation = kaplan\n",
                budgets="6e9, 2.4e10")
    out = os.path.join(work, "sweep")
    r = run(["study", "run", spec, f"out={out}"])
    check(r.returncode == 0, "study with lr_sweep=3 at two budgets completes" + ("" if r.returncode == 0 else ": " + r.stderr))
    db = sqlite3.connect(os.path.join(out, "registry.db"))
    arms = dict(db.execute("SELECT name, id FROM arm"))
    sweep = db.execute("SELECT arm_id, budget_index, seed, lr_mult, val_bpb FROM run WHERE kind='lr_sweep'").fetchall()
    halves = db.execute("SELECT count(*) FROM run WHERE status = 'done' AND ((val_bpb IS NULL) != (kind = 'main')"
                        " OR (test_bpb IS NULL) != (kind = 'lr_sweep'))").fetchone()[0]
    check(halves == 0 and all(v is not None for *_, v in sweep),
          "sweeps evaluate only the validation half at the end, main runs only the test half")
    check(all(a == arms["llama"] for a, *_ in sweep), "arms that differ only in allocation share one sweep")
    grid = {}
    for _, b, seed, m, v in sweep:
        grid.setdefault(b, {}).setdefault(round(m, 6), []).append(v)
    check(sorted(grid) == [0, 1] and all(len(v) == 2 for g in grid.values() for v in g.values()),
          f"sweeps at budgets 0 and 1 with 2 seeds per rate ({ {b: sorted(g) for b, g in grid.items()} })")
    for b, g in grid.items():
        mults = sorted(g)
        best = min(mults, key=lambda m: sum(g[m]) / len(g[m]))
        grown = len(mults) > 3
        check(best not in (mults[0], mults[-1]) or len(mults) >= 5,
              f"budget {b}: best x{best} inside the grid {mults} or the grid grew to its limit"
              + (" (grew past an edge)" if grown else ""))
    src = db.execute("SELECT lr_source FROM arm WHERE name='llama'").fetchone()[0]
    check("sweep at N=" in src and "lr = " in src, f"the arm says how its rate was chosen: {src}")
    mains = db.execute("SELECT arm.base_lr, run.params_nonembedding, run.lr_mult, run.config FROM run JOIN arm ON"
                       " arm.id = run.arm_id WHERE kind='main'").fetchall()
    check(all(abs(json.loads(c)["lr"] / (base * m) - 1) < 1e-9 for base, _, m, c in mains),
          "main runs train at the preset's rate times their multiplier")
    by_n = sorted({(n, m) for _, n, m, _ in mains})
    (n0, m0), (n1, m1) = by_n[0], by_n[-1]
    slope = math.log(m1 / m0) / math.log(n1 / n0) if n1 > n0 else 0.0
    check(-1 - 1e-9 <= slope <= 0.25 + 1e-9 and
          all(abs(math.log(m / m0) - slope * math.log(n / n0)) < 1e-9 for n, m in by_n),
          f"every main run's rate follows one law lr ~ N^{slope:.2f} (slope within [-1, 0.25])")
    bad = db.execute("SELECT count(*) FROM run m JOIN run w ON m.copied_from = w.id WHERE w.kind = 'lr_sweep'").fetchone()[0]
    check(bad == 0, "no main run takes a sweep run's result (sweep runs never become frontier points)")
    twins = db.execute("SELECT m.id, w.id FROM run m JOIN run w ON m.copied_from = w.id").fetchall()
    check(len(twins) >= 1 and all(a != b for a, b in twins),
          f"the Kaplan arm's first budget is its Chinchilla twin's run, trained once ({len(twins)} shared runs)")
    db.close()


def test_bad_input(work, data, micro_out):
    print("bad input")

    def err(spec_text, fragment, what, out=None):
        path = os.path.join(work, "bad.ini")
        open(path, "w").write(spec_text)
        o = out or os.path.join(work, "bad_out")
        before = len(glob.glob(os.path.join(o, "runs", "*")))
        r = run(["study", "run", path, f"out={o}"])
        ok = r.returncode == 2 and fragment in r.stderr and len(glob.glob(os.path.join(o, "runs", "*"))) == before
        check(ok, f"{what} -> '{fragment}'" + ("" if ok else f" (rc {r.returncode}: {r.stderr.strip()})"))

    base = open(os.path.join(work, "micro.ini")).read()
    err(base.replace("seeds = 1", "seeds = 1\nseedz = 2"), "unknown study key 'seedz'", "unknown study key")
    err(base.replace("lr = 4e-3", "lrr = 4e-3"), "unknown key 'lrr' (did you mean 'lr'?)", "unknown arm key")
    err(base.replace("lr = 4e-3", "d_model = 64"), "sets 'd_model', which the study decides", "arm sets the shape")
    err(base.replace("budgets = 6e9, 1.2e10", "budgets = 1e7, 1e8"), "outside the size ladder", "budget below the ladder")
    err(base.replace("budgets = 6e9, 1.2e10", "budgets = 1e30"), "outside the size ladder", "budget above the ladder")
    err(base.replace("lr = 4e-3", "lr = 4e-3\nmemory_limit = 0.001"), "does not fit: this run needs about",
        "budget beyond memory")
    for fragment, edit in (("outside the size ladder", ("budgets = 6e9, 1.2e10", "budgets = 1e30")),
                           ("does not fit", ("lr = 4e-3", "lr = 4e-3\nmemory_limit = 0.001"))):
        path = os.path.join(work, "hostile.ini")
        open(path, "w").write(base.replace(*edit))
        r = run(["study", "plan", path])
        check(r.returncode == 2 and fragment in r.stderr,
              f"`study plan` refuses it too -> '{fragment}' ({r.returncode}: {r.stderr.strip()[:160]})")
    err(base.replace("min_steps = 10", "min_steps = 5000"), "raise the smallest budget", "budget too small for min_steps")
    err(base.replace(data, "nocorpus"), "build it: `algoprog corpus build nocorpus`", "missing corpus")
    err(base.replace("budgets = 6e9, 1.2e10", "budgets = 4e9:1e9:3"), "START:STOP:COUNT", "malformed budget range")
    err(base.replace("preset = llama-2023", "preset = nosuch"), "no recipe named 'nosuch'", "unknown preset")
    err(base.replace("name = micro", "name = micro2"), "belongs to study 'micro' with a different study file",
        "another study's registry", out=micro_out)
    newer = os.path.join(work, "newer")
    shutil.copytree(micro_out, newer)
    db = sqlite3.connect(os.path.join(newer, "registry.db"))
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    err(base, "schema version 99", "a registry from a newer version", out=newer)


def test_signals(work, spec, references):
    """references[workers]: the uninterrupted study (one thread per run, as the micro study's small runs get)."""
    print("SIGTERM and SIGINT during study run")
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        for workers in (1, 2):
            out = os.path.join(work, f"signal-{sig}-{workers}")
            stopped = 0
            for attempt in range(6):
                p = subprocess.Popen([BIN, "study", "run", spec, f"out={out}", f"workers={workers}", "threads=1", "--quiet"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                time.sleep(0.4 + 0.3 * attempt)
                p.send_signal(sig)  # to the study process alone: it must reach its workers itself
                _, err = p.communicate()
                err = err.decode("utf-8", "replace")
                if p.returncode == 0:
                    continue  # finished before the signal: try again earlier in a fresh directory
                running = [x for x in rows(out) if x[8] == "running"]
                check(p.returncode == code and "stopped" in err and not running,
                      f"{signal.Signals(sig).name}, workers={workers}: exit {p.returncode}, nothing left running "
                      f"({err.strip().splitlines()[-1] if err.strip() else 'no message'})")
                stopped = 1
                break
            check(stopped, f"{signal.Signals(sig).name}, workers={workers}: a signal landed mid-study")
            r = run(["study", "run", spec, f"out={out}", f"workers={workers}", "threads=1", "--quiet"])
            check(r.returncode == 0 and [a[3] for a in results(out)] == [b[3] for b in results(references[workers])],
                  "  the same command finishes with the uninterrupted study's rows")


def test_two_processes(work, spec, reference):
    print("two study run processes on one directory")
    out = os.path.join(work, "twoproc")
    ps = [subprocess.Popen([BIN, "study", "run", spec, f"out={out}", "--quiet"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate() for p in ps]
    check(all(p.returncode == 0 for p in ps), "both finish" + "".join(
        " | " + e.decode("utf-8", "replace").strip() for _, e in outs if e.strip()))
    rs = rows(out)
    check(all(x[8] == "done" for x in rs) and all(x[10] == 1 for x in rs), "every run trained once (attempts = 1)")
    check([a[3] for a in results(out)] == [b[3] for b in results(reference)], "rows equal the one-process study's")


def test_hostile_registry(work, spec, reference):
    print("registries that are not registries, and unwritable directories")
    junk = os.path.join(work, "junk")
    os.makedirs(junk, exist_ok=True)
    open(os.path.join(junk, "registry.db"), "wb").write(bytes(range(256)) * 16)
    cut = os.path.join(work, "cut")
    shutil.copytree(reference, cut)
    for f in glob.glob(os.path.join(cut, "registry.db-*")):
        os.remove(f)
    with open(os.path.join(cut, "registry.db"), "r+b") as f:
        f.truncate(2048)
    foreign = os.path.join(work, "foreign")
    os.makedirs(foreign, exist_ok=True)
    db = sqlite3.connect(os.path.join(foreign, "registry.db"))
    db.execute("CREATE TABLE photos (id INTEGER)")
    db.commit()
    db.close()
    for d, what in ((junk, "not SQLite"), (cut, "cut short"), (foreign, "another program's database")):
        for args in (["study", "run", spec, f"out={d}", "--quiet"], ["study", "status", d], ["report", d]):
            r = run(args)
            lines = r.stderr.strip().splitlines()
            check(r.returncode in (1, 2) and len(lines) == 1 and "registry" in lines[0] and "error" in lines[0],
                  f"{what}, {args[0]} {args[1] if args[0] == 'study' else ''}: rc {r.returncode}: "
                  f"{lines[-1] if lines else '(nothing)'}")
    # an output directory that cannot be written (as root, drop to nobody to make permissions bite)
    ro = os.path.join(work, "readonly")
    os.makedirs(ro, exist_ok=True)
    os.chmod(ro, 0o555)
    prefix = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if shutil.which("setpriv") else None
    if prefix is None:
        print("  skip: running as root without setpriv")
        return
    r = subprocess.run(prefix + [BIN, "study", "run", spec, f"out={ro}", "--quiet"], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    check(r.returncode in (1, 2) and len(lines) == 1 and "not writable" in lines[0],
          f"read-only out directory: rc {r.returncode}: {lines[-1] if lines else '(nothing)'}")


def test_data_changed(work, data):
    print("data that changed on disk since the study began")
    text = os.path.join(work, "changing.txt")
    shutil.copyfile(data, text)
    spec = os.path.join(work, "changing.ini")
    write_study(spec, text, budgets="6e9")
    out = os.path.join(work, "changing")
    r = run(["study", "run", spec, f"out={out}", "--quiet"])
    check(r.returncode == 0, f"the study runs ({r.returncode}: {r.stderr.strip()[:200]})")
    r = run(["study", "run", spec, f"out={out}", "--quiet"])
    check(r.returncode == 0, "run again on the same data: nothing to do, no complaint")
    with open(text, "ab") as f:
        f.write(b"one more line\n")
    r = run(["study", "run", spec, f"out={out}", "--quiet"])
    sums = re.findall(r"\b[0-9a-f]{64}\b", r.stderr)
    check(r.returncode == 2 and "changed on disk" in r.stderr and len(set(sums)) == 2,
          f"after the data changed, study run is refused with both checksums ({r.returncode}: {r.stderr.strip()[:300]})")
    # a registry from before the data was recorded: it records it on the next start
    shutil.copyfile(data, text)
    db = sqlite3.connect(os.path.join(out, "registry.db"))
    db.execute("DELETE FROM meta WHERE key='data_sha256'")
    db.commit()
    db.close()
    r = run(["study", "run", spec, f"out={out}", "--quiet"])
    db = sqlite3.connect(os.path.join(out, "registry.db"))
    got = db.execute("SELECT value FROM meta WHERE key='data_sha256'").fetchall()
    db.close()
    check(r.returncode == 0 and len(got) == 1 and len(got[0][0]) == 64,
          "an older registry without the data's checksum records it and goes on")


def test_files_lock(micro_out):
    print("one writer of a study's own files (report.lock)")
    # another process holds the lock (as a running `algoprog report` would); then it dies
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\n"
                               f"f = open({os.path.join(micro_out, 'report.lock')!r}, 'a+')\n"
                               "fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "f.seek(0); f.truncate(); f.write(str(os.getpid()) + '\\n'); f.flush()\n"
                               "print('held', flush=True)\n"
                               "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    check(holder.stdout.readline().strip() == "held", "a second process holds the study's files lock")
    for args in (["report", micro_out, "--boot", "20"], ["study", "export", micro_out, "--csv"]):
        r = run(args)
        check(r.returncode == 2 and f"in use by process {holder.pid}" in r.stderr,
              f"`{' '.join(args[:2])}` is refused while another writes, naming it ({r.returncode}: "
              f"{r.stderr.strip()})")
    holder.kill()
    holder.wait()
    r = run(["study", "export", micro_out, "--csv"])
    check(r.returncode == 0, f"after its holder is killed the lock is not stale ({r.returncode}: {r.stderr.strip()})")


def tiny_teacher(work, data):
    """A finished tiny run to stand in for a claim study's teacher (context 256, bytes)."""
    d = os.path.join(work, "tiny_teacher")
    if not os.path.exists(os.path.join(d, "final.json")):
        r = run(["train", "llama-2023", f"data={data}", f"out={d}", "d_model=32", "n_layers=2", "n_heads=2",
                 "context=256", "batch=2", "steps=4", "eval_every=4", "eval_tokens=512", "final_eval_tokens=512",
                 "log_every=0"])
        check(r.returncode == 0, f"a tiny teacher trains ({r.stderr.strip()[-200:]})")
    return d


def test_shipped_studies(work, data):
    """Every study file the repository ships (recipes/*.ini with a [study], recipes/claims/*.ini) plans:
    its keys exist, its arms resolve, every budget sits on every arm's size ladder."""
    print("shipped study files plan")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes")
    files = sorted(glob.glob(os.path.join(root, "*.ini")) + glob.glob(os.path.join(root, "claims", "*.ini")))
    studies = 0
    teacher = tiny_teacher(work, data)
    for f in files:
        text = open(f).read()
        if "[study]" not in text:
            continue
        studies += 1
        path = os.path.join(work, "shipped_" + os.path.basename(f))
        text = re.sub(r"(?m)^teacher = .*$", f"teacher = {teacher}", text)
        open(path, "w").write(re.sub(r"(?m)^data = .*$", f"data = {data}", text))
        r = run(["study", "plan", path])
        check(r.returncode == 0 and "total" in r.stdout,
              f"{os.path.relpath(f, os.path.join(root, '..'))} plans ({r.returncode}: {r.stderr.strip()[:200]})")
    check(studies >= 4, f"{studies} shipped study files found (demo, full, the claim studies)")


def test_claim_studies(work, data):
    """The claim studies with study settings of the micro study (every arm, switch and ablation kept,
    no sweeps, two tiny budgets) run end to end, and the report gives their claims a verdict."""
    print("claim studies, micro versions: C3, C8, C11 and C12")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "claims")
    teacher = tiny_teacher(work, data)
    for name, claim in (("c3-ablation.ini", "C3"), ("c8-context.ini", "C8"), ("c11-epochs.ini", "C11"),
                        ("c12-distill.ini", "C12")):
        text = open(os.path.join(root, name)).read()
        body = text[text.index("\n[", text.index("[study]")):]  # the arms and ablations
        body = re.sub(r"(?m)^teacher = .*$", f"teacher = {teacher}", body)
        spec = os.path.join(work, "micro_" + name)
        write_study(spec, data, arms=body, budgets="6e9, 1.2e10, 2.4e10, 4.8e10")
        out = os.path.join(work, "micro_" + name[:-4])
        r = run(["study", "run", spec, f"out={out}", "workers=2", "threads=1"])
        check(r.returncode == 0, f"{name}, micro: runs ({r.stderr.strip()[-300:]})")
        r = run(["report", out, "--boot", "100"])
        rows_ = list(csv.DictReader(open(os.path.join(out, "report", "claims.csv")))) if r.returncode == 0 else []
        row = next((x for x in rows_ if x.get("id") == claim), None)
        check(row is not None and not row["verdict"].startswith("not tested"),
              f"{name}, micro: the report judges {claim}: {row['verdict'] if row else r.stderr.strip()[-200:]}"
              f" | {row['result'][:160] if row else ''}")


def make_corpus(root, name, docs, val_every=8):
    """A corpus directory written by hand (as `corpus build` would): every val_every-th document held out."""
    import hashlib
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    parts = [[], []]
    for i, doc in enumerate(docs):
        parts[i % val_every == 0].append(doc)
    blobs = [b"".join(x + b"\x1e\n" for x in p) for p in parts]
    for blob, f in zip(blobs, ("train.txt", "val.txt")):
        open(os.path.join(d, f), "wb").write(blob)
    json.dump({"name": name, "val_frac": 1 / val_every, "docs_train": len(parts[0]), "docs_val": len(parts[1]),
               "bytes_train": sum(map(len, parts[0])), "bytes_val": sum(map(len, parts[1])),
               "sha256_train": hashlib.sha256(blobs[0]).hexdigest(), "sha256_val": hashlib.sha256(blobs[1]).hexdigest()},
              open(os.path.join(d, "manifest.json"), "w"))
    return d


def test_quality(work, data):
    """C10: `corpus filter` derives corpora (noise, perplexity, random) deterministically with the held-out
    text untouched; bad options are refused; a study whose arms train on them runs, and one whose arm corpus
    has other held-out text is refused; the report judges C10 on the micro version of c10-quality.ini."""
    print("data quality (C10): corpus filter and per-arm data")
    root = os.path.join(work, "data")
    text = open(data, "rb").read()
    paras = [p.strip() for p in re.split(rb"\n\s*\n", text) if len(p.strip()) > 200]
    docs, cur = [], b""
    for p in paras:  # documents of about 3 KB
        cur += p + b"\n\n"
        if len(cur) > 3000:
            docs.append(cur)
            cur = b""
    make_corpus(root, "lic", docs)
    env = dict(os.environ, ALGOPROG_DATA=root)

    def go(args):
        r = subprocess.run([BIN] + args, capture_output=True, env=env)
        r.stdout, r.stderr = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
        return r

    ref = os.path.join(work, "c10_ref")
    r = go(["train", "llama-2023", "data=lic", f"out={ref}", "d_model=64", "n_layers=2", "n_heads=2", "context=64",
            "batch=16", "steps=150", "eval_every=150", "eval_tokens=2048", "final_eval_tokens=2048", "log_every=0"])
    check(r.returncode == 0, f"a reference model trains on the corpus ({r.stderr.strip()[-200:]})")
    cmds = {"lic-noisy": ["lic", "--noise", "0.5"],
            "lic-noisy-ppl": ["lic-noisy", "--score", "perplexity", "--model", ref, "--keep", "0.5"],
            "lic-noisy-rand": ["lic-noisy", "--score=random", "--keep=0.5"],
            "lic-ppl": ["lic", "score=perplexity", f"model={ref}", "keep=0.5"]}
    for name, args in cmds.items():
        r = go(["corpus", "filter"] + args + [f"out={name}"])
        check(r.returncode == 0 and "held out: unchanged" in r.stdout, f"corpus filter -> {name} ({r.stderr.strip()[-200:]})")
    rd = lambda n, f: open(os.path.join(root, n, f), "rb").read()
    check(all(rd(n, "val.txt") == rd("lic", "val.txt") for n in cmds), "every derived corpus keeps the held-out text byte for byte")
    noisy = list(csv.DictReader(open(os.path.join(root, "lic-noisy", "scores.tsv")), delimiter="\t"))
    n_docs = len(noisy)
    check(sum(int(x["noised"]) for x in noisy) == round(0.5 * n_docs), f"--noise 0.5 shuffles half of {n_docs} documents")
    train, noised_train = rd("lic", "train.txt"), rd("lic-noisy", "train.txt")
    check(len(train) == len(noised_train) and sorted(train) == sorted(noised_train) and train != noised_train,
          "shuffled words keep the bytes and the length, not the order")
    ppl = list(csv.DictReader(open(os.path.join(root, "lic-noisy-ppl", "scores.tsv")), delimiter="\t"))
    kept = [x for x in ppl if x["kept"] == "1"]
    check(len(kept) == round(0.5 * n_docs), f"--keep 0.5 keeps {len(kept)} of {n_docs} documents")
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    s_noisy = mean([float(p["score"]) for p, q in zip(ppl, noisy) if q["noised"] == "1"])
    s_clean = mean([float(p["score"]) for p, q in zip(ppl, noisy) if q["noised"] == "0"])
    kept_noisy = sum(1 for p, q in zip(ppl, noisy) if q["noised"] == "1" and p["kept"] == "1")
    check(s_noisy > s_clean and kept_noisy < len(kept) / 2,
          f"the reference model scores shuffled documents worse ({s_noisy:.3f} vs {s_clean:.3f} bits/byte) and the "
          f"filter keeps fewer of them ({kept_noisy} of {len(kept)})")
    again = go(["corpus", "filter"] + cmds["lic-noisy-ppl"] + ["out=lic-again"])
    check(again.returncode == 0 and rd("lic-again", "train.txt") == rd("lic-noisy-ppl", "train.txt"),
          "the same command makes the same corpus")
    m = json.load(open(os.path.join(root, "lic-noisy-ppl", "manifest.json")))
    check(m.get("derived", {}).get("source") == "lic-noisy" and m["derived"]["keep"] == 0.5, "the manifest names the derivation")
    for args, fragment in ((["lic", "--keep", "0.5", "out=x"], "--keep needs --score"),
                           (["lic", "--score", "perplexity", "--keep", "0.5", "out=x"], "go together"),
                           (["lic", "--score", "loud", "--keep", "0.5", "out=x"], "use perplexity or random"),
                           (["lic", "--noise", "1.5", "out=x"], "noise=1.5"),
                           (["lic", "--noise", "0.5"], "needs out=NAME"),
                           (["lic", "--noise", "0.5", "out=lic"], "a name of its own"),
                           (["lic", "--noise", "0.5", "out=Bad/Name"], "lower-case letters"),
                           (["nosuch", "--noise", "0.5", "out=x"], "no corpus 'nosuch'"),
                           (["lic", "--score", "perplexity", "--model", os.path.join(work, "nothing"), "--keep", "0.5",
                             "out=x"], "nothing")):
        r = go(["corpus", "filter"] + args)
        check(r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr,
              f"corpus filter {' '.join(args)[:60]} -> '{fragment}' ({r.returncode}: {r.stderr.strip()[:160]})")
    # a study whose arm trains on a corpus with other held-out text is refused
    make_corpus(root, "other", docs, val_every=5)
    spec = os.path.join(work, "c10_bad.ini")
    write_study(spec, "lic", arms="[arm a]\npreset = llama-2023\n[arm b]\npreset = llama-2023\ndata = other\n")
    r = go(["study", "run", spec, f"out={os.path.join(work, 'c10_bad')}"])
    check(r.returncode == 2 and "held-out text differs" in r.stderr, f"an arm corpus with other held-out text is refused "
          f"({r.returncode}: {r.stderr.strip()[:200]})")
    # the claim study, micro
    body = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "claims",
                             "c10-quality.ini")).read()
    body = body[body.index("\n[", body.index("[study]")):].replace("austen", "lic")
    spec = os.path.join(work, "micro_c10-quality.ini")
    write_study(spec, "lic", arms=body, budgets="6e9, 1.2e10, 2.4e10, 4.8e10")
    out = os.path.join(work, "micro_c10-quality")
    r = go(["study", "run", spec, f"out={out}", "workers=2", "threads=1"])
    check(r.returncode == 0, f"c10-quality.ini, micro: runs ({r.stderr.strip()[-300:]})")
    r = go(["report", out, "--boot", "100"])
    rows_ = list(csv.DictReader(open(os.path.join(out, "report", "claims.csv")))) if r.returncode == 0 else []
    row = next((x for x in rows_ if x.get("id") == "C10"), None)
    check(row is not None and not row["verdict"].startswith("not tested") and "noisy over raw" in row["result"]
          and "random control" in row["result"],
          f"c10-quality.ini, micro: the report judges C10: {row['verdict'] if row else r.stderr.strip()[-200:]}"
          f" | {row['result'][:200] if row else ''}")
    # the report's CEGs composed into progress per year (claims C13/C14)
    arms = sorted({x["arm"] for x in csv.DictReader(open(os.path.join(out, "report", "ceg.csv")))}) or ["raw"]
    c = go(["account", "compose", out, f"{arms[0]}=2020", f"{arms[-1]}=2023", "compute_growth=4", "--json"])
    doc = json.loads(c.stdout) if c.returncode == 0 else {}
    check(c.returncode == 0 and len(doc.get("gains", [])) == 2 and doc["total"][0] > 0
          and doc["total_extrapolated"][0] > 0,
          f"account compose reads the report's CEGs: total {doc.get('total')} ({c.stderr.strip()[-200:]})")
    c = go(["account", "compose", out, "no-such-arm=2020"])
    check(c.returncode == 2 and "the sources have" in c.stderr, f"an unknown arm is refused: {c.stderr.strip()}")


def test_help():
    print("--help")
    for args in (["train"], ["sample"], ["eval"], ["config"], ["keys"], ["corpus"], ["tokenize"], ["study"], ["study", "run"],
                 ["fit"], ["account"], ["report"], ["bench"], []):
        for flag in ("--help", "-h"):
            r = run(args + [flag])
            ok = r.returncode == 0 and "usage" in r.stdout and not r.stderr
            check(ok, f"algoprog {' '.join(args + [flag])}: usage on stdout, exit 0" + ("" if ok else f" (rc {r.returncode}: {r.stderr.strip()[:120]})"))


def main():
    global BIN
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    BIN, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "licenses.txt")
    with open(data, "wb") as out:
        for f in sorted(glob.glob("/usr/share/common-licenses/*")):
            if os.path.isfile(f) and not os.path.islink(f):
                out.write(open(f, "rb").read())
    micro_out, spec, duration = test_micro(work, data)
    test_kill(work, spec, micro_out, duration)
    test_disk_full(work, spec, micro_out)
    test_workers(work, spec)
    test_sweep(work, data)
    test_bad_input(work, data, micro_out)
    test_signals(work, spec, {1: micro_out, 2: micro_out})
    test_two_processes(work, spec, micro_out)
    test_hostile_registry(work, spec, micro_out)
    test_data_changed(work, data)
    test_files_lock(micro_out)
    test_shipped_studies(work, data)
    test_claim_studies(work, data)
    test_quality(work, data)
    test_help()
    print(f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
