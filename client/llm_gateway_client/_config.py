"""Client configuration: arguments win over the environment, which wins over the defaults.

    argument            environment                    default
    base_url            LLM_GATEWAY_URL                http://127.0.0.1:8080
    api_key             LLM_GATEWAY_API_KEY            (none)
    caller              LLM_GATEWAY_CALLER             (none: the key names the caller)
    ollama_url          OLLAMA_URL                     http://127.0.0.1:11434
    ollama_model        OLLAMA_MODEL                   qwen2.5:7b
    ollama_api          OLLAMA_API                     ollama  ("openai": any OpenAI-compatible local server)
    ollama_api_key      OLLAMA_API_KEY                 (none)
    fallback            LLM_GATEWAY_FALLBACK           true    (false: never call the local model)
    connect_timeout     LLM_GATEWAY_CONNECT_TIMEOUT    5 s
    read_timeout        LLM_GATEWAY_READ_TIMEOUT       120 s   (LLM answers are slow; also the local model's)
    probe_timeout       LLM_GATEWAY_PROBE_TIMEOUT      3 s     (one GET /health/ready)
    health_cooldown     LLM_GATEWAY_HEALTH_COOLDOWN    30 s    (no gateway traffic after a failure)
    max_attempts        LLM_GATEWAY_MAX_ATTEMPTS       3       (gateway attempts per call, retries included)
    backoff_base        -                              0.5 s   (first retry waits 0.5-1 s, then doubles)
    backoff_max         -                              8 s
    max_retry_after     LLM_GATEWAY_MAX_RETRY_AFTER    30 s    (a longer Retry-After is not waited for)
    state_dir           LLM_GATEWAY_STATE_DIR          $XDG_CACHE_HOME/llm-gateway-client
                                                       (~/.cache/llm-gateway-client): offline.jsonl
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import ConfigurationError

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
DEFAULT_OLLAMA_MODEL = "qwen2.5:7b"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-gateway-client"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the client is configured with (see the module docstring for the environment)."""

    base_url: str = DEFAULT_URL
    api_key: str | None = field(default=None, repr=False)
    caller: str | None = None
    ollama_url: str = DEFAULT_OLLAMA_URL
    ollama_model: str = DEFAULT_OLLAMA_MODEL
    ollama_api: Literal["ollama", "openai"] = "ollama"
    ollama_api_key: str | None = field(default=None, repr=False)
    fallback: bool = True
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    probe_timeout: float = 3.0
    health_cooldown: float = 30.0
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 30.0
    state_dir: Path = field(default_factory=default_state_dir)

    def __post_init__(self) -> None:
        for name in ("base_url", "ollama_url"):
            url = getattr(self, name)
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"{name} must be an http(s) URL, not {url!r}")
            object.__setattr__(self, name, url.rstrip("/"))
        if self.ollama_api not in ("ollama", "openai"):
            raise ConfigurationError(f"ollama_api must be 'ollama' or 'openai', not {self.ollama_api!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be an integer >= 1, not {self.max_attempts!r}")
        for name in ("connect_timeout", "read_timeout", "probe_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be > 0 seconds")
        for name in ("health_cooldown", "backoff_base", "backoff_max", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must be >= 0 seconds")
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser())

    @property
    def offline_log(self) -> Path:
        return self.state_dir / "offline.jsonl"


_ENV: dict[str, str] = {
    "base_url": "LLM_GATEWAY_URL",
    "api_key": "LLM_GATEWAY_API_KEY",
    "caller": "LLM_GATEWAY_CALLER",
    "ollama_url": "OLLAMA_URL",
    "ollama_model": "OLLAMA_MODEL",
    "ollama_api": "OLLAMA_API",
    "ollama_api_key": "OLLAMA_API_KEY",
    "fallback": "LLM_GATEWAY_FALLBACK",
    "connect_timeout": "LLM_GATEWAY_CONNECT_TIMEOUT",
    "read_timeout": "LLM_GATEWAY_READ_TIMEOUT",
    "probe_timeout": "LLM_GATEWAY_PROBE_TIMEOUT",
    "health_cooldown": "LLM_GATEWAY_HEALTH_COOLDOWN",
    "max_attempts": "LLM_GATEWAY_MAX_ATTEMPTS",
    "max_retry_after": "LLM_GATEWAY_MAX_RETRY_AFTER",
    "state_dir": "LLM_GATEWAY_STATE_DIR",
}
_FIELDS = {f.name: f for f in dataclasses.fields(ClientConfig)}


def _from_env(name: str, raw: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {_ENV[name]}={raw!r} is not a valid {kind}") from None
    return raw


def resolve_config(
    config: ClientConfig | None = None, environ: Mapping[str, str] | None = None, **options: Any
) -> ClientConfig:
    """The configuration to use: `options` (None means unset) over `config` or the environment."""
    unknown = set(options) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown client option(s): {', '.join(sorted(unknown))}; known: {', '.join(_FIELDS)}")
    given = {name: value for name, value in options.items() if value is not None}
    if config is not None:
        return dataclasses.replace(config, **given)
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, variable in _ENV.items():
        raw = env.get(variable)
        if raw:
            values[name] = _from_env(name, raw)
    if "state_dir" not in values:
        values["state_dir"] = default_state_dir(env)
    values.update(given)
    return ClientConfig(**values)
