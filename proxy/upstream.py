"""The only module that imports litellm: builds the Router and calls it, nothing else does.

Three jobs, all of them here so they cannot drift apart:

* **What goes upstream.** Router kwargs are built from an explicit allowlist of OpenAI fields
  (`CHAT_PARAMS`, ...). litellm honours `api_base`, `api_key`, `extra_headers`, `mock_response`
  and hundreds of other keys if they reach `acompletion`, so `check_forbidden()` rejects a body
  carrying any of them (top level, `extra_body`, `metadata`) before a single upstream call.
* **Which deployment served and what failed first.** From the response's hidden params and the
  `previous_models` breadcrumbs litellm writes into the per-call metadata dict we hand it.
* **Errors.** Every litellm/openai exception becomes one `GatewayError` in `map_error()`, with
  provider text scrubbed of anything key-like.

litellm's offline switches are set (as defaults an operator may override) before it is imported,
and it is imported lazily: `config check` and the fake upstream never pay its ~4 s import.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import os
import re
import time
from array import array
from collections.abc import AsyncIterator
from typing import Any

from core.errors import (
    ForbiddenParameter,
    GatewayError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    scrub,
)
from core.types import ChatRequest, ChatResponse
from core.upstream import Attempt, Served, StreamHandle

from .deployments import ResolvedDeployment

log = logging.getLogger("gateway.upstream")

OFFLINE_DEFAULTS = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_TELEMETRY": "False",
}

# OpenAI request fields forwarded upstream; everything else in a body is either a gateway hint
# (read by the route) or ignored. `stream`/`stream_options` are set by the adapter itself.
CHAT_PARAMS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n", "user",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort",
})
COMPLETION_PARAMS = frozenset({
    "temperature", "top_p", "max_tokens", "stop", "seed", "n", "user", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "echo", "suffix", "best_of",
})
EMBEDDING_PARAMS = frozenset({"user", "dimensions"})

# OpenAI fields that litellm also knows: legitimate in a body, never a reason to refuse it.
_OPENAI_FIELDS = CHAT_PARAMS | COMPLETION_PARAMS | EMBEDDING_PARAMS | {
    "model", "messages", "prompt", "input", "stream", "stream_options", "encoding_format",
    "metadata", "functions", "function_call", "modalities", "audio", "store", "service_tier",
    "prediction", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
}
# Always refused, whatever litellm's own list says (it is the lower bound, not the whole story).
_ALWAYS_FORBIDDEN = frozenset({
    "api_base", "base_url", "api_key", "api_version", "extra_headers", "headers", "mock_response",
    "fallbacks", "num_retries", "timeout", "request_timeout", "stream_timeout", "max_retries",
    "custom_llm_provider", "model_list", "litellm_params", "litellm_metadata", "organization",
    "deployment_id", "specific_deployment", "caching", "cache", "ssl_verify", "input_cost_per_token",
    "output_cost_per_token", "proxy_server_request", "secret_fields", "client",
})

# Providers whose litellm config drops `max_retries` as unsupported unless explicitly allowed
# (measured: nvidia_nim retried a 429 twice, 40 s, with max_retries=0). Not for every provider:
# ollama would put it in the request's options.
_DROPS_MAX_RETRIES = frozenset({"nvidia_nim"})

_RETRY_IN = re.compile(r"try again in (\d+(?:\.\d+)?)", re.IGNORECASE)


def _import_litellm() -> Any:
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import litellm

    # litellm installs its own handlers (duplicating every line, unscrubbed) and warns about
    # custom pricing at every start; route its records through ours, errors only.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.ERROR)
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    return litellm


def check_forbidden(body: dict[str, Any], forbidden: frozenset[str]) -> None:
    """Refuse a body that carries any key that would steer litellm itself."""
    for where, mapping in (("", body), ("extra_body.", body.get("extra_body")), ("metadata.", body.get("metadata"))):
        if not isinstance(mapping, dict):
            continue
        for key in mapping:
            if key in forbidden or key.startswith("litellm"):
                raise ForbiddenParameter(
                    f"'{where}{key}' is not accepted: provider selection, keys and retries are "
                    "decided by the gateway",
                    param=f"{where}{key}",
                )


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if headers:
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                return float(value)
        except (TypeError, ValueError):
            pass
    cooldown = getattr(exc, "cooldown_time", None)
    if isinstance(cooldown, int | float):
        return float(cooldown)
    match = _RETRY_IN.search(str(exc))
    return float(match.group(1)) if match else None


class RouterUpstream:
    """litellm.Router behind the gateway's own small interface (implements `core.upstream.Upstream`)."""

    def __init__(self, deployments: list[ResolvedDeployment], router_settings: dict[str, Any],
                 secrets: tuple[str, ...] = ()) -> None:
        litellm = _import_litellm()
        self._litellm = litellm
        self._secrets = tuple(s for s in secrets if s)
        from litellm.types.utils import all_litellm_params

        self.forbidden = frozenset((set(all_litellm_params) - _OPENAI_FIELDS) | _ALWAYS_FORBIDDEN)
        model_list = []
        self._by_id: dict[str, ResolvedDeployment] = {}
        for resolved in deployments:
            d = resolved.deployment
            model_info = {**d.model_info, "id": d.public_name}
            # Some providers (cerebras, nvidia_nim) go through an OpenAI SDK client that retries a
            # 429 itself, sleeping through Retry-After (40 s measured for Retry-After: 20) while
            # the next provider could answer. Failover is the router's job: no client retries.
            params = {"max_retries": 0, **resolved.litellm_params}
            if str(params["model"]).split("/", 1)[0] in _DROPS_MAX_RETRIES:
                params.setdefault("allowed_openai_params", ["max_retries"])
            model_list.append({"model_name": d.model_name, "litellm_params": params, "model_info": model_info})
            self._by_id[d.public_name] = resolved
        settings = {"num_retries": 0, "allowed_fails": 0, **router_settings}
        self.router = litellm.Router(model_list=model_list, **settings)
        self.groups = frozenset(d.deployment.model_name for d in deployments)

    # -- what a public model name means to the router ------------------------------------------

    def target(self, name: str) -> tuple[str, dict[str, Any]]:
        """Router `model` and extra kwargs for a model group or one deployment's public name."""
        if name in self.groups:
            return name, {}
        resolved = self._by_id.get(name)
        if resolved is None:  # a tier whose every deployment was left out at start (keys not set)
            raise UpstreamUnavailable(f"no deployment can serve '{name}' (left out at start: see /health)")
        return resolved.litellm_params["model"], {"specific_deployment": True}

    # -- calls ----------------------------------------------------------------------------------

    async def _call(self, method: Any, model: str, allowed: frozenset[str], params: dict[str, Any],
                    timeout: float, **fixed: Any) -> tuple[Any, Served]:
        """One router call: allowlisted params, the request's deadline, failures mapped, who served."""
        router_model, extra = self.target(model)
        metadata: dict[str, Any] = {}
        kwargs = {k: v for k, v in params.items() if k in allowed}
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                method(model=router_model, metadata=metadata, **fixed, **kwargs, **extra), timeout)
        except Exception as exc:
            raise await self._failed(exc, model, metadata, started) from None
        served = self._served(response, model, metadata, started)
        if len(served.attempts) > 1:
            await self._note_retry_after(served.attempts)
        return response, served

    async def chat(self, model: str, request: ChatRequest, timeout: float) -> tuple[ChatResponse, Served]:
        response, served = await self._call(self.router.acompletion, model, CHAT_PARAMS, request.params, timeout,
                                            messages=request.messages)
        body = _openai_body(response)
        if not body.get("choices"):
            raise UpstreamError("the provider returned an answer with no choices")
        return ChatResponse.from_openai(body), served

    async def chat_stream(self, model: str, request: ChatRequest, timeout: float) -> StreamHandle:
        """Open a stream and wait for its first chunk: until then litellm may still fail over."""
        router_model, extra = self.target(model)
        metadata: dict[str, Any] = {}
        kwargs = {k: v for k, v in request.params.items() if k in CHAT_PARAMS}
        started = time.perf_counter()
        try:
            stream = await asyncio.wait_for(
                self.router.acompletion(model=router_model, messages=request.messages, metadata=metadata,
                                        stream=True, stream_options={"include_usage": True},
                                        **kwargs, **extra),
                timeout,
            )
            iterator = stream.__aiter__()
            first = await asyncio.wait_for(iterator.__anext__(), max(0.001, timeout - (time.perf_counter() - started)))
        except StopAsyncIteration:
            raise UpstreamError("the provider closed the stream without sending anything") from None
        except Exception as exc:
            raise await self._failed(exc, model, metadata, started) from None
        served = self._served(stream, model, metadata, started)
        if len(served.attempts) > 1:
            await self._note_retry_after(served.attempts)
        deadline = asyncio.get_running_loop().time() + timeout - (time.perf_counter() - started)
        return StreamHandle(self._relay(stream, iterator, first, served, deadline), served)

    async def _relay(self, stream: Any, iterator: Any, first: Any, served: Served,
                     deadline: float) -> AsyncIterator[dict[str, Any]]:
        """The rest of the stream, each wait bounded by the request's deadline (a stall ends it)."""
        try:
            yield _chunk_dict(first)
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
                yield _chunk_dict(chunk)
        except (GeneratorExit, asyncio.CancelledError):
            raise
        except Exception as exc:
            served.attempts[-1].outcome = "incomplete"
            raise self.map_error(exc) from None
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):  # closing a broken stream must not mask the real error
                    await closer()

    async def text_completion(self, model: str, prompt: Any, params: dict[str, Any],
                              timeout: float) -> tuple[dict[str, Any], Served]:
        response, served = await self._call(self.router.atext_completion, model, COMPLETION_PARAMS, params,
                                            timeout, prompt=prompt)
        body = response.model_dump(exclude_none=True)
        body.pop("_hidden_params", None)
        return body, served

    async def embedding(self, model: str, inputs: Any, params: dict[str, Any], encoding_format: str,
                        timeout: float) -> tuple[dict[str, Any], Served]:
        response, served = await self._call(self.router.aembedding, model, EMBEDDING_PARAMS, params, timeout,
                                            input=inputs)
        data = []
        for i, item in enumerate(response.data or []):
            vector = item["embedding"] if isinstance(item, dict) else item.embedding
            if encoding_format == "base64" and not isinstance(vector, str):
                vector = base64.b64encode(array("f", vector).tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        usage = response.usage.model_dump() if getattr(response, "usage", None) else {}
        body = {"object": "list", "data": data, "model": served.model or model,
                "usage": {"prompt_tokens": usage.get("prompt_tokens", 0),
                          "total_tokens": usage.get("total_tokens", 0)}}
        return body, served

    # -- bookkeeping ----------------------------------------------------------------------------

    async def _cooldowns(self, deployments: list[str]) -> dict[str, tuple[float, float]]:
        """deployment -> (cooldown start, length) for those cooling down (length = Retry-After on a 429).

        Only asked on failure paths; never fails a request (an empty answer just means "unknown").
        """
        try:
            active = await self.router.health().cooldowns.async_get_active_cooldowns(deployments, None)
        except Exception:  # bookkeeping must never turn a served answer into an error
            log.debug("cooldown lookup failed", exc_info=True)
            return {}
        return {name: (float(v.get("timestamp") or 0), float(v.get("cooldown_time") or 0)) for name, v in active}

    async def _note_retry_after(self, attempts: list[Attempt]) -> None:
        """Fill in the Retry-After a rate-limited deployment answered with (its cooldown length)."""
        limited = [a.deployment for a in attempts if a.deployment and "RateLimit" in a.outcome]
        if limited:
            cooling = await self._cooldowns(limited)
            for attempt in attempts:
                if attempt.deployment in cooling:
                    attempt.retry_after = cooling[attempt.deployment][1]

    async def earliest_cooldown_end(self, model: str) -> float | None:
        """Seconds until the first deployment of `model`'s group can be tried again."""
        group = [name for name, r in self._by_id.items() if r.deployment.model_name == model] or [model]
        cooling = await self._cooldowns(group)
        if not cooling:
            return None
        now = time.time()
        return max(0.0, min(start + length - now for start, length in cooling.values()))

    def _failures(self, model: str, metadata: dict[str, Any]) -> list[Attempt]:
        attempts = []
        for crumb in metadata.get("previous_models") or ():
            deployment = crumb.get("deployment_id")
            resolved = self._by_id.get(deployment or "")
            attempts.append(Attempt(
                tier=model if model in self.groups else None,
                deployment=deployment,
                provider=str(resolved.litellm_params["model"]).split("/", 1)[0] if resolved else None,
                outcome=str(crumb.get("exception_type") or "error"),
                detail=scrub(str(crumb.get("exception_string") or ""), self._secrets)[:300],
            ))
        return attempts

    def _served(self, response: Any, model: str, metadata: dict[str, Any], started: float) -> Served:
        hidden = getattr(response, "_hidden_params", None) or {}
        deployment = str(hidden.get("model_id") or "")
        resolved = self._by_id.get(deployment)
        provider = str(hidden.get("custom_llm_provider") or "")
        latency = (time.perf_counter() - started) * 1000
        attempts = self._failures(model, metadata)
        attempts.append(Attempt(tier=model if model in self.groups else None, deployment=deployment,
                                provider=provider, outcome="ok", latency_ms=round(latency, 1)))
        served_model = resolved.deployment.public_name if resolved else str(getattr(response, "model", "") or "")
        cost = hidden.get("response_cost")
        return Served(model=served_model, deployment=deployment, provider=provider,
                      cost=float(cost) if isinstance(cost, int | float) else 0.0, attempts=attempts)

    async def _failed(self, exc: BaseException, model: str, metadata: dict[str, Any],
                      started: float) -> GatewayError:
        error = self.map_error(exc)
        attempts = self._failures(model, metadata)
        await self._note_retry_after(attempts)
        error.attempts = attempts
        if type(exc).__name__ in ("RouterRateLimitError", "RouterRateLimitErrorBasic"):
            wait = await self.earliest_cooldown_end(model)
            if wait is not None:  # every deployment is cooling down: say when the first one is back
                error.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return error

    def map_error(self, exc: BaseException) -> GatewayError:
        """The one place a litellm or provider exception becomes a caller-facing error."""
        if isinstance(exc, GatewayError):
            return exc
        lit = self._litellm
        name = type(exc).__name__
        text = scrub(str(exc), self._secrets)
        if isinstance(exc, asyncio.TimeoutError | lit.Timeout):
            return UpstreamTimeout("the model did not answer within the request's deadline")
        retry_after = _retry_after(exc)
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else {}
        if name in ("RouterRateLimitError", "RouterRateLimitErrorBasic"):
            return UpstreamUnavailable(
                "every deployment that could serve this model is cooling down after failures; retry later",
                headers=headers or {"Retry-After": "5"})
        if isinstance(exc, lit.RateLimitError):
            return RateLimited("the provider is rate limiting this gateway; retry later", headers=headers)
        if isinstance(exc, lit.ContextWindowExceededError):
            return InvalidRequest(f"the prompt is too long for this model: {_short(text)}",
                                  code="context_length_exceeded")
        if isinstance(exc, lit.ContentPolicyViolationError):
            return InvalidRequest(f"the provider refused the content: {_short(text)}", code="content_policy_violation")
        if isinstance(exc, lit.AuthenticationError | lit.PermissionDeniedError):
            return UpstreamError("the provider rejected the gateway's credentials; an operator must fix the "
                                 "deployment's key")
        if isinstance(exc, lit.BadRequestError):
            return InvalidRequest(f"the provider rejected the request: {_short(text)}")
        if isinstance(exc, lit.APIConnectionError) or "Connection error" in text:
            return UpstreamUnavailable("the provider could not be reached", headers=headers)
        if isinstance(exc, lit.ServiceUnavailableError):
            return UpstreamUnavailable(f"the provider is unavailable: {_short(text)}", headers=headers)
        if isinstance(exc, lit.NotFoundError):
            return UpstreamError(f"the provider does not know the configured model: {_short(text)}")
        if isinstance(exc, lit.InternalServerError | lit.BadGatewayError | lit.APIError
                      | lit.APIResponseValidationError | lit.UnprocessableEntityError):
            return UpstreamError(f"the provider failed: {_short(text)}")
        log.warning("unmapped upstream exception %s: %s", name, _short(text))
        return UpstreamError("the provider failed")


def _short(text: str, limit: int = 240) -> str:
    text = text.replace("litellm.", "").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _openai_body(response: Any) -> dict[str, Any]:
    """litellm's ModelResponse as a plain OpenAI chat.completion body (without litellm extras)."""
    body: dict[str, Any] = response.model_dump()
    for choice in body.get("choices") or ():
        choice.pop("provider_specific_fields", None)
        message = choice.get("message") or {}
        for key in ("function_call", "tool_calls", "provider_specific_fields", "reasoning_content",
                    "thinking_blocks", "annotations", "audio", "images"):
            if message.get(key) is None:
                message.pop(key, None)
        for call in message.get("tool_calls") or ():
            call.pop("provider_specific_fields", None)
    usage = body.get("usage")
    if isinstance(usage, dict):
        body["usage"] = {k: v for k, v in usage.items() if v is not None}
    return body


def _chunk_dict(chunk: Any) -> dict[str, Any]:
    data: dict[str, Any] = chunk.model_dump(exclude_none=True)
    for choice in data.get("choices") or ():
        choice.pop("provider_specific_fields", None)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            delta.pop("provider_specific_fields", None)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    call.pop("provider_specific_fields", None)
    return data
