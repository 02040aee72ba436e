"""Over real HTTP: a wrong cheap code answer is escalated because it fails the prompt's tests."""

from __future__ import annotations

import httpx

from tests.integration.test_quality_pipeline import audit_row
from tests.support.servers import AGENT_KEY

MBPP = '''Write a python function to remove first and last occurrence of a given character from the string.
Your code should pass these tests:

assert remove_Occ("hello","l") == "heo"
assert remove_Occ("abcda","a") == "bcd"
assert remove_Occ("PHP","P") == "H"
'''
RIGHT = '''```python
def remove_Occ(s, ch):
    i = s.find(ch)
    if i != -1:
        s = s[:i] + s[i + 1:]
    j = s.rfind(ch)
    if j != -1:
        s = s[:j] + s[j + 1:]
    return s
```'''
WRONG = "```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n```"


def test_a_wrong_cheap_code_answer_is_escalated_over_http(make_gateway, fake, sandbox):
    fake.set_behaviour("fake-fast", {"text": WRONG})
    fake.set_behaviour("fake-medium", {"text": RIGHT})
    server = make_gateway(
        task_types={"code_generation": {"tier": "fast"}},
        quality={"execution": {"enabled_task_types": ["code_generation"]}},
    )
    response = httpx.post(server.url + "/v1/completion", headers={"Authorization": f"Bearer {AGENT_KEY}"},
                          json={"task_type": "code_generation", "input": MBPP}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["output"] == RIGHT
    assert response.headers["x-gateway-tier"] == "medium"
    row = audit_row(server, response.headers["x-request-id"])
    assert row.steps[0]["score"] < 5 <= row.steps[1]["score"]
    assert row.validator_scores["execution"] == 10.0
    assert all(step["checks_ms"]["execution"] > 0 for step in row.steps)  # the check's cost, per step
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'llm_gateway_validator_check_seconds_count{validator="execution"} 2.0' in metrics
