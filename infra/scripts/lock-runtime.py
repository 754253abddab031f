"""Rewrites requirements-runtime.lock: the closure of pyproject.toml's [project] dependencies at
the versions of requirements.lock, resolved by pip against PyPI in a throwaway venv (nothing is
installed). Run it after changing either file:

    .venv/bin/python infra/scripts/lock-runtime.py

tests/unit/test_runtime_lock.py checks the result offline (closed, same pins, no dev/bench package).
"""

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = """\
# The services' run-time dependency tree, and nothing else: what the app image installs
# (compose/Dockerfile; the Kubernetes manifests run the same image). The closure of
# pyproject.toml's [project] dependencies at the versions of requirements.lock (the full
# tree, with the native stack's tools and the dev/bench packages). Written by
# infra/scripts/lock-runtime.py (pip's resolver against PyPI, in a throwaway venv); run it again
# after changing either file. tests/unit/test_runtime_lock.py checks it is closed, consistent
# with requirements.lock and free of dev/bench packages.
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    full_lines = [line.strip() for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line]
    order = {canonical(line.split("==")[0]): i for i, line in enumerate(full_lines)}
    with tempfile.TemporaryDirectory(prefix="lock-runtime-") as tmp:
        venv, report = Path(tmp) / "venv", Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "-c",
                str(ROOT / "requirements.lock"),
                *dependencies,
            ],
            check=True,
        )
        resolved = json.loads(report.read_text())["install"]
    lines = []
    for item in resolved:
        name = canonical(item["metadata"]["name"])
        if name not in order:
            print(f"{name} is needed at run time but not in requirements.lock: lock it there first", file=sys.stderr)
            return 1
        lines.append(full_lines[order[name]])
    lines.sort(key=lambda line: order[canonical(line.split("==")[0])])
    (ROOT / "requirements-runtime.lock").write_text(HEADER + "\n".join(lines) + "\n")
    print(f"requirements-runtime.lock: {len(lines)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
