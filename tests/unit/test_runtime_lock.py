"""requirements-runtime.lock, what the app image installs (compose/Dockerfile), is exactly the
services' run-time dependency tree: the closure of pyproject's [project] dependencies, at the
versions of requirements.lock, with no dev/bench package and none of the native stack's tools.

The closure is computed from the installed distributions' metadata (the .venv holds the whole
requirements.lock), so the check needs no network; `pip install --dry-run` against PyPI in a
fresh venv gave the same set when the file was made (its header says how)."""

import re
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

# Never in the image: test, lint and benchmark tools, embedded ClickHouse (and what only it
# pulls in), the native stack's process manager and task runner.
NOT_AT_RUN_TIME = {
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "chdb",
    "chdb-core",
    "pandas",
    "pyarrow",
    "numpy",
    "mypy",
    "ruff",
    "locust",
    "supervisor",
    "rust-just",
    "kubernetes-validate",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str) -> dict[str, str]:
    lines = (ROOT / path).read_text().splitlines()
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path}: {line!r} is not pinned with =="
            found[canonical(name)] = version
    return found


def project() -> dict[str, object]:
    loaded: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return loaded


def closure(requirements: list[str]) -> set[str]:
    """Every distribution `requirements` pull in on this platform (markers evaluated, extras followed)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        key = (canonical(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        for text in metadata.requires(requirement.name) or []:
            child = Requirement(text)
            if child.marker is None:
                todo.append(child)
                continue
            environments = [{**default_environment(), "extra": extra} for extra in requirement.extras or {""}]
            if any(child.marker.evaluate(env) for env in environments):
                todo.append(child)
    return names


def test_the_runtime_lock_pins_the_versions_of_the_full_lock() -> None:
    runtime, full = pins("requirements-runtime.lock"), pins("requirements.lock")
    assert runtime, "requirements-runtime.lock is empty"
    for name, version in runtime.items():
        assert full.get(name) == version, f"{name}=={version} in the runtime lock, {full.get(name)} in the full one"


def test_the_runtime_lock_is_the_closure_of_the_run_time_dependencies() -> None:
    dependencies = project()["dependencies"]
    assert isinstance(dependencies, list)
    expected = closure(dependencies)
    locked = set(pins("requirements-runtime.lock"))
    assert locked - expected == set(), "locked but not needed at run time"
    assert expected - locked == set(), "needed at run time but not locked (the image would miss them)"


def test_no_dev_bench_or_stack_package_is_a_run_time_dependency() -> None:
    locked = set(pins("requirements-runtime.lock"))
    assert locked & NOT_AT_RUN_TIME == set()
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    for extra in ("dev", "stack"):
        for requirement in extras[extra]:
            assert canonical(Requirement(requirement).name) not in locked, (extra, requirement)
    # The full lock still has them all: the native stack and the developers install it.
    assert NOT_AT_RUN_TIME - {"numpy"} <= set(pins("requirements.lock"))


def test_the_image_installs_the_runtime_lock_and_nothing_else() -> None:
    lines = (ROOT / "compose" / "Dockerfile").read_text().splitlines()
    instructions = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "pip install --no-deps -r /tmp/requirements-runtime.lock" in instructions
    assert "pip check" in instructions  # a lock that is not closed fails the build
    assert "requirements.lock" not in instructions
    ignore = (ROOT / "compose" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!requirements-runtime.lock" in ignore and "!requirements.lock" not in ignore
