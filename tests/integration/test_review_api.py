"""The review queue and audit log over HTTP: lifecycle, filters, paging, auth, offline uploads.

Real gateways (uvicorn on loopback) over the fake upstream; low-scoring answers are scripted with
`[[fake:...]]` directives and requested by deployment name (`fake-fast`) so nothing escalates.
The lifecycle runs on SQLite and on the real PostgreSQL (a fresh schema per test).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from starlette.datastructures import State

from proxy.routes.review import review_queue_summary
from tests.support.servers import ADMIN_KEY, AGENT_KEY, GatewayServer
from tests.support.services import TcpProxy, postgres_reachable, postgres_schema, with_address

REFUSAL = "I'm sorry, but I can't help with that request."
GOOD = "Here is the function:\n```python\ndef add(a, b):\n    return a + b\n```\nIt adds two numbers."
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
AGENT = {"authorization": f"Bearer {AGENT_KEY}"}


def directive(**behaviour: object) -> str:
    return "[[fake:" + json.dumps(behaviour) + "]]"


def chat(server: GatewayServer, text: str, *, model: str = "fake-fast", key: str = AGENT_KEY,
         task_type: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if task_type:
        headers["x-task-type"] = task_type
    body = {"model": model, "messages": [{"role": "user", "content": "Write an add function " + directive(text=text)}]}
    response = httpx.post(server.url + "/v1/chat/completions", headers=headers, json=body, timeout=15)
    assert response.status_code == 200, response.text
    return response


def wait_for(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def get(server: GatewayServer, path: str, headers: dict[str, str] = ADMIN, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, params=params, timeout=15)


def post(server: GatewayServer, path: str, body: Any, headers: dict[str, str] = ADMIN) -> httpx.Response:
    return httpx.post(server.url + path, headers=headers, json=body, timeout=15)


def listing(server: GatewayServer, path: str, **params: Any) -> dict[str, Any]:
    response = get(server, path, **params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def walk(server: GatewayServer, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = listing(server, path, **params, **({"cursor": cursor} if cursor is not None else {}))
        items += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def pending(server: GatewayServer, count: int, **filters: Any) -> list[dict[str, Any]]:
    """Wait until the audit sink has flushed `count` pending review items (matching filters)."""
    return wait_for(lambda: (items := walk(server, "/v1/review", state="pending", **filters))
                    and len(items) >= count and items, what=f"{count} pending review items")


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return body


def offline_record(request_id: str, **fields: Any) -> dict[str, Any]:
    record = {"request_id": request_id, "created_at": datetime.now(UTC).isoformat(), "task_type": "summarization",
              "model": "qwen2.5:7b", "prompt": "Summarize: the gateway", "output": "A gateway.",
              "latency_ms": 812.5, "tokens_in": 12, "tokens_out": 3}
    record.update(fields)
    return record


@pytest.fixture
def sqlite_gateway(make_gateway: Callable[..., GatewayServer], tmp_path: Path) -> GatewayServer:
    return make_gateway(data_dir=str(tmp_path / "data"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    with postgres_schema(prefix="test_review") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_gateway(request: pytest.FixtureRequest, make_gateway: Callable[..., GatewayServer],
                tmp_path: Path) -> GatewayServer:
    if request.param == "sqlite":
        return make_gateway(data_dir=str(tmp_path / "data"))
    url = request.getfixturevalue("postgres_url")
    return make_gateway(data_dir=str(tmp_path / "data"), database_url=url)


# -- the lifecycle ------------------------------------------------------------------------------


def test_review_lifecycle(any_gateway: GatewayServer) -> None:
    server = any_gateway
    low = [chat(server, REFUSAL, task_type="code_generation") for _ in range(4)]
    good = chat(server, GOOD, task_type="code_generation")
    assert [r.headers["x-gateway-status"] for r in low] == ["pending_review"] * 4
    assert good.headers["x-gateway-status"] == "approved"
    request_ids = [r.headers["x-request-id"] for r in low]

    items = pending(server, 4)
    assert [i["request_id"] for i in items] == request_ids  # oldest first, the order a reviewer works in
    first = items[0]
    assert first["object"] == "review_item" and first["state"] == "pending" and first["caller"] == "agent"
    assert first["task_type"] == "code_generation" and first["confidence"] < 4
    assert datetime.fromisoformat(first["created_at"]).tzinfo is not None

    detail = listing(server, f"/v1/review/{first['id']}")
    assert detail["audit"]["request_id"] == request_ids[0]
    assert detail["audit"]["output"] == REFUSAL  # content is kept for rows that need a reviewer
    assert detail["audit"]["status"] == "pending_review"

    approved = post(server, f"/v1/review/{items[0]['id']}", {"verdict": "approve", "score": 8, "notes": "fine"})
    assert approved.status_code == 200, approved.text
    assert approved.json().items() >= {"state": "approved", "verdict": "approve", "reviewer": "admin", "score": 8.0,
                                       "notes": "fine"}.items()
    rejected = post(server, f"/v1/review/{items[1]['id']}", {"verdict": "reject", "score": 0})
    assert rejected.json()["state"] == "rejected"
    error(post(server, f"/v1/review/{items[2]['id']}", {"verdict": "correct"}), 400)
    corrected = post(server, f"/v1/review/{items[2]['id']}",
                     {"verdict": "correct", "corrected_output": "def add(a, b):\n    return a + b"})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["state"] == "corrected"
    assert corrected.json()["corrected_output"] == "def add(a, b):\n    return a + b"

    second = error(post(server, f"/v1/review/{items[0]['id']}", {"verdict": "reject"}), 409)
    assert "already approved" in second["message"]
    assert listing(server, f"/v1/review/{items[0]['id']}")["state"] == "approved"  # the first verdict stands

    assert [i["request_id"] for i in walk(server, "/v1/review", state="pending")] == [request_ids[3]]
    assert [i["id"] for i in walk(server, "/v1/review", state="approved")] == [items[0]["id"]]
    assert len(walk(server, "/v1/review", caller="agent")) == 4
    assert walk(server, "/v1/review", caller="someone-else") == []
    assert walk(server, "/v1/review", task_type="translation") == []

    audit = listing(server, f"/v1/audit/{first['audit_id']}")
    assert audit["object"] == "audit_record" and audit["request_id"] == request_ids[0]


def test_verdict_errors(sqlite_gateway: GatewayServer) -> None:
    server = sqlite_gateway
    chat(server, REFUSAL)
    item_id = pending(server, 1)[0]["id"]
    path = f"/v1/review/{item_id}"

    for body in ({"verdict": "maybe"}, {"verdict": "approve", "score": 11}, {"verdict": "approve", "extra": 1},
                 {"verdict": "approve", "corrected_output": "x"}, {}, ["approve"]):
        assert error(post(server, path, body), 400)["type"] == "invalid_request_error", body
    not_json = httpx.post(server.url + path, headers=ADMIN, content=b"approve", timeout=5)
    error(not_json, 400)

    assert error(post(server, "/v1/review/999999", {"verdict": "approve"}), 404)["type"] == "not_found_error"
    error(get(server, "/v1/review/999999"), 404)
    error(get(server, "/v1/review/not-a-number"), 404)
    error(get(server, f"/v1/review/{2**64}"), 404)
    error(get(server, "/v1/audit/999999"), 404)
    assert listing(server, path)["state"] == "pending"  # nothing above changed the item


def test_paging_walks_every_item(sqlite_gateway: GatewayServer) -> None:
    server = sqlite_gateway
    records = [offline_record(f"off-page-{n}", status="pending_review", confidence=1.0) for n in range(7)]
    assert post(server, "/v1/audit/offline", {"records": records}, AGENT).json() == {"accepted": 7}
    pending(server, 7)

    pages = []
    cursor = None
    while True:
        page = listing(server, "/v1/review", limit=3, **({"cursor": cursor} if cursor else {}))
        assert page["object"] == "list"
        pages.append([i["request_id"] for i in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [rid for p in pages for rid in p] == [r["request_id"] for r in records]

    audit_ids = [row["id"] for row in walk(server, "/v1/audit", limit=2)]
    assert len(audit_ids) == 7 and audit_ids == sorted(audit_ids, reverse=True)  # newest first
    assert len(listing(server, "/v1/audit")["data"]) == 7  # default limit 50

    bad_params: list[dict[str, Any]] = [{"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"cursor": "abc"},
                                        {"cursor": -1}, {"cursor": 2**64}, {"state": "waiting"}, {"sort": "id"}]
    for params in bad_params:
        error(get(server, "/v1/review", **params), 400)


def test_audit_filters(sqlite_gateway: GatewayServer) -> None:
    server = sqlite_gateway
    before = datetime.now(UTC) - timedelta(seconds=1)
    tiered = chat(server, GOOD, model="fast", task_type="summarization")
    low = chat(server, REFUSAL, task_type="code_generation")
    by_admin = chat(server, GOOD, key=ADMIN_KEY, task_type="code_generation")
    post(server, "/v1/audit/offline", {"records": [offline_record("off-filter-1")]}, AGENT)
    ids = {r.headers["x-request-id"] for r in (tiered, low, by_admin)} | {"off-filter-1"}
    rows = wait_for(lambda: (rows := walk(server, "/v1/audit")) and len(rows) == 4 and rows, what="4 audit rows")
    assert {row["request_id"] for row in rows} == ids

    def request_ids(**filters: Any) -> set[str]:
        return {row["request_id"] for row in walk(server, "/v1/audit", **filters)}

    assert request_ids(tier="fast") == {tiered.headers["x-request-id"]}
    assert request_ids(status="pending_review") == {low.headers["x-request-id"]}
    assert request_ids(caller="admin") == {by_admin.headers["x-request-id"]}
    assert request_ids(task_type="code_generation") == {low.headers["x-request-id"], by_admin.headers["x-request-id"]}
    assert request_ids(offline="true") == {"off-filter-1"}
    assert request_ids(offline="false") == ids - {"off-filter-1"}
    assert request_ids(since=before.isoformat()) == ids
    assert request_ids(since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == set()
    assert request_ids(until=before.isoformat()) == set()
    assert request_ids(until="2999-01-01T00:00:00Z", caller="agent", status="approved") == {
        tiered.headers["x-request-id"]}
    # offline answers were never scored by the gateway: recorded as warning, never approved
    assert request_ids(offline="true", status="warning") == {"off-filter-1"}

    row = next(r for r in rows if r["request_id"] == low.headers["x-request-id"])
    one = listing(server, f"/v1/audit/{row['id']}")
    assert one == row
    assert one["status"] == "pending_review" and one["served_model"] == "fake-fast" and one["offline"] is False
    assert datetime.fromisoformat(one["created_at"]) >= before

    bad_params: list[dict[str, Any]] = [{"since": "yesterday"}, {"status": "ok"}, {"offline": "maybe"},
                                        {"state": "pending"}]
    for params in bad_params:
        error(get(server, "/v1/audit", **params), 400)


# -- auth ---------------------------------------------------------------------------------------


def admin_routes(server: GatewayServer) -> list[tuple[str, str]]:
    """(method, path with ids filled in) of every review/audit route but the offline upload.

    FastAPI >= 0.16x wraps included routers (`app.routes` holds `_IncludedRouter`s); its public
    `iter_route_contexts` flattens them. Older versions list the routes themselves.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(flatten(server.app.routes)) if flatten is not None else list(server.app.routes)
    found = []
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if not path or not methods or path == "/v1/audit/offline":
            continue
        if path.startswith(("/v1/review", "/v1/audit")):
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            found += [(method, concrete) for method in sorted(set(methods) - {"HEAD"})]
    return found


def test_every_admin_route_refuses_agent_keys_and_anonymous_callers(sqlite_gateway: GatewayServer) -> None:
    server = sqlite_gateway
    routes = admin_routes(server)
    assert {("GET", "/v1/review"), ("GET", "/v1/review/1"), ("POST", "/v1/review/1"), ("GET", "/v1/audit"),
            ("GET", "/v1/audit/1")} <= set(routes)
    for method, path in routes:
        body = {"verdict": "approve"} if method == "POST" else None
        denied = httpx.request(method, server.url + path, headers=AGENT, json=body, timeout=5)
        assert error(denied, 403)["type"] == "permission_error", (method, path)
        for headers in ({}, {"authorization": "Bearer not-a-key"}):
            refused = httpx.request(method, server.url + path, headers=headers, json=body, timeout=5)
            assert error(refused, 401)["type"] == "authentication_error", (method, path, headers)
    error(post(server, "/v1/audit/offline", {"records": []}, {}), 401)


# -- offline uploads ----------------------------------------------------------------------------


def test_offline_upload_lands_rows_once(sqlite_gateway: GatewayServer) -> None:
    server = sqlite_gateway
    created = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    records = [
        offline_record("off-1", created_at=created.isoformat()),
        offline_record("off-2", status="warning", confidence=5.5),
        offline_record("off-3", status="pending_review", confidence=2.0, output="I cannot do that."),
    ]
    answer = post(server, "/v1/audit/offline", {"records": records}, AGENT)
    assert answer.status_code == 200 and answer.json() == {"accepted": 3}
    rows = wait_for(lambda: (rows := walk(server, "/v1/audit", offline="true")) and len(rows) == 3 and rows,
                    what="3 offline rows")
    by_id = {row["request_id"]: row for row in rows}
    assert set(by_id) == {"off-1", "off-2", "off-3"}
    for row in rows:
        assert row["offline"] is True and row["route"] == "offline" and row["caller"] == "agent"
        assert row["served_model"] == "qwen2.5:7b" and row["tokens_in"] == 12 and row["latency_ms"] == 812.5
    assert datetime.fromisoformat(by_id["off-1"]["created_at"]) == created
    assert by_id["off-2"]["status"] == "warning" and by_id["off-2"]["confidence"] == 5.5
    assert [i["request_id"] for i in pending(server, 1)] == ["off-3"]

    # The SDK re-sends after a lost answer: the same request ids never make a second row.
    assert post(server, "/v1/audit/offline", {"records": records}, AGENT).json() == {"accepted": 3}
    chat(server, GOOD)  # a later live call: once it is written, the re-sent batch was too
    wait_for(lambda: len(walk(server, "/v1/audit")) == 4, what="the live row")
    assert len(walk(server, "/v1/audit", offline="true")) == 3

    stamp = datetime.now(UTC).isoformat()
    too_many = [{"request_id": f"x{n}", "created_at": stamp} for n in range(501)]  # small: under the body limit
    error(post(server, "/v1/audit/offline", {"records": too_many}, AGENT), 400)
    bad: dict[str, Any]
    for bad in ({"records": [{"request_id": "x"}]}, {"records": [offline_record("bad id!")]},
                {"records": [offline_record("off-4", status="great")]}, {"rows": []}):
        error(post(server, "/v1/audit/offline", bad, AGENT), 400)


# -- health summary and database outages --------------------------------------------------------


def summary_of(server: GatewayServer) -> dict[str, Any]:
    state = State()  # a fresh cache each time: the test wants the current answer
    state.gateway = server.gateway
    result: dict[str, Any] = asyncio.run(review_queue_summary(state))
    return result


def test_queue_summary_for_health(sqlite_gateway: GatewayServer) -> None:
    server = sqlite_gateway
    empty = summary_of(server)
    assert empty["database"]["state"] == "ok" and empty["database"]["backend"] == "sqlite"
    assert empty["queue"] == {"pending_review": 0, "oldest_age_s": 0.0}
    chat(server, REFUSAL)
    chat(server, REFUSAL)
    pending(server, 2)
    summary = summary_of(server)
    assert summary["queue"]["pending_review"] == 2 and summary["queue"]["oldest_age_s"] >= 0

    state = State()
    state.gateway = server.gateway

    async def twice() -> tuple[dict[str, Any], dict[str, Any]]:
        return await review_queue_summary(state), await review_queue_summary(state)

    first, again = asyncio.run(twice())
    assert again is first  # cached: /health does not query the database on every call


@pytest.mark.postgres
def test_database_down_answers_503_and_approves_nothing(
    make_gateway: Callable[..., GatewayServer], postgres_url: str, tmp_path: Path
) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = with_address(postgres_url, proxy.host, proxy.port)
        server = make_gateway(data_dir=str(tmp_path / "data"), database_url=url)
        chat(server, REFUSAL)
        item_id = pending(server, 1)[0]["id"]
        proxy.cut()
        try:
            down = error(post(server, f"/v1/review/{item_id}", {"verdict": "approve"}), 503)
            assert down["code"] == "database_unavailable" and "unavailable" in down["message"]
            for path in ("/v1/review", f"/v1/review/{item_id}", "/v1/audit", "/v1/audit/1"):
                error(get(server, path), 503)
            summary = summary_of(server)
            assert summary["database"]["state"] == "down"
            assert summary["queue"] == {"pending_review": None, "oldest_age_s": None}
        finally:
            proxy.restore()
        assert listing(server, f"/v1/review/{item_id}")["state"] == "pending"  # the failed verdict left no trace
        assert post(server, f"/v1/review/{item_id}", {"verdict": "approve"}).json()["state"] == "approved"
        assert summary_of(server)["database"]["state"] == "ok"

