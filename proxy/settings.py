"""Gateway configuration: `config/litellm.yaml`, then `GATEWAY_*` environment overrides.

This is the only module that reads the environment. Provider keys are written in the file as
`os.environ/NAME` references and resolved here, once, at load; a deployment whose key variable is
unset is left out of the router (and said so at start) rather than sent upstream keyless.

The file has three top-level keys: litellm's own `model_list` and `router_settings`, and our
`gateway:` section. The `gateway:` keys become the top level of `Settings`, so an environment
override is `GATEWAY_<KEY>` (nested with `__`, e.g. `GATEWAY_AUTH__MODE=open`).
Unknown keys are errors, so a typo fails at start instead of silently doing nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from learning.config import LearningConfig
from plugins.validators.execution import ExecutionConfig

from .deployments import Deployment, ResolvedDeployment
from .local_models import LocalModelConfig

ENV_REF = "os.environ/"
CONFIG_ENV = "LLM_GATEWAY_CONFIG"  # how `serve --workers N` hands the config path to its workers
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "litellm.yaml"
TIER_ORDER = ("fast", "medium", "large", "external")
# litellm_params that may carry a secret: only ever from the environment, never from the file.
SECRET_PARAMS = frozenset({"api_key", "aws_secret_access_key", "aws_access_key_id", "vertex_credentials"})


class ConfigError(Exception):
    """The configuration is invalid; the message names each bad key and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallerConfig(_Strict):
    """A caller and its key. The key is an `os.environ/NAME` reference or a sha256 hex digest."""

    name: str
    role: Literal["agent", "reviewer", "admin"] = "agent"
    key: str | None = None
    key_sha256: str | None = None
    rpm: int | None = None
    tpm: int | None = None

    @field_validator("key")
    @classmethod
    def _key_from_env(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(ENV_REF):
            raise ValueError(f"caller keys must come from the environment ({ENV_REF}NAME) or key_sha256")
        return value

    @field_validator("key_sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be a lowercase sha256 hex digest (64 characters)")
        return value


class AuthConfig(_Strict):
    mode: Literal["keys", "open"] = "keys"


class LimitsConfig(_Strict):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    request_timeout_s: float = Field(default=120.0, gt=0)
    default_rpm: int | None = Field(default=None, gt=0)
    default_tpm: int | None = Field(default=None, gt=0)


class ThresholdsConfig(_Strict):
    """Gate bands: below `review` is pending_review, below `approved` is warning, else approved."""

    review: float = Field(default=4.0, ge=0, le=10)
    approved: float = Field(default=7.0, ge=0, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsConfig:
        if self.review > self.approved:
            raise ValueError("review must not be above approved")
        return self


class QualityConfig(_Strict):
    validators: list[str] | None = None  # None: every built-in validator
    weights: dict[str, float] = Field(default_factory=dict)
    escalation_threshold: float = Field(default=5.0, ge=0, le=10)
    max_escalations: int = Field(default=2, ge=0)
    max_cost_per_request: float | None = Field(default=None, gt=0)
    escalate_on_error: bool = True
    # buffer: a tier that may still escalate is buffered, scored, then replayed as SSE;
    # passthrough: streams go straight through (scored at the end, never escalated).
    stream_mode: Literal["buffer", "passthrough"] = "buffer"
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    # Runs generated code against the prompt's examples in a sandbox; off until task types are named.
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)


class TaskTypeConfig(_Strict):
    """Overrides for one task type (built-ins: plugins/tasks.py), or a new one."""

    tier: str | None = None
    prompt: str | None = None
    escalation_threshold: float | None = Field(default=None, ge=0, le=10)
    max_escalations: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, gt=0)


class AuditConfig(_Strict):
    enabled: bool = True
    store_content: Literal["none", "review_only", "all"] = "review_only"
    retention_days: int = Field(default=90, gt=0)
    batch_size: int = Field(default=100, gt=0)
    flush_interval_s: float = Field(default=0.2, gt=0)
    queue_size: int = Field(default=10_000, gt=0)
    write_timeout_s: float = Field(default=5.0, gt=0)
    # Share of warning/approved answers also sent to the review queue (see docs/adr/0003).
    spot_check_share: float = Field(default=0.05, ge=0, le=1)
    replay_interval_s: float = Field(default=5.0, gt=0)


class ConsoleConfig(_Strict):
    """The reviewer console at /ui (proxy/ui/)."""

    enabled: bool = True
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0)  # a signed-in browser stays signed in this long


class Settings(BaseSettings):
    """Everything the gateway process is configured with, resolved and validated."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="forbid", protected_namespaces=()
    )

    model_list: list[Deployment] = Field(default_factory=list)
    router_settings: dict[str, Any] = Field(default_factory=dict)

    tiers: list[str] = Field(default_factory=lambda: list(TIER_ORDER))
    default_tier: str = "fast"
    embedding_group: str | None = "embeddings"
    aliases: dict[str, str] = Field(default_factory=dict)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    callers: list[CallerConfig] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    plugins: list[str] = Field(default_factory=lambda: ["audit", "tier_selection", "cascade", "gate"])
    quality: QualityConfig = Field(default_factory=QualityConfig)
    task_types: dict[str, TaskTypeConfig] = Field(default_factory=dict)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    # llama.cpp servers the gateway runs itself (proxy/local_models.py); their deployments join model_list at start.
    local_models: list[LocalModelConfig] = Field(default_factory=list)
    session_pin_ttl_s: float = Field(default=1800.0, ge=0)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: str = "data"
    public_url: str | None = None  # advertised in /openapi.json `servers` (e.g. for a ChatGPT Action)
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _check_names(self) -> Settings:
        groups = {d.model_name for d in self.model_list} | {g for m in self.local_models for g in m.groups}
        for tier in self.tiers:
            if tier not in groups:
                raise ValueError(f"tiers: tier {tier!r} has no deployment in model_list")
        if self.embedding_group is not None and self.embedding_group not in groups:
            raise ValueError(f"embedding_group: {self.embedding_group!r} has no deployment in model_list")
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier: {self.default_tier!r} is not one of tiers {self.tiers}")
        local_ids = {f"{m.name}@{g}" for m in self.local_models for g in m.groups}
        names = groups | {"auto"} | {d.public_name for d in self.model_list} | local_ids
        for pattern, target in self.aliases.items():
            if target not in names:
                raise ValueError(f"aliases.{pattern}: target {target!r} is not a tier, 'auto' or a model")
        for i, deployment in enumerate(self.model_list):
            for key in SECRET_PARAMS:
                value = getattr(deployment.litellm_params, key, None)
                if value is not None and not str(value).startswith(ENV_REF):
                    raise ValueError(
                        f"model_list.{i}.litellm_params.{key}: secrets must come from the environment "
                        f"({ENV_REF}NAME), never from the file"
                    )
        for name, task in self.task_types.items():
            if task.tier is not None and task.tier not in self.tiers:
                raise ValueError(f"task_types.{name}.tier: {task.tier!r} is not one of tiers {self.tiers}")
        seen: dict[str, int] = {}
        for i, deployment in enumerate(self.model_list):
            name = deployment.public_name
            if name in seen:
                raise ValueError(f"model_list.{i}.model_info.id: {name!r} is also used by model_list.{seen[name]}")
            seen[name] = i
        local_names = [m.name for m in self.local_models]
        for i, name in enumerate(local_names):
            if name in local_names[:i]:
                raise ValueError(f"local_models.{i}.name: {name!r} is used by another local model")
        for name in local_ids & set(seen):
            raise ValueError(f"local_models: deployment name {name!r} is also a model_list model_info.id")
        return self

    @property
    def resolved_database_url(self) -> str:
        """`database_url`, else the embedded default: SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'gateway.db'}"

    @property
    def version(self) -> str:
        """A short digest of the configuration (no secrets: references are hashed, not values)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def resolve_env(value: Any, environ: dict[str, str] | None = None) -> tuple[Any, str | None]:
    """Resolve one `os.environ/NAME` reference. Returns (value, missing variable name or None)."""
    env = os.environ if environ is None else environ
    if isinstance(value, str) and value.startswith(ENV_REF):
        name = value[len(ENV_REF) :]
        resolved = env.get(name)
        return (resolved, None) if resolved else (None, name)
    return value, None


def resolve_deployments(settings: Settings) -> tuple[list[ResolvedDeployment], list[str]]:
    """Resolve every deployment's references; deployments missing a variable are skipped.

    Returns the usable deployments and one human line per skipped deployment.
    """
    usable: list[ResolvedDeployment] = []
    skipped: list[str] = []
    for deployment in settings.model_list:
        params: dict[str, Any] = {}
        missing: str | None = None
        for key, value in deployment.litellm_params.model_dump(exclude_none=True).items():
            params[key], absent = resolve_env(value)
            missing = missing or absent
        if missing:
            skipped.append(f"{deployment.model_name}/{deployment.public_name}: ${missing} is not set")
            continue
        usable.append(ResolvedDeployment(deployment, params))
    return usable, skipped


def resolve_caller_keys(settings: Settings) -> list[tuple[CallerConfig, str]]:
    """Each configured caller with the sha256 hex digest of its key (callers without one are skipped)."""
    out: list[tuple[CallerConfig, str]] = []
    for caller in settings.callers:
        if caller.key_sha256:
            out.append((caller, caller.key_sha256))
            continue
        key, _missing = resolve_env(caller.key)
        if key:
            out.append((caller, hashlib.sha256(key.encode()).hexdigest()))
    return out


def _flatten(raw: dict[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - {"model_list", "router_settings", "gateway"}
    if unknown:
        raise ConfigError(
            f"{sorted(unknown)[0]}: unknown top-level key (expected model_list, router_settings, gateway)"
        )
    data = dict(raw.get("gateway") or {})
    for key in ("model_list", "router_settings"):
        if raw.get(key) is not None:
            data[key] = raw[key]
    return data


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {message}" if loc else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file, apply environment overrides and validate; ConfigError names what is wrong."""
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping")
    data = _flatten(raw)
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
