"""A deployment as the config declares it (`model_list` entries) and as the router is built from it.

Its own module so that `settings` (which reads the file) and `local_models` (which adds the
llama.cpp servers the gateway runs itself) can both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LitellmParams(BaseModel):
    """A deployment's litellm_params. Extra keys are litellm's business and pass through."""

    model_config = ConfigDict(extra="allow")

    model: str
    api_base: str | None = None
    api_key: str | None = None
    order: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str
    litellm_params: LitellmParams
    model_info: dict[str, Any] = Field(default_factory=dict)

    @property
    def public_name(self) -> str:
        """The name a caller can request to reach exactly this deployment."""
        return str(self.model_info.get("id") or self.litellm_params.model)


@dataclass(frozen=True, slots=True)
class ResolvedDeployment:
    """A deployment with its environment references resolved: what the router is built from."""

    deployment: Deployment
    litellm_params: dict[str, Any]
