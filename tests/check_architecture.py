#!/usr/bin/python3
"""check_architecture.py - docs/ARCHITECTURE.md's file map is generated from the source tree.

usage: check_architecture.py SOURCE_DIR [--fix]

It also checks the layering the document states: which folders each folder may include, that
only the registry's files speak SQL, only dist.c includes mpi.h, and only the CLI installs signal
handlers.

The section between <!-- files:begin --> and <!-- files:end --> lists every file under src/, one
line per module (NAME.h and NAME.c together), in data-flow order, with the first sentence of the
file's opening comment. The test fails when that section differs from the tree (a file added,
removed or re-described without regenerating), or when the document names a src/ path that does
not exist. --fix rewrites the section.
"""
import os
import re
import sys

# folders in the order data flows through them (docs/ARCHITECTURE.md explains each)
ORDER = ["core", "config", "kernels", "models", "optim", "data", "train", "dist", "study", "fit", "report", "bench",
         "cli"]


# what each folder may include (besides itself): lower layers only; fit/ knows nothing of studies
ALLOWED = {
    "core": set(), "config": {"core"}, "kernels": {"core"}, "data": {"core"}, "dist": {"core"},
    "models": {"core", "config", "kernels"}, "optim": {"core", "config", "kernels"},
    "train": {"core", "config", "kernels", "models", "optim", "data", "dist"},
    "bench": {"core", "config", "kernels", "models", "optim", "data", "train"},
    "fit": {"core"},
    "study": {"core", "config", "kernels", "models", "optim", "data", "dist", "train"},
    "report": {"core", "config", "models", "fit", "study", "train", "data"},
    "cli": set(ORDER),
}
# system headers only certain files may include, and calls only the CLI may make
PRIVATE = [(r"#include <sqlite3.h>", r"src/study/registry(_sql\.h|\.c|_read\.c)$", "SQL"),
           (r"#include <mpi.h>", r"src/dist/dist\.c$", "MPI"),
           (r"\bsigaction\s*\(\s*SIG(INT|TERM)", r"src/cli/", "SIGINT/SIGTERM handlers")]


def layering(root):
    problems = []
    for folder in ORDER:
        d = os.path.join(root, "src", folder)
        if not os.path.isdir(d):
            continue
        for n in sorted(os.listdir(d)):
            if not n.endswith((".c", ".h")):
                continue
            path = f"src/{folder}/{n}"
            text = open(os.path.join(root, path), encoding="utf-8").read()
            for inc in re.findall(r'#include "(\w+)/', text):
                if inc != folder and inc not in ALLOWED.get(folder, set()):
                    problems.append(f"{path} includes {inc}/, which {folder}/ may not use")
            for pattern, allowed, what in PRIVATE:
                if re.search(pattern, text) and not re.search(allowed, path):
                    problems.append(f"{path}: {what} belongs in {allowed.strip('$')}")
    return problems


def first_sentence(path):
    text = open(path, encoding="utf-8").read()
    m = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    if not m:
        return "(no opening comment)"
    body = " ".join(line.strip().lstrip("*").strip() for line in m.group(1).splitlines())
    body = re.sub(r"\s+", " ", body).strip()
    body = re.sub(r"^[\w./{},]+ - ", "", body)  # "name.h - " prefix
    # the first sentence, or its first clause when that says enough on its own
    ends = [m.start() for m in re.finditer(r"[.;:](\s|$)", body)]
    cut = next((e for e in ends if e >= 20 or body[e] != ":"), len(body))
    sentence = body[:cut]
    while sentence.count("(") > sentence.count(")"):  # cut inside a parenthesis: drop it
        sentence = sentence[:sentence.rindex("(")]
    if len(sentence) > 110:
        sentence = sentence[:sentence.rindex(" ", 0, 107)].rstrip(",;") + " ..."
    return sentence.strip().rstrip(",")


def generate(src):
    lines = ["```"]
    for folder in ORDER:
        d = os.path.join(src, folder)
        if not os.path.isdir(d):
            continue
        names = sorted(os.listdir(d))
        modules = {}
        for n in names:
            base, ext = os.path.splitext(n)
            if ext in (".c", ".h"):
                modules.setdefault(base, []).append(ext)
        lines.append(f"src/{folder}/")
        for base in sorted(modules):
            exts = sorted(modules[base], key=lambda e: e != ".h")
            label = base + (".{h,c}" if len(exts) == 2 else exts[0])
            describe = os.path.join(d, base + exts[0])
            lines.append(f"  {label:<24} {first_sentence(describe)}")
    lines.append("```")
    return "\n".join(lines)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    root = sys.argv[1]
    doc_path = os.path.join(root, "docs", "ARCHITECTURE.md")
    doc = open(doc_path, encoding="utf-8").read()
    want = generate(os.path.join(root, "src"))
    unknown = [d for d in sorted(os.listdir(os.path.join(root, "src"))) if d not in ORDER]
    m = re.search(r"<!-- files:begin -->\n(.*?)\n<!-- files:end -->", doc, re.S)
    if not m:
        print("docs/ARCHITECTURE.md has no <!-- files:begin --> ... <!-- files:end --> section")
        return 1
    if len(sys.argv) == 3 and sys.argv[2] == "--fix":
        doc = doc[:m.start(1)] + want + doc[m.end(1):]
        open(doc_path, "w", encoding="utf-8").write(doc)
        print("docs/ARCHITECTURE.md file map regenerated")
        return 0
    failures = []
    if unknown:
        failures.append(f"src/ folders not in the data-flow order of this script: {unknown}")
    if m.group(1) != want:
        have, new = m.group(1).splitlines(), want.splitlines()
        diff = [f"  doc: {a}\n  src: {b}" for a, b in zip(have, new) if a != b][:5]
        failures.append("the file map differs from the tree; regenerate it with\n"
                        "  tests/check_architecture.py . --fix\n" + "\n".join(diff) +
                        ("" if len(have) == len(new) else f"\n  ({len(have)} lines in the doc, {len(new)} in the tree)"))
    failures += layering(root)
    for path in sorted(set(re.findall(r"src/[\w/]+\.[ch]\b|src/[\w/]+/", doc))):
        if not os.path.exists(os.path.join(root, path)):
            failures.append(f"docs/ARCHITECTURE.md names {path}, which does not exist")
    for f in failures:
        print("FAIL", f)
    n_files = sum(len([n for n in os.listdir(os.path.join(root, "src", d)) if n.endswith((".c", ".h"))])
                  for d in ORDER if os.path.isdir(os.path.join(root, "src", d)))
    print(f"docs/ARCHITECTURE.md: {n_files} source files mapped, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
