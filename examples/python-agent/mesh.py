"""Switchboard mesh runtime for Python MCP agents: a small mirror of the Rust SDK (`agent-sdk`).

The agent author writes ordinary tools with the official `mcp` SDK (`MCPServer`); this module adds
the mesh around them, using only the gRPC stubs generated from `proto/` (see `generate.sh`):

- serves the tools over MCP Streamable HTTP with uvicorn: stateless, plain JSON answers (no SSE
  framing), and a `Host` allow-list that includes the advertised endpoint, so the gateway's calls
  are not refused by the SDK's DNS-rebinding protection;
- registers every tool in one `RegisterAgent` call (input schema, capability, version, tags,
  dependencies);
- keeps the bidirectional `StreamHeartbeats` stream open and applies the wiring the registry
  pushes on it (`ResolutionUpdate`) to the `Dependency` proxies the tools call;
- reconnects with exponential backoff and full jitter, re-registers when the registry says
  `CONTROL_ACTION_REREGISTER`, keeps serving with its last wiring while the registry is away;
- on SIGTERM or ctrl-c: deregisters first (dependents rewire, the gateway stops routing here),
  then lets in-flight calls finish.

Lines on stdout, for scripts and tests (the Rust SDK prints the first two too):

    LISTEN agent-mcp HOST:PORT
    REGISTERED <agent id>
    WIRING <resolution revision> <tool>.<capability>=<provider ids, comma-separated|unresolved> ...
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import signal
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import grpc
import uvicorn
from google.protobuf import struct_pb2
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

log = logging.getLogger("switchboard.mesh")

DEFAULT_REGISTRY = "127.0.0.1:7600"
DEFAULT_INTERVAL = 5.0  # seconds, until the registry says otherwise
DEREGISTER_TIMEOUT = 2.0
DRAIN_TIMEOUT = 10.0
CALL_TIMEOUT = 30.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

# Channel settings: notice a dead registry through HTTP/2 pings, and retry connecting quickly
# (gRPC's own reconnect backoff otherwise grows to two minutes).
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

_pb: SimpleNamespace | None = None


def load_stubs(directory: str | Path) -> SimpleNamespace:
    """Imports the stubs `generate.sh` wrote into `directory` (once per process)."""
    global _pb
    if _pb is None:
        sys.path.insert(0, str(Path(directory).resolve()))
        try:
            _pb = SimpleNamespace(
                types=importlib.import_module("switchboard.v1.types_pb2"),
                registry=importlib.import_module("switchboard.v1.registry_pb2"),
                registry_grpc=importlib.import_module("switchboard.v1.registry_pb2_grpc"),
            )
        except ImportError as e:
            raise SystemExit(
                f"no generated stubs in {directory} ({e}): run examples/python-agent/generate.sh"
            ) from e
    return _pb


def stubs() -> SimpleNamespace:
    if _pb is None:
        raise RuntimeError("call mesh.load_stubs(directory) first")
    return _pb


# === Dependencies ===


class DependencyError(Exception):
    """A dependency call failed; tools catch it and answer degraded."""


class Unresolved(DependencyError):
    """No provider is wired right now."""


class Dependency:
    """A live proxy for "a provider of `capability` at `version`, with `tags`".

    The registry's wiring (at registration and on every push) replaces the provider list; a call
    picks the next top-ranked provider round-robin and calls its tool with the `mcp` client.
    """

    def __init__(self, capability: str, version: str = "", tags: tuple[str, ...] = ()):
        self.capability = capability
        self.version = version
        self.tags = tuple(tags)
        self.providers: list[Any] = []  # switchboard.v1.Provider messages
        self._next = 0

    @property
    def resolved(self) -> bool:
        return bool(self.providers)

    def spec(self):
        return stubs().types.DependencySpec(
            capability=self.capability, version=self.version, tags=list(self.tags)
        )

    async def call(self, arguments: dict[str, Any] | None = None):
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
                    async with Client(provider.endpoint) as client:
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
        return text_of(await self.call(arguments))


def text_of(result) -> str:
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


@dataclass
class MeshTool:
    """Mesh metadata of one tool: what it provides and what it needs."""

    capability: str = ""
    version: str = "1.0.0"
    tags: tuple[str, ...] = ()
    dependencies: list[Dependency] = field(default_factory=list)


# === Wiring ===


class Wiring:
    """Tool name → its dependency proxies; applies pushed resolutions in revision order."""

    def __init__(self, tools: dict[str, MeshTool]):
        self.tools = tools
        self.applied = 0

    def apply(self, revision: int, resolutions, authoritative: bool = False) -> None:
        if not authoritative and self.applied != 0 and revision <= self.applied:
            return
        for resolution in resolutions:
            meta = self.tools.get(resolution.tool_name)
            if meta is None:
                continue
            for dependency, resolved in zip(meta.dependencies, resolution.dependencies):
                dependency.providers = list(resolved.providers)
        self.applied = revision
        print(f"WIRING {revision} {self.describe()}".rstrip(), flush=True)

    def describe(self) -> str:
        parts = []
        for name, meta in sorted(self.tools.items()):
            for dependency in meta.dependencies:
                ids = ",".join(p.agent_id for p in dependency.providers) or "unresolved"
                parts.append(f"{name}.{dependency.capability}={ids}")
        return " ".join(parts)


class Backoff:
    """Exponential backoff with full jitter: each delay is uniform in [0, min(max, base * 2^n)]."""

    def __init__(self, base: float = 0.1, maximum: float = 5.0):
        self.base, self.maximum, self.attempt = base, maximum, 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.base * (2 ** min(self.attempt, 20)))
        self.attempt += 1
        return random.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


# === The agent ===


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the agent deregisters before it stops serving."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclass
class MeshAgent:
    """An MCP server joined to a Switchboard mesh. `await agent.serve()` runs until SIGTERM."""

    server: MCPServer
    name: str
    version: str = "0.0.0"
    registry: str = DEFAULT_REGISTRY
    host: str = "127.0.0.1"
    port: int = 0
    endpoint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tools: dict[str, MeshTool] = field(default_factory=dict)
    allowed_hosts: list[str] = field(default_factory=list)

    agent_id: str = field(init=False, default="")
    interval: float = field(init=False, default=DEFAULT_INTERVAL)
    _stopping: bool = field(init=False, default=False)

    async def serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            raise SystemExit(f"cannot listen on {_hostport(self.host, self.port)}: {e}") from e
        sock.listen(512)
        bound_host, bound_port = sock.getsockname()[:2]
        endpoint = self.endpoint or f"http://{self._advertised_host()}:{bound_port}/mcp"

        http = _Server(
            uvicorn.Config(
                self._app(endpoint), log_level="warning", lifespan="on", timeout_graceful_shutdown=5
            )
        )
        serving = asyncio.create_task(http.serve(sockets=[sock]))
        while not http.started:
            if serving.done():
                serving.result()  # raises why it could not start
            await asyncio.sleep(0.01)

        async with grpc.aio.insecure_channel(self.registry, options=CHANNEL_OPTIONS) as channel:
            self._registry_stub = stubs().registry_grpc.RegistryServiceStub(channel)
            self._heartbeat_stub = stubs().registry_grpc.HeartbeatServiceStub(channel)
            self._wiring = Wiring(self.tools)
            self._sequence = 0
            self._request = await self._registration(endpoint)
            try:
                await self._register()
            except grpc.aio.AioRpcError as e:
                http.should_exit = True
                await serving
                raise SystemExit(f"registration failed: {e.code().name}: {e.details()}") from e
            print(f"LISTEN agent-mcp {_hostport(bound_host, bound_port)}", flush=True)
            print(f"REGISTERED {self.agent_id}", flush=True)
            log.info("agent %s registered, serving at %s", self.agent_id, endpoint)

            meshing = asyncio.create_task(self._heartbeat_loop())
            await stop.wait()
            # Deregister while the stream is still open, so the registry records one removal
            # rather than a broken stream (DEGRADED) followed by a removal.
            self._stopping = True
            await self._deregister()
            meshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await meshing
        http.should_exit = True
        try:
            await asyncio.wait_for(serving, DRAIN_TIMEOUT)
        except TimeoutError:
            log.warning("in-flight calls did not finish within %ss", DRAIN_TIMEOUT)

    # --- serving ---

    def _app(self, endpoint: str):
        host = urlsplit(endpoint).hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        hosts = [*LOOPBACK_HOSTS, host, *self.allowed_hosts]
        if "*" in hosts:
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        else:
            security = TransportSecuritySettings(
                allowed_hosts=[h for name in hosts for h in (name, f"{name}:*")],
                allowed_origins=[f"http://{name}:*" for name in hosts],
            )
        return self.server.streamable_http_app(
            json_response=True, stateless_http=True, transport_security=security
        )

    def _advertised_host(self) -> str:
        """The listen host, or for a wildcard address the local IP that routes to the registry."""
        if self.host not in ("0.0.0.0", "::", ""):
            return f"[{self.host}]" if ":" in self.host else self.host
        target = urlsplit(f"//{self.registry}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((target.hostname or "127.0.0.1", target.port or 7600))
            return probe.getsockname()[0]

    # --- registration ---

    async def _registration(self, endpoint: str):
        pb = stubs()
        served = {tool.name: tool for tool in await self.server.list_tools()}
        unknown = sorted(set(self.tools) - set(served))
        if unknown:
            raise SystemExit(f"mesh metadata for tools the server does not serve: {unknown}")
        tools = []
        for name, tool in served.items():
            meta = self.tools.get(name, MeshTool())
            schema = struct_pb2.Struct()
            schema.update(tool.input_schema or {"type": "object"})
            tools.append(
                pb.types.Tool(
                    name=name,
                    capability=meta.capability,
                    version=meta.version,
                    tags=list(meta.tags),
                    description=tool.description or "",
                    input_schema=schema,
                    dependencies=[d.spec() for d in meta.dependencies],
                )
            )
        return pb.registry.RegisterAgentRequest(
            agent_id=f"{self.name}-{uuid.uuid4().hex[:8]}",
            name=self.name,
            version=self.version,
            endpoint=endpoint,
            labels=self.labels,
            tools=tools,
        )

    async def _register(self) -> None:
        response = await self._registry_stub.RegisterAgent(self._request, timeout=10)
        self.agent_id = self._request.agent_id = response.agent_id
        if response.heartbeat.HasField("interval"):
            self.interval = response.heartbeat.interval.ToTimedelta().total_seconds() or self.interval
        # A new registration's wiring is authoritative (a fresh store restarts revisions).
        self._wiring.apply(response.resolution_revision, response.resolutions, authoritative=True)

    async def _deregister(self) -> None:
        request = stubs().registry.DeregisterAgentRequest(agent_id=self.agent_id)
        try:
            await self._registry_stub.DeregisterAgent(request, timeout=DEREGISTER_TIMEOUT)
            log.info("deregistered %s", self.agent_id)
        except grpc.aio.AioRpcError as e:
            log.warning("deregistration failed: %s: %s", e.code().name, e.details())

    # --- heartbeats ---

    async def _heartbeat_loop(self) -> None:
        backoff = Backoff()
        while True:
            end = await self._stream_once(backoff)
            if end == "reregister" and not self._stopping:
                log.info("registry asked %s to re-register", self.agent_id)
                try:
                    await self._register()
                except grpc.aio.AioRpcError as e:
                    log.warning("re-registration failed (%s); retrying", e.code().name)
            else:
                log.debug("heartbeat stream ended (%s); reconnecting", end)
            await asyncio.sleep(backoff.next_delay())

    def _heartbeat(self):
        self._sequence += 1
        return stubs().registry.StreamHeartbeatsRequest(
            agent_id=self.agent_id,
            sequence=self._sequence,
            applied_resolution_revision=self._wiring.applied,
        )

    async def _stream_once(self, backoff: Backoff) -> str:
        """One heartbeat stream; returns "reregister" or why it ended."""

        async def heartbeats():
            yield self._heartbeat()
            while True:
                await asyncio.sleep(self.interval)
                yield self._heartbeat()

        control = stubs().registry.ControlAction
        call = self._heartbeat_stub.StreamHeartbeats(heartbeats())
        try:
            async for response in call:
                backoff.reset()
                kind = response.WhichOneof("message")
                if kind == "resolution":
                    update = response.resolution
                    self._wiring.apply(update.resolution_revision, update.resolutions)
                elif kind == "control":
                    if response.control.action == control.CONTROL_ACTION_REREGISTER:
                        return "reregister"
                    return f"control: {response.control.reason}"
            return "registry closed the stream"
        except grpc.aio.AioRpcError as e:
            return f"{e.code().name}: {e.details()}"
        finally:
            call.cancel()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
