"""Which settings class reads the environment of a process, by the command it runs, and which
of a set of environment variables that class does not know. Shared by the checks of the compose
file and of the Kubernetes manifests: a variable nobody reads is a typo or a leftover (the
settings classes ignore unknown variables, so it would fail silently)."""

import sys
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from tests.conftest import ROOT

# Variables of the Python runtime itself, not of a settings class.
RUNTIME_VARIABLES = frozenset({"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"})

# Secret settings a command does not use although its settings class has them: the outbox relay
# runs ShortenSettings but authenticates nobody, so it must not hold the API keys. Analytics reads
# other regions' totals only on a multi-region deployment (docs/regions.md), which the compose file
# and the Kubernetes manifests (one region) are not.
NOT_NEEDED = {("shorten", "relay"): {"shorten_api_keys"}, ("analytics", "serve"): {"analytics_remote_totals"}}


def settings_classes(argv: list[str]) -> tuple[type[BaseSettings], ...]:
    """The settings classes `python -m <module> <command>` reads (empty: it reads none)."""
    if argv[:2] != ["python", "-m"] or len(argv) < 4:
        raise ValueError(f"not a `python -m <module> <command>` line: {argv}")
    module, command = argv[2], argv[3]
    if module == "redirect":
        from redirect.settings import RedirectSettings

        return (RedirectSettings,)
    if module == "shorten":
        from shorten.settings import ShortenSettings

        return (ShortenSettings,)
    if module == "aggregator":
        from aggregator.settings import AggregatorSettings

        return (AggregatorSettings,)
    if module == "analytics":
        from analytics.settings import AnalyticsSettings

        return (AnalyticsSettings,)
    if module == "composectl":
        if command == "secrets":  # runs before anything exists: reads no settings
            return ()
        # The image has compose/ on its PYTHONPATH (compose/Dockerfile); so does this check.
        compose = str(ROOT / "compose")
        if compose not in sys.path:
            sys.path.append(compose)
        from composectl.settings import ComposeSettings

        return (ComposeSettings,)
    raise ValueError(f"no settings class known for module {module!r}")


def field_names(classes: tuple[type[BaseSettings], ...]) -> set[str]:
    return {name.upper() for cls in classes for name in cls.model_fields}


def unknown_variables(argv: list[str], names: set[str]) -> set[str]:
    """The variables in `names` no settings class of `argv` reads (<NAME>_FILE counts as NAME)."""
    known = field_names(settings_classes(argv))
    unknown = set()
    for name in names - RUNTIME_VARIABLES:
        base = name.removesuffix("_FILE") if name.endswith("_FILE") else name
        if name not in known and base not in known:
            unknown.add(name)
    return unknown


def all_secret_fields(argv: list[str]) -> set[str]:
    """Every secret setting (SecretStr field) of `argv`'s settings classes, needed or not."""
    return {
        name.upper()
        for cls in settings_classes(argv)
        for name, field in cls.model_fields.items()
        if field.annotation is SecretStr
    }


def secret_fields(argv: list[str]) -> set[str]:
    """The secret settings (SecretStr fields) `argv`'s process needs, as variable names."""
    needed: set[str] = set()
    skip = NOT_NEEDED.get((argv[2], argv[3]), set()) if len(argv) >= 4 else set()
    for cls in settings_classes(argv):
        for name, field in cls.model_fields.items():
            annotation: Any = field.annotation
            if annotation is SecretStr and name not in skip:
                needed.add(name.upper())
    return needed
