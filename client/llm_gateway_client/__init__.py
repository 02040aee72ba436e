"""llm-gateway-client: a small Python client for llm-gateway, with retries and an offline fallback.

    from llm_gateway_client import LLMGatewayClient

    with LLMGatewayClient() as client:            # LLM_GATEWAY_URL, LLM_GATEWAY_API_KEY, OLLAMA_URL, ...
        result = client.completion("summarization", text)
        print(result.mode, result.model, result.output)

`AsyncLLMGatewayClient` has the same methods, awaited. See README.md.
"""

from ._async import AsyncLLMGatewayClient
from ._config import ClientConfig
from ._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    FallbackUnavailableError,
    GatewayClientError,
    GatewayUnavailableError,
    RateLimitedError,
    UpstreamError,
)
from ._protocol import VERSION as __version__
from ._sync import LLMGatewayClient
from ._transport import AsyncChatStream, ChatStream
from .types import ChatResult, ClassifyResult, CompletionResult, Mode, Status

__all__ = [
    "AsyncChatStream",
    "AsyncLLMGatewayClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatResult",
    "ChatStream",
    "ClassifyResult",
    "ClientConfig",
    "CompletionResult",
    "ConfigurationError",
    "FallbackUnavailableError",
    "GatewayClientError",
    "GatewayUnavailableError",
    "LLMGatewayClient",
    "Mode",
    "RateLimitedError",
    "Status",
    "UpstreamError",
    "__version__",
]
