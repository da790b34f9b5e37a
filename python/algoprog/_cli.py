"""Finding and running the ``algoprog`` binary; its failures as :class:`AlgoprogError`.

Every number this package reports either comes from files the C tool wrote (the registry, run
directories, report tables) or from running the tool itself, so that a notebook and the command
line never disagree.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

#: The checkout this package sits in when used from the repository (``python/algoprog`` -> root).
CHECKOUT = Path(__file__).resolve().parents[2]


class AlgoprogError(RuntimeError):
    """The C tool refused or failed; carries its own words and exit code.

    Attributes:
        message: what the tool said (its ``algoprog: error: ...`` lines without the prefix), or
            this package's explanation when the tool was never run (no binary, no study).
        returncode: the tool's exit code (2 bad input, 1 failure, 130/143 stopped by a signal),
            or ``None`` when no process ran.
        stderr: everything the tool wrote to stderr.
        command: the command line that was run (a list), or ``None``.

    Example:
        >>> import algoprog
        >>> try:
        ...     algoprog.open_study("/tmp")
        ... except algoprog.AlgoprogError as e:
        ...     print(e.returncode, e.message)        # doctest: +SKIP
        2 no study registry in '/tmp' (no registry.db there)
    """

    def __init__(self, message: str, returncode: Optional[int] = None, stderr: str = "",
                 command: Optional[Sequence[str]] = None):
        self.message = message
        self.returncode = returncode
        self.stderr = stderr
        self.command = list(command) if command is not None else None
        super().__init__(message if returncode is None else f"{message} (exit code {returncode})")

    @classmethod
    def from_process(cls, command: Sequence[str], returncode: int, stderr: str) -> "AlgoprogError":
        """The error of a finished process: its ``algoprog: error:`` / ``stopped:`` lines, else
        the last lines of its stderr."""
        lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
        said = []
        for ln in lines:
            for prefix in ("algoprog: error: ", "algoprog: stopped: ", "algoprog: "):
                if ln.startswith(prefix):
                    said.append(ln[len(prefix):])
                    break
        if not said:
            said = lines[-3:]
        if not said:
            shown = " ".join([Path(command[0]).name] + list(command[1:]))
            said = [f"`{shown}` exited with code {returncode} and said nothing"]
        return cls("; ".join(said), returncode, stderr, command)


def find_binary(binary: Optional[os.PathLike | str] = None) -> str:
    """The ``algoprog`` executable to run, as an absolute path.

    Looked for in this order: the ``binary`` argument; the ``ALGOPROG_BIN`` environment variable;
    ``build/algoprog`` of the checkout this package lives in; ``algoprog`` on ``PATH``.

    Raises:
        AlgoprogError: a named binary is not an executable file, or none was found.

    Example:
        >>> from algoprog import find_binary
        >>> find_binary()                            # doctest: +SKIP
        '/work/main/build/algoprog'
    """
    def usable(p: Path) -> bool:
        return p.is_file() and os.access(p, os.X_OK)

    for what, value in (("binary=", binary), ("ALGOPROG_BIN=", os.environ.get("ALGOPROG_BIN") or None)):
        if value is None:
            continue
        p = Path(value).expanduser()
        if not usable(p):
            raise AlgoprogError(f"{what}{value} is not an executable file")
        return str(p.resolve())
    # used from a checkout (not installed): its build
    checkout = (CHECKOUT / "CMakeLists.txt").is_file() and (CHECKOUT / "python" / "algoprog").is_dir()
    built = CHECKOUT / "build" / "algoprog"
    if checkout and usable(built):
        return str(built)
    on_path = shutil.which("algoprog")
    if on_path:
        return on_path
    build = f", build the checkout (`make build` gives {built})" if checkout else ""
    raise AlgoprogError(f"no algoprog binary found: pass binary=PATH, set ALGOPROG_BIN{build} or put algoprog on PATH")


def run(args: Sequence[str], binary: Optional[os.PathLike | str] = None, cwd=None) -> subprocess.CompletedProcess:
    """Runs ``algoprog ARGS...`` to completion and returns it (text output captured).

    Raises:
        AlgoprogError: the tool exited with a nonzero code (its message and code attached).
    """
    cmd = [find_binary(binary)] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", cwd=cwd)
    if r.returncode != 0:
        raise AlgoprogError.from_process(cmd, r.returncode, r.stderr)
    return r


def stream(args: Sequence[str], binary, on_line: Callable[[str], None], poll: Callable[[], None],
           cwd=None, interval: float = 0.25) -> str:
    """Runs ``algoprog ARGS...``, calling ``on_line`` for every line of its stdout and ``poll``
    every ``interval`` seconds, until it exits; returns its stdout.

    A ``KeyboardInterrupt`` (Ctrl-C, or a notebook's interrupt button), or an exception from
    ``poll``, is passed on to the tool as SIGINT, so that it checkpoints and stops as on the
    command line; the exception is then raised again. The command can be rerun to continue.

    Raises:
        AlgoprogError: nonzero exit (130/143 when stopped by a signal).
    """
    cmd = [find_binary(binary)] + [str(a) for a in args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            cwd=cwd, bufsize=1)
    out_lines: list[str] = []
    err_chunks: list[str] = []

    def read_out():
        for line in proc.stdout:
            out_lines.append(line)
            try:
                on_line(line.rstrip("\n"))
            except Exception:  # a display problem must not lose the run's output
                pass

    def read_err():
        err_chunks.append(proc.stderr.read())

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in readers:
        t.start()
    try:
        while proc.poll() is None:
            poll()
            time.sleep(interval)
    except BaseException:  # Ctrl-C, or a progress callable that failed: stop the tool cleanly
        proc.send_signal(signal.SIGINT)  # checkpoint and stop, as Ctrl-C in a terminal does
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        for t in readers:
            t.join(timeout=10)
    poll()
    if proc.returncode != 0:
        raise AlgoprogError.from_process(cmd, proc.returncode, "".join(err_chunks))
    return "".join(out_lines)


class TextBar:
    """A one-line progress display rewritten in place with ``\\r`` (terminals and Jupyter alike)."""

    def __init__(self, label: str, stream=None, width: int = 24):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.last, self.shown = 0.0, ""

    def update(self, fraction: float, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        f = min(max(fraction, 0.0), 1.0) if fraction == fraction else 0.0
        filled = int(round(f * self.width))
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {100 * f:3.0f}% {text}"
        if line == self.shown:
            return
        pad = max(len(self.shown) - len(line), 0)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self.shown = line

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def format_duration(seconds: float) -> str:
    """Seconds as ``42s``, ``3m07s`` or ``1h05m`` (the CLI's style); ``?`` when unknown."""
    if not seconds >= 0 or seconds > 1e7:
        return "?"
    t = int(seconds + 0.5)
    if t >= 3600:
        return f"{t // 3600}h{t // 60 % 60:02d}m"
    if t >= 60:
        return f"{t // 60}m{t % 60:02d}s"
    return f"{t}s"
