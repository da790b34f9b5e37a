"""Scaling-law fits and compute-equivalent gains by the C tool: :func:`fit`, :func:`ceg`, :class:`FitResult`.

The points go to ``algoprog fit POINTS.csv --law LAW --json`` as a CSV of the columns it reads
(arm, params, tokens, flops, loss, budget, seed, epochs); its JSON comes back as tables. The
numbers are the tool's, to the digit it prints.
"""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd

from . import _cli, schema
from ._cli import AlgoprogError

PathLike = Union[str, os.PathLike]

#: the columns ``algoprog fit`` reads from a CSV, in the order they are written
FIT_COLUMNS = ("arm", "params", "tokens", "flops", "loss", "budget", "seed", "epochs", "seconds", "kv_bytes", "memory")


def _cell(v: Any) -> str:
    """A CSV cell the tool reads back to the same double (``repr`` is the shortest exact form)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    if hasattr(v, "item"):  # numpy scalars
        return _cell(v.item())
    return str(v)


def write_points_csv(df: pd.DataFrame, path: PathLike, order: Optional[list] = None) -> None:
    """Writes the columns of ``df`` that ``algoprog fit`` reads to a CSV; arms in ``order`` if given.

    Raises:
        ValueError: no loss column, or neither flops nor params and tokens.
    """
    cols = [c for c in FIT_COLUMNS if c in df.columns]
    if "loss" not in cols:
        hint = " (a study's runs: use Study.points(), which takes the test loss the report fits)" \
            if "test_bpb" in df.columns else ""
        raise ValueError(f"the points need a 'loss' column{hint}; columns read: {', '.join(FIT_COLUMNS)}")
    if "flops" not in cols and not {"params", "tokens"} <= set(cols):
        raise ValueError("the points need a 'flops' column, or 'params' and 'tokens'")
    rows = df[cols]
    if order is not None and "arm" in cols:
        rank = {a: i for i, a in enumerate(order)}
        rows = rows.assign(_rank=rows["arm"].map(rank)).sort_values("_rank", kind="stable").drop(columns="_rank")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        seed = cols.index("seed") if "seed" in cols else -1
        for r in rows.itertuples(index=False):
            cells = [_cell(v) for v in r]
            if seed >= 0 and cells[seed].endswith(".0"):  # a float column of whole seeds (after a merge)
                cells[seed] = cells[seed][:-2]
            w.writerow(cells)


def _typed(rows: list[dict], keys: tuple = ()) -> pd.DataFrame:
    """Rows of the fit JSON as a typed frame (``keys``: the columns of an empty one)."""
    names: list[str] = list(keys)
    for r in rows:
        names += [k for k in r if k not in names]
    cols = [schema.Column(k, schema.fit_dtype(k), "") for k in names]
    return schema.frame(rows, cols)


class FitResult:
    """What ``algoprog fit --json`` printed, as the parsed document and as tables.

    Attributes:
        law: the law fitted.
        json: the tool's JSON document, parsed (nothing changed).
        points, n_boot, seed, notes: its top-level fields.

    Tables, by law (asking a law for a table it does not give raises ``ValueError``):

    - ``frontier``: ``arms`` (one row per arm: E, A, alpha and their intervals, noise, exponents
      a and b of N* and D*), ``frontier`` (its points), ``ceg`` (one row per arm and loss level,
      the curve's slope and trend repeated), ``noise`` (a dict), and with ``holdout=`` the
      ``holdout`` table (each held-out budget: observed, predicted, interval, error, inside);
    - ``approach2``: ``arms`` (per arm: a, b, approach 2's design bias, the corrected a, whether the
      bias is flagged, approach 3's a on the same points), ``budgets`` (each IsoFLOP parabola, with
      its arm) and ``params`` (a, b per arm);
    - ``approach3``: ``arms`` (E, A, B, alpha, beta, a, b per arm);
    - ``muennighoff``: ``params`` (E, A, B, alpha, beta, rstar); the fresh-data fractions in ``json``.

    Columns carry the JSON's key names and values: ``null`` becomes NaN; a parameter bound the data
    do not give is 0, as the tool writes it; a CEG bound it does not give (``-1`` in the JSON,
    ``inf``/``nan`` in the report's ceg.csv) becomes NaN, because a gain is never negative.
    ``compute_ref`` is the report's ``compute_reference``; ``a``/``b`` its ``a_n``/``b_d``; the
    arms' ``rejected`` is a fraction of resamples (fits.csv counts them).

    Example:
        >>> r = algoprog.fit(study.points())                          # doctest: +SKIP
        >>> r.arms[["arm", "E", "A", "alpha", "identified"]]          # doctest: +SKIP
        >>> r.ceg[["arm", "reference", "loss", "ceg", "ceg_lo", "ceg_hi"]]   # doctest: +SKIP
    """

    def __init__(self, doc: dict, command: Optional[list] = None):
        self.json = doc
        self.command = command
        self.law = doc.get("law")
        self.points = doc.get("points")
        self.n_boot = doc.get("n_boot")
        self.seed = doc.get("seed")
        self.notes = doc.get("notes", "")

    def __repr__(self) -> str:
        extra = ""
        if "arms" in self.json:
            extra = f", arms {[a.get('arm') for a in self.json['arms']]}"
        return f"<FitResult {self.law}: {self.points} points, {self.n_boot} resamples{extra}>"

    def _need(self, what: str, laws: tuple) -> None:
        if self.law not in laws:
            gives = {"frontier": "arms, frontier, ceg, noise, holdout", "approach2": "arms, budgets, params",
                     "approach3": "arms", "muennighoff": "params"}.get(self.law, "")
            raise ValueError(f"law {self.law} gives no '{what}' table; it gives: {gives}")

    @property
    def noise(self) -> dict:
        """The pooled noise of one seed's frontier (``sigma``, ``dof``, ``from_replicates``)."""
        self._need("noise", ("frontier",))
        return dict(self.json["noise"])

    @property
    def arms(self) -> pd.DataFrame:
        """One row per arm (frontier, approach2 and approach3)."""
        self._need("arms", ("frontier", "approach2", "approach3"))
        nested = ("frontier", "budgets", "holdout")
        return _typed([{k: v for k, v in a.items() if k not in nested} for a in self.json["arms"]])

    @property
    def holdout(self) -> pd.DataFrame:
        """frontier with ``holdout=``: one row per arm and held-out budget (arm, flops, observed,
        predicted, lo, hi, error, inside); an arm not checked has one row with its ``why``."""
        self._need("holdout", ("frontier",))
        rows = []
        for a in self.json["arms"]:
            h = a.get("holdout")
            if h is None:
                raise ValueError("this fit has no holdout check: fit(..., holdout=K)")
            for b in h["budgets"] or [{}]:
                rows.append(dict({"arm": a["arm"], "k": h["k"], "why": h["why"]}, **b))
        return _typed(rows, ("arm", "k", "flops", "observed", "predicted", "lo", "hi", "error", "inside", "why"))

    @property
    def frontier(self) -> pd.DataFrame:
        """Each arm's frontier points: arm, flops, loss, seeds, sizes, interior, n_opt, d_opt, why."""
        self._need("frontier", ("frontier",))
        rows = [dict({"arm": a["arm"]}, **p) for a in self.json["arms"] for p in a["frontier"]]
        return _typed(rows, ("arm", "flops", "loss", "seeds", "sizes", "interior", "n_opt", "d_opt", "why"))

    @property
    def ceg(self) -> pd.DataFrame:
        """Every arm's CEG over the first arm: one row per (arm, loss level)."""
        self._need("ceg", ("frontier",))
        rows = []
        for c in self.json.get("ceg", []):
            curve = {k: v for k, v in c.items() if k not in ("arm", "reference", "levels")}
            for lv in c["levels"]:
                row = {"arm": c["arm"], "reference": c["reference"]}
                row.update(lv)
                for k in ("ceg_lo", "ceg_hi"):
                    if row.get(k) == -1:
                        row[k] = None
                row.update(curve)
                rows.append(row)
        return _typed(rows, ("arm", "reference", "loss", "compute_ref", "ceg", "ceg_lo", "ceg_hi", "extrapolated",
                             "method", "unreachable", "slope", "slope_lo", "slope_hi", "trend", "determined", "rho",
                             "rho_used", "rejected", "notes"))

    @property
    def budgets(self) -> pd.DataFrame:
        """approach2: each budget's IsoFLOP parabola (arm, budget, n, n_opt, loss_opt, grid_lo, grid_hi, ok)."""
        self._need("budgets", ("approach2",))
        return _typed([dict({"arm": a["arm"]}, **b) for a in self.json["arms"] for b in a["budgets"]])

    @property
    def params(self) -> pd.DataFrame:
        """approach2 (per arm: a, b) and muennighoff: one row per parameter: [arm,] param, value, lo, hi,
        identified."""
        self._need("params", ("approach2", "muennighoff"))

        def rows_of(d: dict, extra: dict) -> list:
            names = [k[:-len("_identified")] for k in d if k.endswith("_identified") and k != "a_approach3_identified"]
            return [dict(extra, param=n, value=d[n], lo=d[n + "_lo"], hi=d[n + "_hi"],
                         identified=d[n + "_identified"]) for n in names]
        if self.law == "approach2":
            return _typed([r for a in self.json["arms"] for r in rows_of(a, {"arm": a["arm"]})])
        return _typed(rows_of(self.json, {}))


def _options(boot: Optional[int], seed: Optional[int], holdout: Optional[int] = None,
             cost: Optional[str] = None, columns: Optional[dict] = None) -> list:
    return (["--boot", str(int(boot))] if boot is not None else []) + \
        (["--seed", str(int(seed))] if seed is not None else []) + \
        (["--holdout", f"top={int(holdout)}"] if holdout else []) + \
        (["--cost", str(cost)] if cost else []) + \
        [a for name, header in (columns or {}).items() for a in ("--col", f"{name}={header}")]


def _run_fit(source: str, law: str, boot: Optional[int], seed: Optional[int], binary, holdout=None,
             cost=None, columns=None) -> FitResult:
    r = _cli.run(["fit", source, "--law", law, "--json"] + _options(boot, seed, holdout, cost, columns), binary)
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise AlgoprogError(f"`algoprog fit` printed no JSON document ({e}): {r.stdout[:200]!r}") from None
    return FitResult(doc, r.args)


def fit(data: Any, law: str = "frontier", *, boot: Optional[int] = None, seed: Optional[int] = None,
        reference: Optional[str] = None, holdout: Optional[int] = None, cost: Optional[str] = None,
        columns: Optional[dict] = None, binary: Optional[PathLike] = None) -> FitResult:
    """Fits a scaling law with ``algoprog fit ... --law LAW --json``.

    Args:
        data: a DataFrame of points (columns among arm, params, tokens, flops, loss, budget, seed,
            epochs; others are ignored; :meth:`Study.points` gives a study's), a :class:`Study` or
            a study directory (the tool reads its registry, as the report does), or a CSV file.
        law: ``frontier`` (the report's: L(C) = E + A C^-alpha per arm, CEGs over the first arm),
            ``approach2``, ``approach3`` or ``muennighoff`` (docs/FITTING.md).
        boot: bootstrap resamples (the tool's default: 1000).
        seed: the bootstrap's seed (default 42).
        reference: with a DataFrame, the arm written first, i.e. the reference of the CEGs
            (rows keep their order within each arm).
        holdout: frontier only: refit each arm without its ``holdout`` largest budgets and check
            the law's predictions of them (``FitResult.holdout``).
        cost: frontier only: the cost axis (``flops``, ``seconds``, ``params``, ``kv_bytes``,
            ``memory``); a DataFrame needs the matching column (seconds, params, kv_bytes, memory).
        columns: the data's own names for the columns the tool reads, ``{NAME: HEADER}``, e.g.
            ``{"params": "Model Size", "flops": "Training FLOP"}`` (``--col NAME=HEADER``).
        binary: the algoprog executable (default: see :func:`find_binary`).

    Raises:
        AlgoprogError: the tool refused the points or the law (its message and exit code attached).
        ValueError: the frame has no loss column, or no compute.

    Example:
        >>> import pandas as pd, algoprog
        >>> pts = pd.DataFrame({"arm": "a", "flops": [1e15, 1e16, 1e17, 1e18],
        ...                     "loss": [3.2, 2.9, 2.7, 2.55]})
        >>> r = algoprog.fit(pts)                                     # doctest: +SKIP
        >>> r.arms.loc[0, ["E", "A", "alpha"]]                        # doctest: +SKIP
    """
    from .study import Study  # a study's points come from its registry

    if isinstance(data, Study):
        binary = binary or data.binary
        data = data.path
    if isinstance(data, (str, os.PathLike)):
        return _warn_missing_cegs(_run_fit(str(data), law, boot, seed, binary, holdout, cost, columns), str(data),
                                  boot, seed, binary)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"fit() takes a DataFrame, a Study or a path, not {type(data).__name__}")
    if data.empty:
        raise ValueError("fit() got no points (an empty DataFrame)")
    if columns:
        missing = [h for h in columns.values() if h not in data.columns]
        if missing:
            raise ValueError(f"columns names {missing}, which the DataFrame does not have")
        data = data.drop(columns=[c for c in columns if c in data.columns and c not in columns.values()]) \
            .rename(columns={h: n for n, h in columns.items()})
    order = None
    if reference is not None:
        arms = list(dict.fromkeys(data["arm"])) if "arm" in data.columns else []
        if reference not in arms:
            raise ValueError(f"reference {reference!r} is not an arm of the points ({arms})")
        order = [reference] + [a for a in arms if a != reference]
    with tempfile.TemporaryDirectory(prefix="algoprog-fit-") as tmp:
        path = Path(tmp) / "points.csv"
        write_points_csv(data, path, order)
        return _warn_missing_cegs(_run_fit(str(path), law, boot, seed, binary, holdout, cost), str(path), boot, seed,
                                  binary)


def _warn_missing_cegs(result: FitResult, source: str, boot, seed, binary) -> FitResult:
    """Warns, with the tool's reason, about arms the frontier law gave no CEG for (the --json entry's
    ``error``; the text output's reason from older builds of the tool)."""
    if result.law != "frontier":
        return result
    from .study import _ceg_reasons

    arms = [a["arm"] for a in result.json.get("arms", [])]
    got = {c["arm"] for c in result.json.get("ceg", []) if not c.get("error")}
    missing = [a for a in arms[1:] if a not in got]
    if missing:
        why = [f"CEG of {c['arm']} over {c['reference']}: {c['error']}" for c in result.json.get("ceg", [])
               if c.get("error")] or _ceg_reasons(["fit", source] + _options(boot, seed), binary)
        warnings.warn("; ".join(why) if why else f"no CEG of {', '.join(missing)} over {arms[0]}", stacklevel=3)
    return result


def ceg(data: Any, reference: Optional[str] = None, *, boot: Optional[int] = None, seed: Optional[int] = None,
        binary: Optional[PathLike] = None) -> pd.DataFrame:
    """Compute-equivalent gains of every arm over a reference arm, by ``algoprog fit --law frontier``.

    Args:
        data: as for :func:`fit` (points, a Study or a study directory).
        reference: the arm compared against (default: the first arm of the points).
        boot, seed, binary: as for :func:`fit`.

    Returns:
        :attr:`FitResult.ceg`: one row per (arm, loss level): loss, compute_ref, ceg with its 95%
        interval, extrapolated, method, and the curve's slope, trend, determined.

    Raises:
        AlgoprogError: the tool failed, or it could compute no CEG (its reason attached).

    Example:
        >>> algoprog.ceg(study.points(), reference="gpt2")[["arm", "loss", "ceg", "ceg_lo", "ceg_hi"]]
        ... # doctest: +SKIP
    """
    if reference is not None and not isinstance(data, pd.DataFrame):
        raise ValueError("reference= needs the points as a DataFrame (Study.points()): a study's CEGs are "
                         "over its first arm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fit(data, "frontier", boot=boot, seed=seed, reference=reference, binary=binary)
    table = r.ceg
    if table.empty:
        why = [str(w.message) for w in caught]
        raise AlgoprogError("no compute-equivalent gain: " + ("; ".join(why) if why else "the points have one arm"))
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return table
