"""The Python package (python/algoprog) against the command line it wraps.

- DataFrames equal `study export --csv` and `--json` for a small study, value for value, typed
  as the documented schemas say; the report tables equal the report's CSV files
- fit() and ceg() equal `algoprog fit --json` on the same points, for every law; the report's fits
  equal a refit of Study.points()
- the tool's errors arrive as AlgoprogError with its message and exit code, never an empty frame
- run_study() and train() on tiny configurations, with their progress displays
- the plots draw; the example notebook runs; docs/PYTHON.md's schema tables match the package
"""
import csv
import io
import json
import math
import shutil
import sqlite3
import subprocess

import pandas as pd
import pytest

import algoprog
from algoprog import schema

from conftest import ROOT, write_study

CLOCK = "%Y-%m-%dT%H:%M:%SZ"


def cli(binary, *args):
    r = subprocess.run([binary] + [str(a) for a in args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def missing(v):
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def same_as_csv(value, text, dtype):
    """A frame's value equals the CSV text it stands for (exactly: %.17g round-trips)."""
    if text == "":
        return missing(value) or (dtype == "str" and value == "")
    if dtype in ("int64", "Int64"):
        return int(text) == value
    if dtype == "float64":
        return float(text) == value or (math.isnan(float(text)) and math.isnan(value))
    if dtype == "bool":
        return bool(int(text)) == bool(value)
    if dtype == "datetime":
        return value.strftime(CLOCK) == text
    return value == text


def same_as_json(value, v):
    """A frame's value equals a JSON value of the export (which prints reals with 15 digits)."""
    if v is None:
        return missing(value)
    if isinstance(v, bool) or isinstance(value, bool):
        return bool(v) == bool(value)
    if isinstance(v, (int, float)):
        return math.isclose(float(value), float(v), rel_tol=1e-14, abs_tol=0)
    return value == v


def close_tree(a, b):
    """Two parsed JSON values agree, reals to 15 digits."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close_tree(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(close_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-14)
    return a == b


def check_types(df, cols):
    want = {"int64": "int64", "Int64": "Int64", "float64": "float64", "bool": "bool", "str": "object",
            "datetime": "datetime64[ns, UTC]"}
    for c in cols:
        assert str(df[c.name].dtype) == want[c.dtype], f"{c.name}: {df[c.name].dtype}, schema says {c.dtype}"


def compare_to_csv(df, rows, cols):
    assert list(df.columns) == list(rows[0].keys()), "the columns and their order are the CSV's"
    assert len(df) == len(rows)
    types = {c.name: c.dtype for c in cols}
    for i, row in enumerate(rows):
        for k, text in row.items():
            assert same_as_csv(df[k].iloc[i], text, types[k]), f"row {i} column {k}: {df[k].iloc[i]!r} != {text!r}"


# ---------------------------------------------------------------- tables = study export


def test_runs_and_metrics_equal_export_csv(study, study_dir, binary):
    cli(binary, "study", "export", study_dir, "--csv")
    runs, metrics = study.runs(), study.metrics()
    check_types(runs, schema.RUNS)
    check_types(metrics, schema.METRICS)
    assert len(runs) == 30 and (runs.status == "done").all()
    compare_to_csv(runs, read_csv(study_dir / "runs.csv"), schema.RUNS)
    compare_to_csv(metrics, read_csv(study_dir / "metrics.csv"), schema.METRICS)


def test_runs_and_metrics_equal_export_json(study, study_dir, binary):
    cli(binary, "study", "export", study_dir, "--json")
    doc = json.loads((study_dir / "study.json").read_text())
    runs, metrics = study.runs(), study.metrics()
    assert len(doc) == len(runs)
    for i, d in enumerate(doc):
        for k, v in d.items():
            if k == "config":
                assert close_tree(json.loads(runs.config.iloc[i]), v)
            elif k == "metrics":
                mine = metrics[metrics.run == d["run"]].drop(columns=["run", "arm"]).to_dict("records")
                assert len(mine) == len(v)
                for a, b in zip(mine, v):
                    assert a.keys() == b.keys() and all(same_as_json(a[c], b[c]) for c in b)
            else:
                assert same_as_json(runs[k].iloc[i], v), f"run {d['run']} {k}: {runs[k].iloc[i]!r} != {v!r}"


def test_filters_and_other_tables(study):
    runs = study.runs()
    llama = study.runs(arm="llama", kind="main")
    assert len(llama) == ((runs.arm == "llama") & (runs.kind == "main")).sum() > 0
    pd.testing.assert_frame_equal(study.metrics(run=int(llama.run.iloc[0])),
                                  study.metrics().query(f"run == {llama.run.iloc[0]}").reset_index(drop=True))
    assert set(study.metrics(arm="gpt2").arm) == {"gpt2"}
    arms = study.arms()
    check_types(arms, schema.ARMS)
    assert list(arms.arm) == ["gpt2", "llama"] and list(arms.tune_arm) == ["gpt2", "llama"]
    configs = study.configs()
    assert list(configs.index) == list(runs.run) and (configs.d_model.values == runs.d_model.values).all()
    points = study.points()
    check_types(points, schema.POINTS)
    main = runs[(runs.kind == "main") & (runs.status == "done")]
    flat = main.test_bpb >= main.unigram_bpb * (1 - study.plateau_margin())
    assert sorted(points.run) == sorted(main.run[~flat]) and (points.loss.values > 0).all()
    p = study.progress()
    assert p["done"] == p["total"] == 30 and p["flops_done"] == pytest.approx(runs.flops.sum())
    run = study.run(int(runs.run.iloc[0]))
    assert run.final()["test_bpb"] == runs.test_bpb.iloc[0]
    assert len(run.metrics()) == (study.metrics().run == runs.run.iloc[0]).sum()


def test_live_metrics_read_run_directories(study_dir, work):
    """metrics(live=True) adds unfinished runs' rows from their metrics.jsonl."""
    copy = work / "live"
    shutil.copytree(study_dir, copy)
    db = sqlite3.connect(copy / "registry.db")
    db.execute("UPDATE run SET status = 'running' WHERE id = 3")
    db.execute("DELETE FROM metric WHERE run_id = 3")
    db.commit()
    db.close()
    s = algoprog.Study(copy)
    recorded = algoprog.Study(study_dir).metrics()
    assert 3 not in set(s.metrics().run)
    pd.testing.assert_frame_equal(s.metrics(live=True), recorded)
    pd.testing.assert_frame_equal(s.metrics(run=3, live=True), recorded[recorded.run == 3].reset_index(drop=True))


# ---------------------------------------------------------------- report tables


def test_report_tables_equal_report_files(study, study_dir):
    fits, ceg, claims, front = study.fits(), study.ceg(), study.claims(), study.frontier()
    assert study.report_is_current()
    for df, name, cols in ((fits, "fits.csv", schema.FITS), (ceg, "ceg.csv", schema.CEG),
                           (claims, "claims.csv", schema.CLAIMS)):
        check_types(df, cols)
        rows = read_csv(study_dir / "report" / name)
        assert rows, f"{name} has rows"
        compare_to_csv(df, rows, cols)
    check_types(front, schema.FRONTIER)
    doc = json.loads((study_dir / "report" / "report.json").read_text())
    want = [dict(p, arm=a["name"]) for a in doc["arms"] for p in a["frontier"]]
    assert len(front) == len(want) > 0
    for i, w in enumerate(want):
        assert all(same_as_json(front[k].iloc[i], v) for k, v in w.items())
    abl = study.ablations()  # the session's study has no [ablation]: typed, empty, every column
    check_types(abl, schema.ABLATIONS)
    assert abl.empty and list(abl.columns) == [c.name for c in schema.ABLATIONS]
    assert read_csv(study_dir / "report" / "ablations.csv") == []


def test_report_fits_equal_a_refit(study):
    """The report's laws are `algoprog fit DIR`'s, and fit(study.points()) gives the same."""
    report = study.fits().set_index("arm")
    refit = algoprog.fit(study.points()).arms.set_index("arm")
    for k in ("E", "E_lo", "E_hi", "A", "A_lo", "A_hi", "alpha", "alpha_lo", "alpha_hi"):
        for arm in report.index:
            assert report.loc[arm, k] == pytest.approx(refit.loc[arm, k], rel=1e-9), (arm, k)


# ---------------------------------------------------------------- fit and ceg = algoprog fit --json


def test_fit_of_points_equals_fit_of_the_study(study, study_dir, binary):
    want = json.loads(cli(binary, "fit", study_dir, "--json"))
    assert algoprog.fit(study.points()).json == want
    assert algoprog.fit(study).json == want
    assert algoprog.fit(str(study_dir)).json == want


def write_points(df, path):
    """The points as a CSV, written here independently of the package."""
    cols = ["arm", "params", "tokens", "flops", "loss", "budget", "seed", "epochs"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in df[cols].itertuples(index=False):
            w.writerow([repr(float(v)) if isinstance(v, float) else v for v in r])


@pytest.mark.parametrize("law, boot", [("frontier", None), ("approach2", None), ("approach3", 100),
                                       ("muennighoff", 100)])
def test_fit_equals_cli_json(study, binary, work, law, boot):
    points = study.points()
    path = work / f"points-{law}.csv"
    write_points(points, path)
    opts = ["--boot", boot] if boot else []
    want = json.loads(cli(binary, "fit", path, "--law", law, "--json", *opts))
    r = algoprog.fit(points, law=law, boot=boot)
    assert r.json == want and r.law == law and r.points == want["points"]
    if law in ("frontier", "approach2", "approach3"):
        arms = r.arms
        for i, a in enumerate(want["arms"]):
            for k, v in a.items():
                if k not in ("frontier", "budgets"):
                    assert same_as_json(arms[k].iloc[i], v), (k, arms[k].iloc[i], v)
    if law == "frontier":
        front = r.frontier
        flat = [dict(p, arm=a["arm"]) for a in want["arms"] for p in a["frontier"]]
        assert len(front) == len(flat)
        for i, p in enumerate(flat):
            assert all(same_as_json(front[k].iloc[i], v) for k, v in p.items())
        ceg = r.ceg
        levels = [(c, lv) for c in want["ceg"] for lv in c["levels"]]
        assert len(ceg) == len(levels) > 0
        for i, (c, lv) in enumerate(levels):
            for k, v in list(lv.items()) + [(k, v) for k, v in c.items() if k != "levels"]:
                if k in ("ceg_lo", "ceg_hi") and v == -1:
                    assert math.isnan(ceg[k].iloc[i])  # the JSON's "no bound"
                else:
                    assert same_as_json(ceg[k].iloc[i], v), (k, ceg[k].iloc[i], v)
        assert r.noise == want["noise"]
        with pytest.raises(ValueError, match="gives no 'budgets'"):
            r.budgets
    if law == "approach2":
        assert len(r.budgets) == sum(len(a["budgets"]) for a in want["arms"])
        assert list(r.params.param) == ["a", "b"] * len(want["arms"])
        assert "design_bias" in r.arms.columns and "a_corrected" in r.arms.columns
    if law == "muennighoff":
        p = r.params.set_index("param")
        assert list(p.index) == ["E", "A", "B", "alpha", "beta", "rstar"]
        assert all(same_as_json(p.loc[n, "value"], want[n]) for n in p.index)


def test_fit_holdout_and_cost(study, binary, work):
    """--holdout and --cost through fit(): the tool's JSON, as tables."""
    want = json.loads(cli(binary, "fit", study.path, "--json", "--holdout", "top=1", "--boot", "50"))
    r = algoprog.fit(study, holdout=1, boot=50)
    assert r.json == want
    h = r.holdout
    assert list(h.arm) == [a["arm"] for a in want["arms"]] and set(h.k) <= {0, 1}
    assert "holdout" not in r.arms.columns
    s = algoprog.fit(study, cost="params", boot=50)
    assert s.json["cost"] == "params" and len(s.arms) == len(r.arms)
    with pytest.raises(algoprog.AlgoprogError, match="--cost"):
        algoprog.fit(study, cost="dollars")


def test_fit_columns(binary, work):
    """A file's own column names, mapped: the path goes through --col, a DataFrame is renamed."""
    rows = [(n, c, 1.8 + 480 / n ** 0.35 + 2100 / (c / 6 / n) ** 0.37) for c in (1e18, 1e19, 1e20)
            for n in (3e7, 1e8, 3e8, 1e9, 3e9)]
    df = pd.DataFrame(rows, columns=["Model Size", "Training FLOP", "loss"])
    path = work / "published.csv"
    df.to_csv(path, index=False)
    cols = {"params": "Model Size", "flops": "Training FLOP"}
    a = algoprog.fit(str(path), law="approach3", boot=20, columns=cols)
    b = algoprog.fit(df, law="approach3", boot=20, columns=cols)
    assert a.points == b.points == 15 and abs(a.arms.alpha.iloc[0] - b.arms.alpha.iloc[0]) < 1e-6
    with pytest.raises(algoprog.AlgoprogError, match="no column"):
        algoprog.fit(str(path), columns={"params": "Size"})
    with pytest.raises(ValueError, match="does not have"):
        algoprog.fit(df, columns={"params": "Size"})


def test_ceg_equals_cli_json(study, binary, work):
    points = study.points()
    got = algoprog.ceg(points)
    pd.testing.assert_frame_equal(got, algoprog.fit(points).ceg)
    assert set(got.reference) == {"gpt2"} and set(got.arm) == {"llama"}
    # another reference: the tool's numbers on the points with that arm first
    other = algoprog.ceg(points, reference="llama")
    path = work / "points-llama-first.csv"
    write_points(points.assign(o=(points.arm != "llama")).sort_values("o", kind="stable"), path)
    want = json.loads(cli(binary, "fit", path, "--json"))["ceg"][0]
    assert other.arm.unique().tolist() == ["gpt2"] and other.reference.unique().tolist() == ["llama"]
    assert [same_as_json(x, lv["ceg"]) for x, lv in zip(other.ceg, want["levels"])] == [True] * len(want["levels"]) and len(other) == 6


# ---------------------------------------------------------------- errors


def test_error_not_a_study(tmp_path, binary):
    with pytest.raises(algoprog.AlgoprogError) as e:
        algoprog.open_study(tmp_path)
    r = subprocess.run([binary, "study", "status", tmp_path], capture_output=True, text=True)
    assert e.value.returncode == r.returncode == 2
    assert e.value.message == r.stderr.strip().removeprefix("algoprog: error: ")
    assert "no study registry" in str(e.value)
    (tmp_path / "registry.db").write_text("not a database\n" * 100)
    with pytest.raises(algoprog.AlgoprogError) as e:
        algoprog.open_study(tmp_path)
    assert e.value.returncode in (1, 2) and e.value.message and e.value.stderr


def test_error_without_binary_checks_in_python(tmp_path, monkeypatch):
    monkeypatch.setenv("ALGOPROG_BIN", str(tmp_path / "nothing-here"))
    with pytest.raises(algoprog.AlgoprogError, match="is not an executable file"):
        algoprog.find_binary()
    monkeypatch.delenv("ALGOPROG_BIN")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(algoprog._cli, "CHECKOUT", tmp_path)
    with pytest.raises(algoprog.AlgoprogError, match="no algoprog binary found"):
        algoprog.find_binary()
    with pytest.raises(algoprog.AlgoprogError, match="no study registry in"):
        algoprog.open_study(tmp_path)  # the same check, made here


def test_error_bad_points(study, work):
    bad = study.points().head(4).assign(loss=-1.0)
    with pytest.raises(algoprog.AlgoprogError) as e:
        algoprog.fit(bad)
    assert e.value.returncode == 2 and "is not a positive number" in e.value.message
    with pytest.raises(algoprog.AlgoprogError) as e:
        algoprog.fit(study.points(), law="approach9")
    assert e.value.returncode == 2 and "choose frontier" in e.value.message
    with pytest.raises(ValueError, match="Study.points"):
        algoprog.fit(study.runs())
    with pytest.raises(ValueError, match="not an arm"):
        algoprog.ceg(study.points(), reference="nope")


def test_error_bad_study_file_and_recipe(work, data_file, tmp_path, binary):
    spec = write_study(work / "bad.ini", data_file, name="bad", extra="no_such_key = 1\n")
    with pytest.raises(algoprog.AlgoprogError) as e:
        algoprog.run_study(spec, out=tmp_path / "bad", progress=False)
    assert e.value.returncode == 2 and "no_such_key" in e.value.message
    with pytest.raises(algoprog.AlgoprogError) as e:
        algoprog.train("gpt2-2019", out=tmp_path / "run", progress=False, bogus=1)
    r = subprocess.run([binary, "train", "gpt2-2019", f"out={tmp_path / 'run'}", "bogus=1"], capture_output=True,
                       text=True)
    assert e.value.returncode == r.returncode == 2 and "bogus" in e.value.message
    assert e.value.message == r.stderr.strip().removeprefix("algoprog: error: ")


# ---------------------------------------------------------------- run_study and train


def test_run_study_with_progress(micro_ini, work, capsys):
    seen = []
    out = work / "micro"
    s = algoprog.run_study(micro_ini, out=out, progress=seen.append)
    assert isinstance(s, algoprog.Study) and s.path == out
    assert len(s.runs()) == 4 and (s.runs().status == "done").all()
    assert "done run" in s.log and seen and seen[-1].done == seen[-1].total == 4
    # again: nothing to do, shown as a bar on stderr
    s = algoprog.run_study(micro_ini, out=out, workers=1, threads=1)
    assert "0 to go" in s.log and "4/4 runs" in capsys.readouterr().err
    # its report: written on demand; only llama has a frontier (gpt2's runs are on the plateau)
    with pytest.raises(algoprog.AlgoprogError, match="no .*fits.csv"):
        s.fits(refresh=False)
    assert list(s.fits().arm) == ["llama"] and s.report_is_current()
    with pytest.warns(UserWarning, match="no compute-equivalent gain"):
        assert s.ceg().empty
    with pytest.raises(algoprog.AlgoprogError, match="CEG of llama over gpt2"):
        algoprog.ceg(s)


def test_train(work, data_file, capsys):
    steps = []
    run = algoprog.train("gpt2-2019", out=work / "train", progress=lambda s, n, loss: steps.append(s),
                         data=data_file, tokenizer="bytes", d_model=48, n_layers=2, n_heads=3, context=32,
                         batch=8, steps=20, eval_every=10, eval_tokens=2048, final_eval_tokens=4096,
                         tie_embeddings=True, lr=3e-3)
    assert run.path == work / "train" and run.finished and steps[-1] == 20
    final = run.final()
    assert final["step"] == 20 and final["test_bpb"] > 0 and final["params_nonembedding"] == 56640
    m = run.metrics()
    check_types(m, [c for c in schema.RUN_METRICS if not c.name.startswith("moe_")])
    assert list(m.step) == [0, 10, 20] and math.isnan(m.train_loss.iloc[0])
    cfg = run.config()
    assert cfg["d_model"] == 48 and cfg["lr"] == 3e-3 and cfg["tie_embeddings"] is True
    assert cfg["data"] == data_file and cfg["family"] == "transformer"
    run2 = algoprog.train("gpt2-2019", data=data_file, tokenizer="bytes", d_model=48, n_layers=2, n_heads=3,
                          context=32, batch=8, steps=10, eval_tokens=2048, final_eval_tokens=4096)
    try:
        assert run2.finished and "train [" in capsys.readouterr().err and "done: 10 steps" in run2.log
    finally:
        shutil.rmtree(run2.path)


# ---------------------------------------------------------------- plots and notebook


def test_plots(study):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    try:
        fig = algoprog.plot_frontiers(study)
        ax = fig.axes[0]
        assert isinstance(fig, Figure) and ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert len(ax.lines) == 2  # one law per arm
        fig2 = algoprog.plot_ceg(study)
        assert fig2.axes[0].get_yscale() == "log" and len(fig2.axes[0].collections) >= 1
        refit = algoprog.fit(study.points())
        fig3 = algoprog.plot_ceg(refit)
        fig4 = algoprog.plot_frontiers(study, fit=refit, logy=False)
        for f in (fig, fig2, fig3, fig4):
            png = io.BytesIO()
            f.savefig(png, format="png")
            assert png.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(algoprog.AlgoprogError, match="no compute-equivalent gain"):
            algoprog.plot_ceg(study.ceg().iloc[0:0])
    finally:
        plt.close("all")


def test_notebook_runs(study_dir, binary, monkeypatch):
    """docs/notebooks/demo.ipynb: nbformat 4, outputs stripped, every code cell runs in order."""
    path = ROOT / "docs" / "notebooks" / "demo.ipynb"
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4 and nb["cells"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), "outputs are stripped"
    monkeypatch.setenv("ALGOPROG_STUDY", str(study_dir))
    monkeypatch.setenv("ALGOPROG_BIN", binary)
    monkeypatch.chdir(path.parent)
    import matplotlib.pyplot as plt

    env = {"__name__": "__main__"}
    try:
        for i, cell in enumerate(code):
            source = "".join(cell["source"])
            exec(compile(source, f"{path.name} code cell {i + 1}", "exec"), env)
    finally:
        plt.close("all")
    assert isinstance(env["study"], algoprog.Study) and not env["gains"].empty
    assert len(env["refit"].arms) == 2


def test_docs_schema_in_sync():
    """docs/PYTHON.md's schema tables are `python3 -m algoprog schema`'s."""
    doc = (ROOT / "docs" / "PYTHON.md").read_text()
    assert schema.markdown().strip() in doc, "regenerate docs/PYTHON.md's schema section: " \
                                              "python3 -m algoprog schema (from python/)"
