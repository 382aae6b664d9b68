"""Fixtures that run the real `switchboard` binary for the Python end-to-end tests.

The binary comes from `$SWITCHBOARD_BIN` (tests/run sets it), else `target/debug/switchboard`.
Contract relied on here (DESIGN.md §9):

    switchboard registry --data-dir DIR --registry-addr 127.0.0.1:0 --registry-admin-addr 127.0.0.1:0

prints one `LISTEN <name> <host:port>` line to stdout per bound listener (`registry-grpc`,
`registry-admin`), logs to stderr, and exits 0 on SIGTERM.

Agents (Rust example binaries next to the switchboard binary, Python scripts on the
switchboard-agent SDK) print `LISTEN agent-mcp HOST:PORT` when they serve and `REGISTERED <id>`
once registered; the Python SDK also prints `WIRING <revision> <tool>.<capability>=<ids|unresolved>`
each time it applies wiring.

Helpers for tests: `eventually(fn, timeout=10)` polls a condition against a deadline; never wait
for a condition with a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from mcp import Client

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def switchboard_bin() -> str:
    return os.environ.get("SWITCHBOARD_BIN") or str(REPO_ROOT / "target/debug/switchboard")


def eventually(fn, timeout: float = 10.0, interval: float = 0.02, exceptions=(AssertionError,)):
    """Call `fn` until it returns a truthy value without raising one of `exceptions`.

    Returns that value. At the deadline, re-raises the last exception, or fails with the last
    falsy value. The poll interval grows from `interval` to 0.25 s.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
            last_error = None
        except exceptions as e:  # noqa: PERF203 - retrying is the point
            value, last_error = None, e
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise last_error
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        interval = min(interval * 2, 0.25)


class Process:
    """A running `switchboard` process and the addresses it announced."""

    def __init__(self, args: list[str], workdir: Path, required: tuple[str, ...]):
        self.args = args
        self.stderr_path = workdir / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=workdir,
        )
        self.stdout_lines: list[str] = []
        self.listeners: dict[str, str] = {}
        self._lines: queue.Queue[str | None] = queue.Queue()
        # Keep draining stdout for the whole life of the process so it never blocks on a pipe.
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._wait_for_listeners(required)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_listeners(self, required: tuple[str, ...]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not all(name in self.listeners for name in required):
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                line = ""
                if remaining <= 0:
                    self.stop()
                    missing = [n for n in required if n not in self.listeners]
                    pytest.fail(self._describe(f"no LISTEN line for {missing} in {START_TIMEOUT}s"))
            if line is None:  # stdout closed: the process exited (or closed its stdout)
                code = self.stop()
                pytest.fail(self._describe(f"closed stdout (exit code {code}) before listening"))
            parts = line.split()
            if len(parts) == 3 and parts[0] == "LISTEN":
                self.listeners[parts[1]] = parts[2]

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def _describe(self, what: str) -> str:
        stdout = "\n".join(self.stdout_lines)
        return (
            f"{' '.join(self.args)}: {what}\n--- stdout ---\n{stdout}\n"
            f"--- stderr (last 8000 chars) ---\n{self.stderr_text()[-8000:]}"
        )

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; returns the exit code (fails the test if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(self._describe(f"still running {timeout}s after SIGTERM"))

    def stop(self) -> int | None:
        """Teardown: SIGTERM, wait, then SIGKILL if needed. Never asserts the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


class Registry(Process):
    """`switchboard registry` on ephemeral loopback ports."""

    def __init__(self, data_dir: Path, workdir: Path, extra_args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        args = [
            switchboard_bin(), "registry",
            "--data-dir", str(data_dir),
            "--registry-addr", "127.0.0.1:0",
            "--registry-admin-addr", "127.0.0.1:0",
            *extra_args,
        ]
        super().__init__(args, workdir, ("registry-grpc", "registry-admin"))
        self.grpc_addr = self.listeners["registry-grpc"]
        self.admin_addr = self.listeners["registry-admin"]


@pytest.fixture
def start_registry(request, tmp_path):
    """Factory: `start_registry(data_dir=None, extra_args=())` starts a registry.

    Several may be started (e.g. a restart on the same data dir); all are stopped at teardown.
    """
    started: list[Registry] = []
    request.node._switchboard_processes = started

    def start(data_dir: Path | None = None, extra_args: tuple[str, ...] = ()) -> Registry:
        workdir = tmp_path / f"registry-{len(started)}"
        workdir.mkdir()
        reg = Registry(data_dir or (tmp_path / "data"), workdir, extra_args)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()


@pytest.fixture
def registry(start_registry) -> Registry:
    """A fresh registry with its own data dir (attributes: grpc_addr, admin_addr, proc)."""
    return start_registry()


@pytest.fixture
def registry_channel(registry):
    """An insecure gRPC channel to the registry, connected."""
    channel = grpc.insecure_channel(registry.grpc_addr)
    grpc.channel_ready_future(channel).result(timeout=10)
    yield channel
    channel.close()


# === Agents ===


AGENT_DIR = REPO_ROOT / "examples/python-agent"
# The registry marks a crashed provider DEGRADED at once and pushes the new wiring; DESIGN.md §10
# targets 1 s. Allow slack for a loaded 2-core machine; the bench measures the real figure.
REWIRE_TIMEOUT = 5.0


@pytest.fixture(scope="session")
def pb():
    """The SDK's generated modules, for the test's own registry calls."""
    from switchboard_agent import _proto

    return type("pb", (), {"types": _proto.types, "registry": _proto.registry,
                           "grpc": _proto.registry_grpc})


class Agent(Process):
    """An agent process (Rust or Python) and what it announced."""

    def __init__(self, args: list[str], workdir: Path, registered: bool = True):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(args, workdir, ("agent-mcp",))
        self.mcp_addr = self.listeners["agent-mcp"]
        self.agent_id = self.wait_registered() if registered else ""

    def wait_registered(self, timeout: float = 10.0) -> str:
        """The id of the `REGISTERED <id>` line, once printed."""
        self.agent_id = eventually(lambda: next(
            (line.split()[1] for line in self.stdout_lines if line.startswith("REGISTERED ")), None
        ), timeout=timeout)
        return self.agent_id

    @property
    def endpoint(self) -> str:
        return f"http://{self.mcp_addr}/mcp"

    def kill(self) -> None:
        """SIGKILL, like a crash."""
        self.proc.kill()
        self.proc.wait()

    def wirings(self) -> list[str]:
        return [line for line in self.stdout_lines if line.startswith("WIRING ")]


@pytest.fixture
def agents(request, tmp_path, monkeypatch):
    """Factory: `agents.rust(name, registry_addr)` and `agents.python(registry_addr)`.

    Agents are stopped before the registries (this fixture tears down first)."""
    started: list[Agent] = []

    def track(agent: Agent) -> Agent:
        started.append(agent)
        reports = getattr(request.node, "_switchboard_processes", None)
        if reports is not None:
            reports.append(agent)
        return agent

    def rust(name: str, registry_addr: str) -> Agent:
        monkeypatch.setenv("SWITCHBOARD_REGISTRY", registry_addr)
        binary = str(Path(switchboard_bin()).with_name(name))
        return track(Agent([binary], tmp_path / f"{name}-{len(started)}"))

    def python(registry_addr: str, script: Path = AGENT_DIR / "agent.py",
               registered: bool = True, env: dict[str, str] | None = None) -> Agent:
        monkeypatch.setenv("SWITCHBOARD_REGISTRY", registry_addr)
        monkeypatch.setenv("SWITCHBOARD_AGENT_PORT", "0")
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return track(Agent([sys.executable, str(script)], tmp_path / f"{script.stem}-{len(started)}",
                           registered))

    yield type("agents", (), {"rust": staticmethod(rust), "python": staticmethod(python)})
    for agent in reversed(started):
        agent.stop()


def call_tool(url: str, tool: str, arguments: dict | None = None) -> tuple[bool, str]:
    """Calls `tool` with the official Python MCP client; returns (is_error, text)."""

    async def call():
        async with Client(url) as client:
            result = await client.call_tool(tool, arguments or {})
            text = "\n".join(b.text for b in result.content if getattr(b, "type", "") == "text")
            return bool(result.is_error), text

    return asyncio.run(call())


def list_tools(url: str) -> list[str]:
    async def names():
        async with Client(url) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    return asyncio.run(names())


def registry_stub(pb, address: str):
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel, pb.grpc.RegistryServiceStub(channel)


def assert_deregisters_on_sigterm(agent: Agent, stub, pb) -> None:
    """SIGTERM: the agent exits 0 and is deregistered at once (not merely DEGRADED, not left to
    expire)."""
    assert agent.terminate() == 0, agent.stderr_text()
    with pytest.raises(grpc.RpcError) as err:
        stub.GetAgent(pb.registry.GetAgentRequest(agent_id=agent.agent_id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the stderr of every switchboard process to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, proc in enumerate(getattr(item, "_switchboard_processes", [])):
            report.sections.append(
                (f"switchboard process {i} stderr", proc.stderr_text()[-8000:])
            )
