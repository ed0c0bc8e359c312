#!/usr/bin/env python3
"""`make lint`: no secret in the tree that a person has not reviewed, and no vault file in
clear text.

1. Every `vault.yml` (or `vault.yaml`) under inventories/ must be encrypted with
   ansible-vault: one in clear text is named, with the command that encrypts it. Every
   internal CA key there (`pki/ca.key`, made by the base role) must be an encrypted PEM.
2. detect-secrets scans every file git tracks or would add (not the ignored ones) with the
   plugins and filters of `.secrets.baseline`. Each finding must be in the baseline and
   marked there as not a secret (`"is_secret": false`): the test-only values and the
   examples' placeholders, each reviewed. A new finding is named by file, line and kind.
   The baseline is read, never rewritten (the scan goes to a copy), so moving a reviewed
   line does not fail the check.

To review a new finding: `detect-secrets scan --baseline .secrets.baseline $(git ls-files)`,
then `detect-secrets audit .secrets.baseline` and answer for each (a real secret goes to
the vault instead).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".secrets.baseline"
VAULT_HEADER = "$ANSIBLE_VAULT;"
ENCRYPTED_PEM = "-----BEGIN ENCRYPTED PRIVATE KEY-----"


def clear_text_vaults() -> list[str]:
    found = []
    for path in sorted((ROOT / "inventories").rglob("vault.y*ml")):
        with path.open("rb") as handle:
            first = handle.readline().decode(errors="replace")
        if not first.startswith(VAULT_HEADER):
            name = path.relative_to(ROOT)
            found.append(f"{name} is not encrypted: run `ansible-vault encrypt {name}`")
    for path in sorted((ROOT / "inventories").rglob("ca.key")):
        with path.open("rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
        if first != ENCRYPTED_PEM:
            name = path.relative_to(ROOT)
            found.append(
                f"{name} is a private key in clear text: delete it and let site.yml make a new "
                "CA, whose key the vault's vault_lvd_ca_passphrase encrypts"
            )
    return found


def unreviewed_findings() -> list[str]:
    files = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    files = [name for name in files if name and name != BASELINE.name and (ROOT / name).is_file()]
    scanner = Path(sys.executable).with_name("detect-secrets")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "baseline.json"
        shutil.copyfile(BASELINE, copy)
        subprocess.run(
            [str(scanner), "scan", "--baseline", str(copy), *files], cwd=ROOT, check=True
        )
        results = json.loads(copy.read_text())["results"]
    return [
        f"{name}:{finding['line_number']}: {finding['type']}"
        for name, findings in sorted(results.items())
        for finding in findings
        if finding.get("is_secret") is not False
    ]


def main() -> int:
    problems = clear_text_vaults()
    problems += [f"{where} (not reviewed in .secrets.baseline)" for where in unreviewed_findings()]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            f"{len(problems)} secret problem(s): encrypt the vault files; move a real secret to "
            "the vault, or review a test-only value with `detect-secrets audit .secrets.baseline` "
            "(see scripts/check_secrets.py)",
            file=sys.stderr,
        )
        return 1
    print("no vault file in clear text; every secret-like value is reviewed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
