"""Client for an OpenAI-compatible chat server (vLLM) with JSON-schema structured output."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from opentelemetry.trace import Span, SpanKind

from services.core import tracing
from services.core.errors import ConfigError, LlmPermanentError, LlmTransientError
from services.core.model_profiles import strip_thinking
from services.core.tls import tls_context
from services.core.usage import Usage

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


@dataclass(frozen=True)
class Completion:
    """A parsed JSON answer, what it cost, and how long the first token took."""

    content: dict[str, Any]
    usage: Usage
    finish_reason: str | None
    ttft_s: float | None = None
    model: str | None = None  # the served model (or LoRA adapter) that answered, as the server names it


class ImagesRefused(ConfigError):
    """The server refused a request with images: the configured profile says the model takes them, the
    served model does not. The job fails (a retry cannot help) with what to change."""


class LlmOutputError(LlmPermanentError):
    """The answer was not JSON, or was cut off; `model` is the served model that answered."""

    def __init__(self, message: str, model: str | None = None):
        super().__init__(message)
        self.model = model


@dataclass
class _Streamed:
    """What a streamed answer has delivered so far."""

    parts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    ttft_s: float | None = None
    model: str | None = None

    def add(self, event: dict[str, Any]) -> None:
        """Fold one streamed chunk in."""
        self.model = event.get("model") or self.model
        for choice in event.get("choices") or []:
            delta = (choice.get("delta") or {}).get("content")
            if delta:
                self.parts.append(str(delta))
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        usage = event.get("usage") or {}
        self.prompt_tokens = int(usage.get("prompt_tokens", self.prompt_tokens))
        self.completion_tokens = int(usage.get("completion_tokens", self.completion_tokens))


class LlmClient:
    """One OpenAI-compatible endpoint and one served model."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 2,
        backoff_base_s: float = 1.0,
    ):
        self.model = model
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            verify=tls_context(),
        )

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _retrying(self, attempt_once: Callable[[], Awaitable[T]]) -> T:
        """Run one request, retrying transport errors and transient statuses with jittered backoff."""
        for attempt in range(self.max_retries + 1):
            try:
                return await attempt_once()
            except LlmTransientError:
                if attempt >= self.max_retries:
                    raise
            await asyncio.sleep(self.backoff_base_s * 2**attempt * (0.5 + random.random()))  # noqa: S311
        raise AssertionError("unreachable")

    @staticmethod
    def _refused(status: int) -> Exception:
        if status in TRANSIENT_STATUSES:
            return LlmTransientError(f"LLM server error: {status}")
        return LlmPermanentError(f"LLM server rejected the request: {status}")

    async def _stream(self, body: dict[str, Any], first_token: asyncio.Event | None) -> _Streamed:
        """One streamed completion: the text, its usage and finish reason, the time to its first token."""
        started = time.perf_counter()
        out = _Streamed()
        try:
            headers = tracing.inject()  # vLLM continues the trace (--otlp-traces-endpoint)
            async with self._http.stream("POST", "chat/completions", json=body, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code == 400 and _has_images(body):
                        raise ImagesRefused(
                            f"the LLM server refused a request with images (400{_reason(response)}): "
                            f"served model {body['model']} cannot take images; set EHRSUM_LLM_PROFILE to its "
                            "profile, or EHRSUM_LLM_IMAGES=off"
                        )
                    raise self._refused(response.status_code)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    out.add(json.loads(data))
                    if out.ttft_s is None and out.parts:
                        out.ttft_s = time.perf_counter() - started
                        if first_token is not None:
                            first_token.set()
        except httpx.TransportError as exc:
            raise LlmTransientError(f"LLM server unreachable ({type(exc).__name__})") from exc
        except json.JSONDecodeError as exc:
            raise LlmPermanentError("LLM server streamed a malformed event") from exc
        return out

    async def complete_json(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any],
        *,
        name: str,
        max_tokens: int,
        temperature: float = 0.0,
        first_token: asyncio.Event | None = None,
        model: str | None = None,
    ) -> Completion:
        """One streamed chat completion constrained to `schema`; `first_token` is set when it starts.

        `model` asks for another served name than the client's (a LoRA adapter of the same server)."""
        body = {
            "model": model or self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
        }
        # OpenTelemetry GenAI semantic conventions: one client span per logical call, retries included.
        attributes: dict[str, tracing.AttributeValue | None] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "vllm",
            "gen_ai.request.model": str(body["model"]),
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.stream": True,
            "gen_ai.output.type": "json",
            "server.address": self._http.base_url.host,
            "server.port": self._http.base_url.port,
        }
        with tracing.span(f"chat {body['model']}", attributes, kind=SpanKind.CLIENT) as current:
            try:
                streamed = await self._retrying(lambda: self._stream(body, first_token))
            finally:
                if first_token is not None:
                    first_token.set()  # whatever happened, whoever waits on the prefix need not wait longer
            _record_answer(current, streamed)
            return self._parsed(streamed, max_tokens)

    @staticmethod
    def _parsed(streamed: _Streamed, max_tokens: int) -> Completion:
        """The streamed answer as a JSON object; LlmOutputError when it is cut off or not one."""
        if streamed.finish_reason == "length":
            raise LlmOutputError(f"answer cut off at max_tokens={max_tokens}", streamed.model)
        text = strip_thinking("".join(streamed.parts))
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LlmOutputError(f"answer is not JSON (at character {exc.pos})", streamed.model) from exc
        if not isinstance(content, dict):
            raise LlmOutputError("answer is JSON but not an object", streamed.model)
        return Completion(
            content,
            Usage(streamed.prompt_tokens, streamed.completion_tokens),
            streamed.finish_reason,
            streamed.ttft_s,
            streamed.model,
        )

    async def models(self) -> list[str]:
        """The served model names (readiness check)."""
        try:
            response = await self._http.get("models", timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LlmTransientError(f"LLM server not ready ({type(exc).__name__})") from exc
        return [str(m.get("id")) for m in response.json().get("data", [])]


def _record_answer(span: Span, streamed: _Streamed) -> None:
    """The GenAI response attributes of a span: model, token usage, finish reason, time to first token."""
    if streamed.model:
        span.set_attribute("gen_ai.response.model", streamed.model)
    span.set_attribute("gen_ai.usage.input_tokens", streamed.prompt_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", streamed.completion_tokens)
    if streamed.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [streamed.finish_reason])
    if streamed.ttft_s is not None:
        span.set_attribute("gen_ai.response.time_to_first_chunk", round(streamed.ttft_s, 6))


def _has_images(body: dict[str, Any]) -> bool:
    """Whether a chat request carries image parts."""
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"])
        for m in body.get("messages", [])
    )


def _reason(response: httpx.Response) -> str:
    """vLLM's one-line reason for refusing images, shortened; "" when none. vLLM 0.32 says
    "<model> is not a multimodal model": the model, not the request's content."""
    try:
        error = response.json().get("error") or {}
        message = str(error.get("message") or "") if isinstance(error, dict) else ""
    except (ValueError, AttributeError):
        return ""
    line = " ".join(message.split())[:300]
    return f" ({line})" if line else ""
