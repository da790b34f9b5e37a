"""algoprog from Python: studies, fits and compute-equivalent gains as pandas DataFrames.

A thin layer over the ``algoprog`` C tool: tables are read from the files it writes (the study
registry, run directories, report tables) and fits are computed by running it, so a notebook gets
the same numbers as the command line and the HTML report.

Example:
    >>> import algoprog
    >>> study = algoprog.open_study("runs/demo")                  # doctest: +SKIP
    >>> study.runs().groupby("arm").test_bpb.min()                 # doctest: +SKIP
    >>> study.ceg()[["arm", "loss", "ceg", "ceg_lo", "ceg_hi"]]    # doctest: +SKIP
    >>> algoprog.fit(study.points(), law="approach3").arms         # doctest: +SKIP
    >>> fig = algoprog.plot_frontiers(study)                       # doctest: +SKIP

The binary is found by :func:`find_binary`; every failure of the tool is an :class:`AlgoprogError`
with its message and exit code. Table schemas: :mod:`algoprog.schema` and docs/PYTHON.md.
"""
from ._cli import AlgoprogError, find_binary
from .fit import FitResult, ceg, fit
from .plot import plot_ceg, plot_frontiers
from .run import Run, train
from .study import Study, StudyProgress, open_study, run_study

__version__ = "0.1.0"

__all__ = ["AlgoprogError", "FitResult", "Run", "Study", "StudyProgress", "ceg", "find_binary", "fit",
           "open_study", "plot_ceg", "plot_frontiers", "run_study", "train", "__version__"]
