"""Every service has the same skeleton (docs/architecture.md, "Code layout"): domain/,
service_layer/, adapters/, entrypoints/ packages, ports.py, and bootstrap.py exposing
`bootstrap(settings, **overrides) -> Runtime`, the one place that wires. Read from the source
(AST), so nothing is imported and no client is built."""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

SERVICES = ROOT / "services"
SERVICE_NAMES = sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").is_file())
PACKAGES = ("domain", "service_layer", "adapters", "entrypoints")
# What may sit at a package root besides those packages: the skeleton's own files.
ROOT_MODULES = {"__init__.py", "__main__.py", "bootstrap.py", "ports.py", "settings.py", "metrics.py"}
# Which layers a layer may not import (a layer's imports point inwards: entrypoints -> bootstrap ->
# adapters / service_layer -> ports -> domain).
FORBIDDEN = {
    "domain": ("service_layer", "adapters", "entrypoints", "bootstrap", "ports"),
    "service_layer": ("adapters", "entrypoints", "bootstrap"),
    "ports.py": ("service_layer", "adapters", "entrypoints", "bootstrap"),
    "adapters": ("service_layer", "entrypoints", "bootstrap"),
    "bootstrap.py": ("entrypoints",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_services_are_found() -> None:
    assert SERVICE_NAMES == ["aggregator", "analytics", "redirect", "shorten"]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_has_the_skeleton(service: str) -> None:
    root = SERVICES / service
    for package in PACKAGES:
        assert (root / package / "__init__.py").is_file(), f"{service}/{package}/ is missing"
    assert (root / "ports.py").is_file(), f"{service}/ports.py is missing"
    use_cases = [p for p in (root / "service_layer").glob("*.py") if p.name != "__init__.py"]
    assert use_cases, f"{service}/service_layer/ holds no use case"
    loose = sorted(p.name for p in root.glob("*.py") if p.name not in ROOT_MODULES)
    assert loose == [], f"{service}: modules at the package root outside the skeleton: {loose}"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_bootstrap_takes_settings_and_keyword_overrides_and_returns_a_runtime(service: str) -> None:
    tree = ast.parse((SERVICES / service / "bootstrap.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert "bootstrap" in functions, f"{service}/bootstrap.py defines no bootstrap()"
    assert "Runtime" in classes, f"{service}/bootstrap.py defines no Runtime"
    fn = functions["bootstrap"].args
    assert [a.arg for a in fn.posonlyargs + fn.args] == ["settings"], "bootstrap(settings, *, ...overrides)"
    assert fn.vararg is None
    assert all(default is not None for default in fn.kw_defaults), "every override has a default"
    returns = functions["bootstrap"].returns
    assert isinstance(returns, ast.Name) and returns.id == "Runtime"


@pytest.mark.parametrize("service", SERVICE_NAMES)
@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_inwards_only(service: str, layer: str) -> None:
    root = SERVICES / service
    files = [root / layer] if layer.endswith(".py") else sorted((root / layer).rglob("*.py"))
    for path in files:
        for module in imported_modules(path):
            for inner in FORBIDDEN[layer]:
                target = f"{service}.{inner}"
                assert not (module == target or module.startswith(target + ".")), (
                    f"{path.relative_to(ROOT)} imports {module}"
                )


def test_entrypoints_reach_the_wiring_through_bootstrap() -> None:
    """The entrypoints that serve (the apps, the worker) call their service's bootstrap."""
    for entry in ("redirect/entrypoints/app.py", "shorten/entrypoints/app.py", "analytics/entrypoints/app.py"):
        service = entry.split("/")[0]
        assert f"{service}.bootstrap" in imported_modules(SERVICES / entry), entry
    assert "aggregator.bootstrap" in imported_modules(SERVICES / "aggregator/entrypoints/run_worker.py")


# One name in two layers with ONE meaning: the entrypoint serves the rules of the domain module.
SAME_MEANING = {
    ("aggregator", "retention"),  # entrypoints/retention.py runs domain/retention.py's rules
    ("shorten", "qr"),  # entrypoints/qr.py serves the QR codes domain/qr.py renders
}


def test_no_two_modules_of_one_service_share_a_name() -> None:
    """`clicks.py` next to `domain/clicks.py`, `relay.py` next to `entrypoints/relay.py`: one name,
    two meanings. Within a service every module name is used once (`__init__` aside)."""
    for service in SERVICE_NAMES:
        names = [p.stem for p in (SERVICES / service).rglob("*.py") if p.stem != "__init__"]
        repeated = sorted({n for n in names if names.count(n) > 1 and (service, n) not in SAME_MEANING})
        assert repeated == [], f"{service}: module names used twice: {repeated}"
