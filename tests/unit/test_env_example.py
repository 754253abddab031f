""".env.example lists every setting of the stack and of every service."""

import importlib
import re

import pytest
from pydantic_settings import BaseSettings

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

SETTINGS_CLASSES = [
    ("platformkit.settings", "InfraSettings"),
    ("stackctl.config", "StackSettings"),
    ("shorten.settings", "ShortenSettings"),
    ("redirect.settings", "RedirectSettings"),
    ("aggregator.settings", "AggregatorSettings"),
    ("analytics.settings", "AnalyticsSettings"),
    ("stackctl.regions", "RegionSettings"),
]


def listed() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return {m.group(1) for m in re.finditer(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)}


@pytest.mark.parametrize(("module", "name"), SETTINGS_CLASSES)
def test_every_setting_is_listed(module: str, name: str) -> None:
    cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
    names = {field.upper() for field in cls.model_fields if field != "local_dir"}
    assert names - listed() == set()
