"""The reviewer console in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

A real gateway on the fake upstream; the queue is seeded by real chat requests whose answers the
validators score low (refusals), so they land in the review queue.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import ADMIN_KEY, AGENT_KEY, GatewayServer, base_config

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS", "test-artifacts/console"))
REFUSAL = "I'm sorry, but I can't help with that request."


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium); the console tests need it under CI")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")


def seed(server: GatewayServer, n: int) -> None:
    for i in range(n):
        body = {"model": "fake-fast", "messages": [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user",
             "content": f"Question {i}: add two numbers [[fake:" + json.dumps({"text": REFUSAL}) + "]]"}]}
        response = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=15,
                              headers={"authorization": f"Bearer {AGENT_KEY}", "x-task-type": "chat"})
        assert response.status_code == 200, response.text


def pending(server: GatewayServer) -> list[dict[str, Any]]:
    response = httpx.get(server.url + "/v1/review", params={"state": "pending", "limit": 500},
                         headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=15)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.fixture
def console(make_gateway: Any, fake: Any) -> Iterator[GatewayServer]:
    server: GatewayServer = make_gateway(base_config(fake.url, audit={"spot_check_share": 0.0}))
    seed(server, 24)
    import time

    deadline = time.monotonic() + 10
    while len(pending(server)) < 24 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pending(server)) == 24
    yield server


def test_pages_answer_without_a_browser(console: GatewayServer) -> None:
    with httpx.Client(base_url=console.url, timeout=15, follow_redirects=False) as http:
        assert http.get("/ui/queue").status_code == 303
        form = http.get("/ui/signin")
        assert form.status_code == 200
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        signed = http.post("/ui/signin", data={"key": ADMIN_KEY, "csrf": csrf, "next": "/ui/queue"})
        assert signed.status_code == 303, signed.text
        assert "httponly" in signed.headers["set-cookie"].lower()
        assert ADMIN_KEY not in signed.headers["set-cookie"]
        for path in ("/ui/queue", "/ui/queue?kind=pending_review&age=lt1h", "/ui/insights", "/ui/audit",
                     "/v1/insights", "/v1/insights/history"):
            page = http.get(path)
            assert page.status_code == 200, (path, page.text[:500])
        item = pending(console)[0]["id"]
        page = http.get(f"/ui/items/{item}")
        assert page.status_code == 200 and "careful assistant" in page.text, page.text[:2000]
        refused = http.post(f"/ui/items/{item}/verdict", json={"verdict": "approve"},
                            headers={"accept": "application/json"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        assert any(i["id"] == item for i in pending(console))


@pytest.fixture
def page(console: GatewayServer) -> Iterator[Any]:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # bypass_csp: only so the test may evaluate its own probes (the pages keep their strict CSP)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        yield context.new_page()
        browser.close()


def sign_in(page: Any, server: GatewayServer, key: str) -> None:
    page.goto(server.url + "/ui")
    page.fill("#key", key)
    page.click("#signin-form button")


def test_review_twenty_items_with_the_keyboard(page: Any, console: GatewayServer) -> None:
    sign_in(page, console, ADMIN_KEY)
    page.wait_for_selector("#queue")
    page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
    page.select_option("select[name=task_type]", "chat")
    page.wait_for_url("**task_type=chat**")
    page.click("#queue tbody tr:first-child a")
    page.wait_for_selector("article.item")
    page.screenshot(path=str(ARTIFACTS / "item.png"), full_page=True)
    page.evaluate("window.__marker = 'no reload'")
    decided = []
    for n in range(20):
        item_id = page.get_attribute("article.item", "data-item-id")
        page.keyboard.press("a" if n % 2 == 0 else "r")
        page.wait_for_function(f"document.querySelector('article.item') === null || "
                               f"document.querySelector('article.item').dataset.itemId !== '{item_id}'")
        state = httpx.get(f"{console.url}/v1/review/{item_id}", headers={"authorization": f"Bearer {ADMIN_KEY}"},
                          timeout=15).json()
        assert state["state"] == ("approved" if n % 2 == 0 else "rejected")
        assert state["reviewer"] == "admin"
        decided.append(item_id)
        assert page.evaluate("window.__marker") == "no reload"
    # correct one with the keyboard
    item_id = page.get_attribute("article.item", "data-item-id")
    page.keyboard.press("c")
    page.fill("#corrected", "def add(a, b):\n    return a + b")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(f"document.querySelector('article.item') === null || "
                           f"document.querySelector('article.item').dataset.itemId !== '{item_id}'")
    state = httpx.get(f"{console.url}/v1/review/{item_id}", headers={"authorization": f"Bearer {ADMIN_KEY}"},
                      timeout=15).json()
    assert state["state"] == "corrected" and "return a + b" in state["corrected_output"]
    assert page.evaluate("window.__marker") == "no reload"
    assert len(pending(console)) == 24 - 21
    page.goto(console.url + "/ui/insights")
    page.wait_for_selector("#insights[data-loaded='1']")
    page.screenshot(path=str(ARTIFACTS / "insights.png"), full_page=True)
    page.click("#signout")
    page.wait_for_selector("#signin-form")
    page.goto(console.url + "/ui/queue")
    page.wait_for_selector("#signin-form")


def test_agent_key_is_refused_and_reviewer_kept_off_admin_pages(page: Any, console: GatewayServer) -> None:
    sign_in(page, console, AGENT_KEY)
    page.wait_for_selector("#error-page")
    assert "Not a reviewer key" in page.inner_text("#error-page")
    page.screenshot(path=str(ARTIFACTS / "agent-refused.png"))


def signed_in(server: GatewayServer, key: str) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=15, follow_redirects=False)
    form = http.get("/ui/signin")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    response = http.post("/ui/signin", data={"key": key, "csrf": csrf, "next": "/ui/queue"})
    assert response.status_code == 303, response.text
    return http


def csrf_of(http: httpx.Client) -> str:
    return http.get("/ui/queue").text.split('name="csrf-token" content="')[1].split('"')[0]


def test_reviewer_role_two_reviewers_and_expired_sessions(console: GatewayServer) -> None:
    from store import queries as q
    from store.db import session_factory
    from store.models import ConsoleSession

    sessions = session_factory(console.gateway.engine)
    with sessions() as s:
        _row, reviewer_key = q.create_api_key(s, "rita", "reviewer")
        _row, second_key = q.create_api_key(s, "sam", "reviewer")
    rita, sam = signed_in(console, reviewer_key), signed_in(console, second_key)
    assert rita.get("/ui/audit").status_code == 403  # admin pages refuse a reviewer
    assert "Admins only" in rita.get("/ui/audit").text
    assert httpx.get(console.url + "/v1/audit", headers={"authorization": f"Bearer {reviewer_key}"}).status_code == 403
    model = httpx.post(console.url + "/v1/chat/completions", timeout=15,
                       headers={"authorization": f"Bearer {reviewer_key}"},
                       json={"model": "fake-fast", "messages": [{"role": "user", "content": "hi"}]})
    assert model.status_code == 403 and model.json()["error"]["type"]
    as_reviewer = {"authorization": f"Bearer {reviewer_key}"}
    assert httpx.get(console.url + "/v1/insights", headers=as_reviewer).status_code == 200

    item = pending(console)[0]["id"]
    first = rita.post(f"/ui/items/{item}/verdict", json={"verdict": "reject", "notes": "wrong"},
                      headers={"x-csrf-token": csrf_of(rita), "accept": "application/json"})
    assert first.status_code == 200, first.text
    second = sam.post(f"/ui/items/{item}/verdict", json={"verdict": "approve"},
                      headers={"x-csrf-token": csrf_of(sam), "accept": "application/json"})
    assert second.status_code == 409
    assert "rita already decided" in second.json()["error"]["message"]
    record = httpx.get(f"{console.url}/v1/review/{item}", headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert (record["state"], record["reviewer"], record["notes"]) == ("rejected", "rita", "wrong")

    with sessions() as s:  # every session expires
        s.query(ConsoleSession).update({ConsoleSession.expires_at: datetime(2020, 1, 1, tzinfo=UTC)})
        s.commit()
    expired = rita.get("/ui/queue")
    assert expired.status_code == 303 and "/ui/signin" in expired.headers["location"]
    assert "expired=1" in expired.headers["location"]
    assert "session has expired" in rita.get(expired.headers["location"]).text


def test_phone_width_fits_without_sideways_scrolling(console: GatewayServer) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True,
                                   is_mobile=True, has_touch=True).new_page()
        sign_in(page, console, ADMIN_KEY)
        page.wait_for_selector("#queue")
        page.screenshot(path=str(ARTIFACTS / "queue-phone.png"), full_page=True)
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
        page.click("#queue tbody tr:first-child a")
        page.wait_for_selector("article.item")
        page.screenshot(path=str(ARTIFACTS / "item-phone.png"), full_page=True)
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
        page.click("button[data-verdict=approve]")  # a tap decides too
        page.wait_for_selector("#notice:not([hidden])")
        assert "approved" in page.inner_text("#notice")
        browser.close()
