"""One run directory (``algoprog train`` or a study's ``DIR/runs/ID-ARM``), and :func:`train`.

A run directory holds ``config.ini`` (the resolved recipe), ``metrics.jsonl`` (one line per
evaluation), ``final.json`` (written when the run reaches its last step) and, while training or when
kept, ``checkpoint.bin`` (docs/FORMATS.md).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pandas as pd

from . import _cli, schema
from ._cli import AlgoprogError

PathLike = Union[str, os.PathLike]


def _ini_value(text: str) -> Any:
    """A config.ini value: quoted text, true/false, an integer, a number, or a bare word."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_metrics_jsonl(path: PathLike) -> list[dict]:
    """The measurement lines of a metrics.jsonl (event lines and a torn last line skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a crash mid-write leaves half a line; resume drops it
            if isinstance(row, dict) and "event" not in row:
                rows.append(row)
    return rows


class Run:
    """A run directory: its recipe, metrics and final result.

    Example:
        >>> run = algoprog.train("gpt2-2019", data="data/austen", steps=200)   # doctest: +SKIP
        >>> run.final()["test_bpb"]                                          # doctest: +SKIP
        ...
        >>> run.metrics()[["step", "val_bpb"]].tail(1)                        # doctest: +SKIP
    """

    def __init__(self, path: PathLike, log: str = ""):
        self.path = Path(path)
        #: what the tool printed to stdout when this object's run was trained (``train`` only)
        self.log = log
        if not self.path.is_dir():
            raise AlgoprogError(f"no run directory '{self.path}'")

    def __repr__(self) -> str:
        fin = self.path / "final.json"
        state = "finished" if fin.exists() else "not finished"
        return f"Run('{self.path}', {state})"

    @property
    def finished(self) -> bool:
        """True once final.json exists (the run reached its last step)."""
        return (self.path / "final.json").exists()

    def final(self) -> dict:
        """final.json as a dict: ``test_bpb``, ``val_bpb``, ``params``, ``flops``, ``time`` ... (FORMATS.md).

        Raises:
            AlgoprogError: the run has not finished (no final.json).
        """
        p = self.path / "final.json"
        if not p.exists():
            raise AlgoprogError(f"run '{self.path}' has not finished: no final.json")
        with open(p, encoding="utf-8") as f:
            return json.load(f)

    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl as a DataFrame, one row per evaluation (schema ``run_metrics``).

        Raises:
            AlgoprogError: no metrics.jsonl in the directory.
        """
        p = self.path / "metrics.jsonl"
        if not p.exists():
            raise AlgoprogError(f"run '{self.path}' has no metrics.jsonl")
        cols = schema.RUN_METRICS
        rows = read_metrics_jsonl(p)
        has_moe = any("moe_aux_loss" in r for r in rows)
        if not has_moe:
            cols = tuple(c for c in cols if not c.name.startswith("moe_"))
        return schema.frame(rows, cols)

    def config(self) -> dict:
        """config.ini (the resolved recipe) as one dict of key -> typed value, sections merged."""
        p = self.path / "config.ini"
        if not p.exists():
            raise AlgoprogError(f"run '{self.path}' has no config.ini")
        out: dict[str, Any] = {}
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")) or "=" not in line:
                continue
            key, value = line.split("=", 1)
            out[key.strip()] = _ini_value(value.strip())
        return out


def _arg(key: str, value: Any) -> str:
    """A recipe override as the CLI takes it: key=value, with true/false and full-precision numbers."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, float):
        value = repr(value)
    return f"{key}={value}"


_STEP = re.compile(r"^step\s+(\d+)/(\d+)\s*\|\s*loss\s+(\S+)")


def train(recipe: PathLike, out: Optional[PathLike] = None, *, progress: Union[bool, Callable] = True,
          binary: Optional[PathLike] = None, cwd: Optional[PathLike] = None, **overrides: Any) -> Run:
    """Trains a recipe with ``algoprog train RECIPE out=OUT key=value ...`` and returns the :class:`Run`.

    Args:
        recipe: a preset name (``gpt2-2019``), a recipe file, or a run's ``config.ini``.
        out: the run directory; ``None`` makes a new one under the system's temporary directory.
        progress: ``True`` shows a progress line (step, loss), ``False`` nothing; a callable gets
            ``(step, steps, loss)`` at every progress line the tool prints.
        binary: the algoprog executable (default: see :func:`find_binary`).
        cwd: where the tool runs (relative ``data=`` names and paths resolve from there).
        **overrides: any recipe key (``algoprog keys`` lists them): ``steps=200``, ``lr=3e-3``,
            ``tie_embeddings=False`` ...

    Returns:
        The run; ``run.final()`` has the held-out losses, ``run.metrics()`` every evaluation.

    Raises:
        AlgoprogError: the tool refused the recipe or the run failed (message and exit code attached).

    Example:
        >>> run = algoprog.train("gpt2-2019", data="licenses.txt", tokenizer="bytes", d_model=48,
        ...                      n_layers=2, n_heads=3, context=32, batch=8, steps=20)   # doctest: +SKIP
        >>> run.final()["test_bpb"]                                                    # doctest: +SKIP
        6.6075
    """
    if "out" in overrides:
        raise TypeError("pass the run directory as out=, not as an override")
    if out is None:
        out = tempfile.mkdtemp(prefix="algoprog-train-")
    out = os.path.abspath(os.path.join(cwd or os.getcwd(), out))
    args = ["train", str(recipe), f"out={out}"] + [_arg(k, v) for k, v in overrides.items()]
    bar = _cli.TextBar("train") if progress is True else None

    def on_line(line: str) -> None:
        m = _STEP.match(line)
        if not m:
            return
        step, steps, loss = int(m.group(1)), int(m.group(2)), float(m.group(3))
        if callable(progress):
            progress(step, steps, loss)
        elif bar:
            bar.update(step / steps if steps else 0.0, f"step {step}/{steps}, loss {loss:.4f}",
                       force=step == steps)

    try:
        log = _cli.stream(args, binary, on_line, lambda: None, cwd=cwd, interval=0.1)
    finally:
        if bar:
            bar.close()
    return Run(out, log)
