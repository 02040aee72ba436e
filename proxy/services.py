"""`Gateway`: the object graph one app instance runs on, built once in the lifespan.

Routes receive it from `request.app.state.gateway`; nothing here is a module global, so two apps
in one process (as the tests run them) never share state. `build()` constructs (no I/O beyond
reading config), `start()` does the I/O (migrations, background tasks), `stop()` flushes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request

from core.learned import Thresholds
from core.types import ChatRequest
from core.upstream import Upstream
from plugins.base import CallContext, Pipeline
from plugins.cascade import Policy
from plugins.registry import PluginDeps, build_plugins
from plugins.state import Snapshot, StateHolder, initial_state
from plugins.tasks import TaskType, build_task_types
from plugins.terminal import upstream_call
from plugins.tiering import LocalPins
from plugins.validators import Scorer, build_validators
from plugins.validators.execution import ExecutionValidator
from proxy.state_poller import StatePoller
from store.audit_sink import AuditSink
from store.db import make_engine, migrate, session_factory
from store.spool import Spool

from . import __version__
from .auth import Authenticator, Caller
from .catalog import Catalog
from .keys import DatabaseKeys
from .limits import Limiter
from .local_models import LocalModels
from .metrics import GatewayMetrics
from .settings import Settings, resolve_deployments
from .shared import RedisPins, RedisState, router_redis_settings
from .upstream import RouterUpstream

log = logging.getLogger("gateway")


def database_url(settings: Settings) -> str:
    return settings.resolved_database_url


def configured_state(settings: Settings, task_types: dict[str, TaskType], scorer: Scorer) -> Snapshot:
    thresholds = Thresholds(settings.quality.thresholds.review, settings.quality.thresholds.approved)
    return initial_state(thresholds, task_types, scorer)


@dataclass
class Gateway:
    settings: Settings
    upstream: Upstream
    auth: Authenticator
    limiter: Limiter
    catalog: Catalog
    pipeline: Pipeline
    task_types: dict[str, TaskType]
    state: StateHolder
    engine: Engine
    sink: AuditSink | None
    redis: RedisState | None = None
    local: LocalModels | None = None
    poller: StatePoller | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    skipped: list[str] = field(default_factory=list)
    ready: bool = False
    stopping: bool = False  # set when shutdown begins: /health says "stopping", not "starting"
    db_ready: bool = False
    started_at: float = field(default_factory=time.time)
    version: str = __version__
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, metrics: GatewayMetrics | None = None) -> Gateway:
        deployments, skipped = resolve_deployments(settings)
        for line in skipped:
            log.warning("deployment left out: %s", line)
        secrets = tuple(str(d.litellm_params.get("api_key") or "") for d in deployments)
        # Local llama.cpp servers: files and ports are resolved now, the processes start in start().
        local = LocalModels(settings.local_models) if settings.local_models else None
        if local is not None:
            deployments = [*deployments, *local.deployments()]
        redis = RedisState(settings.redis_url) if settings.redis_url else None
        router_settings = dict(settings.router_settings)
        if settings.redis_url:
            # Cooldowns and provider usage counters shared by every instance.
            router_settings = {**router_redis_settings(settings.redis_url), **router_settings}
        upstream = RouterUpstream(deployments, router_settings, secrets=secrets)
        available = set(upstream.groups) | {d.deployment.public_name for d in deployments}
        task_types = build_task_types(settings.task_types, settings.tiers)
        validators = build_validators(settings.quality.validators)
        if settings.quality.execution.enabled_task_types:
            validators.append(ExecutionValidator(settings.quality.execution))
        scorer = Scorer(validators, settings.quality.weights)
        state = StateHolder(configured_state(settings, task_types, scorer), settings.tiers, scorer)
        engine = make_engine(database_url(settings))
        sink = None
        if settings.audit.enabled:
            audit = settings.audit
            sink = AuditSink(engine, Spool(Path(settings.data_dir) / "spool"), store_content=audit.store_content,
                             batch_size=audit.batch_size, flush_interval_s=audit.flush_interval_s,
                             max_queue=audit.queue_size, write_timeout_s=audit.write_timeout_s,
                             replay_interval_s=audit.replay_interval_s)
        quality = settings.quality
        policy = Policy(quality.escalation_threshold, quality.max_escalations, quality.max_cost_per_request,
                        quality.escalate_on_error, quality.stream_mode == "buffer")
        pins = RedisPins(redis, LocalPins()) if redis else LocalPins()
        metrics = metrics or GatewayMetrics(known_task_types=set(task_types))
        metrics.known_task_types = set(task_types)
        deps = PluginDeps(settings.tiers, task_types, policy, pins, settings.session_pin_ttl_s, sink,
                          observers=[metrics.observe], spot_check_share=settings.audit.spot_check_share)
        pipeline = Pipeline(build_plugins(settings.plugins, deps), upstream_call(upstream))
        keys = DatabaseKeys(session_factory(engine))
        return cls(settings=settings, upstream=upstream, auth=Authenticator(settings, keys.lookup),
                   limiter=Limiter(redis), catalog=Catalog(settings, available), pipeline=pipeline,
                   task_types=task_types, state=state, engine=engine, sink=sink, redis=redis, metrics=metrics,
                   skipped=skipped, local=local)

    async def start(self) -> None:
        if self.local is not None:
            await self.local.start()  # bounded by each model's startup_timeout_s; a failure is logged, not raised
        await self._migrate_once()
        # New learned states (from `llm-gateway learn`) are picked up within seconds, no restart.
        self.poller = StatePoller(self.engine, self.state, interval_s=self.settings.learning.reload_interval_s)
        await self.poller.start()
        if not self.db_ready:
            self._tasks.append(asyncio.create_task(self._migrate_until_ready(), name="migrate-retry"))
        if self.sink is not None:
            await self.sink.start()
        for validator in self._validators_with("sandbox"):
            # The first code check should not pay the sandbox's cold start.
            await asyncio.to_thread(validator.sandbox.warm_up)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self.stopping = True
        if self.poller is not None:
            await self.poller.stop()
        for task in self._tasks:
            task.cancel()
        if self.sink is not None:
            await self.sink.stop()
        if self.redis is not None:
            await self.redis.close()
        for validator in self._validators_with("close"):
            validator.close()
        if self.local is not None:
            await self.local.stop()
        self.engine.dispose()

    def _validators_with(self, attribute: str) -> list[Any]:
        scorer = self.state.current.scorer
        return [v for v in (scorer.validators if scorer else ()) if hasattr(v, attribute)]

    async def _migrate_once(self) -> None:
        try:
            await asyncio.to_thread(migrate, self.engine)
            self.db_ready = True
        except Exception as exc:  # the gateway serves without its database; audit spools meanwhile
            log.error("database unavailable at start (%s); audit records are spooled until it is back",
                      type(exc).__name__)

    async def _migrate_until_ready(self) -> None:
        while not self.db_ready:
            await asyncio.sleep(10)
            await self._migrate_once()

    async def admit(self, request: Request) -> Admission:
        """Authenticate and apply the caller's request limit (401/429 raised here)."""
        caller = await self.auth.authenticate(request.headers.get("authorization"), request.headers.get("x-api-key"))
        rpm = caller.rpm or self.settings.limits.default_rpm
        tpm = caller.tpm or self.settings.limits.default_tpm
        headers = (await self.limiter.check(caller.name, rpm, tpm)).headers() if rpm or tpm else {}
        return Admission(caller, headers, tpm_limited=bool(tpm))

    def _charge_tokens(self, ctx: CallContext) -> None:
        """Charge the call's tokens to its caller when it ends (a finalizer: schedules, never waits)."""

        async def charge(ctx: CallContext, result: Any, error: BaseException | None) -> None:
            response = result.response if result is not None else None
            if response is not None:
                tokens = response.prompt_tokens + response.completion_tokens
                task = asyncio.create_task(self.limiter.add_tokens(ctx.limit_key, tokens))
                self._tasks.append(task)
                task.add_done_callback(self._tasks.remove)

        ctx.defer(charge)

    def context(self, request: Request, admission: Admission, route: str, requested: str,
                chat: ChatRequest) -> CallContext:
        resolved = self.catalog.resolve(requested)
        auto = resolved.kind == "auto"
        if chat.kind == "embedding":
            target = (self.settings.embedding_group or self.settings.default_tier) if auto else resolved.name
            reason = "embeddings group" if auto else f"requested {resolved.kind}"
        elif auto:
            target, reason = self.settings.default_tier, "auto: default tier"
        else:
            target, reason = resolved.name, f"requested {resolved.kind}"
        if resolved.via_alias:
            reason = f"alias {resolved.via_alias} -> {reason}"
        caller = admission.caller
        ctx = CallContext(
            request_id=request.state.request_id,
            caller=caller.name,
            route=route,
            requested_model=requested,
            request=chat,
            target=target,
            learned=self.state.current,  # the one snapshot this request is decided by
            tier=target if target in self.catalog.tiers else None,
            route_reason=reason,
            session_id=request.headers.get("x-session-id"),
            deadline=time.monotonic() + self.settings.limits.request_timeout_s,
            auto=auto and chat.kind != "embedding",
            alias=resolved.via_alias,
            limit_key=caller.name,
        )
        if admission.tpm_limited:
            self._charge_tokens(ctx)
        return ctx


@dataclass(frozen=True, slots=True)
class Admission:
    """A caller let in: who it is, the x-ratelimit-* headers for its answer, whether tokens count."""

    caller: Caller
    rate_headers: dict[str, str] = field(default_factory=dict)
    tpm_limited: bool = False
