"""The Prometheus alert rules: valid, unit-tested (promtool), and only about series the gateway exports."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.ops.promql import known_series, metric_names
from tests.ops.support import ROOT

RULES = ROOT / "config" / "alerts.yml"
RULE_TESTS = ROOT / "config" / "alerts.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian/Ubuntu: apt-get install -y --no-install-recommends prometheus)")
REQUIRED = {"LLMGatewayHighLatencyP95", "LLMGatewayReviewQueueHigh", "LLMGatewayFallbackRateHigh",
            "LLMGatewayThresholdDrift", "LLMGatewayDown", "LLMGatewayLearningCycleOverdue"}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists_and_is_unit_tested() -> None:
    names = {rule["alert"] for rule in rules()}
    assert names >= REQUIRED
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if not case["exp_alerts"]}
    assert firing == names, f"alerts never tested firing: {names - firing}"
    assert quiet == names, f"alerts never tested not firing: {names - quiet}"


def test_rules_use_only_series_the_gateway_exports() -> None:
    known = known_series()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule['alert']}: unknown series {unknown}"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])


def test_runbook_anchors_exist_in_the_deployment_guide() -> None:
    guide = (ROOT / "docs" / "DEPLOYMENT.md").read_text().lower()
    for rule in rules():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert f"### {anchor}" in guide, f"docs/DEPLOYMENT.md has no '### {rule['alert']}' section"
