"""``python3 -m algoprog schema``: every table's columns as Markdown (docs/PYTHON.md's schema section)."""
import sys

from .schema import markdown

if __name__ == "__main__":
    if sys.argv[1:] != ["schema"]:
        sys.exit("usage: python3 -m algoprog schema    (prints every DataFrame's columns as Markdown)")
    print(markdown())
