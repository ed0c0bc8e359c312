"""The README's layout section names every top-level entry of the repository, and every
path it names exists: a newcomer reading it finds what is there. Runs in `make lint`."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What needs no line of its own: the README itself, and git's own ignore list.
UNLISTED = {"README.md", ".gitignore"}


def layout_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("```", 2)[1].splitlines()


def layout_paths() -> list[str]:
    """The paths in the layout block's first column."""
    return [first for line in layout_lines() if (first := line.split("  ", 1)[0].strip())]


def named_top_level() -> set[str]:
    """Top-level names the layout block mentions: its first column, and the top-level files
    its descriptions name by their own names (`requirements.yml`, `.yamllint`)."""
    words = {word for line in layout_lines() for word in re.findall(r"[\w.-]+", line)}
    return {path.split("/", 1)[0] for path in layout_paths()} | words


def tracked_top_level() -> set[str]:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {name.split("/", 1)[0] for name in files}


def test_every_top_level_entry_has_a_line():
    missing = sorted(tracked_top_level() - named_top_level() - UNLISTED)
    assert missing == [], f"README's layout names nothing for: {missing}"


def test_every_path_the_layout_names_exists():
    concrete = [path for path in layout_paths() if not re.search(r"[<{]", path)]
    assert concrete, "no paths found in the README's layout"
    missing = [path for path in concrete if not (ROOT / path).exists()]
    assert missing == [], f"README's layout names paths that do not exist: {missing}"
