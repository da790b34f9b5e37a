"""The columns of every DataFrame this package returns, their types and meanings.

One schema per table, shared by every function that returns that table. The study tables
(``runs``, ``metrics``) have exactly the columns of ``algoprog study export DIR --csv`` in the same
order; the report tables (``fits``, ``ceg``, ``claims``, ``ablations``) those of ``DIR/report/*.csv``
(docs/FORMATS.md). Types:

- ``int64``: a whole number that is always there;
- ``Int64``: pandas' nullable integer (``<NA>`` where the registry has NULL);
- ``float64``: a number; ``NaN`` where unknown (NULL in the registry, ``null`` in JSON, ``nan`` in CSV);
- ``bool``: a 0/1 or true/false flag;
- ``str``: text, as Python ``str`` in an ``object`` column (``None`` where missing);
- ``datetime``: ``datetime64[ns, UTC]`` (``NaT`` where missing).

``python3 -m algoprog schema`` prints every schema as Markdown (docs/PYTHON.md holds that text).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, NamedTuple, Sequence

import pandas as pd


class Column(NamedTuple):
    """One column: its name, type (see the module's docstring) and meaning."""
    name: str
    dtype: str
    doc: str


def _cols(spec: str) -> tuple[Column, ...]:
    """Columns from lines of ``name dtype meaning``; an ``X_lo`` / ``X_hi`` line may leave its meaning out."""
    out = []
    for line in spec.strip().splitlines():
        parts = line.split(None, 2)
        name, dtype = parts[0], parts[1]
        doc = parts[2].strip() if len(parts) == 3 else ""
        if not doc and name.endswith(("_lo", "_hi")):
            doc = f"{'lower' if name.endswith('_lo') else 'upper'} end of {name[:-3]}'s 95% interval"
        out.append(Column(name, dtype, doc))
    return tuple(out)


RUNS = _cols("""
run int64 run id (the registry's run.id; its directory is DIR/runs/RUN-ARM)
arm str arm name
preset str the arm's preset
kind str `main` or `lr_sweep`
budget float64 planned training FLOPs of the run's budget
point int64 index of the size in the budget's IsoFLOP profile
seed int64 training seed
lr_mult float64 learning-rate multiplier of this run
lr float64 the arm's base rate times lr_mult
target_params float64 the allocation rule's N for this run
params int64 every parameter (Chinchilla's count)
params_nonembedding int64 N: no embeddings, no head (the count fits use)
d_model int64 width
n_layers int64 depth
tokens float64 training tokens D (exact)
flops float64 training FLOPs C (exact)
flops_6nd float64 6 N D, for comparison
steps int64 optimiser steps
status str blocked, pending, running, done or failed
attempts int64 times a worker leased the run
started_at datetime when the run (last) started
finished_at datetime when it finished
elapsed_s float64 training wall seconds
val_loss float64 final loss on the validation half (nats/token)
val_bpb float64 final validation bits per byte
test_loss float64 final loss on the test half (nats/token)
test_bpb float64 final test bits per byte (what studies report)
test_bpb_se float64 standard error of test_bpb over evaluation windows
unigram_bpb float64 a unigram model of the held-out text (the plateau)
params_kaplan Int64 every parameter but the embeddings (Kaplan's count)
keep bool the final checkpoint is kept
copied_from Int64 the earlier identical run whose result this run took
error str why the run failed
config str the run's resolved recipe as JSON text (Study.configs() spreads it into columns)
""")

METRICS = _cols("""
run int64 run id
arm str arm name
step int64 optimiser steps completed
tokens float64 training tokens so far
flops float64 training FLOPs so far (exact)
epochs float64 passes over the unique training tokens so far
train_loss float64 mean training loss since the previous row (NaN at step 0)
val_loss float64 validation loss (nats/token)
val_bpb float64 validation bits per byte
lr float64 learning rate of the last step
grad_norm float64 gradient norm of the last step, before clipping (NaN at step 0)
""")

# metrics.jsonl of one run directory (Run.metrics()): METRICS without run/arm, plus the timing
RUN_METRICS = METRICS[2:] + _cols("""
tokens_per_s float64 training throughput since the previous progress line
elapsed_s float64 training wall seconds so far
moe_aux_loss float64 mixture of experts only: the last step's balance loss (NaN otherwise)
moe_load_max float64 mixture of experts only: busiest expert's load over the mean (NaN otherwise)
""")

ARMS = _cols("""
arm str arm name
preset str preset (a recipe name or file)
overrides str its overrides, "key=value ..."
allocation str the arm's allocation rule
base_lr float64 the preset's learning rate
lr_mult float64 the chosen multiplier (NaN until chosen)
lr float64 the chosen rate, at the arm's smallest run
lr_source str how the rate was chosen
tune_arm str the arm whose learning-rate sweep sets this arm's rate
""")

POINTS = _cols("""
run int64 run id (not passed to the fit)
arm str arm name
params int64 N = params_nonembedding
tokens float64 D
flops float64 C (exact)
loss float64 test bits per byte
budget float64 planned FLOPs of the run's budget (groups IsoFLOP profiles)
seed int64 training seed
epochs float64 data_epochs of the run's recipe when above 1, else 1
""")

FRONTIER = _cols("""
arm str arm name
flops float64 the frontier point's compute
loss float64 its loss (test bits per byte, mean over seeds)
seeds int64 seeds averaged
sizes int64 sizes in the budget's profile
interior int64 1 when the profile's minimum lies inside the sampled sizes
n_opt float64 N at the profile's vertex (NaN without an interior minimum)
d_opt float64 D at the vertex
""")

FITS = _cols("""
arm str arm name (arms with a frontier law only)
preset str preset
allocation str allocation rule
runs int64 runs in the fit
plateau_runs int64 runs left out on the unigram plateau
frontier_points int64 budgets on the frontier
E float64 L(C) = E + A C^-alpha: the floor (test bits per byte)
E_lo float64 95% interval of E
E_hi float64
A float64 scale
A_lo float64
A_hi float64
alpha float64 exponent
alpha_lo float64
alpha_hi float64
identified bool all three parameters identified by the data
sigma_seed float64 the arm's own seed-to-seed sd of log loss
sigma_used float64 the pooled noise the intervals use (lack of fit included)
lack_of_fit float64 factor by which the residuals exceed the seed noise
rejected int64 bootstrap resamples rejected (count)
n_boot int64 bootstrap resamples
a_n float64 N*(C) ~ C^a
a_n_lo float64
a_n_hi float64
a_kaplan float64 the same exponent with N counted Kaplan's way
a_chinchilla float64 ... and Chinchilla's way
b_d float64 D*(C) ~ C^b
b_d_lo float64
b_d_hi float64
holdout_flops float64 validated extrapolation: the largest budget, held out of a refit (NaN: not checked)
holdout_loss float64 its frontier loss
holdout_predicted float64 the refit law's prediction of it
holdout_lo float64 95% prediction interval (law uncertainty and the point's seed noise)
holdout_hi float64
holdout_error float64 observed / predicted - 1
holdout_inside Int64 1: inside the prediction interval, 0: missed (<NA>: not checked)
notes str what the fit could not determine
""")

CEG = _cols("""
arm str the candidate arm
reference str the arm it is compared with
loss float64 loss level (test bits per byte)
compute_reference float64 FLOPs the reference needs to reach it
ceg float64 compute-equivalent gain C_reference(L) / C_arm(L)
ceg_lo float64 95% interval (0 and inf are real bounds: the data allow any gain)
ceg_hi float64
extrapolated bool the level lies beyond the losses both arms reached
method str law or local
slope float64 d log CEG / d log C
slope_lo float64
slope_hi float64
trend str grows, shrinks, not detected or undecided
determined bool both frontiers rest on enough budgets
rho_used float64 the seed correlation the paired resamples used
""")

CLAIMS = _cols("""
id str claim id (C1...)
claim str the claim, in words
verdict str supports, contradicts, undecided, not tested ...
result str what this study measured
""")

ABLATIONS = _cols("""
ablation str the [ablation NAME] package
switch str a switch of it; * for the whole package
loss float64 the loss level every gain is read at (test bits per byte)
extrapolated bool the level lies beyond the losses every arm reached
one_at_a_time float64 CEG of base + switch over base (*: their product)
one_at_a_time_lo float64
one_at_a_time_hi float64
leave_one_out float64 CEG of the package over the package without the switch (*: their product)
leave_one_out_lo float64
leave_one_out_hi float64
shapley float64 the switch's Shapley share of the package's CEG (*: the package); NaN unless every subset is an arm
shapley_lo float64
shapley_hi float64
""")

SCHEMAS = {"runs": RUNS, "metrics": METRICS, "run_metrics": RUN_METRICS, "arms": ARMS, "points": POINTS,
           "frontier": FRONTIER, "fits": FITS, "ceg": CEG, "claims": CLAIMS, "ablations": ABLATIONS}

# Keys of `algoprog fit --json` documents (FitResult frames): their types by name; other keys float64.
FIT_INT_KEYS = {"points", "budgets", "dof_seed", "vertices", "seeds", "sizes", "interior", "n", "dof", "n_boot"}
FIT_BOOL_KEYS = {"identified", "extrapolated", "determined", "ok", "from_replicates"}
FIT_STR_KEYS = {"arm", "reference", "method", "trend", "notes", "fit_notes", "noise_notes", "why", "param"}


def fit_dtype(key: str) -> str:
    """The type of a key of the fit JSON: ints, flags (``*_identified`` too), text, else float64."""
    if key in FIT_BOOL_KEYS or key.endswith("_identified"):
        return "bool"
    if key in FIT_INT_KEYS:
        return "int64"
    if key in FIT_STR_KEYS:
        return "str"
    return "float64"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v == "") or (isinstance(v, float) and math.isnan(v))


def series(values: Sequence[Any], dtype: str) -> pd.Series:
    """Values (from SQLite, CSV text or JSON) as a column of the given schema type.

    Missing values (``None``, ``""``, NaN) become NaN / ``<NA>`` / ``None`` / ``NaT``; a missing value
    in an ``int64`` column makes it ``Int64`` instead of failing.
    """
    values = list(values)
    if dtype == "float64":
        return pd.Series([math.nan if _missing(v) else float(v) for v in values], dtype="float64")
    if dtype in ("int64", "Int64"):
        if dtype == "int64" and not any(_missing(v) for v in values):
            return pd.Series([int(v) for v in values], dtype="int64")
        return pd.Series(pd.array([None if _missing(v) else int(v) for v in values], dtype="Int64"))
    if dtype == "bool":
        def flag(v):
            if isinstance(v, str):
                return v.strip().lower() in ("1", "true")
            return bool(v)
        if any(_missing(v) for v in values):
            return pd.Series(pd.array([None if _missing(v) else flag(v) for v in values], dtype="boolean"))
        return pd.Series([flag(v) for v in values], dtype="bool")
    if dtype == "datetime":
        return pd.Series(pd.to_datetime([None if _missing(v) else v for v in values], utc=True))
    if dtype == "str":  # an empty text stays empty: only NULL / null / NaN is missing
        return pd.Series([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                          for v in values], dtype="object")
    raise ValueError(f"unknown column type {dtype!r}")


def _guess(values: Sequence[Any]) -> str:
    """The type of a column no schema names (a newer tool's extra column): number or text."""
    try:
        for v in values:
            if not _missing(v):
                float(v)
        return "float64"
    except (TypeError, ValueError):
        return "str"


def frame(rows: Iterable[dict], schema: Sequence[Column], dtype_of=None) -> pd.DataFrame:
    """A DataFrame of ``rows`` (dicts) with the schema's columns, in its order, typed.

    Columns a row has that the schema does not name are kept after the schema's, typed by
    ``dtype_of(name)`` when given, else guessed (number or text). Schema columns no row has are
    left out only when ``rows`` is non-empty (an older tool's file); an empty input gives every
    schema column, empty and typed.
    """
    rows = list(rows)
    names = [c.name for c in schema]
    extra = []
    for r in rows:
        for k in r:
            if k not in names and k not in extra:
                extra.append(k)
    data = {}
    for c in schema:
        if rows and not any(c.name in r for r in rows):
            continue
        data[c.name] = series([r.get(c.name) for r in rows], c.dtype)
    for k in extra:
        vals = [r.get(k) for r in rows]
        data[k] = series(vals, dtype_of(k) if dtype_of else _guess(vals))
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def markdown() -> str:
    """Every schema as Markdown tables (the text of docs/PYTHON.md's schema section)."""
    out = []
    for name, cols in SCHEMAS.items():
        out.append(f"### `{name}`\n\n| column | type | meaning |\n|---|---|---|")
        out += [f"| `{c.name}` | {c.dtype} | {c.doc} |" for c in cols]
        out.append("")
    return "\n".join(out)

