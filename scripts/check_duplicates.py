#!/usr/bin/env python3
"""`make lint`: fail when a block of 8 or more lines stands twice in the repository's
YAML or Python, and name both places.

Lines are compared stripped of indentation; blank lines and comment-only lines are left
out (a copied block stays a copy when it is re-indented or re-commented). A block made
only of short lines (closing brackets, `else:`, `- name: x`...) is not a finding, nor
are the data files in EXCLUDED.

    scripts/check_duplicates.py [--min-lines N] [PATH...]   (default: every tracked file)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = (".py", ".yml", ".yaml")
# A window counts only when this many of its lines say something (not `)`, `],`, `else:`).
MEANINGFUL_CHARS = 16
MEANINGFUL_LINES = 4
# Data, not code: left out, each with its reason.
EXCLUDED = {
    # Each inventory is one environment's values, complete on its own (a new environment
    # starts as a copy of one): production and single share sample values by design.
    "inventories/",
    # The single box's lab inventory: test data (the lab's generated secrets and ports).
    "tests/single/lab.yml",
}


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        ROOT / name
        for name in out.split("\0")
        if name.endswith(SUFFIXES) and not name.startswith(tuple(EXCLUDED))
    ]


def significant_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that are neither blank nor comments."""
    lines = []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        text = raw.strip()
        if text and not text.startswith("#"):
            lines.append((number, text))
    return lines


def find(paths: list[Path], size: int) -> list[tuple[str, str]]:
    """Pairs of places ('file:first-last') that share `size` or more significant lines."""
    windows: dict[tuple[str, ...], list[tuple[Path, int]]] = defaultdict(list)
    lines_of = {}
    for path in paths:
        lines = lines_of[path] = significant_lines(path)
        for start in range(len(lines) - size + 1):
            block = tuple(text for _, text in lines[start : start + size])
            if sum(len(text) >= MEANINGFUL_CHARS for text in block) >= MEANINGFUL_LINES:
                windows[block].append((path, start))
    # Consecutive shared windows of the same two files (at the same offset) are one run.
    starts: dict[tuple[Path, Path, int], set[int]] = defaultdict(set)
    for places in windows.values():
        for i, (path_a, start_a) in enumerate(places):
            for path_b, start_b in places[i + 1 :]:
                if path_a == path_b and abs(start_a - start_b) < size:
                    continue  # a block that overlaps its own repetition
                starts[(path_a, path_b, start_b - start_a)].add(start_a)
    found = []
    for (path_a, path_b, offset), firsts in sorted(starts.items(), key=str):
        a, b = lines_of[path_a], lines_of[path_b]
        ordered = sorted(firsts)
        run_start = previous = ordered[0]
        for start in ordered[1:] + [None]:
            if start is not None and start == previous + 1:
                previous = start
                continue
            last = previous + size - 1
            found.append(
                (
                    f"{path_a.relative_to(ROOT)}:{a[run_start][0]}-{a[last][0]}",
                    f"{path_b.relative_to(ROOT)}:{b[run_start + offset][0]}-{b[last + offset][0]}",
                )
            )
            run_start = previous = start
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-lines", type=int, default=8)
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    paths = [p.resolve() for p in args.paths] or tracked_files()
    found = find(sorted(paths), args.min_lines)
    for place_a, place_b in found:
        print(f"{place_a} ~ {place_b}: the same {args.min_lines}+ lines stand in both places")
    if found:
        print(f"{len(found)} repeated block(s): write it once and use it from both places.")
        return 1
    print(f"no block of {args.min_lines} or more lines repeated in {len(paths)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
