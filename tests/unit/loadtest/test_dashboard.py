"""The Architecture Flow dashboard is a well-formed Grafana dashboard on the provisioned datasource."""

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

DASHBOARD = Path(__file__).resolve().parents[3] / "infra/grafana/dashboards/architecture-flow.json"


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_identity(board: dict[str, Any]) -> None:
    assert board["title"] == "Architecture Flow"
    assert board["uid"] == "architecture-flow"
    assert "id" not in board  # provisioned dashboards must not carry a database id
    assert isinstance(board["schemaVersion"], int) and board["refresh"]


def test_panels_are_laid_out_and_unique(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
    ordered = sorted(board["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
    for a, b in itertools.pairwise(ordered):  # no two panels overlap
        same_band = a["gridPos"]["y"] == b["gridPos"]["y"]
        assert not same_band or a["gridPos"]["x"] + a["gridPos"]["w"] <= b["gridPos"]["x"], (a["title"], b["title"])


def test_every_query_uses_the_provisioned_prometheus(board: dict[str, Any]) -> None:
    queries = 0
    for panel in board["panels"]:
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus" and target["expr"].strip()
            queries += 1
    assert queries >= 20
