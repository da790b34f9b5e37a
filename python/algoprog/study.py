"""A study directory as DataFrames: :func:`open_study`, :class:`Study` and :func:`run_study`.

Where each table comes from:

- ``runs``, ``metrics``, ``arms``, ``points``, ``configs``: the registry ``DIR/registry.db``, opened
  read-only (SQLite ``mode=ro``), so a study can be read while ``study run`` writes it. ``runs`` and
  ``metrics`` equal ``algoprog study export DIR --csv`` column for column.
- ``fits``, ``ceg``, ``claims``, ``frontier``: the report's tables ``DIR/report/{fits,ceg,claims}.csv``
  and ``report.json``. The registry holds no fits; the report computes them (bootstrap intervals,
  verdicts), so these come from running ``algoprog report DIR`` when the report is missing or older
  than the registry's results (it writes ``DIR/report/``), and are read from its files otherwise.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import sqlite3
import time
import urllib.parse
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

import pandas as pd

from . import _cli, schema
from ._cli import AlgoprogError
from .run import Run, read_metrics_jsonl

PathLike = Union[str, os.PathLike]

SCHEMA_VERSION = 3  # the newest registry schema this package reads (docs/FORMATS.md)


def _connect(db: Path) -> sqlite3.Connection:
    """The registry, read-only: a reader never changes a study (nor takes a write lock)."""
    uri = "file:" + urllib.parse.quote(str(db.resolve())) + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        return con
    except sqlite3.Error as e:
        raise AlgoprogError(f"cannot read registry {db}: {e}") from None


def _counts(con: sqlite3.Connection) -> dict:
    """Runs by status and FLOPs done / planned, as ``study status`` counts them."""
    c = {"done": 0, "running": 0, "pending": 0, "blocked": 0, "failed": 0, "total": 0,
         "flops_done": 0.0, "flops_total": 0.0}
    for status, n, flops, done in con.execute(
            "SELECT status, count(*), total(flops), total(CASE WHEN status='done' THEN flops"
            " ELSE min(progress_flops, flops) END) FROM run GROUP BY status"):
        if status in c:
            c[status] = n
        c["total"] += n
        c["flops_total"] += flops
        c["flops_done"] += done
    return c


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Study:
    """A study directory (``algoprog study run ... out=DIR``), its results as DataFrames.

    Every method reads the files again, so a study that is still running shows its latest state.
    Column schemas: :mod:`algoprog.schema` and docs/PYTHON.md.

    Example:
        >>> import algoprog
        >>> s = algoprog.open_study("runs/demo")                      # doctest: +SKIP
        >>> s.runs().query("kind == 'main'").groupby("arm").test_bpb.min()   # doctest: +SKIP
        >>> s.fits()[["arm", "E", "A", "alpha", "identified"]]          # doctest: +SKIP
        >>> s.ceg()[["arm", "reference", "loss", "ceg", "ceg_lo", "ceg_hi"]]   # doctest: +SKIP
    """

    def __init__(self, path: PathLike, binary: Optional[PathLike] = None):
        self.path = Path(path)
        self.binary = binary
        #: stdout of the ``study run`` that produced this object (``run_study`` only)
        self.log = ""

    # ------------------------------------------------------------------ registry

    @property
    def registry(self) -> Path:
        """The path of ``registry.db``."""
        return self.path / "registry.db"

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        con = _connect(self.registry)
        try:
            return [dict(r) for r in con.execute(sql, tuple(params))]
        except sqlite3.Error as e:
            raise AlgoprogError(f"cannot read registry {self.registry}: {e}") from None
        finally:
            con.close()

    def _run_columns(self) -> set:
        con = _connect(self.registry)
        try:
            return {r[1] for r in con.execute("PRAGMA table_info(run)")}
        finally:
            con.close()

    def info(self) -> dict:
        """The study's name, allocation, data, tokenizer, creation time and study file text (``spec``)."""
        rows = self._query("SELECT name, allocation, data, tokenizer, created, spec_sha256, spec FROM study")
        if not rows:
            raise AlgoprogError(f"registry {self.registry} holds no study")
        return rows[0]

    def meta(self) -> dict:
        """The registry's settings: ``schema_version``, ``plateau_margin``, ``lr_sweep`` ... (text values)."""
        return {r["key"]: r["value"] for r in self._query("SELECT key, value FROM meta")}

    def plateau_margin(self) -> float:
        """How close to the unigram loss a run may end before it counts as on the plateau."""
        return float(self.meta().get("plateau_margin", 0.02))

    def progress(self) -> dict:
        """How far the study is: runs ``done``, ``running``, ``pending``, ``blocked``, ``failed``,
        ``total``, and ``flops_done`` / ``flops_total`` (as ``algoprog study status`` counts them)."""
        con = _connect(self.registry)
        try:
            return _counts(con)
        finally:
            con.close()

    def __repr__(self) -> str:
        try:
            i, c = self.info(), self.progress()
            return (f"<Study {i['name']!r} at '{self.path}': {c['done']} of {c['total']} runs done, "
                    f"{c['failed']} failed; {c['flops_done']:.3g} of {c['flops_total']:.3g} FLOPs>")
        except AlgoprogError as e:
            return f"<Study at '{self.path}' (unreadable: {e.message})>"

    def runs(self, arm: Optional[str] = None, kind: Optional[str] = None,
             status: Optional[str] = None) -> pd.DataFrame:
        """One row per run: the columns of ``study export --csv``'s runs.csv (schema ``runs``).

        Args:
            arm, kind, status: keep only runs of this arm / kind (``main``, ``lr_sweep``) / status.

        Example:
            >>> s.runs(kind="main", status="done")[["arm", "flops", "test_bpb"]]   # doctest: +SKIP
        """
        have = self._run_columns()

        def col(name: str, expr: Optional[str] = None) -> str:
            return f"{expr or 'run.' + name} AS {name}" if name in have else f"NULL AS {name}"

        select = [
            "run.id AS run", "arm.name AS arm", "arm.preset AS preset", col("kind"), col("budget"), col("point"),
            col("seed"), col("lr_mult"), "arm.base_lr * run.lr_mult AS lr",
        ] + [col(c) for c in ("target_params", "params", "params_nonembedding", "d_model", "n_layers", "tokens",
                               "flops", "flops_6nd", "steps", "status", "attempts", "started_at", "finished_at",
                               "elapsed_s", "val_loss", "val_bpb", "test_loss", "test_bpb", "test_bpb_se",
                               "unigram_bpb", "params_kaplan", "keep", "copied_from", "error", "config")]
        where, params = [], []
        for name, value in (("arm.name", arm), ("run.kind", kind), ("run.status", status)):
            if value is not None:
                where.append(f"{name} = ?")
                params.append(value)
        sql = (f"SELECT {', '.join(select)} FROM run JOIN arm ON arm.id = run.arm_id"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY run.id")
        return schema.frame(self._query(sql, params), schema.RUNS)

    def metrics(self, run: Union[int, Iterable[int], None] = None, arm: Optional[str] = None,
                live: bool = False) -> pd.DataFrame:
        """One row per evaluation of finished runs: metrics.csv of ``study export`` (schema ``metrics``).

        Args:
            run: a run id or several (default: every run).
            arm: only this arm's runs.
            live: also the evaluations of runs that have not finished yet, read from their
                ``DIR/runs/ID-ARM/metrics.jsonl`` (the registry records a run's metrics when it ends).

        Example:
            >>> m = s.metrics(run=12)                                 # doctest: +SKIP
            >>> m.plot(x="flops", y="val_bpb", logx=True)             # doctest: +SKIP
        """
        where, params = [], []
        if run is not None:
            ids = [int(run)] if hasattr(run, "__index__") else [int(r) for r in run]
            where.append(f"metric.run_id IN ({', '.join('?' * len(ids))})")
            params += ids
        if arm is not None:
            where.append("arm.name = ?")
            params.append(arm)
        sql = ("SELECT metric.run_id AS run, arm.name AS arm, metric.step, metric.tokens, metric.flops,"
               " metric.epochs, metric.train_loss, metric.val_loss, metric.val_bpb, metric.lr, metric.grad_norm"
               " FROM metric JOIN run ON run.id = metric.run_id JOIN arm ON arm.id = run.arm_id"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY metric.run_id, metric.step")
        rows = self._query(sql, params)
        if live:
            rows = self._with_live(rows, run, arm)
        return schema.frame(rows, schema.METRICS)

    def _with_live(self, rows: list[dict], run, arm) -> list[dict]:
        ids = None if run is None else ({int(run)} if hasattr(run, "__index__") else {int(r) for r in run})
        recorded = {r["run"] for r in rows}
        unfinished = self._query("SELECT run.id AS id, arm.name AS arm FROM run JOIN arm ON arm.id = run.arm_id"
                                 " WHERE run.status != 'done' ORDER BY run.id")
        for u in unfinished:
            if u["id"] in recorded or (ids is not None and u["id"] not in ids) or (arm and u["arm"] != arm):
                continue
            p = self.path / "runs" / f"{u['id']}-{u['arm']}" / "metrics.jsonl"
            if p.exists():
                rows += [dict(m, run=u["id"], arm=u["arm"]) for m in read_metrics_jsonl(p)]
        rows.sort(key=lambda r: (r["run"], r["step"]))
        return [{c.name: r.get(c.name) for c in schema.METRICS} for r in rows]

    def arms(self) -> pd.DataFrame:
        """One row per arm: preset, overrides, allocation rule and learning rate (schema ``arms``)."""
        rows = self._query("SELECT a.name AS arm, a.preset, a.overrides, a.allocation, a.base_lr, a.lr_mult, a.lr,"
                           " a.lr_source, t.name AS tune_arm FROM arm a LEFT JOIN arm t"
                           " ON t.id = coalesce(a.tune_arm, a.id) ORDER BY a.id")
        return schema.frame(rows, schema.ARMS)

    def configs(self) -> pd.DataFrame:
        """Every run's resolved recipe, one column per recipe key, indexed by run id.

        Example:
            >>> s.configs()[["d_model", "n_layers", "lr"]]            # doctest: +SKIP
        """
        rows = self._query("SELECT id, config FROM run ORDER BY id")
        data = [json.loads(r["config"]) for r in rows]
        return pd.DataFrame(data, index=pd.Index([r["id"] for r in rows], name="run"))

    def points(self) -> pd.DataFrame:
        """The points the report fits: finished main runs with a test loss, the runs on the unigram
        plateau left out (schema ``points``).

        ``algoprog.fit(study.points())`` gives what ``algoprog fit DIR`` gives, as long as every arm
        has a point (an arm without one is missing from the CSV, so the CEGs' reference may change).

        Example:
            >>> algoprog.fit(s.points(), law="approach3").arms        # doctest: +SKIP
        """
        margin = self.plateau_margin()
        runs = self.runs(kind="main", status="done")
        keep = runs.test_bpb.notna()
        flat = runs.unigram_bpb.notna() & (runs.test_bpb >= runs.unigram_bpb * (1 - margin))
        runs = runs[keep & ~flat]
        epochs = [max(float(json.loads(c).get("data_epochs", 0) or 0), 1.0) for c in runs.config]
        # the arms in study order, then run ids: the order the C tool adds them in
        order = {a: i for i, a in enumerate(self.arms().arm)}
        runs = runs.assign(_o=runs.arm.map(order), epochs=epochs).sort_values(["_o", "run"], kind="stable")
        rows = [{"run": r.run, "arm": r.arm, "params": r.params_nonembedding, "tokens": r.tokens, "flops": r.flops,
                 "loss": r.test_bpb, "budget": r.budget, "seed": r.seed, "epochs": r.epochs}
                for r in runs.itertuples()]
        return schema.frame(rows, schema.POINTS)

    def run(self, run_id: int) -> Run:
        """The run directory ``DIR/runs/ID-ARM`` of a run, as a :class:`Run` (config, metrics.jsonl, final.json)."""
        rows = self._query("SELECT arm.name AS arm FROM run JOIN arm ON arm.id = run.arm_id WHERE run.id = ?",
                           [int(run_id)])
        if not rows:
            raise AlgoprogError(f"registry {self.registry}: no run {run_id}")
        return Run(self.path / "runs" / f"{int(run_id)}-{rows[0]['arm']}")

    # ------------------------------------------------------------------ report tables

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    def report_is_current(self) -> bool:
        """True when ``DIR/report/`` exists and was written from the registry's present results
        (the same runs done, of the same total, with the same FLOPs)."""
        rj = self.report_dir / "report.json"
        if not all((self.report_dir / f).exists() for f in ("fits.csv", "ceg.csv", "claims.csv")) or not rj.exists():
            return False
        try:
            with open(rj, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, json.JSONDecodeError):
            return False
        rows = self._query("SELECT count(*) AS total, total(status = 'done') AS done,"
                           " total(CASE WHEN status = 'done' THEN flops END) AS flops FROM run")[0]
        return (doc.get("runs_done") == int(rows["done"]) and doc.get("runs_total") == int(rows["total"])
                and math.isclose(float(doc.get("flops") or 0), float(rows["flops"] or 0), rel_tol=1e-6))

    def report(self, boot: Optional[int] = None, seed: Optional[int] = None) -> Path:
        """Runs ``algoprog report DIR`` (writes ``DIR/report/``) and returns the path of index.html.

        Args:
            boot: bootstrap resamples (the tool's default: 1000).
            seed: the bootstrap's seed (default 42).
        """
        args = ["report", str(self.path)]
        if boot is not None:
            args += ["--boot", str(int(boot))]
        if seed is not None:
            args += ["--seed", str(int(seed))]
        _cli.run(args, self.binary)
        return self.report_dir / "index.html"

    def _report_file(self, name: str, refresh: Optional[bool]) -> Path:
        if refresh or (refresh is None and not self.report_is_current()):
            self.report()
        p = self.report_dir / name
        if not p.exists():
            raise AlgoprogError(f"no {p}: write the report with `algoprog report {self.path}` "
                                "(or call with refresh=True)")
        return p

    def fits(self, refresh: Optional[bool] = None) -> pd.DataFrame:
        """Each arm's frontier law L(C) = E + A C^-alpha with intervals: report/fits.csv (schema ``fits``).

        Args:
            refresh: ``None`` (default) runs ``algoprog report`` first when the report is missing
                or stale; ``True`` always; ``False`` never (raises when there is no report).
        """
        return schema.frame(_read_csv(self._report_file("fits.csv", refresh)), schema.FITS)

    def ceg(self, refresh: Optional[bool] = None) -> pd.DataFrame:
        """Compute-equivalent gains at several loss levels: report/ceg.csv (schema ``ceg``).

        Warns (``UserWarning``, with the tool's reason) when a study of several arms has no CEG.
        ``refresh`` as in :meth:`fits`.
        """
        df = schema.frame(_read_csv(self._report_file("ceg.csv", refresh)), schema.CEG)
        if df.empty:
            names = list(self.arms().arm)
            if len(names) > 1:
                why = _ceg_reasons(["fit", str(self.path)], self.binary)
                warnings.warn(f"study {self.path}: no compute-equivalent gain can be computed yet"
                              + (": " + "; ".join(why) if why else ""), stacklevel=2)
        return df

    def claims(self, refresh: Optional[bool] = None) -> pd.DataFrame:
        """Each claim's verdict from this study: report/claims.csv (schema ``claims``)."""
        return schema.frame(_read_csv(self._report_file("claims.csv", refresh)), schema.CLAIMS)

    def ablations(self, refresh: Optional[bool] = None) -> pd.DataFrame:
        """Each [ablation] package's gains switch by switch: one at a time, leave one out and the
        Shapley share, from report/ablations.csv (schema ``ablations``); empty without a package.

        Example:
            >>> study.ablations().query("switch != '*'")[["switch", "one_at_a_time", "shapley"]]  # doctest: +SKIP
        """
        return schema.frame(_read_csv(self._report_file("ablations.csv", refresh)), schema.ABLATIONS)

    def frontier(self, refresh: Optional[bool] = None) -> pd.DataFrame:
        """Each arm's frontier points (the optimum of every budget's IsoFLOP profile, mean over
        seeds), from report/report.json (schema ``frontier``)."""
        with open(self._report_file("report.json", refresh), encoding="utf-8") as f:
            doc = json.load(f)
        rows = [dict(p, arm=a["name"]) for a in doc.get("arms", []) for p in a.get("frontier", [])]
        return schema.frame(rows, schema.FRONTIER)


def _ceg_reasons(args: list, binary) -> list[str]:
    """Why ``algoprog fit`` gave no CEG for some pairs: its text output says, its --json does not."""
    try:
        out = _cli.run(args, binary).stdout
    except AlgoprogError as e:
        return [e.message]
    return [m.group(0) for m in re.finditer(r"CEG of \S+ over \S+: (?!\().*", out)]


def _check_python_side(path: Path) -> None:
    """The registry checks the tool makes, for when no binary is at hand."""
    db = path / "registry.db"
    if not path.is_dir():
        raise AlgoprogError(f"no study directory '{path}'")
    if not db.exists():
        raise AlgoprogError(f"no study registry in '{path}' (no registry.db there)")
    con = _connect(db)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"meta", "study", "arm", "run", "metric"} <= tables:
            raise AlgoprogError(f"{db} is not an algoprog registry (tables {sorted(tables)})")
        v = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if v and int(v[0]) > SCHEMA_VERSION:
            raise AlgoprogError(f"{db}: schema version {v[0]} is newer than this package reads ({SCHEMA_VERSION})")
    except sqlite3.Error as e:
        raise AlgoprogError(f"cannot read registry {db}: {e}") from None
    finally:
        con.close()


def open_study(path: PathLike, binary: Optional[PathLike] = None) -> Study:
    """Opens a study directory for reading (read-only; nothing in it is changed by reading).

    The directory is checked by the tool itself (``algoprog study status DIR``), so a missing,
    damaged or foreign registry is refused with the tool's own message; without a binary, this
    package makes the same checks.

    Args:
        path: the study's output directory (``out=`` of ``study run``).
        binary: the algoprog executable (default: see :func:`find_binary`); used for the check,
            for :meth:`Study.report` and for the report tables.

    Raises:
        AlgoprogError: not a study directory, or its registry cannot be read.

    Example:
        >>> import algoprog
        >>> s = algoprog.open_study("runs/demo")                      # doctest: +SKIP
        >>> s                                                         # doctest: +SKIP
        <Study 'demo' at 'runs/demo': 220 of 220 runs done, 0 failed; ... FLOPs>
    """
    path = Path(path)
    try:
        exe = _cli.find_binary(binary)
    except AlgoprogError:
        if binary is not None:
            raise
        exe = None
    if exe:
        _cli.run(["study", "status", str(path)], exe)
    else:
        _check_python_side(path)
    return Study(path, exe)


class StudyProgress(NamedTuple):
    """What :func:`run_study` passes to a progress callable, about every quarter second."""
    done: int
    running: int
    failed: int
    total: int
    flops_done: float
    flops_total: float
    elapsed_s: float
    last_line: str  #: the tool's last line on stdout ("done run 12 llama main N=... bits/byte")


def run_study(path: PathLike, out: PathLike, *, workers: Optional[int] = None, threads: Optional[int] = None,
              progress: Union[bool, Callable[[StudyProgress], None]] = True, binary: Optional[PathLike] = None,
              cwd: Optional[PathLike] = None) -> Study:
    """Runs (or continues) a study with ``algoprog study run PATH out=OUT`` and returns it opened.

    A study stopped at any moment continues where it stopped when run again; interrupting the
    notebook (KeyboardInterrupt) stops the tool as Ctrl-C does: every run checkpoints first.

    Args:
        path: the study file (.ini); a relative path is relative to ``cwd``.
        out: the study directory.
        workers: worker processes (the tool's default: one per core when every run is small).
        threads: threads per worker.
        progress: ``True`` shows a progress bar (runs done, share of FLOPs, ETA); ``False`` nothing;
            a callable receives a :class:`StudyProgress` about every quarter second.
        binary: the algoprog executable (default: see :func:`find_binary`).
        cwd: where the tool runs: relative paths in the study file (``data = austen``, a text
            file) resolve from there (the default: this process's working directory).

    Returns:
        The :class:`Study` (its ``log`` holds the tool's stdout).

    Raises:
        AlgoprogError: the study file was refused, or the study failed or was stopped
            (the tool's message and exit code attached).

    Example:
        >>> s = algoprog.run_study("recipes/demo.ini", out="runs/demo")   # doctest: +SKIP
        study [##########..............]  42% 93/220 runs, 1 running, 9m41s elapsed, ETA 13m20s
    """
    out = os.path.abspath(os.path.join(cwd or os.getcwd(), out))
    args = ["study", "run", str(path), f"out={out}"]
    if workers is not None:
        args.append(f"workers={int(workers)}")
    if threads is not None:
        args.append(f"threads={int(threads)}")
    db = Path(out) / "registry.db"
    bar = _cli.TextBar("study") if progress is True else None
    state = {"last": "", "t0": time.monotonic()}

    def on_line(line: str) -> None:
        state["last"] = line

    def poll() -> None:
        if not progress or not db.exists():
            return
        try:
            con = _connect(db)
            try:
                c = _counts(con)
            finally:
                con.close()
        except (AlgoprogError, sqlite3.Error):
            return  # the study is creating its registry: next time
        elapsed = time.monotonic() - state["t0"]
        if callable(progress):
            progress(StudyProgress(c["done"], c["running"], c["failed"], c["total"], c["flops_done"],
                                   c["flops_total"], elapsed, state["last"]))
            return
        frac = c["flops_done"] / c["flops_total"] if c["flops_total"] > 0 else 0.0
        if state.get("f0") is None:
            state["f0"], state["t1"] = frac, time.monotonic()
        rate = (frac - state["f0"]) / max(time.monotonic() - state["t1"], 1e-9)
        eta = _cli.format_duration((1 - frac) / rate) if rate > 0 else "?"
        failed = f", {c['failed']} failed" if c["failed"] else ""
        bar.update(frac, f"{c['done']}/{c['total']} runs{failed}, {c['running']} running, "
                         f"{_cli.format_duration(elapsed)} elapsed, ETA {eta}", force=c["done"] == c["total"])

    try:
        log = _cli.stream(args, binary, on_line, poll, cwd=cwd)
    finally:
        if bar:
            bar.close()
    study = Study(out, _cli.find_binary(binary))
    study.log = log
    return study
