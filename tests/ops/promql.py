"""Metric names: those proxy/metrics.py defines, and those a PromQL expression uses."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from proxy.metrics import GatewayMetrics

# prometheus-fastapi-instrumentator's default series (proxy/app.py instruments every app).
INSTRUMENTATOR = {"http_requests_total", "http_request_duration_seconds", "http_request_size_bytes",
                  "http_response_size_bytes", "http_request_duration_highr_seconds"}
# Series Prometheus writes itself for every scrape target.
PROMETHEUS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "gauge": ("",), "summary": ("", "_sum", "_count", "_created")}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
             "unless", "inf", "nan", "atan2"}


def gateway_series() -> set[str]:
    """Every sample name the gateway's registry can expose (counter `x` -> `x_total`, ...)."""
    names: set[str] = set()
    for metric in GatewayMetrics(CollectorRegistry()).registry.collect():
        for suffix in _SUFFIXES.get(metric.type, ("",)):
            names.add(metric.name + suffix)
    return names


def _expand(names: set[str]) -> set[str]:
    out = set(names)
    for name in names:
        out |= {name + s for s in ("_bucket", "_sum", "_count", "_created")}
    return out


def known_series() -> set[str]:
    return gateway_series() | _expand(INSTRUMENTATOR) | PROMETHEUS


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, labels and strings left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, subqueries
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def grafana_to_promql(expr: str) -> str:
    """A Grafana query made plain PromQL (its variables given sample values), for promtool."""
    for variable, value in (("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "6h")):
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?\w+\}?", "x", expr)
