"""Dependency proxies: what a tool calls to reach the provider the registry wired to it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT
from mcp.types import CallToolResult

from . import _proto

CALL_TIMEOUT = 30.0
# The agent's client TLS (set when it has one): trusted for providers at https:// endpoints.
_tls: ssl.SSLContext | None = None


def use_tls(context: ssl.SSLContext) -> None:
    """Calls to providers at `https://` endpoints trust this context's CA and show its client
    certificate (the agent's `SWITCHBOARD_TLS_*` client settings)."""
    global _tls
    _tls = context


@contextlib.asynccontextmanager
async def _client(endpoint: str) -> AsyncIterator[Client]:
    if _tls is None or not endpoint.lower().startswith("https://"):
        async with Client(endpoint) as client:
            yield client
        return
    timeout = httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
    async with httpx2.AsyncClient(verify=_tls, timeout=timeout) as http:
        async with Client(streamable_http_client(endpoint, http_client=http)) as client:
            yield client


class DependencyError(Exception):
    """A dependency call failed; tools catch it and answer degraded."""


class Unresolved(DependencyError):
    """No provider is wired right now (none matches, or the agent is not registered yet)."""


class Dependency:
    """A live proxy for "a provider of `capability` at `version`, with `tags`".

    The registry's wiring (at registration and on every push) replaces the provider list; a call
    picks the next top-ranked provider round-robin and calls its tool with the `mcp` client.
    Until the agent is registered nothing is wired, so calls raise `Unresolved`.
    """

    def __init__(self, capability: str, version: str = "", tags: Sequence[str] = ()) -> None:
        if not capability:
            raise ValueError("dependency capability must not be empty")
        self.capability = capability
        self.version = version
        self.tags: tuple[str, ...] = tuple(tags)
        self.providers: list[Any] = []  # switchboard.v1.Provider messages
        self._next = 0

    def __repr__(self) -> str:
        return f"Dependency({self.capability!r}, {self.version!r}, tags={list(self.tags)!r})"

    @property
    def resolved(self) -> bool:
        return bool(self.providers)

    @property
    def provider_ids(self) -> list[str]:
        return [p.agent_id for p in self.providers]

    def spec(self) -> Any:
        """The `switchboard.v1.DependencySpec` registered for it."""
        return _proto.types.DependencySpec(
            capability=self.capability, version=self.version, tags=list(self.tags)
        )

    async def call(self, arguments: dict[str, Any] | None = None) -> CallToolResult:
        """Calls the provider's tool; returns its `CallToolResult`.

        Fails over to the next provider only when one could not be reached at all (so a tool is
        never run twice); raises `Unresolved` when nothing is wired, `DependencyError` otherwise.
        """
        providers = list(self.providers)
        if not providers:
            raise Unresolved(f"dependency {self.capability!r} is unresolved")
        start, self._next = self._next, self._next + 1
        last: BaseException | None = None
        for offset in range(len(providers)):
            provider = providers[(start + offset) % len(providers)]
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    async with _client(provider.endpoint) as client:
                        result = await client.call_tool(provider.tool_name, arguments or {})
            except MCPError as e:
                raise DependencyError(f"{self.capability}: provider error: {e.message}") from e
            except TimeoutError as e:
                raise DependencyError(f"{self.capability}: provider timed out") from e
            except Exception as e:  # noqa: BLE001 - classified below
                if not _unreachable(e):
                    raise DependencyError(f"{self.capability}: call failed: {e!r}") from e
                last = e
                continue
            if result.is_error:
                raise DependencyError(f"{self.capability}: provider tool failed: {text_of(result)}")
            return result
        raise DependencyError(f"{self.capability}: no provider reachable: {last!r}")

    async def call_text(self, arguments: dict[str, Any] | None = None) -> str:
        """`call`, returning the text blocks of the result joined by newlines."""
        return text_of(await self.call(arguments))


def text_of(result: CallToolResult) -> str:
    """The text blocks of a `CallToolResult`, joined by newlines."""
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def _unreachable(error: BaseException) -> bool:
    """True when the request certainly never left: the connection itself failed."""
    if isinstance(error, BaseExceptionGroup):
        return all(_unreachable(e) for e in error.exceptions)
    return isinstance(error, ConnectionError) or type(error).__name__ in (
        "ConnectError",
        "ConnectTimeout",
    )
