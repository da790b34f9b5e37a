"""Fixtures of the Python package's tests: the binary, a text to train on, and a small study.

The study is run once per session with the command line (not with the package under test), on
the Debian licence texts (as tests/test_study.py does): 2 arms x 4 budgets x 3 sizes and a second
seed at the smallest budget, 30 runs of a few thousand parameters, a few seconds on 2 cores.
The binary is $ALGOPROG_BIN, else the checkout's build/algoprog.
"""
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the checkout's copy, even when another is installed
os.environ.setdefault("MPLBACKEND", "Agg")  # headless
# OpenMP threads that spin while waiting steal the cores of whatever else runs (ctest -j, another
# build): tests/CMakeLists.txt sets the same for every test
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import algoprog  # noqa: E402

STUDY = """[study]
name = {name}
data = {data}
tokenizer = bytes
budgets = {budgets}
seeds = 1
extra_seeds = {extra_seeds}
allocation = chinchilla
tokens_per_param = 0.25
isoflop_points = {points}
context = 32
batch = 8
eval_tokens = 2048
final_eval_tokens = 4096
min_steps = 10
[arm gpt2]
preset = gpt2-2019
[arm llama]
preset = llama-2023
"""


def write_study(path, data, name="pytest", budgets="6e9:4.8e10:4", points=3, extra_seeds=1, extra=""):
    """A study file over `data`; the defaults make the session's small study."""
    Path(path).write_text(STUDY.format(name=name, data=data, budgets=budgets, points=points,
                                       extra_seeds=extra_seeds) + extra)
    return str(path)


@pytest.fixture(scope="session")
def binary():
    try:
        return algoprog.find_binary()
    except algoprog.AlgoprogError as e:
        pytest.exit(f"tests/python: {e} (build it, or set ALGOPROG_BIN)", returncode=1)


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("algoprog-py")


@pytest.fixture(scope="session")
def data_file(work):
    path = work / "licenses.txt"
    with open(path, "wb") as out:
        for f in sorted(glob.glob("/usr/share/common-licenses/*")):
            if os.path.isfile(f) and not os.path.islink(f):
                out.write(open(f, "rb").read())
    return str(path)


@pytest.fixture(scope="session")
def study_dir(binary, work, data_file):
    """The small study, finished, run by the CLI."""
    spec = write_study(work / "small.ini", data_file)
    out = work / "small"
    r = subprocess.run([binary, "study", "run", spec, f"out={out}", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="session")
def study(study_dir, binary):
    return algoprog.open_study(study_dir, binary=binary)


@pytest.fixture(scope="session")
def micro_ini(work, data_file):
    """A micro study (2 arms x 2 budgets x 1 size, 4 runs: about a second)."""
    return write_study(work / "micro.ini", data_file, name="micro", budgets="6e9, 1.2e10", points=1,
                       extra_seeds=0)
