#!/usr/bin/python3
"""test_report.py - the report of a small study, checked in a real browser.

usage: test_report.py ALGOPROG_BINARY WORKDIR [SCREENSHOT.png]

Runs a tiny study (3 arms x 4 budgets x 3 sizes, a second seed at the smallest budget), writes its report, checks the data files, then loads
index.html in headless Chromium (Debian's chromium) and checks the rendered DOM holds the plots
and tables. With a third argument, also saves a screenshot (the one in the README).
"""
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys

FAILURES = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browser(args, work):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={os.path.join(work, 'chromium-profile')}"]
    return subprocess.run([chromium()] + flags + args, capture_output=True, text=True, timeout=120)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    binary, work = sys.argv[1], sys.argv[2]
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "licenses.txt")
    with open(data, "wb") as out:
        for f in sorted(glob.glob("/usr/share/common-licenses/*")):
            if os.path.isfile(f) and not os.path.islink(f):
                out.write(open(f, "rb").read())
    spec = os.path.join(work, "study.ini")
    open(spec, "w").write(f"""[study]
name = report-test
data = {data}
budgets = 6e9:4.8e10:4
tokens_per_param = 0.25
isoflop_points = 3
extra_seeds = 1
context = 32
batch = 8
eval_tokens = 2048
final_eval_tokens = 4096
min_steps = 10
[arm lstm]
preset = lstm-2016
[arm gpt2]
preset = gpt2-2019
[arm llama]
preset = llama-2023
""")
    out = os.path.join(work, "study")
    r = subprocess.run([binary, "study", "run", spec, f"out={out}", "--quiet"], capture_output=True, text=True)
    check(r.returncode == 0, "the study runs" + ("" if r.returncode == 0 else ": " + r.stderr))
    r = subprocess.run([binary, "report", out, "--boot", "300"], capture_output=True, text=True)
    check(r.returncode == 0 and "index.html" in r.stdout, "algoprog report writes index.html")
    rdir = os.path.join(out, "report")
    for name in ("index.html", "runs.csv", "metrics.csv", "fits.csv", "ceg.csv", "claims.csv", "report.json"):
        check(os.path.getsize(os.path.join(rdir, name)) > 0, f"report/{name} written")
    doc = json.load(open(os.path.join(rdir, "report.json")))
    check(len(doc["arms"]) == 3 and all("alpha" in a for a in doc["arms"]), "report.json has every arm's fit")
    claims = {c["id"]: c for c in doc["claims"]}
    check(len(claims) == 15 and claims["C1"]["verdict"] != "not tested" and claims["C2"]["verdict"] != "not tested",
          f"claims: C1 ({claims['C1']['verdict']}), C2 ({claims['C2']['verdict']}) answered from the data")
    check(claims["C5"]["verdict"].startswith("not tested"), "untestable claims say so")
    rows = list(csv.DictReader(open(os.path.join(rdir, "ceg.csv"))))
    check(len(rows) >= 2 * 6 and all(float(x["ceg"]) > 0 for x in rows), f"ceg.csv: {len(rows)} levels")
    html = open(os.path.join(rdir, "index.html")).read()
    check("http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html,
          "self-contained: no network references")
    # a real browser renders it
    if not chromium():
        check(False, "headless Chromium is installed (scripts/setup --test installs Debian's chromium)")
    else:
        r = browser(["--dump-dom", "file://" + os.path.abspath(os.path.join(rdir, "index.html"))], work)
        dom = r.stdout
        check(r.returncode == 0 and "<html" in dom, "Chromium loads the page")
        plots = re.findall(r'<svg id="plot-[a-z]+', dom)
        check(len(plots) >= 2, f"the rendered DOM holds {len(plots)} plots (loss vs compute, CEG vs compute)")
        check(all(t in dom for t in ('id="claims-table"', 'id="fits-table"', 'id="runs-table"', 'id="ceg-table"',
                                     'id="accounting-table"')), "the rendered DOM holds the claims, fits, CEG, runs and "
                                                                 "accounting tables")
        check(len(re.findall(r"<circle", dom)) >= 12, "plots hold the runs as points")
        if shot:
            r = browser(["--window-size=1100,1500", f"--screenshot={os.path.abspath(shot)}",
                         "file://" + os.path.abspath(os.path.join(rdir, "index.html"))], work)
            check(r.returncode == 0 and os.path.getsize(shot) > 10000, f"screenshot saved to {shot}")
    print(f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
