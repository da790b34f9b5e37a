#!/usr/bin/python3
"""test_train.py - end-to-end tests of `algoprog train` and `algoprog sample`.

usage: test_train.py ALGOPROG_BINARY WORKDIR

- the same seed twice gives bit-identical metrics and parameters; another seed does not
- a run's config.ini is a recipe: `algoprog train RUN/config.ini out=OTHER` trains the same run again,
  with the same metrics and held-out losses; metrics.jsonl's step-0 lr is the first step's rate
- a run killed with SIGKILL at random moments (and stopped with SIGINT or SIGTERM) and resumed ends with
  exactly the metrics and parameters of a run never interrupted
- one trainer a run directory: a second train or resume into a directory in training is refused
  naming the holder's pid, and after kill -9 the lock is not stale
- a tiny llama-2023 learns real text: held-out bits/byte fall well below the unigram entropy
- bad input (missing data, unknown keys, a used run directory, corrupt or truncated checkpoints)
  gives a clear error and a non-zero exit, never a crash
- sampling is deterministic for a seed and produces the requested number of bytes
- reliability: a NaN stops the run with its step, or rolls back and halves the LR when asked; a
  run too large for memory is refused with the estimate before allocating; a full disk (ulimit
  -f) during a checkpoint write is a clear error that leaves the last checkpoint intact, and the
  run continues once space is back
"""
import configparser
import glob
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import apformat  # noqa: E402

TIMING = {"tokens_per_s", "elapsed_s"}
FAILURES = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def run(args, binary=False):
    r = subprocess.run([BIN] + args, capture_output=True)
    r.stderr = r.stderr.decode("utf-8", "replace")
    if not binary:
        r.stdout = r.stdout.decode("utf-8", "replace")
    return r


def metrics(d):
    rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def params(d):
    f = apformat.read(os.path.join(d, "checkpoint.bin"), verify_crc=False)
    return {k: v for k, v in f.tensors.items()}


def same_tensors(a, b):
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def tiny(data, out, *extra):
    return ["train", "llama-2023", f"data={data}", f"out={out}", "d_model=64", "n_layers=2", "n_heads=4", "context=64",
            "batch=8", "eval_every=20", "eval_tokens=4096", "log_every=0", "threads=2"] + list(extra)


def test_determinism(data, work):
    print("determinism")
    a, b, c = (os.path.join(work, n) for n in ("det_a", "det_b", "det_c"))
    for d, seed in ((a, 1), (b, 1), (c, 2)):
        r = run(tiny(data, d, "steps=60", f"seed={seed}"))
        check(r.returncode == 0, f"train seed={seed} exits 0" + ("" if r.returncode == 0 else ": " + r.stderr))
    check(metrics(a) == metrics(b), "same seed: metrics identical")
    check(same_tensors(params(a), params(b)), "same seed: parameters and optimiser state identical")
    check(metrics(a) != metrics(c), "another seed: different metrics")


def test_config_roundtrip(data, work):
    print("config.ini trains the run again")
    a, b = os.path.join(work, "rt_a"), os.path.join(work, "rt_b")
    r = run(tiny(data, a, "steps=30", "eval_every=1", "seed=11"))
    check(r.returncode == 0, "train the original run" + ("" if r.returncode == 0 else ": " + r.stderr))
    ini = open(os.path.join(a, "config.ini")).read()
    check(all(f"[{s}]" in ini for s in ("model", "optim", "train")), "config.ini has [model], [optim], [train]")
    r = run(["train", os.path.join(a, "config.ini"), f"out={b}"])
    check(r.returncode == 0, "`algoprog train RUN/config.ini out=OTHER` trains" + ("" if r.returncode == 0 else
                                                                                 ": " + r.stderr))
    fa, fb = (json.load(open(os.path.join(d, "final.json"))) for d in (a, b))
    check(all(fa[k] == fb[k] for k in ("val_loss", "val_bpb", "test_loss", "test_bpb", "params_nonembedding")),
          f"the same held-out losses (test {fa['test_loss']} and {fb['test_loss']})")
    check(metrics(a) == metrics(b), "the same metrics, line for line")
    check(open(os.path.join(b, "config.ini")).read() == ini.replace(f'out = "{a}"', f'out = "{b}"'),
          "the same config.ini but for out")
    r = run(["train", os.path.join(a, "config.ini")])
    check(r.returncode != 0 and "already holds a run" in r.stderr, "without out= it refuses to train over the run")
    # docs/FORMATS.md, metrics.jsonl: the step-0 line's lr is the first step's (lr / warmup), as is step 1's
    rows = metrics(a)
    cfg = configparser.ConfigParser()
    cfg.read_string(ini)
    first = float(cfg["optim"]["lr"]) / int(cfg["optim"]["warmup"])
    check(abs(rows[0]["lr"] - first) < 1e-12 * first and rows[1]["lr"] == rows[0]["lr"] < rows[2]["lr"],
          f"metrics.jsonl lr: step 0 {rows[0]['lr']} = step 1 {rows[1]['lr']} = lr / warmup, step 2 {rows[2]['lr']}")


def test_resume(data, work):
    print("kill -9 and resume")
    ref = os.path.join(work, "res_ref")
    steps = ["steps=200", "checkpoint_every=10", "seed=3"]
    r = run(tiny(data, ref, *steps))
    check(r.returncode == 0, "uninterrupted reference run")
    t0 = time.time()
    run(tiny(data, os.path.join(work, "res_time"), *steps))
    duration = time.time() - t0
    rng = random.Random(7)
    kills = 0
    trial = 0
    while kills < 20 and trial < 10:  # runs of up to 5 kills each, until at least 20 SIGKILLs have landed
        d = os.path.join(work, f"res_kill{trial}")
        trial += 1
        for attempt in range(12):
            if os.path.exists(os.path.join(d, "final.json")):
                break
            ck = os.path.join(d, "checkpoint.bin")
            cmd = ["train", "--resume", d] if os.path.exists(ck) else tiny(data, d, *steps)
            p = subprocess.Popen([BIN] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if attempt < 5:
                time.sleep(rng.uniform(0.05, duration * 0.45))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    kills += 1
            p.wait()
        check(os.path.exists(os.path.join(d, "final.json")), f"run {trial} completes after kills")
        check(metrics(d) == metrics(ref), f"run {trial}: metrics equal the uninterrupted run's")
        check(same_tensors(params(d), params(ref)), f"run {trial}: parameters equal the uninterrupted run's")
    print(f"  ({kills} SIGKILLs at random moments)")
    check(kills >= 20, f"at least 20 kills landed ({kills})")
    # SIGINT / SIGTERM: checkpoint, exit 130 / 143, resume
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        name = signal.Signals(sig).name
        d = os.path.join(work, f"res_{name}")
        p = subprocess.Popen([BIN] + tiny(data, d, *steps), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        while not os.path.exists(os.path.join(d, "checkpoint.bin")) and p.poll() is None:
            time.sleep(0.01)
        p.send_signal(sig)
        _, err = p.communicate()
        check(p.returncode in (0, code), f"{name} exits {code} (or 0 if already done), got {p.returncode}")
        if p.returncode == code:
            check("--resume" in err, f"{name} message says how to resume")
        r = run(["train", "--resume", d])
        check(r.returncode == 0 and metrics(d) == metrics(ref), f"after {name}, resume matches the uninterrupted run")
        check(not glob.glob(os.path.join(d, "*.tmp")), "no temporary files left behind")

def test_moe_resume(data, work):
    print("mixture of experts: kill -9 and resume, router bias included")
    steps = ["steps=60", "checkpoint_every=10", "seed=4", "moe_experts=4", "moe_top_k=2", "moe_shared_experts=1",
             "moe_d_ff=64", "moe_balance=bias", "moe_bias_rate=0.01"]
    ref = os.path.join(work, "moe_ref")
    r = run(tiny(data, ref, *steps))
    check(r.returncode == 0, f"an MoE run trains ({r.stderr.strip()[-200:]})")
    bias = params(ref).get("p.moe_bias")
    check(bias is not None and abs(bias).max() > 0, "its router biases moved and are checkpointed")
    d = os.path.join(work, "moe_kill")
    kill_and_resume(tiny(data, d, *steps), d, ref, "MoE (router biases, optimiser state)")


def kill_and_resume(args, d, ref, what):
    """Starts `train args` into d, kill -9s it once it has a checkpoint, resumes it, and checks that
    its metrics and every tensor equal those of the uninterrupted run in ref."""
    p = subprocess.Popen([BIN] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(os.path.join(d, "checkpoint.bin")) and p.poll() is None:
        time.sleep(0.01)
    killed = p.poll() is None
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = run(["train", "--resume", d])
    check(r.returncode == 0 and metrics(d) == metrics(ref) and same_tensors(params(d), params(ref)),
          f"{what}: killed {'mid-run' if killed else 'after the end'} and resumed, metrics and every tensor equal "
          f"the uninterrupted run's")


def test_ema(data, work):
    print("ema_decay and schedulefree: evaluation on an average; training unchanged; kill -9 and resume")
    steps = ["steps=60", "checkpoint_every=10", "seed=5"]
    plain, ema = os.path.join(work, "ema_off"), os.path.join(work, "ema_on")
    r0 = run(tiny(data, plain, *steps))
    r1 = run(tiny(data, ema, *steps, "ema_decay=0.9"))
    check(r0.returncode == 0 and r1.returncode == 0, f"runs with and without ema_decay ({r1.stderr.strip()[-200:]})")
    a, b = metrics(plain), metrics(ema)
    check([x["train_loss"] for x in a] == [x["train_loss"] for x in b],
          "training losses are the same step for step (the average does not train)")
    check(a[0]["val_loss"] == b[0]["val_loss"] and a[-1]["val_loss"] != b[-1]["val_loss"],
          f"held-out losses are the average's ({a[-1]['val_loss']:.4f} trained weights, {b[-1]['val_loss']:.4f} "
          f"average)")
    pe = params(ema)
    check(same_tensors({k: v for k, v in pe.items() if not k.startswith("e.")}, params(plain)) and
          any(k.startswith("e.") for k in pe), "the checkpoint holds the trained weights and the average (e.*)")
    # kill -9 and resume: the average (e.*), and schedule-free's z and its averaging scalars in [meta]
    for name, extra in (("ema", ["ema_decay=0.9"]), ("schedulefree", ["optimizer=schedulefree", "schedule=constant"])):
        ref = ema if name == "ema" else os.path.join(work, "sf_ref")
        if name != "ema":
            r = run(tiny(data, ref, *steps, *extra))
            check(r.returncode == 0 and metrics(ref)[-1]["val_bpb"] < metrics(ref)[0]["val_bpb"] - 1,
                  f"a schedule-free run learns ({r.stderr.strip()[-200:]})")
        d = os.path.join(work, name + "_kill")
        kill_and_resume(tiny(data, d, *steps, *extra), d, ref, name)
    r = run(tiny(data, os.path.join(work, "sf_bad"), "optimizer=schedulefree"))
    check(r.returncode == 2 and "set schedule = constant" in r.stderr, "schedulefree with a decay schedule is refused")


def test_window_warmup(data, work):
    print("window_warmup: the training window grows, evaluations use the model's, FLOPs follow each step's window")
    full, warm = os.path.join(work, "win_full"), os.path.join(work, "win_warm")
    steps = ["steps=40", "seed=6", "eval_every=20"]
    r0 = run(tiny(data, full, *steps))
    r1 = run(tiny(data, warm, *steps, "window_warmup=1", "window_start=16"))
    check(r0.returncode == 0 and r1.returncode == 0, f"runs with and without window_warmup ({r1.stderr.strip()[-200:]})")
    a, b = metrics(full), metrics(warm)
    check(a[0]["val_loss"] == b[0]["val_loss"], "the step-0 evaluation sees the whole context in both")
    check(a[1]["train_loss"] != b[1]["train_loss"], "training differs (a narrower window early on)")
    # windows 16, 32, 48 for steps 0-9, 10-19, 20-29 (ceil to 16 of 16 + 48 s/40), then the whole context
    per = {}
    for w in (16, 32, 48, 0):
        c = run(["config", "llama-2023", "d_model=64", "n_layers=2", "n_heads=4", "context=64", "batch=8", "vocab=257",
                 f"window={w}"])
        per[w] = float(re.search(r"per step: \d+ tokens, ([0-9.e+]+) FLOPs exact", c.stdout).group(1))
    want = sum(per[16 if s < 1 else 32 if s < 14 else 48 if s < 27 else 0] for s in range(40))
    got = b[-1]["flops"]
    check(abs(got - want) <= 1e-5 * want and got < a[-1]["flops"],
          f"FLOPs are each step's window's: {got:.6g} (want {want:.6g}; {a[-1]['flops']:.6g} without the warmup)")
    r = run(tiny(data, os.path.join(work, "win_bad"), "window_warmup=1", "window_start=64"))
    check(r.returncode == 2 and "window_start=64" in r.stderr, "a warmup that starts at the full window is refused")


def test_curricula(data, work):
    print("batch_warmup and seq_warmup: each step's rows and length, its tokens and FLOPs; kill -9 and resume")
    steps = ["steps=40", "seed=7", "checkpoint_every=5"]
    ramp = ["batch_warmup=0.5", "batch_start=2", "seq_warmup=0.5", "seq_start=16"]
    plain, ref = os.path.join(work, "cur_plain"), os.path.join(work, "cur_ref")
    r0 = run(tiny(data, plain, *steps))
    r1 = run(tiny(data, ref, *steps, *ramp))
    check(r0.returncode == 0 and r1.returncode == 0, f"runs with and without the curricula ({r1.stderr.strip()[-200:]})")
    a, b = metrics(plain), metrics(ref)
    check(a[0]["val_loss"] == b[0]["val_loss"], "the step-0 evaluation is the same (whole batch and context)")
    # steps 0..19 ramp: rows ceil to 2 of 2 + 6 s/20, length ceil to 8 of 16 + 48 s/20; then 8 x 64
    shapes = []
    for s in range(40):
        g = s / 20
        rows = 8 if g >= 1 else min(8, math.ceil((2 + 6 * g) / 2) * 2)
        length = 64 if g >= 1 else min(64, math.ceil((16 + 48 * g) / 8) * 8)
        shapes.append((rows, length))
    per = {}
    for shape in set(shapes):
        c = run(["config", "llama-2023", "d_model=64", "n_layers=2", "n_heads=4", f"context={shape[1]}",
                 f"batch={shape[0]}", "vocab=257"])
        per[shape] = float(re.search(r"per step: \d+ tokens, ([0-9.e+]+) FLOPs exact", c.stdout).group(1))
    want_tokens, want_flops = sum(r * t for r, t in shapes), sum(per[x] for x in shapes)
    check(b[-1]["tokens"] == want_tokens and a[-1]["tokens"] == 40 * 8 * 64,
          f"tokens count each step's rows x length: {b[-1]['tokens']:.0f} (want {want_tokens}; {a[-1]['tokens']:.0f} "
          f"without)")
    check(abs(b[-1]["flops"] - want_flops) <= 1e-6 * want_flops,
          f"FLOPs are each step's shape's: {b[-1]['flops']:.6g} (want {want_flops:.6g})")
    c = run(["config", "llama-2023", "d_model=64", "n_layers=2", "n_heads=4", "context=64", "batch=8", "vocab=257",
             *ramp])
    check("per step (the mean over the curriculum)" in c.stdout, "`algoprog config` gives a curriculum's mean step")
    d = os.path.join(work, "cur_kill")
    kill_and_resume(tiny(data, d, *steps, *ramp), d, ref, "inside the ramp")
    r = run(tiny(data, os.path.join(work, "cur_bad"), "batch_warmup=0.5", "batch_start=8"))
    check(r.returncode == 2 and "batch_start=8" in r.stderr, "a ramp that starts at the full batch is refused")


def test_distillation(data, work):
    print("teacher: distillation from a finished run; its FLOPs apart; refusals; kill -9 and resume")
    teacher, plain, student = (os.path.join(work, n) for n in ("dist_teacher", "dist_plain", "dist_student"))
    r = run(tiny(data, teacher, "steps=60", "seed=2", "d_model=96"))
    check(r.returncode == 0, f"a teacher trains ({r.stderr.strip()[-200:]})")
    steps = ["steps=40", "seed=8", "checkpoint_every=5", "d_model=32", "n_heads=2"]
    distil = [f"teacher={teacher}", "distill_weight=0.5", "distill_temperature=2"]
    r0 = run(tiny(data, plain, *steps))
    r1 = run(tiny(data, student, *steps, *distil))
    check(r0.returncode == 0 and r1.returncode == 0, f"a student trains with and without it ({r1.stderr.strip()[-200:]})")
    a, b = metrics(plain), metrics(student)
    check(a[0]["val_loss"] == b[0]["val_loss"] and a[-1]["train_loss"] != b[-1]["train_loss"],
          "same start, different training (the soft targets move the student)")
    check(a[-1]["flops"] == b[-1]["flops"], "the student's FLOPs do not include the teacher's")
    c = run(["config", "llama-2023", "d_model=96", "n_layers=2", "n_heads=4", "context=64", "batch=8", "vocab=257"])
    fwd = float(re.search(r"FLOPs exact \(([0-9.e+]+) forward", c.stdout).group(1))
    tf = json.load(open(os.path.join(student, "final.json")))["teacher_flops"]
    check(abs(tf - 40 * fwd) <= 1e-5 * tf, f"final.json counts the teacher's forwards: {tf:.6g} (want 40 x {fwd:.6g})")
    d = os.path.join(work, "dist_kill")
    kill_and_resume(tiny(data, d, *steps, *distil), d, student, "distilled")
    for args, msg in ((["teacher=" + os.path.join(work, "empty")], "holds no checkpoint.bin"),
                      ([f"teacher={teacher}", "context=128"], "shorter than this run's 128"),
                      ([f"teacher={teacher}", "z_loss=0.1"], "teacher and z_loss")):
        r = run(tiny(data, os.path.join(work, "dist_bad"), "steps=5", *args))
        check(r.returncode == 2 and msg in r.stderr, f"refused: {msg} ({r.stderr.strip()[-160:]})")
        shutil.rmtree(os.path.join(work, "dist_bad"), ignore_errors=True)


def test_eval_context(data, work):
    print("eval: held-out loss by position at the training context and beyond (rope scalings, alibi, learned)")
    rope, alibi, learned = (os.path.join(work, n) for n in ("ctx_rope", "ctx_alibi", "ctx_learned"))
    for d, extra in ((rope, ["eval_contexts=2,4"]), (alibi, ["pos=alibi", "eval_contexts=4"]), (learned, ["pos=learned"])):
        r = run(tiny(data, d, "steps=30", "final_eval_tokens=4096", *extra))
        check(r.returncode == 0, f"{os.path.basename(d)} trains ({r.stderr.strip()[-200:]})")
    final = json.load(open(os.path.join(rope, "final.json")))
    r = run(["eval", rope, "tokens=4096", "--json"])
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    check(doc and abs(doc["bpb"] - final["test_bpb"]) < 1e-4 * final["test_bpb"] and len(doc["buckets"]) == 1,
          f"at its own context, eval repeats the run's final test loss ({doc.get('bpb')} vs {final['test_bpb']})")
    unscaled = None
    for sc in ("none", "linear", "ntk", "yarn"):
        r = run(["eval", rope, "eval_context=256", f"rope_scaling={sc}", "tokens=4096", "--json"])
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        unscaled = unscaled or doc.get("bpb")
        check(sc == "none" or doc.get("bpb") != unscaled, f"rope_scaling={sc} changes the tables the model uses")
        ok = doc and [b["from"] for b in doc["buckets"]] == [0, 64, 128] and doc["rope_factor"] == (1 if sc == "none" else 4)
        check(ok and all(math.isfinite(b["bpb"]) for b in doc["buckets"]),
              f"rope, 4x the context, rope_scaling={sc}: buckets [0, 64), [64, 128), [128, 256) "
              f"({', '.join(f'{b[chr(98) + chr(112) + chr(98)]:.3f}' for b in doc.get('buckets', []))})")
    r = run(["eval", alibi, "eval_context=256", "tokens=4096"])
    check(r.returncode == 0 and "[   128,    256)" in r.stdout, "alibi runs beyond its context as it is")
    # eval_contexts: the run evaluates itself beyond its context at the end, as `eval` does
    ce = final.get("context_eval", [])
    check([(e["multiple"], e["rope_scaling"]) for e in ce] == [(m, s) for m in (2, 4) for s in ("none", "linear", "ntk", "yarn")],
          f"eval_contexts=2,4 on rope: final.json holds 2 x 4 scalings ({[(e['multiple'], e['rope_scaling']) for e in ce]})")
    for e in ce:
        r = run(["eval", rope, f"eval_context={64 * e['multiple']}", f"rope_scaling={e['rope_scaling']}", "tokens=4096",
                 "--json"])
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        check(abs(doc.get("bpb", 0) - e["test_bpb"]) <= 1e-5 * e["test_bpb"] and
              abs(doc.get("bpb_beyond", 0) - e["test_bpb_beyond"]) <= 1e-5 * e["test_bpb_beyond"],
              f"context_eval {e['multiple']}x {e['rope_scaling']} = `algoprog eval` ({e['test_bpb']:.5f}, "
              f"{doc.get('bpb', float('nan')):.5f})")
    ce = json.load(open(os.path.join(alibi, "final.json"))).get("context_eval", [])
    check(len(ce) == 1 and ce[0]["rope_scaling"] == "none" and math.isfinite(ce[0]["test_bpb_beyond"]),
          "eval_contexts=4 on alibi: one evaluation, as it is")
    for args, msg in ((["pos=learned", "eval_contexts=2"], "learned positions"),
                      (["eval_contexts=4,2"], "increasing whole multiples"),
                      (["eval_contexts=1"], "increasing whole multiples"),
                      (["eval_contexts=2,x"], "increasing whole multiples"),
                      (["context=1024", "eval_contexts=64"], "fewer than one window")):
        r = run(tiny(data, os.path.join(work, "ctx_bad"), "steps=2", *args))
        check(r.returncode == 2 and msg in r.stderr, f"refused: {' '.join(args)} -> '{msg}' ({r.stderr.strip()[-160:]})")
        shutil.rmtree(os.path.join(work, "ctx_bad"), ignore_errors=True)
    # a context-extension fine-tune: init_from loads the run's parameters exactly (0 steps = `eval` with YaRN), and
    # a short fine-tune at 4x the context with YaRN lowers the loss past the training context
    yarn = ["context=256", "rope_scaling=yarn", "rope_factor=4", "rope_original_context=64", "final_eval_tokens=4096"]
    ft0, ft = os.path.join(work, "ctx_ft0"), os.path.join(work, "ctx_ft")
    r = run(tiny(data, ft0, f"init_from={rope}", "steps=0", *yarn))
    r2 = run(["eval", rope, "eval_context=256", "rope_scaling=yarn", "tokens=4096", "--json"])
    f0 = json.load(open(os.path.join(ft0, "final.json"))) if r.returncode == 0 else {}
    y = json.loads(r2.stdout) if r2.returncode == 0 else {}
    check(f0 and y and abs(f0["test_bpb"] - y["bpb"]) <= 1e-5 * y["bpb"],
          f"init_from with 0 steps at 4x with YaRN = `eval` of the run with YaRN ({f0.get('test_bpb')} vs {y.get('bpb')}; "
          f"{r.stderr.strip()[-160:]})")
    r = run(tiny(data, ft, f"init_from={rope}", "steps=20", "lr=1e-3", "eval_contexts=2", *yarn))
    f1 = json.load(open(os.path.join(ft, "final.json"))) if r.returncode == 0 else {}
    r3 = run(["eval", ft, "tokens=4096", "--json"])
    e3 = json.loads(r3.stdout) if r3.returncode == 0 else {}
    check(f1 and e3 and e3.get("rope_scaling") == "yarn" and e3.get("bpb", 9) < y.get("bpb", 0),
          f"20 fine-tune steps at 4x with YaRN lower the loss at 4x ({y.get('bpb')} -> {e3.get('bpb')}); eval keeps "
          f"the run's own scaling ({e3.get('rope_scaling')})")
    check(f1 and [e["multiple"] for e in f1.get("context_eval", [])] == [2] * 4,
          "a fine-tuned run evaluates itself at 2x its own context too")
    for args, msg in (([f"init_from={rope}", "d_model=32", "steps=1"], "must have this run's shapes"),
                      ([f"init_from={os.path.join(work, 'nothing')}", "steps=1"], "not found")):
        r = run(tiny(data, os.path.join(work, "ctx_bad"), *args))
        check(r.returncode == 2 and msg in r.stderr, f"refused: init_from -> '{msg}' ({r.stderr.strip()[-160:]})")
        shutil.rmtree(os.path.join(work, "ctx_bad"), ignore_errors=True)
    r = run(["eval", alibi, "eval_context=256", "rope_scaling=yarn"])
    check(r.returncode == 2 and "needs pos=rope" in r.stderr, f"rope_scaling on alibi is refused ({r.stderr.strip()})")
    r = run(["eval", learned, "eval_context=256"])
    check(r.returncode == 2 and "learned positions" in r.stderr, f"learned positions beyond the context are refused "
          f"({r.stderr.strip()[-120:]})")


def test_lock(data, work):
    print("one trainer a run directory (lock)")
    # two fresh runs started together (no checkpoint yet, so only the lock can tell), then a resume
    # into a run in training (it has checkpoints), then kill -9 and a resume that must not find a stale lock
    for phase, every in (("fresh", "checkpoint_every=100000"), ("resume", "checkpoint_every=10")):
        d = os.path.join(work, f"locked_{phase}")
        first = os.path.join(d, "checkpoint.bin" if phase == "resume" else "metrics.jsonl")
        p = subprocess.Popen([BIN] + tiny(data, d, "steps=3000", every), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        while not os.path.exists(first) and p.poll() is None:
            time.sleep(0.01)
        r = run(tiny(data, d, "steps=3000", every) if phase == "fresh" else ["train", "--resume", d])
        check(r.returncode == 2 and f"in use by process {p.pid}" in r.stderr,
              f"a {phase} run into a directory being trained is refused, naming the holder ({r.returncode}: "
              f"{r.stderr.strip()})")
        p.kill()
        p.wait()
    r = run(["train", "--resume", d, "steps=60"])
    check(r.returncode == 0 and os.path.exists(os.path.join(d, "final.json")),
          f"after kill -9 the lock is not stale: resume trains on ({r.returncode}: {r.stderr.strip()})")
    rows = [json.loads(line)["step"] for line in open(os.path.join(d, "metrics.jsonl"))]
    check(rows == sorted(set(rows)), "metrics hold one run's steps, in order")


def test_learns(data, work):
    print("learning")
    d = os.path.join(work, "learn")
    r = run(tiny(data, d, "steps=300", "eval_every=100", "d_model=96"))
    check(r.returncode == 0, "tiny llama-2023 trains 300 steps")
    rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
    unigram = float(next(line for line in r.stdout.splitlines() if "unigram" in line)
                    .split("held-out unigram ")[1].split()[0])
    first, last = rows[0]["val_bpb"], rows[-1]["val_bpb"]
    print(f"  val bits/byte {first:.3f} -> {last:.3f}; held-out unigram entropy {unigram:.3f}")
    check(last < 0.75 * unigram, "held-out bits/byte below 0.75 x unigram entropy")
    final = json.load(open(os.path.join(d, "final.json")))
    # the final evaluation reads final_eval_tokens of each held-out half (more than eval_tokens): close, not equal
    check(abs(final["val_bpb"] / last - 1) < 0.05 and 0 < final["test_bpb"] < final["unigram_bpb"] and
          final["flops"] > 0 and final["params"] > 0,
          f"final.json consistent (validation {final['val_bpb']:.4f}, test {final['test_bpb']:.4f}, unigram "
          f"{final['unigram_bpb']:.4f})")
    # bytes tokenizer on a file without document separators: one token is one byte
    check(all(abs(r["val_bpb"] - r["val_loss"] / math.log(2)) < 1e-6 for r in rows), "bytes: bits/byte = loss / ln 2")
    s1 = run(["sample", d, "--prompt", "The ", "--tokens", "50", "--seed", "5"], binary=True)
    s2 = run(["sample", d, "--prompt", "The ", "--tokens", "50", "--seed", "5"], binary=True)
    check(s1.returncode == 0 and s1.stdout == s2.stdout, "sampling is deterministic for a seed")
    check(len(s1.stdout) == len("The ") + 50 + 1, "sample has the prompt, the 50 requested bytes and a newline")
    s3 = run(["sample", d, "--tokens", "150", "--temperature", "0"], binary=True)  # past the context: slides
    check(s3.returncode == 0 and len(s3.stdout) > 100, "greedy sampling past the context length works")


def test_final_eval(data, work):
    print("final evaluation of one held-out half")
    halves = {}
    for which in ("both", "validation", "test"):
        d = os.path.join(work, "final_" + which)
        r = run(tiny(data, d, "steps=20", "final_eval_tokens=4096", f"final_eval={which}"))
        check(r.returncode == 0, f"final_eval={which} trains ({r.stderr.strip()})")
        halves[which] = json.load(open(os.path.join(d, "final.json")))
    both, val, test = halves["both"], halves["validation"], halves["test"]
    check(val["val_bpb"] == both["val_bpb"] and val["test_bpb"] is None and val["test_bpb_se"] is None,
          "final_eval=validation: the validation loss as with both halves, the test loss null")
    check(test["test_bpb"] == both["test_bpb"] and test["test_bpb_se"] == both["test_bpb_se"] and
          test["val_bpb"] is None and test["val_loss"] is None,
          "final_eval=test: the test loss and its standard error as with both halves, the validation loss null")
    r = run(tiny(data, os.path.join(work, "final_bad"), "steps=2", "final_eval=train"))
    check(r.returncode != 0 and "final_eval" in r.stderr, f"an unknown final_eval is refused ({r.stderr.strip()})")


def test_presets(data, work):
    print("every preset learns")
    for preset in ("vaswani-2017", "gpt2-2019", "llama-2023", "lstm-2016", "speedrun-2025", "deepseek-2025"):
        d = os.path.join(work, "preset_" + preset)
        r = run(["train", preset, f"data={data}", f"out={d}", "d_model=64", "n_layers=2", "context=64", "batch=8",
                 "steps=300", "eval_every=300", "log_every=0"])
        if r.returncode != 0:
            check(False, f"{preset} trains: {r.stderr}")
            continue
        unigram = float(next(line for line in r.stdout.splitlines() if "unigram" in line)
                        .split("held-out unigram ")[1].split()[0])
        final = json.load(open(os.path.join(d, "final.json")))
        check(final["val_bpb"] < 0.85 * unigram,
              f"{preset}: {final['val_bpb']:.3f} bits/byte after 300 steps < 0.85 x unigram {unigram:.3f} "
              f"({final['flops']:.3g} FLOPs)")


def test_bad_input(data, work):
    print("bad input")

    def err(args, fragment, what):
        r = run(args)
        ok = r.returncode != 0 and r.returncode < 128 and fragment in r.stderr
        check(ok, f"{what} -> '{fragment}'" + ("" if ok else f" (got rc {r.returncode}: {r.stderr.strip()})"))

    d = os.path.join(work, "bad")
    err(tiny("/nonexistent/text.txt", d), "data '/nonexistent/text.txt': no such file", "missing data file")
    err(tiny("nocorpus", d), "no corpus of that name", "missing corpus")
    err(tiny(data, d, "d_modle=64"), "unknown key 'd_modle' (did you mean 'd_model'?)", "misspelt key")
    err(tiny(data, d, "n_heads=5"), "not divisible by n_heads=5", "impossible shape")
    err(["train", "recipes/nothing.ini"], "does not exist", "missing recipe")
    err(["train", "--resume", os.path.join(work, "empty")], "no checkpoint", "resume without a checkpoint")
    small = os.path.join(work, "small.txt")
    open(small, "w").write("too short")
    err(tiny(small, d), "too small", "tiny corpus")
    # 100 held-out bytes: one window of 65 (context 64 + 1) but not one per half (docs/FORMATS.md)
    one_window = os.path.join(work, "one_window.txt")
    open(one_window, "w").write(("a b c d e f g h i j " * 50)[:1000])
    err(tiny(one_window, d, "val_frac=0.1"), "the held-out part two", "held-out text for one window, not two")
    good = os.path.join(work, "det_a")
    err(tiny(data, good, "steps=60"), "already holds a run", "reusing a run directory")
    err(["train", "--resume", good, "d_model=32"], "cannot change when resuming", "changing the model on resume")
    for name, mutate in (("corrupt", lambda b: b[:5000] + bytes([b[5000] ^ 1]) + b[5001:]),
                         ("truncated", lambda b: b[: len(b) // 2]),
                         ("foreign", lambda b: b"PK\x03\x04" + b[4:])):
        cd = os.path.join(work, "ck_" + name)
        shutil.copytree(good, cd)
        ck = os.path.join(cd, "checkpoint.bin")
        blob = open(ck, "rb").read()
        open(ck, "wb").write(mutate(blob))
        frag = {"corrupt": "checksum mismatch", "truncated": "truncated", "foreign": "bad magic"}[name]
        err(["train", "--resume", cd, "steps=80"], frag, f"{name} checkpoint")
        err(["sample", cd], frag, f"{name} checkpoint when sampling")


def test_nonfinite(data, work):
    print("NaN guard: stop, or roll back and lower the learning rate")
    d = os.path.join(work, "nan_stop")
    r = run(tiny(data, d, "steps=40", "checkpoint_every=10", "fault_nan_step=25"))
    check(r.returncode != 0 and "training loss is nan at step 25" in r.stderr and "on_nonfinite=rollback" in r.stderr,
          "a NaN loss stops the run, naming the step and the rollback option" + f" ({r.stderr.strip()[-160:]})")
    ref = os.path.join(work, "nan_ref")
    run(tiny(data, ref, "steps=40", "checkpoint_every=10", "on_nonfinite=rollback"))
    d = os.path.join(work, "nan_rollback")
    r = run(tiny(data, d, "steps=40", "checkpoint_every=10", "fault_nan_step=25", "on_nonfinite=rollback"))
    check(r.returncode == 0 and "rolled back to step 20" in r.stderr, "rollback to the last checkpoint (step 20)")
    rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
    ev = [x for x in rows if x.get("event") == "rollback"]
    check(len(ev) == 1 and ev[0]["at_step"] == 25 and ev[0]["step"] == 20 and ev[0]["lr_scale"] == 0.5,
          f"the rollback is recorded in metrics.jsonl: {ev}")
    refrows = {x["step"]: x for x in metrics(ref)}
    late = [x for x in rows if "lr" in x and x["step"] > 20]
    check(late and all(abs(x["lr"] - 0.5 * refrows[x["step"]]["lr"]) < 1e-12 for x in late),
          "after the rollback the learning rate is half the schedule's")
    check(os.path.exists(os.path.join(d, "final.json")), "the rolled-back run completes")
    f = apformat.read(os.path.join(d, "checkpoint.bin"), verify_crc=True)
    check("lr_scale = 0.5" in f.text and "rollbacks = 1" in f.text, "the checkpoint keeps the lowered lr scale")


def test_memory_estimate(data, work):
    print("memory estimate before allocating")
    r = run(tiny(data, os.path.join(work, "mem_big"), "d_model=8192", "n_heads=64", "n_layers=48", "context=64"))
    check(r.returncode != 0 and "this run needs about" in r.stderr and "GB" in r.stderr,
          "a model that cannot fit is refused with the estimate" + f" ({r.stderr.strip()[:200]})")
    r = run(tiny(data, os.path.join(work, "mem_limit"), "steps=1", "memory_limit=0.01"))
    check(r.returncode != 0 and "memory_limit is 0.01 GB" in r.stderr, "memory_limit is enforced")
    r = run(tiny(data, os.path.join(work, "mem_ok"), "steps=1", "memory_limit=4"))
    check(r.returncode == 0, "a run that fits the limit trains")


def test_disk_full(data, work):
    print("disk full (ulimit -f) during a checkpoint write")
    d = os.path.join(work, "diskfull")
    steps = ["steps=60", "checkpoint_every=20", "seed=5"]
    ref = os.path.join(work, "diskfull_ref")
    run(tiny(data, ref, *steps))
    r = run(tiny(data, d, "steps=20", "checkpoint_every=20", "seed=5"))
    check(r.returncode == 0, "first 20 steps")
    ck = os.path.join(d, "checkpoint.bin")
    good = open(ck, "rb").read()
    size = len(good)

    def limited():  # a file-size limit below one checkpoint: writes fail with EFBIG, not SIGXFSZ
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    p = subprocess.run([BIN, "train", "--resume", d, "steps=60"], capture_output=True, text=True, preexec_fn=limited)
    check(p.returncode != 0 and p.returncode < 128 and "cannot write" in p.stderr and "checkpoint.bin.tmp" in p.stderr,
          "a full disk is a clear error naming the file" + f" (rc {p.returncode}: {p.stderr.strip()[-200:]})")
    check(open(ck, "rb").read() == good, "the last good checkpoint is intact")
    check(not glob.glob(os.path.join(d, "*.tmp")), "no partial temporary file is left")
    r = run(["train", "--resume", d, "steps=60"])
    check(r.returncode == 0 and metrics(d) == metrics(ref) and same_tensors(params(d), params(ref)),
          "after space is back the run continues and equals an uninterrupted run")


def test_corpus_bpe(work):
    print("corpus, BPE tokenizer, repetition")
    env = dict(os.environ, ALGOPROG_CORPORA=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                                                         "corpora"), ALGOPROG_DATA=os.path.join(work, "data"))

    def cli(args, binary=False):
        r = subprocess.run([BIN] + args, capture_output=True, env=env)
        r.stderr = r.stderr.decode("utf-8", "replace")
        if not binary:
            r.stdout = r.stdout.decode("utf-8", "replace")
        return r

    r = cli(["corpus", "build", "licences", "val_frac=0.1"])
    check(r.returncode == 0, "corpus build licences" + ("" if r.returncode == 0 else ": " + r.stderr))
    cdir = os.path.join(work, "data", "licences")
    man = json.load(open(os.path.join(cdir, "manifest.json")))
    check(man["docs_train"] > 0 and man["docs_val"] > 0 and man["sources"][0]["package"] == "base-files",
          f"manifest: {man['docs_train']} + {man['docs_val']} documents, sources with versions")
    train_docs = set(open(os.path.join(cdir, "train.txt"), "rb").read().split(b"\x1e\n"))
    val_docs = set(open(os.path.join(cdir, "val.txt"), "rb").read().split(b"\x1e\n"))
    check(not (train_docs & val_docs) - {b""}, "no held-out document appears in training")
    r = cli(["corpus", "build", "nosuch"])
    check(r.returncode == 2 and "no corpus recipe 'nosuch' (available: licences)" in r.stderr, "unknown corpus named")
    r = cli(["tokenize", "train", "licences", "vocab=400"])
    check(r.returncode == 0 and os.path.exists(os.path.join(work, "data", "tokenizers", "bpe400-licences.tok")),
          "tokenize train on the corpus's training split")
    # four runs on a fresh corpus at once (a study's workers): one encodes each shard, the others wait for it
    procs = [subprocess.Popen([BIN, "train", "llama-2023", "data=licences", "tokenizer=bytes", f"out={work}/race{i}",
                               "d_model=32", "n_layers=1", "context=16", "batch=2", "steps=1", "log_every=0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) for i in range(4)]
    errs = [p.communicate()[1] for p in procs]
    encodes = sum(e.count("encoding") for e in errs)
    check(all(p.returncode == 0 for p in procs) and encodes == 2,
          f"four runs start together on a fresh corpus: all train, each shard encoded once ({encodes} encodings; "
          f"{[p.returncode for p in procs]} {[e.strip()[-120:] for e in errs if 'rename' in e]})")
    r = cli(["tokenize", "train", "licences", "vocab=100"])
    check(r.returncode == 2 and "vocab=100" in r.stderr, "a BPE vocabulary below 257 is refused")
    r = cli(["train", "llama-2023", "data=licences", "tokenizer=bpe400-licences", f"out={work}/small_vocab",
             "vocab=300", "steps=1"])
    check(r.returncode == 2 and "smaller than tokenizer" in r.stderr, "a model vocabulary below the tokenizer's")
    d = os.path.join(work, "bpe_run")
    r = cli(["train", "llama-2023", "data=licences", "tokenizer=bpe400-licences", f"out={d}", "d_model=64",
             "n_layers=2", "context=32", "batch=8", "steps=120", "eval_every=60", "log_every=0", "max_unique_tokens=8000"])
    check(r.returncode == 0, "train on a corpus with a BPE tokenizer" + ("" if r.returncode == 0 else ": " + r.stderr))
    rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
    check(abs(rows[-1]["epochs"] - 120 * 8 * 32 / 8000) < 1e-6, f"epochs reported: {rows[-1]['epochs']}")
    check(rows[-1]["val_bpb"] < rows[0]["val_bpb"] - 0.5, f"BPE run learns ({rows[0]['val_bpb']:.2f} -> "
          f"{rows[-1]['val_bpb']:.2f} bits/byte)")
    check(os.path.exists(os.path.join(d, "tokenizer.tok")), "the run keeps a copy of its tokenizer")
    s = cli(["sample", d, "--prompt", "The", "--tokens", "20"], binary=True)
    check(s.returncode == 0 and s.stdout.startswith(b"The"), "sampling decodes BPE tokens")
    r = cli(["tokenize", "stats"])
    check(r.returncode == 0 and "bpe400-licences" in r.stdout and "licences" in r.stdout, "tokenize stats table")
    shards = glob.glob(os.path.join(cdir, "shards", "bpe400*.val.bin"))
    check(len(shards) == 1, "held-out shard cached")
    out = os.path.join(work, "val.decoded")
    r = cli(["tokenize", "decode", shards[0], "tokenizer=bpe400-licences", f"out={out}"])
    check(r.returncode == 0 and open(out, "rb").read() == open(os.path.join(cdir, "val.txt"), "rb").read(),
          "decode(shard) gives back the held-out text byte for byte")
    r = cli(["tokenize", "decode", shards[0], "tokenizer=bytes", f"out={out}"])
    check(r.returncode != 0 and "another tokenizer" in r.stderr, "a shard made by another tokenizer is refused")
    blob = bytearray(open(shards[0], "rb").read())
    blob[-3] ^= 0x10
    open(shards[0], "wb").write(bytes(blob))
    r = cli(["train", "--resume", d, "steps=130"])
    check(r.returncode != 0 and "checksum mismatch" in r.stderr, "a corrupted shard is detected and named")


def main():
    global BIN
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    BIN, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "empty"))
    # Real English text present on every Debian system: the licence texts (~180 KB).
    data = os.path.join(work, "licenses.txt")
    with open(data, "wb") as out:
        for f in sorted(glob.glob("/usr/share/common-licenses/*")):
            if os.path.isfile(f) and not os.path.islink(f):
                out.write(open(f, "rb").read())
    test_determinism(data, work)
    test_config_roundtrip(data, work)
    test_resume(data, work)
    test_moe_resume(data, work)
    test_ema(data, work)
    test_window_warmup(data, work)
    test_curricula(data, work)
    test_distillation(data, work)
    test_eval_context(data, work)
    test_lock(data, work)
    test_learns(data, work)
    test_final_eval(data, work)
    test_presets(data, work)
    test_bad_input(data, work)
    test_nonfinite(data, work)
    test_memory_estimate(data, work)
    test_disk_full(data, work)
    test_corpus_bpe(work)
    print(f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
