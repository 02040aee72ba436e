"""The async client: same API awaited, same behaviour (run with asyncio.run, no plugin needed)."""

from __future__ import annotations

import asyncio

import pytest
from llm_gateway_client import AsyncLLMGatewayClient, BadRequestError, FallbackUnavailableError

from tests.client.support import FakeClock, SleepRecorder, ask, free_port
from tests.support.servers import AGENT_KEY

ANSWER = "Streams arrive in order, one chunk at a time."


def make(base_url, ollama, state_dir, sleeps: SleepRecorder, **options):
    return AsyncLLMGatewayClient(base_url, AGENT_KEY, ollama_url=ollama.url, state_dir=state_dir,
                                 sleep=sleeps.async_sleep, rng=lambda: 0.5, **options)


def test_async_calls_through_the_gateway(gateway, ollama, state_dir, sleeps):
    async def main():
        async with make(gateway.url, ollama, state_dir, sleeps) as client:
            completion = await client.completion("chat", ask(ANSWER))
            verdict = await client.classify(ask("spam"), ["spam", "ham"])
            chat = await client.chat([{"role": "user", "content": ask(ANSWER)}])
            stream = await client.chat([{"role": "user", "content": ask(ANSWER)}], stream=True)
            async with stream:
                chunks = [chunk async for chunk in stream]
            with pytest.raises(BadRequestError):
                await client.completion("no_such_task", "x")
            return completion, verdict, chat, stream, chunks, await client.get_status()

    completion, verdict, chat, stream, chunks, status = asyncio.run(main())
    assert (completion.mode, completion.output) == ("gateway", ANSWER)
    assert (verdict.mode, verdict.label) == ("gateway", "spam")
    assert (chat.mode, chat.content) == ("gateway", ANSWER)
    assert stream.mode == "gateway" and stream.model.startswith("fake-")
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")) == ANSWER
    assert status == {"gateway": True, "ollama": "up", "mode": "gateway"}
    assert ollama.requests_to("/api/chat") == [] and sleeps == []


def test_async_fallback_and_one_probe_for_concurrent_calls(stand_in, ollama, state_dir, sleeps):
    clock = FakeClock()

    async def main():
        async with make(stand_in.url, ollama, state_dir, sleeps, clock=clock, health_cooldown=30) as client:
            first = await client.completion("chat", ask("local"))
            rest = await asyncio.gather(*(client.completion("chat", "hi") for _ in range(20)))
            clock.advance(31)
            stand_in.delay_s = 0.2
            burst = await asyncio.gather(*(client.chat([{"role": "user", "content": "hi"}]) for _ in range(20)))
            return first, rest, burst

    first, rest, burst = asyncio.run(main())
    assert (first.mode, first.output, first.model) == ("fallback", "local", "qwen2.5:7b")
    assert {r.mode for r in [*rest, *burst]} == {"fallback"}
    assert [s.path for s in stand_in.seen] == ["/v1/completion"] * 3 + ["/health/ready"]
    assert sleeps == [0.375, 0.75]
    assert len((state_dir / "offline.jsonl").read_text().splitlines()) == 41


def test_async_both_down(state_dir, sleeps, ollama):
    async def main():
        client = AsyncLLMGatewayClient(f"http://127.0.0.1:{free_port()}", AGENT_KEY, state_dir=state_dir,
                                       ollama_url=f"http://127.0.0.1:{free_port()}", sleep=sleeps.async_sleep)
        try:
            await client.completion("chat", "hello")
        finally:
            await client.close()

    with pytest.raises(FallbackUnavailableError, match="neither the gateway nor the local fallback"):
        asyncio.run(main())
