"""The Grafana dashboard: valid JSON, importable (a DS_PROMETHEUS input), only real series, valid PromQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.promql import grafana_to_promql, known_series, metric_names
from tests.ops.support import ROOT

DASHBOARD = ROOT / "config" / "grafana" / "llm-gateway.json"
# What the dashboard must show (a metric each topic's panels use).
TOPICS = {
    "latency by tier": "llm_gateway_request_duration_seconds_bucket",
    "confidence distribution": "llm_gateway_confidence_bucket",
    "review queue": "llm_gateway_review_queue_depth",
    "fallback rate": "llm_gateway_fallbacks_total",
    "escalations": "llm_gateway_escalations_total",
    "cost by tier": "llm_gateway_cost_total",
    "learning cycle age": "llm_gateway_learning_cycle_last_success_timestamp_seconds",
    "learning cycle runs": "llm_gateway_learning_cycle_runs_total",
    "gate verdicts": "llm_gateway_gate_verdicts_total",
    "overhead": "llm_gateway_overhead_seconds_bucket",
    "audit queue": "llm_gateway_audit_queue_depth",
    "audit spool": "llm_gateway_audit_spool_depth",
    "degraded flags": "llm_gateway_dependency_degraded",
}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows
    return out


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels(board) for target in panel.get("targets", [])]


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] and board["title"]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_panels_use_only_series_the_gateway_exports() -> None:
    known = known_series()
    for title, expr in queries(dashboard()):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert not names - known, f"{title}: unknown series {names - known} in {expr!r}"


def test_dashboard_covers_every_topic() -> None:
    used = set().union(*(metric_names(expr) for _, expr in queries(dashboard())))
    missing = {topic for topic, metric in TOPICS.items() if metric not in used}
    assert not missing


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (apt-get install -y --no-install-recommends prometheus)")
def test_panel_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every expression of a rule file: each panel query becomes a recording rule.
    rules = [{"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
             for i, (_, expr) in enumerate(queries(dashboard()))]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
