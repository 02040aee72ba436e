"""The client's logic, once for both clients: every call is a *plan*, a generator of actions.

A plan yields `Send` (an HTTP request), `Sleep` (a backoff wait) or `Blocking` (local file work)
and receives the outcome: a `Reply`/`Failure` for a `Send`, None for a `Sleep`, the function's
return value for a `Blocking` (its exception is thrown into the plan). The sync client runs plans
with `httpx.Client` and `time.sleep`, the async client with `httpx.AsyncClient`, `asyncio.sleep`
and `asyncio.to_thread`; neither knows anything about retries, health or the fallback.

One call:

    route = health.route()                      gateway | probe | fallback (see _health.py)
    probe  -> GET /health/ready; healthy: upload offline records, then gateway; else fallback
    gateway-> up to max_attempts, backoff between (see _retry.py)
              2xx                     -> result (mode "gateway"); upload offline records if any
              other 4xx (not 429)     -> raise at once (Authentication/BadRequestError), no fallback
              429 after the retries   -> raise RateLimitedError, no fallback
              no answer / 5xx         -> health down (cool-down starts), then the fallback
    fallback -> the local model; its answer is kept in the offline log, result mode "fallback";
              it failing too -> FallbackUnavailableError (what was tried, what to do)
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from . import _fallback as local
from . import _protocol as wire
from ._config import ClientConfig
from ._errors import BadRequestError, FallbackUnavailableError, GatewayUnavailableError
from ._health import HealthTracker, Route
from ._offline import OfflineStore, batches, new_request_id, offline_record, shrink
from ._protocol import Failure, Reply
from ._retry import RetryPolicy, is_retryable, parse_retry_after, retry_delay
from .types import ChatResult, ClassifyResult, CompletionResult, Status

log = logging.getLogger("llm_gateway_client")
T = TypeVar("T")


# -- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    method: str
    url: str
    headers: Mapping[str, str]
    timeout: tuple[float, float]  # (connect, read)
    json: Any = None
    stream: bool = False  # keep a successful response open (its body is the caller's stream)


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Blocking:
    fn: Callable[[], Any]


Action = Send | Sleep | Blocking
Plan = Generator[Action, Any, T]


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A streamed chat the gateway accepted: the open response, for the client to read as SSE."""

    response: Any
    model: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class _Call:
    path: str
    body: dict[str, Any]
    parse: Callable[[Reply, float], Any]  # a gateway success (and its latency in ms) -> the result
    task_type: str  # for the fallback and its offline record
    messages: list[dict[str, Any]]
    finish: Callable[[local.LocalAnswer, str, float], Any]  # local answer, request id, latency ms -> result
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    stream: bool = False


@dataclass(frozen=True, slots=True)
class _Down:
    """The gateway gave up on a call in a way the fallback may answer."""

    reason: str
    error: Exception


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# -- the core -------------------------------------------------------------------------------------


class Core:
    """Configuration, health, offline store and the plans of every public method."""

    def __init__(self, config: ClientConfig, *, rng: Callable[[], float], clock: Callable[[], float]) -> None:
        self.config = config
        self.policy = RetryPolicy.from_config(config)
        self.health = HealthTracker(config.health_cooldown, config.probe_timeout, clock)
        self.store = OfflineStore(config.state_dir, clock, retry_interval=max(config.health_cooldown, 1.0))
        self._rng = rng
        self._headers = wire.headers(config)
        self._timeout = (config.connect_timeout, config.read_timeout)
        self._probe_timeout = (config.probe_timeout, config.probe_timeout)

    # -- public plans ----------------------------------------------------------------------------

    def completion(
        self, task_type: str, text: str, language: str | None, model: str | None, tier: str | None,
        max_tokens: int | None, system: str | None,
    ) -> Plan[CompletionResult]:
        if not task_type or not text:
            raise BadRequestError("completion needs a task_type and a non-empty input")

        def finish(answer: local.LocalAnswer, request_id: str, ms: float) -> CompletionResult:
            return CompletionResult(id=request_id, output=answer.content, model=answer.model, mode="fallback",
                                    task_type=task_type, latency_ms=round(ms, 1), tokens_in=answer.tokens_in,
                                    tokens_out=answer.tokens_out)

        return self._call(_Call(
            "/v1/completion",
            wire.completion_body(self.config, task_type, text, language, model, tier, max_tokens, system),
            lambda reply, ms: wire.parse_completion(reply), task_type,
            local.completion_messages(task_type, text, language, system), finish,
            params={"max_tokens": max_tokens} if max_tokens else {},
        ))

    def classify(self, text: str, labels: list[str], task: str | None, language: str | None) -> Plan[ClassifyResult]:
        cleaned = [label.strip() for label in labels if isinstance(label, str) and label.strip()]
        if not text or len(set(cleaned)) < 2:
            raise BadRequestError("classify needs a non-empty input and at least two distinct, non-empty labels")

        def finish(answer: local.LocalAnswer, request_id: str, ms: float) -> ClassifyResult:
            return ClassifyResult(id=request_id, label=local.pick_label(answer.content, cleaned), model=answer.model,
                                  mode="fallback", latency_ms=round(ms, 1), tokens_in=answer.tokens_in,
                                  tokens_out=answer.tokens_out)

        return self._call(_Call(
            "/v1/classify", wire.classify_body(self.config, text, cleaned, task, language),
            lambda reply, ms: wire.parse_classify(reply), "classification",
            local.classify_messages(text, cleaned, task), finish, params={"max_tokens": 20, "temperature": 0},
        ))

    def chat(
        self, messages: list[dict[str, Any]], model: str, stream: bool, tools: list[dict[str, Any]] | None,
        params: dict[str, Any],
    ) -> Plan[ChatResult | StreamStart]:
        if not messages:
            raise BadRequestError("chat needs at least one message")

        def parse(reply: Reply, ms: float) -> ChatResult | StreamStart:
            if stream:
                return StreamStart(reply.stream, reply.headers.get("x-gateway-model", model),
                                   reply.headers.get("x-request-id"))
            return wire.parse_chat(reply, ms)

        def finish(answer: local.LocalAnswer, request_id: str, ms: float) -> ChatResult:
            body = local.chat_body(answer, request_id, int(time.time()))
            return wire.chat_result(body, "fallback", ms, request_id=request_id)

        return self._call(_Call(
            "/v1/chat/completions", wire.chat_body(model, messages, stream, tools, params), parse, "chat",
            list(messages), finish, params=params, tools=tools, stream=stream,
        ))

    def check_health(self) -> Plan[bool]:
        """`health()`: False at once while a failure is inside the cool-down, else one probe."""
        if self.health.known_down:
            return False
        return (yield from self._probe())

    def status(self) -> Plan[Status]:
        gateway = yield from self.check_health()
        ollama: Any = "unknown"
        if self.config.fallback:
            outcome = yield Send("GET", local.status_url(self.config), local.local_headers(self.config),
                                 self._probe_timeout)
            ollama = "up" if isinstance(outcome, Reply) and outcome.status == 200 else "down"
        return {"gateway": gateway, "ollama": ollama,
                "mode": "gateway" if gateway or not self.config.fallback else "fallback"}

    def upload_offline(self) -> Plan[None]:
        return self._upload()

    # -- one call --------------------------------------------------------------------------------

    def _call(self, call: _Call) -> Plan[Any]:
        route = self.health.route() if self.config.fallback else Route.GATEWAY
        if route is Route.PROBE:
            route = Route.GATEWAY if (yield from self._probe()) else Route.FALLBACK
        if route is Route.FALLBACK:
            why = (f"{self.health.reason}; the client waits {self.config.health_cooldown:g} s after a failure "
                   "before it probes the gateway again")
            return (yield from self._local(call, why))
        outcome = yield from self._gateway(call)
        if isinstance(outcome, _Down):
            self.health.mark_down(outcome.reason)
            if not self.config.fallback:
                raise outcome.error
            log.warning("gateway unavailable (%s); answering from the local model", outcome.reason)
            return (yield from self._local(call, outcome.reason))
        result = outcome
        self.health.mark_up()
        yield from self._upload()
        return result

    def _gateway(self, call: _Call) -> Plan[Any]:
        """The result, or _Down; raises for answers the fallback must not hide (4xx, 429)."""
        url = self.config.base_url + call.path
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            outcome = yield Send("POST", url, self._headers, self._timeout, call.body, call.stream)
            if isinstance(outcome, Reply) and 200 <= outcome.status < 300:
                return call.parse(outcome, _ms(started))
            status = outcome.status if isinstance(outcome, Reply) else None
            retry_after = parse_retry_after(outcome.headers.get("retry-after")) if isinstance(outcome, Reply) else None
            delay = retry_delay(self.policy, attempt, status, retry_after, self._rng)
            what = outcome.describe() if isinstance(outcome, Failure) else f"answered {status}"
            if delay is None:
                break
            log.info("gateway attempt %d/%d on %s failed: %s; retrying in %.2f s", attempt, self.policy.max_attempts,
                     call.path, what, delay)
            yield Sleep(delay)
        tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
        if isinstance(outcome, Failure):
            reason = f"the gateway at {self.config.base_url}: {what} {tries}"
            return _Down(reason, GatewayUnavailableError(
                f"{reason}; start the gateway (`llm-gateway`) or check LLM_GATEWAY_URL (the local fallback is off)"))
        error = wire.error_from_reply(outcome)
        if not is_retryable(outcome.status) or outcome.status == 429:
            raise error
        detail = str(wire.error_info(outcome).get("message") or "").rstrip(".")
        return _Down(f"the gateway at {self.config.base_url} {what} {tries}: {detail}", error)

    def _local(self, call: _Call, why: str) -> Plan[Any]:
        url, body, headers = local.local_request(self.config, call.messages, call.params, call.tools)
        started = time.perf_counter()
        outcome = yield Send("POST", url, headers, self._timeout, body)
        ms = _ms(started)
        try:
            if isinstance(outcome, Failure):
                raise local.LocalModelError(f"the local model ({self.config.ollama_api} at {self.config.ollama_url}, "
                                            f"model {self.config.ollama_model}) {outcome.describe()}")
            answer = local.parse_local(self.config, outcome.status, outcome.body)
        except local.LocalModelError as exc:
            raise FallbackUnavailableError(
                f"neither the gateway nor the local fallback could answer. Gateway: {why}. Fallback: {exc}. "
                f"Start the gateway (`llm-gateway`) or the local model (`ollama serve`, then "
                f"`ollama pull {self.config.ollama_model}`), and check LLM_GATEWAY_URL and OLLAMA_URL."
            ) from None
        request_id = new_request_id()
        output = answer.content or (json.dumps(answer.tool_calls) if answer.tool_calls else "")
        record = offline_record(request_id, call.task_type, answer.model, local.prompt_text(call.messages), output,
                                ms, answer.tokens_in, answer.tokens_out)
        try:
            yield Blocking(partial(self.store.append, record))
        except OSError as exc:
            log.error("could not keep offline call %s in %s (%s): it will be missing from the gateway's audit",
                      request_id, self.store.path, exc)
        return call.finish(answer, request_id, ms)

    def _probe(self) -> Plan[bool]:
        outcome = yield Send("GET", self.config.base_url + "/health/ready", self._headers, self._probe_timeout)
        healthy = isinstance(outcome, Reply) and outcome.status == 200
        if isinstance(outcome, Failure):
            reason = f"the gateway at {self.config.base_url}: {outcome.describe()} on its health check"
        else:
            reason = f"the gateway at {self.config.base_url} answered {outcome.status} on /health/ready"
        self.health.probe_finished(healthy, "" if healthy else reason)
        if healthy:
            yield from self._upload()
        return healthy

    # -- the offline log's upload ----------------------------------------------------------------

    def _upload(self) -> Plan[None]:
        """Send the offline log to the gateway's audit; never raises (records stay for next time)."""
        if not self.store.begin_upload():
            return
        ok, sent = False, 0
        try:
            files = yield Blocking(self.store.take)
            for file, records in files:
                todo, rejected = deque(batches(records)), []
                while todo:
                    batch = todo.popleft()
                    outcome = yield Send("POST", self.config.base_url + "/v1/audit/offline", self._headers,
                                         self._timeout, {"records": batch})
                    if isinstance(outcome, Reply) and outcome.status == 200:
                        sent += len(batch)
                    elif isinstance(outcome, Reply) and outcome.status == 413 and len(batch) > 1:
                        half = len(batch) // 2
                        todo.extendleft([batch[half:], batch[:half]])
                    elif isinstance(outcome, Reply) and outcome.status == 413 and (smaller := shrink(batch[0])):
                        todo.appendleft([smaller])
                    elif isinstance(outcome, Reply) and outcome.status in (400, 413, 422):
                        log.error("the gateway refused %d offline record(s): %s", len(batch),
                                  wire.error_from_reply(outcome).message)
                        rejected.extend(batch)
                    else:
                        what = outcome.describe() if isinstance(outcome, Failure) else f"answered {outcome.status}"
                        log.warning("uploading offline records failed (the gateway %s); they stay in %s and the "
                                    "upload is tried again later", what, self.store.dir)
                        return
                kept = yield Blocking(partial(self.store.uploaded, file, rejected))
                if kept is not None:
                    log.error("%d offline record(s) the gateway refused are kept in %s", len(rejected), kept)
            ok = True
            if sent:
                log.info("uploaded %d offline call(s) to the gateway's audit log", sent)
        except OSError as exc:
            log.warning("could not read the offline log in %s: %s", self.store.dir, exc)
        finally:
            self.store.end_upload(ok)
