"""The decorator front: `Mesh(name, ...)`, `@mesh.tool(...)`, `mesh.run()`.

    mesh = Mesh("weather", version="1.0.0")

    @mesh.tool(capability="weather_report", dependencies=[Dependency("date_service", ">=1.0")])
    async def weather_report(city: str, date: Dependency) -> str:
        ...

    mesh.run()

A tool's parameters typed `Dependency` (or `Dependency | None`) receive, in order, the proxies of
its `dependencies`; they are hidden from the tool's MCP input schema, so callers never see them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer

from .dependency import Dependency
from .health import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, HealthCheck
from .runtime import MeshAgent, MeshTool
from .tls import TlsConfigError

F = TypeVar("F", bound=Callable[..., Any])
DependencyLike = Dependency | str | Mapping[str, Any]


def _dependency(spec: DependencyLike) -> Dependency:
    if isinstance(spec, Dependency):
        return spec
    if isinstance(spec, str):
        return Dependency(spec)
    if isinstance(spec, Mapping):
        return Dependency(
            spec["capability"], spec.get("version", ""), tuple(spec.get("tags", ()))
        )
    raise TypeError(f"dependency {spec!r} is not a Dependency, a capability name or a mapping")


def _is_dependency(hint: Any) -> bool:
    if hint is Dependency:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(arg is Dependency for arg in typing.get_args(hint))
    return False


class Mesh:
    """An MCP server (`self.server`, the official SDK's `MCPServer`) plus its mesh metadata.

    Settings left unset come from the environment, with the Rust SDK's names (see `MeshAgent`;
    `tls_*` are the `SWITCHBOARD_TLS_*` settings there).
    `require_registry=True` exits non-zero at once when the registry cannot be reached; by default
    the agent serves at once and registers in the background when the registry appears.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "0.0.0",
        registry: str | None = None,
        host: str | None = None,
        port: int | None = None,
        endpoint: str | None = None,
        labels: Mapping[str, str] | None = None,
        allowed_hosts: Sequence[str] = (),
        require_registry: bool = False,
        drain_timeout: float = 10.0,
        server: MCPServer | None = None,
        token: str | None = None,
        tls_ca: str | None = None,
        tls_client_cert: str | None = None,
        tls_client_key: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_client_ca: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.server = server or MCPServer(name, version=version, log_level="WARNING")
        self.tools: dict[str, MeshTool] = {}
        self.health_checks: list[HealthCheck] = []
        self._settings: dict[str, Any] = {
            "registry": registry, "host": host, "port": port, "endpoint": endpoint,
            "labels": dict(labels or {}), "allowed_hosts": list(allowed_hosts),
            "require_registry": require_registry, "drain_timeout": drain_timeout,
            "token": token, "tls_ca": tls_ca, "tls_client_cert": tls_client_cert,
            "tls_client_key": tls_client_key, "tls_cert": tls_cert, "tls_key": tls_key,
            "tls_client_ca": tls_client_ca,
        }
        self.agent: MeshAgent | None = None

    def tool(
        self,
        capability: str = "",
        version: str = "1.0.0",
        tags: Iterable[str] = (),
        dependencies: Iterable[DependencyLike] = (),
        *,
        name: str | None = None,
        description: str | None = None,
        **tool_options: Any,
    ) -> Callable[[F], F]:
        """Registers the function as an MCP tool that provides `capability` at `version`.

        `dependencies` are `Dependency` objects, capability names, or mappings with
        `capability`, `version`, `tags`. Other keyword arguments go to `MCPServer.tool`.
        """
        deps = [_dependency(d) for d in dependencies]

        def decorate(fn: F) -> F:
            tool_name = name or fn.__name__
            if tool_name in self.tools:
                raise ValueError(f"tool {tool_name!r} is already registered on mesh {self.name!r}")
            signature = inspect.signature(fn)
            hints = typing.get_type_hints(fn)
            injected = [p for p in signature.parameters if _is_dependency(hints.get(p))]
            if len(injected) != len(deps):
                raise TypeError(
                    f"tool {tool_name!r} declares {len(deps)} dependencies but has "
                    f"{len(injected)} parameters typed Dependency ({injected})"
                )
            wrapper = _injecting(fn, dict(zip(injected, deps)), signature, hints)
            self.server.tool(name=tool_name, description=description, **tool_options)(wrapper)
            self.tools[tool_name] = MeshTool(
                capability=capability, version=version, tags=tuple(tags), dependencies=deps
            )
            return fn

        return decorate

    def health_check(
        self, name: str | None = None, *, interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Callable[[F], F]:
        """Registers the function (async or not, no arguments) as a health check named `name`
        (default: the function's name), run every `interval` seconds with a `timeout`.

        It fails when it raises, returns False or times out. While one fails, the agent reports
        itself not ready on its heartbeats (the registry makes it DEGRADED, "agent reports
        unhealthy") and its `/readyz` answers 503.

            @mesh.health_check(interval=5, timeout=1)
            def data_disk() -> bool:
                return shutil.disk_usage("/data").free > 1 << 30
        """

        def decorate(fn: F) -> F:
            check_name = name or fn.__name__
            if any(c.name == check_name for c in self.health_checks):
                raise ValueError(f"health check {check_name!r} is already registered")
            self.health_checks.append(
                HealthCheck(check_name, fn, interval=interval, timeout=timeout)
            )
            return fn

        return decorate

    def make_agent(self) -> MeshAgent:
        """The runtime for this mesh's server, with the settings given to `Mesh`."""
        return MeshAgent(
            server=self.server, name=self.name, version=self.version, tools=self.tools,
            health_checks=self.health_checks, **self._settings,
        )

    async def serve(self) -> None:
        """Runs the agent until SIGTERM or ctrl-c (then deregisters and drains)."""
        try:
            self.agent = self.make_agent()
        except TlsConfigError as e:
            # A configuration mistake, not a crash: one line naming the setting and the file.
            raise SystemExit(f"tls: {e}") from e
        await self.agent.serve()

    def run(self) -> None:
        """`serve()` in a fresh event loop, with logging configured from `SWITCHBOARD_LOG`."""
        configure_logging()
        asyncio.run(self.serve())


def _injecting(
    fn: Callable[..., Any],
    proxies: dict[str, Dependency],
    signature: inspect.Signature,
    hints: dict[str, Any],
) -> Callable[..., Any]:
    """`fn` with its dependency parameters filled in and removed from its visible signature."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **kwargs, **proxies)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs, **proxies)

    visible = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name not in proxies
    ]
    returns = hints.get("return", signature.return_annotation)
    # The MCP SDK builds the input schema from the signature and finds its Context parameter from
    # the annotations: both must show the evaluated, visible parameters only.
    del wrapper.__wrapped__
    wrapper.__signature__ = signature.replace(parameters=visible, return_annotation=returns)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        k: v for k, v in hints.items() if k not in proxies
    }
    return wrapper


def configure_logging(spec: str | None = None) -> None:
    """Logs to stderr at the first level of `SWITCHBOARD_LOG` (a Rust filter like `info,h2=warn`
    works too), default WARNING."""
    spec = spec if spec is not None else os.environ.get("SWITCHBOARD_LOG", "")
    level = (spec or "warning").split(",")[0].rsplit("=", 1)[-1].upper()
    if not isinstance(logging.getLevelName(level), int):
        level = "WARNING"
    # force: the MCP SDK configures the root logger when a server is created.
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per dependency call
        logging.getLogger("httpx2").setLevel(logging.WARNING)
