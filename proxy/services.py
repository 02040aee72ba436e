"""`Gateway`: the object graph one app instance runs on, built once in the lifespan.

Routes receive it from `request.app.state.gateway`; nothing here is a module global, so two apps
in one process (as the tests run them) never share state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from plugins.base import CallContext, Pipeline, Plugin
from plugins.terminal import upstream_call
from plugins.types import ChatRequest

from . import __version__
from .auth import Authenticator, Caller
from .catalog import Catalog
from .limits import LocalLimiter
from .settings import Settings, resolve_deployments
from .upstream import Upstream

log = logging.getLogger("gateway")


@dataclass
class Gateway:
    settings: Settings
    upstream: Upstream
    auth: Authenticator
    limiter: LocalLimiter
    catalog: Catalog
    pipeline: Pipeline
    skipped: list[str] = field(default_factory=list)
    ready: bool = False
    started_at: float = field(default_factory=time.time)
    version: str = __version__

    @classmethod
    def build(cls, settings: Settings, plugins: list[Plugin] | None = None) -> Gateway:
        deployments, skipped = resolve_deployments(settings)
        for line in skipped:
            log.warning("deployment left out: %s", line)
        secrets = tuple(str(d.litellm_params.get("api_key") or "") for d in deployments)
        upstream = Upstream(deployments, settings.router_settings, secrets=secrets)
        available = set(upstream.groups) | {d.deployment.public_name for d in deployments}
        catalog = Catalog(settings, available)
        pipeline = Pipeline(plugins or [], upstream_call(upstream))
        return cls(settings=settings, upstream=upstream, auth=Authenticator(settings), limiter=LocalLimiter(),
                   catalog=catalog, pipeline=pipeline, skipped=skipped)

    async def admit(self, request: Request) -> Caller:
        """Authenticate and apply the caller's request limit; headers for the answer go to state."""
        caller = await self.auth.authenticate(request.headers.get("authorization"), request.headers.get("x-api-key"))
        rpm = caller.rpm or self.settings.limits.default_rpm
        if rpm:
            request.state.rate_headers = self.limiter.check(caller.name, rpm).headers()
        return caller

    def context(self, request: Request, caller: Caller, route: str, requested: str, chat: ChatRequest) -> CallContext:
        resolved = self.catalog.resolve(requested)
        via = f"alias {resolved.via_alias} -> " if resolved.via_alias else ""
        if resolved.kind == "auto":
            target, reason = self.settings.default_tier, f"{via}auto: default tier"
        else:
            target, reason = resolved.name, f"{via}requested {resolved.kind}"
        return CallContext(
            request_id=request.state.request_id,
            caller=caller.name,
            route=route,
            requested_model=requested,
            request=chat,
            target=target,
            tier=target if target in self.catalog.tiers else None,
            route_reason=reason,
            session_id=request.headers.get("x-session-id"),
            deadline=time.monotonic() + self.settings.limits.request_timeout_s,
        )
