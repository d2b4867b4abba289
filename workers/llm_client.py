"""Client for an OpenAI-compatible chat server (vLLM) with JSON-schema structured output."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

import httpx

from services.core.errors import LlmPermanentError, LlmTransientError
from services.core.tls import tls_context

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Completion:
    """A parsed JSON answer and what it cost."""

    content: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class LlmOutputError(LlmPermanentError):
    """The answer was not JSON, or was cut off."""


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

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._http.post(path, json=body)
            except httpx.TransportError as exc:
                error: Exception = LlmTransientError(f"LLM server unreachable ({type(exc).__name__})")
                error.__cause__ = exc
            else:
                if response.status_code < 400:
                    data = response.json()
                    if not isinstance(data, dict):
                        raise LlmPermanentError("LLM server answered a non-object")
                    return data
                if response.status_code not in TRANSIENT_STATUSES:
                    raise LlmPermanentError(f"LLM server rejected the request: {response.status_code}")
                error = LlmTransientError(f"LLM server error: {response.status_code}")
            if attempt >= self.max_retries:
                raise error
            await asyncio.sleep(self.backoff_base_s * 2**attempt * (0.5 + random.random()))  # noqa: S311
        raise AssertionError("unreachable")

    async def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        *,
        name: str,
        max_tokens: int,
        temperature: float = 0.0,
    ) -> Completion:
        """One chat completion constrained to `schema`; returns the parsed JSON object."""
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
        }
        data = await self._post("chat/completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LlmPermanentError("LLM answer has no message content") from exc
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason")
        if finish == "length":
            raise LlmOutputError(f"answer cut off at max_tokens={max_tokens}")
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LlmOutputError(f"answer is not JSON (at character {exc.pos})") from exc
        if not isinstance(content, dict):
            raise LlmOutputError("answer is JSON but not an object")
        return Completion(
            content, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), finish
        )

    async def models(self) -> list[str]:
        """The served model names (readiness check)."""
        try:
            response = await self._http.get("models", timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LlmTransientError(f"LLM server not ready ({type(exc).__name__})") from exc
        return [str(m.get("id")) for m in response.json().get("data", [])]
