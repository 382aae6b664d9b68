"""The mesh runtime: serving, registration, the heartbeat stream, wiring, shutdown.

`MeshAgent` joins an `MCPServer` to a Switchboard mesh, with the Rust SDK's semantics:

- serves the tools over MCP Streamable HTTP with uvicorn at once: stateless, plain JSON answers,
  and a `Host` allow-list that includes the advertised endpoint (the MCP SDK's DNS-rebinding
  protection would otherwise refuse the gateway's calls);
- registers every tool in one `RegisterAgent` call, in the background: while the registry is
  unreachable the agent keeps serving, its dependencies stay unresolved (its tools answer
  degraded) and it retries with backoff, logging what it waits for; `require_registry=True`
  exits non-zero at once instead;
- keeps the bidirectional `StreamHeartbeats` stream open and applies the wiring the registry
  pushes (`ResolutionUpdate`) to the `Dependency` proxies;
- reconnects with exponential backoff and full jitter, re-registers on
  `CONTROL_ACTION_REREGISTER`, and keeps its last wiring while the registry is away;
- given several registry addresses (`a:7600,b:7600`, or a name that resolves to several), stays
  on one and moves to the next when it fails (`registries.py`), re-registering there under the
  same id; after such a move its proxies keep their providers until the new registry pushes
  wiring, for at most `WIRING_HOLD` seconds (the new one may not have seen the providers come
  over yet);
- on SIGTERM or ctrl-c deregisters first (dependents rewire, the gateway stops routing here),
  then lets in-flight calls finish;
- runs its health checks (`health.py`): a failing one makes its heartbeats say not ready (the
  registry makes it DEGRADED, "agent reports unhealthy") and `/readyz` answer 503; `/healthz` and
  `/readyz` list every check as JSON; `/metrics` has the process metrics (CPU, RSS, open fds).

Lines on stdout, for scripts and tests (the Rust SDK prints the first two too):

    LISTEN agent-mcp HOST:PORT
    REGISTERED <agent id>
    WIRING <resolution revision> <tool>.<capability>=<provider ids, comma-separated|unresolved> ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import grpc
import uvicorn
from google.protobuf import struct_pb2
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from . import _proto, dependency, process_metrics
from .dependency import Dependency
from .health import Health, HealthCheck
from .registries import Registries, parse_registries, uses_https
from .tls import ClientTls, ServerTls

log = logging.getLogger("switchboard_agent")

DEFAULT_REGISTRY = "127.0.0.1:7600"
DEFAULT_LISTEN = "127.0.0.1:0"
DEFAULT_INTERVAL = 5.0  # seconds, until the registry says otherwise
REGISTER_TIMEOUT = 10.0
DEREGISTER_TIMEOUT = 2.0
DRAIN_TIMEOUT = 10.0
# Longest time the proxies keep their providers after a move to another registry that has none
# for them yet: enough for the other agents of a failed replica to come over.
WIRING_HOLD = 15.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Registration failures worth retrying: the registry is away or busy. Anything else (a refused
# request) will not get better by itself.
RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
})

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


@dataclass
class MeshTool:
    """Mesh metadata of one tool: what it provides and what it needs."""

    capability: str = ""
    version: str = "1.0.0"
    tags: tuple[str, ...] = ()
    dependencies: list[Dependency] = field(default_factory=list)


class Wiring:
    """Tool name → its dependency proxies; applies pushed resolutions in revision order."""

    def __init__(self, tools: Mapping[str, MeshTool]) -> None:
        self.tools = tools
        self.applied = 0
        # A new registry's first answer, not applied in full yet: (resolutions, deadline).
        self._held: tuple[Sequence[Any], float] | None = None

    def apply(self, revision: int, resolutions: Sequence[Any], authoritative: bool = False) -> None:
        if not authoritative and self.applied != 0 and revision <= self.applied:
            return
        self._held = None
        self._set(resolutions, keep_known=False)
        self.applied = revision
        print(f"WIRING {revision} {self.describe()}".rstrip(), flush=True)

    def hold(self, revision: int, resolutions: Sequence[Any]) -> None:
        """The first wiring of a registry the agent moved to: applied where it names providers,
        the rest kept until that registry pushes or `WIRING_HOLD` has passed."""
        self._set(resolutions, keep_known=True)
        self.applied = revision
        self._held = (resolutions, asyncio.get_running_loop().time() + WIRING_HOLD)
        print(f"WIRING {revision} {self.describe()}".rstrip(), flush=True)

    def release_due(self) -> None:
        """Applies held wiring in full once its time is up."""
        if self._held is not None and self._held[1] <= asyncio.get_running_loop().time():
            resolutions, _ = self._held
            self._held = None
            self._set(resolutions, keep_known=False)
            print(f"WIRING {self.applied} {self.describe()}".rstrip(), flush=True)

    def _set(self, resolutions: Sequence[Any], keep_known: bool) -> None:
        for resolution in resolutions:
            meta = self.tools.get(resolution.tool_name)
            if meta is None:
                continue
            for dependency, resolved in zip(meta.dependencies, resolution.dependencies):
                if keep_known and not resolved.providers:
                    continue
                dependency.providers = list(resolved.providers)

    def describe(self) -> str:
        parts = []
        for name, meta in sorted(self.tools.items()):
            for dependency in meta.dependencies:
                ids = ",".join(dependency.provider_ids) or "unresolved"
                parts.append(f"{name}.{dependency.capability}={ids}")
        return " ".join(parts)


class Backoff:
    """Exponential backoff with full jitter: each delay is uniform in [0, min(max, base * 2^n)]."""

    def __init__(self, base: float = 0.1, maximum: float = 5.0) -> None:
        self.base, self.maximum, self.attempt = base, maximum, 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.base * (2 ** min(self.attempt, 20)))
        self.attempt += 1
        return random.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the agent deregisters before it stops serving."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _env(key: str) -> str | None:
    return os.environ.get(key) or None


def split_hostport(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); raises ValueError naming the address."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} is not host:port")
    return host.strip("[]"), int(port)


@dataclass
class MeshAgent:
    """An MCP server joined to a Switchboard mesh. `await agent.serve()` runs until SIGTERM.

    Unset settings come from the environment, like the Rust SDK: `SWITCHBOARD_REGISTRY`
    (an address, or several separated by commas; default 127.0.0.1:7600), `SWITCHBOARD_AGENT_ADDR` (listen `host:port`, default
    127.0.0.1:0) or `SWITCHBOARD_AGENT_HOST` / `SWITCHBOARD_AGENT_PORT`,
    `SWITCHBOARD_AGENT_ENDPOINT` (the URL advertised, default `http://<host>:<port>/mcp`),
    `SWITCHBOARD_AGENT_ALLOWED_HOSTS` (extra `Host` headers accepted, comma-separated; `*`: any),
    `SWITCHBOARD_TOKEN` (the registry token of a registry started with `--auth`, sent as
    `authorization: Bearer <token>` metadata on every registry call and stream; over TLS too).

    TLS, with the names of every Switchboard component (or the `tls_*` settings):
    `SWITCHBOARD_TLS_CA` (`tls_ca`: dial the registry, and providers at `https://` endpoints,
    with TLS trusting this CA; an `https://` registry address alone uses the system's roots),
    `SWITCHBOARD_TLS_CLIENT_CERT` / `SWITCHBOARD_TLS_CLIENT_KEY` (`tls_client_cert`,
    `tls_client_key`: the client certificate for servers that require one, mTLS);
    `SWITCHBOARD_TLS_CERT` / `SWITCHBOARD_TLS_KEY` (`tls_cert`, `tls_key`: the MCP endpoint serves
    HTTPS and is advertised as `https://<host>:<port>/mcp`), `SWITCHBOARD_TLS_CLIENT_CA`
    (`tls_client_ca`: it also requires client certificates signed by this CA, as a gateway with
    `--tls-client-cert` shows). A missing or unreadable file fails at startup, naming the setting.
    """

    server: MCPServer
    name: str
    version: str = "0.0.0"
    registry: str | None = None
    host: str | None = None
    port: int | None = None
    endpoint: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tools: dict[str, MeshTool] = field(default_factory=dict)
    allowed_hosts: list[str] = field(default_factory=list)
    require_registry: bool = False
    drain_timeout: float = DRAIN_TIMEOUT
    health_checks: list[HealthCheck] = field(default_factory=list)
    token: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    tls_client_cert: str | None = None
    tls_client_key: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None

    agent_id: str = field(init=False, default="")
    registered: bool = field(init=False, default=False)
    interval: float = field(init=False, default=DEFAULT_INTERVAL)

    def __post_init__(self) -> None:
        self.registry = self.registry or _env("SWITCHBOARD_REGISTRY") or DEFAULT_REGISTRY
        try:
            targets = parse_registries(self.registry)
        except ValueError as e:
            raise ValueError(f"registry: {e}") from e
        client_tls = ClientTls.resolve(self.tls_ca, self.tls_client_cert, self.tls_client_key)
        if client_tls is None and uses_https(self.registry):
            client_tls = ClientTls()  # the system's roots
        self._client_tls = client_tls.load() if client_tls is not None else None
        self._server_tls = ServerTls.resolve(self.tls_cert, self.tls_key, self.tls_client_ca)
        credentials = None
        if self._client_tls is not None:
            credentials = self._client_tls.channel_credentials()
            # Providers at https:// endpoints are called over the same TLS settings.
            dependency.use_tls(self._client_tls.ssl_context())
        self._registries = Registries(targets, CHANNEL_OPTIONS, credentials)
        self._registered_at: str | None = None
        listen_host, listen_port = split_hostport(_env("SWITCHBOARD_AGENT_ADDR") or DEFAULT_LISTEN)
        if self.host is None:
            self.host = _env("SWITCHBOARD_AGENT_HOST") or listen_host
        if self.port is None:
            port = _env("SWITCHBOARD_AGENT_PORT")
            try:
                self.port = int(port) if port is not None else listen_port
            except ValueError as e:
                raise ValueError(f"SWITCHBOARD_AGENT_PORT {port!r} is not a port number") from e
        self.endpoint = self.endpoint or _env("SWITCHBOARD_AGENT_ENDPOINT")
        extra = [h for h in (_env("SWITCHBOARD_AGENT_ALLOWED_HOSTS") or "").split(",") if h]
        self.allowed_hosts = [*self.allowed_hosts, *extra]
        token = (self.token or _env("SWITCHBOARD_TOKEN") or "").strip()
        # Sent with every registry call and stream; a registry without auth ignores it.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._stopping = False
        self._fatal: str | None = None
        self._wiring = Wiring(self.tools)
        self._sequence = 0
        self._health = Health(self.health_checks)

    async def serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        host, port = self.host or "", self.port or 0
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise SystemExit(f"cannot listen on {_hostport(host, port)}: {e}") from e
        sock.listen(512)
        bound_host, bound_port = sock.getsockname()[:2]
        scheme = "https" if self._server_tls is not None else "http"
        endpoint = self.endpoint or f"{scheme}://{self._advertised_host()}:{bound_port}/mcp"
        request = await self._registration(endpoint)

        http = _Server(
            uvicorn.Config(
                self._app(endpoint), log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                **(self._server_tls.uvicorn_options() if self._server_tls is not None else {}),
            )
        )
        self._health.start()
        serving = asyncio.create_task(http.serve(sockets=[sock]))
        while not http.started:
            if serving.done():
                serving.result()  # raises why it could not start
            await asyncio.sleep(0.01)
        # Serving before registering: the tools answer (degraded) while the registry is away.
        print(f"LISTEN agent-mcp {_hostport(bound_host, bound_port)}", flush=True)

        await self._registries.resolve()
        try:
            self._request = request
            if self.require_registry:
                try:
                    await self._register_anywhere()
                except grpc.aio.AioRpcError as e:
                    self._fatal = (
                        f"registry at {self.registry} refused or unreachable "
                        f"(require_registry): {e.code().name}: {e.details()}"
                    )
            if self._fatal is None:
                meshing = asyncio.create_task(self._mesh(stop))
                await stop.wait()
                # Deregister while the stream is still open, so the registry records one removal
                # rather than a broken stream (DEGRADED) followed by a removal.
                self._stopping = True
                if self.registered:
                    await self._deregister()
                meshing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await meshing
        finally:
            await self._registries.close()
        http.should_exit = True
        try:
            await asyncio.wait_for(serving, self.drain_timeout)
        except TimeoutError:
            log.warning("in-flight calls did not finish within %ss", self.drain_timeout)
        await self._health.stop()
        if self._fatal is not None:
            raise SystemExit(self._fatal)

    # --- serving ---

    def _app(self, endpoint: str) -> Any:
        host = urlsplit(endpoint).hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        hosts = [*LOOPBACK_HOSTS, host, *self.allowed_hosts]
        if "*" in hosts:
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        else:
            security = TransportSecuritySettings(
                allowed_hosts=[h for name in hosts for h in (name, f"{name}:*")],
                allowed_origins=[f"{scheme}://{name}:*" for name in hosts
                                 for scheme in ("http", "https")],
            )
        app = self.server.streamable_http_app(
            json_response=True, stateless_http=True, transport_security=security
        )
        app.router.routes.append(Route("/healthz", self._probe, methods=["GET"]))
        app.router.routes.append(Route("/readyz", self._probe, methods=["GET"]))
        app.router.routes.append(Route("/metrics", _metrics, methods=["GET"]))
        return app

    async def _probe(self, request: Request) -> JSONResponse:
        """`/healthz`: 200 while serving; `/readyz`: 503 while a health check fails."""
        ready = self._health.ready
        if request.url.path == "/healthz":
            code, status = 200, "ok"
        else:
            code, status = (200, "ready") if ready else (503, "not ready")
        body = {"status": status, "ready": ready, "registered": self.registered,
                "checks": self._health.as_json()}
        return JSONResponse(body, status_code=code)

    def _advertised_host(self) -> str:
        """The listen host, or for a wildcard address the local IP that routes to the registry."""
        host = self.host or ""
        if host not in ("0.0.0.0", "::", ""):
            return f"[{host}]" if ":" in host else host
        target = urlsplit(f"//{self._registries.address}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((target.hostname or "127.0.0.1", target.port or 7600))
            return str(probe.getsockname()[0])

    # --- registration ---

    async def registration(self, endpoint: str) -> Any:
        """The `RegisterAgentRequest` this agent sends (public for tests and tooling)."""
        return await self._registration(endpoint)

    async def _registration(self, endpoint: str) -> Any:
        served = {tool.name: tool for tool in await self.server.list_tools()}
        unknown = sorted(set(self.tools) - set(served))
        if unknown:
            raise SystemExit(f"mesh metadata for tools the server does not serve: {unknown}")
        tools = []
        for name, tool in served.items():
            meta = self.tools.get(name, MeshTool())
            schema = struct_pb2.Struct()
            schema.update(tool.input_schema or {"type": "object"})
            definition = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
            tools.append(
                _proto.types.Tool(
                    name=name,
                    capability=meta.capability,
                    version=meta.version,
                    tags=list(meta.tags),
                    # description + input_schema still serve gateways that predate mcp_definition.
                    description=tool.description or "",
                    input_schema=schema,
                    dependencies=[d.spec() for d in meta.dependencies],
                    mcp_definition=json.dumps(definition).encode(),
                )
            )
        server_info = {"name": self.server.name, "version": self.version}
        return _proto.registry.RegisterAgentRequest(
            agent_id=self.agent_id or f"{self.name}-{uuid.uuid4().hex[:8]}",
            name=self.name,
            version=self.version,
            endpoint=endpoint,
            labels=self.labels,
            tools=tools,
            mcp_server_info=json.dumps(server_info).encode(),
        )

    @property
    def _registry_stub(self) -> Any:
        return _proto.registry_grpc.RegistryServiceStub(self._registries.channel())

    @property
    def _heartbeat_stub(self) -> Any:
        return _proto.registry_grpc.HeartbeatServiceStub(self._registries.channel())

    async def _register(self) -> None:
        address = self._registries.address
        response = await self._registry_stub.RegisterAgent(
            self._request, timeout=REGISTER_TIMEOUT, metadata=self._metadata
        )
        self.agent_id = self._request.agent_id = response.agent_id
        if response.heartbeat.HasField("interval"):
            self.interval = response.heartbeat.interval.ToTimedelta().total_seconds() or self.interval
        moved = self._registered_at is not None and self._registered_at != address
        self._registered_at = address
        # A new registration's wiring is authoritative (a fresh store restarts revisions), but a
        # registry the agent just moved to may lack providers that still answer.
        if moved:
            log.info("agent %s registered at another registry, %s", self.agent_id, address)
            self._wiring.hold(response.resolution_revision, response.resolutions)
        else:
            self._wiring.apply(response.resolution_revision, response.resolutions,
                               authoritative=True)
        if not self.registered:
            self.registered = True
            print(f"REGISTERED {self.agent_id}", flush=True)
            log.info("agent %s registered with %s", self.agent_id, address)

    async def _register_anywhere(self) -> None:
        """Registers, trying each registry once while they are unreachable."""
        for attempt in range(self._registries.count):
            try:
                await self._register()
                return
            except grpc.aio.AioRpcError as e:
                if e.code() not in RETRYABLE or attempt + 1 >= self._registries.count:
                    raise
                await self._registries.failed()

    async def _register_until_done(self, stop: asyncio.Event) -> None:
        """Registers, retrying with backoff while the registry is unreachable."""
        backoff = Backoff(maximum=2.0)
        waiting_logged = False
        while not self.registered:
            try:
                await self._register()
                return
            except grpc.aio.AioRpcError as e:
                if e.code() not in RETRYABLE:
                    self._fatal = f"registration refused: {e.code().name}: {e.details()}"
                    stop.set()
                    return
                if not waiting_logged:
                    # The details carry a TLS failure's reason (an untrusted certificate, a
                    # plaintext peer), which the code alone (UNAVAILABLE) hides.
                    log.warning(
                        "waiting for the registry at %s (%s: %s%s); serving meanwhile, "
                        "dependencies unresolved", self.registry, e.code().name, e.details(),
                        "" if self._client_tls is not None else
                        "; if the registry serves TLS, set SWITCHBOARD_TLS_CA",
                    )
                    waiting_logged = True
                else:
                    log.debug("registry at %s still unreachable: %s", self._registries.address,
                              e.details())
                await self._registries.failed()
            await asyncio.sleep(backoff.next_delay())

    async def _deregister(self) -> None:
        # Where the agent is registered now (or, if that one is gone, a replica sharing its
        # store).
        request = _proto.registry.DeregisterAgentRequest(agent_id=self.agent_id)
        for attempt in range(self._registries.count):
            try:
                await self._registry_stub.DeregisterAgent(
                    request, timeout=DEREGISTER_TIMEOUT, metadata=self._metadata
                )
                log.info("deregistered %s", self.agent_id)
                return
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt + 1 < self._registries.count:
                    await self._registries.failed()
                    continue
                log.warning("deregistration failed: %s: %s", e.code().name, e.details())
                return

    # --- heartbeats ---

    async def _mesh(self, stop: asyncio.Event) -> None:
        await self._register_until_done(stop)
        if not self.registered:
            return
        backoff = Backoff()
        while True:
            end = await self._stream_once(backoff)
            if end == "reregister" and not self._stopping:
                log.info("registry asked %s to re-register", self.agent_id)
                try:
                    await self._register()
                except grpc.aio.AioRpcError as e:
                    log.warning("re-registration failed (%s); retrying", e.code().name)
                    if e.code() in RETRYABLE:
                        await self._registries.failed()
            else:
                log.debug("heartbeat stream ended (%s); reconnecting", end)
                if not self._stopping:
                    await self._registries.failed()
            await asyncio.sleep(backoff.next_delay())

    def _heartbeat(self) -> Any:
        self._sequence += 1
        request = _proto.registry.StreamHeartbeatsRequest(
            agent_id=self.agent_id,
            sequence=self._sequence,
            applied_resolution_revision=self._wiring.applied,
        )
        health = self._health.heartbeat_field(_proto.registry)
        if health is not None:
            request.health.CopyFrom(health)
        return request

    async def _stream_once(self, backoff: Backoff) -> str:
        """One heartbeat stream; returns "reregister" or why it ended."""

        async def heartbeats() -> Any:
            yield self._heartbeat()
            while True:
                # Every interval, and at once when the health verdict changes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._health.changed.wait(), self.interval)
                self._health.changed.clear()
                self._wiring.release_due()
                yield self._heartbeat()

        control = _proto.registry.ControlAction
        call = self._heartbeat_stub.StreamHeartbeats(heartbeats(), metadata=self._metadata)
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


async def _metrics(_request: Request) -> PlainTextResponse:
    """`/metrics`: the process metrics in the Prometheus text format."""
    return PlainTextResponse(process_metrics.render(), media_type="text/plain; version=0.0.4")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
