"""The report's two main figures with matplotlib: :func:`plot_frontiers` and :func:`plot_ceg`.

matplotlib is imported only when a plot is asked for. The functions draw on a given ``ax`` or on
a new figure from ``matplotlib.pyplot`` (shown inline by Jupyter, saved with ``fig.savefig`` under
the headless Agg backend) and return the Figure.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import pandas as pd

from ._cli import AlgoprogError


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # plotting is optional: the tables need only pandas
        raise ImportError("plotting needs matplotlib (Debian: python3-matplotlib)") from e
    return plt


def _axes(ax, size=(7.5, 4.8)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = _pyplot().subplots(figsize=size, layout="constrained")
    return fig, ax


def _plain_log_ticks(axis) -> None:
    """Tick labels of a log axis as plain numbers (4, 4.5, 5) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(fmt)


def _colors(names):
    plt = _pyplot()
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2", "C3"])
    return {n: cycle[i % len(cycle)] for i, n in enumerate(names)}


def _law_rows(fit) -> pd.DataFrame:
    """E, A, alpha, identified per arm, from the report's fits or a frontier FitResult."""
    if fit is None:
        return pd.DataFrame(columns=["arm", "E", "A", "alpha", "identified"])
    return fit.arms[["arm", "E", "A", "alpha", "identified"]]


def plot_frontiers(study, fit=None, ax=None, logy: bool = True, title: Optional[str] = None):
    """Loss against training compute, per arm: every finished main run, the frontier points and the
    fitted law L(C) = E + A C^-alpha (dashed where the data do not identify it), log-log.

    The report's "Loss against compute" figure (which draws the loss axis linear: ``logy=False``).
    Runs on the unigram plateau, left out of the fits, are hollow.

    Args:
        study: a :class:`Study` (its runs, and its report's frontiers and laws).
        fit: a :class:`FitResult` of law ``frontier`` (e.g. a refit of ``study.points()``) whose
            frontiers and laws to draw instead of the report's.
        ax: a matplotlib Axes to draw on (default: a new figure).
        logy: a log loss axis.

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = algoprog.plot_frontiers(study)                      # doctest: +SKIP
        >>> fig.savefig("frontiers.png", dpi=150)                      # doctest: +SKIP
    """
    runs = study.runs(kind="main", status="done")
    runs = runs[runs.test_bpb.notna()]
    if runs.empty:
        raise AlgoprogError(f"study {study.path} has no finished main run to plot")
    margin = study.plateau_margin()
    flat = runs.unigram_bpb.notna() & (runs.test_bpb >= runs.unigram_bpb * (1 - margin))
    if fit is None:
        front = study.frontier()
        laws = study.fits()[["arm", "E", "A", "alpha", "identified"]]
    else:
        front, laws = fit.frontier, _law_rows(fit)
    arms = list(study.arms().arm)
    color = _colors(arms)
    fig, ax = _axes(ax)
    x0, x1 = runs.flops.min() / 1.5, runs.flops.max() * 1.5
    for arm in arms:
        c = color[arm]
        mine = runs.arm == arm
        ax.scatter(runs.flops[mine & ~flat], runs.test_bpb[mine & ~flat], s=14, color=c, alpha=0.55, lw=0,
                   label=arm)
        if (mine & flat).any():
            ax.scatter(runs.flops[mine & flat], runs.test_bpb[mine & flat], s=14, facecolors="none",
                       edgecolors=c, alpha=0.7, lw=0.8)
        f = front[front.arm == arm]
        if not f.empty:
            ax.scatter(f.flops, f.loss, s=46, marker="D", color=c, edgecolors="black", lw=0.6, zorder=3)
        law = laws[laws.arm == arm]
        if not law.empty and all(math.isfinite(law.iloc[0][k]) for k in ("E", "A", "alpha")):
            E, A, alpha, ok = law.iloc[0][["E", "A", "alpha", "identified"]]
            xs = [x0 * (x1 / x0) ** (k / 79) for k in range(80)]
            ax.plot(xs, [E + A * x ** -alpha for x in xs], color=c, lw=1.4, ls="-" if ok else "--")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    ax.set_xlim(x0, x1)
    ax.set_xlabel("training FLOPs (exact)")
    ax.set_ylabel("test bits per byte")
    ax.set_title(title or "Held-out loss against training compute")
    ax.legend(title="arm (\u25c6 frontier, \u25cb plateau)", fontsize="small")
    ax.grid(True, which="both", alpha=0.25)
    return fig


def plot_ceg(data: Any, ax=None, reference: Optional[str] = None, title: Optional[str] = None):
    """Compute-equivalent gain against the compute the reference needs, per arm, with the 95% band;
    dashed where the CEG is not determined (a frontier on too few budgets); a line at 1 (no gain).

    The report's "Compute-equivalent gain" figure.

    Args:
        data: a :class:`Study` (its report's CEGs), a :class:`FitResult` of law ``frontier``, or a
            CEG DataFrame (:meth:`Study.ceg` or :func:`algoprog.ceg`).
        ax: a matplotlib Axes to draw on (default: a new figure).
        reference: which reference arm's CEGs to draw (default: the first one in the table).

    Returns:
        The matplotlib Figure.

    Raises:
        AlgoprogError: there is no CEG to draw.

    Example:
        >>> fig = algoprog.plot_ceg(study)                            # doctest: +SKIP
    """
    if isinstance(data, pd.DataFrame):
        table = data
    elif hasattr(data, "json") and hasattr(data, "law"):
        table = data.ceg
    else:
        table = data.ceg()
    table = table.rename(columns={"compute_ref": "compute_reference"})
    if table.empty:
        raise AlgoprogError("no compute-equivalent gain to plot")
    reference = reference or table.reference.iloc[0]
    table = table[table.reference == reference]
    if table.empty:
        raise AlgoprogError(f"no compute-equivalent gain over {reference!r}")
    ok = table.ceg.gt(0) & table.compute_reference.map(math.isfinite)
    lo_seen = table.ceg_lo.where(table.ceg_lo.gt(0) & table.ceg_lo.map(math.isfinite), table.ceg)[ok]
    hi_seen = table.ceg_hi.where(table.ceg_hi.map(math.isfinite), table.ceg)[ok]
    y0 = max(min(lo_seen.min(), 0.8), 1e-3)
    y1 = min(max(hi_seen.max(), 1.25), 1e4)
    arms = list(dict.fromkeys(table.arm))
    color = _colors([reference] + arms)
    fig, ax = _axes(ax)
    ax.axhline(1.0, color="#444", lw=0.8, ls=":", label="no gain")
    for arm in arms:
        t = table[(table.arm == arm) & ok].sort_values("compute_reference")
        if t.empty:
            continue
        c = color[arm]
        lo = t.ceg_lo.where(t.ceg_lo.gt(0) & t.ceg_lo.map(math.isfinite), y0 / 1.2)
        hi = t.ceg_hi.where(t.ceg_hi.map(math.isfinite), y1 * 1.2)
        determined = bool(t.determined.iloc[0])
        ax.fill_between(t.compute_reference, lo, hi, color=c, alpha=0.18, lw=0)
        ax.plot(t.compute_reference, t.ceg, color=c, lw=1.6, ls="-" if determined else "--",
                marker="o", ms=4, label=arm + ("" if determined else " (not determined)"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(y0 / 1.2, y1 * 1.2)
    if y1 / y0 < 100:
        _plain_log_ticks(ax.yaxis)
    ax.set_xlabel(f"FLOPs {reference} needs to reach the loss")
    ax.set_ylabel("CEG (x less compute), 95% band")
    ax.set_title(title or f"Compute-equivalent gain over {reference}")
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.25)
    return fig
