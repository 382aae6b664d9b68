"""The switchboard-agent Python SDK (sdk/python) against a real registry, gateway and Rust
`date-service`: a decorated agent (tests/python/sdk_agent.py) with one dependency.

Relied on: the agent prints `LISTEN agent-mcp HOST:PORT` as soon as it serves, `REGISTERED <id>`
once registered, `WIRING <revision> <tool>.<capability>=<ids|unresolved>` on every wiring; it logs
`waiting for the registry at ADDR` to stderr while the registry is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
from mcp import Client

from conftest import (REWIRE_TIMEOUT, Process, assert_deregisters_on_sigterm, call_tool, eventually,
                      list_tools, registry_stub, switchboard_bin)

SDK_AGENT = Path(__file__).resolve().parent / "sdk_agent.py"


def served_tools(url: str) -> dict[str, dict]:
    """The agent's own `tools/list` entries, as JSON, by name."""

    async def entries():
        async with Client(url) as client:
            tools = (await client.list_tools()).tools
            return {t.name: t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools}

    return asyncio.run(entries())


def registry_at(address: str, data_dir: Path, workdir: Path) -> Process:
    """A registry on a given address (one a previous process of this test bound with port 0)."""
    workdir.mkdir()
    return Process(
        [switchboard_bin(), "registry", "--data-dir", str(data_dir), "--registry-addr", address,
         "--registry-admin-addr", "127.0.0.1:0"],
        workdir, ("registry-grpc",),
    )


def up_at(registry_addr: str, data_dir: Path, workdir: Path) -> Process:
    workdir.mkdir()
    return Process(
        [switchboard_bin(), "up", "--data-dir", str(data_dir), "--registry-addr", registry_addr,
         "--registry-admin-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"],
        workdir, ("registry-grpc", "gateway"),
    )


def test_decorated_agent_registers_rewires_survives_a_restart_and_deregisters(
        start_registry, agents, pb, tmp_path, request):
    first = start_registry()
    date = agents.rust("date-service", first.grpc_addr)
    sdk = agents.python(first.grpc_addr, SDK_AGENT)
    channel, stub = registry_stub(pb, first.grpc_addr)
    try:
        got = eventually(lambda: stub.GetAgent(pb.registry.GetAgentRequest(agent_id=sdk.agent_id),
                                               timeout=10))
        agent = got.agent
        assert (agent.name, agent.version, dict(agent.labels)) == (
            "sdk-agent", "2.0.0", {"suite": "sdk"}), agent
        assert json.loads(agent.mcp_server_info) == {"name": "sdk-agent", "version": "2.0.0"}
        tools = {t.name: t for t in agent.tools}
        assert set(tools) == {"dated_echo", "plain_echo"}, tools
        echo = tools["dated_echo"]
        assert (echo.capability, echo.version, list(echo.tags)) == ("dated_echo", "2.1.0", ["sdk"])
        assert [(d.capability, d.version) for d in echo.dependencies] == [("date_service", ">=1.0")]
        # The injected parameter is not part of the tool's interface, and the registered MCP
        # definition is exactly the agent's own tools/list entry.
        served = served_tools(sdk.endpoint)
        assert set(served["dated_echo"]["inputSchema"]["properties"]) == {"text"}, served
        for name, tool in tools.items():
            assert json.loads(tool.mcp_definition) == served[name], name
        assert tools["plain_echo"].description == "Echoes text.", tools["plain_echo"]
        assert list(echo.input_schema["required"]) == ["text"], echo.input_schema

        # Wired at registration; the injected proxy calls the Rust provider.
        assert any(f"dated_echo.date_service={date.agent_id}" in w for w in sdk.wirings())
        is_error, text = call_tool(sdk.endpoint, "dated_echo", {"text": "hi"})
        assert not is_error and text.startswith("hi @ 20"), text
        assert call_tool(sdk.endpoint, "plain_echo", {"text": "hi"}) == (False, "hi")

        # A push rewires it: the provider crashes, then another one joins.
        date.kill()
        eventually(lambda: sdk.wirings()[-1].endswith("dated_echo.date_service=unresolved"),
                   timeout=REWIRE_TIMEOUT)
        assert call_tool(sdk.endpoint, "dated_echo", {"text": "hi"}) == (
            False, "hi (degraded: date_service unresolved)")
        date2 = agents.rust("date-service", first.grpc_addr)
        eventually(lambda: sdk.wirings()[-1].endswith(f"dated_echo.date_service={date2.agent_id}"),
                   timeout=REWIRE_TIMEOUT)

        # The registry restarts on its data: the agent stays, heartbeating, with the same id.
        channel.close()
        first.proc.kill()
        first.proc.wait()
        again = registry_at(first.grpc_addr, first.data_dir, tmp_path / "registry-again")
        request.node._switchboard_processes.append(again)
        channel, stub = registry_stub(pb, first.grpc_addr)

        def healthy():
            got = stub.GetAgent(pb.registry.GetAgentRequest(agent_id=sdk.agent_id), timeout=10)
            assert got.agent.status == pb.types.AGENT_STATUS_HEALTHY, got.agent
            [wiring] = [r for r in got.resolutions if r.tool_name == "dated_echo"]
            assert [p.agent_id for p in wiring.dependencies[0].providers] == [date2.agent_id]
            return True

        eventually(healthy, timeout=30, exceptions=(AssertionError, grpc.RpcError))
        assert sdk.proc.poll() is None, "the agent keeps running while the registry is away"
        is_error, text = call_tool(sdk.endpoint, "dated_echo", {"text": "hi"})
        assert not is_error and text.startswith("hi @ 20"), text

        assert_deregisters_on_sigterm(sdk, stub, pb)
        again.stop()
    finally:
        channel.close()


def test_agent_started_before_the_registry_becomes_routable(agents, tmp_path, request):
    # Learn a free registry address from a first `up` (port 0), then stop it: the agent starts
    # while nothing listens there.
    first = up_at("127.0.0.1:0", tmp_path / "data", tmp_path / "up-0")
    request.node._switchboard_processes = [first]
    registry_addr = first.listeners["registry-grpc"]
    assert first.terminate() == 0, first.stderr_text()

    sdk = agents.python(registry_addr, SDK_AGENT, registered=False)
    # It serves at once; unregistered, its dependency is unresolved and the tool answers degraded.
    assert call_tool(sdk.endpoint, "dated_echo", {"text": "early"}) == (
        False, "early (degraded: date_service unresolved)")
    assert call_tool(sdk.endpoint, "plain_echo", {"text": "early"}) == (False, "early")
    eventually(lambda: f"waiting for the registry at {registry_addr}" in sdk.stderr_text())
    assert not any(line.startswith("REGISTERED ") for line in sdk.stdout_lines), sdk.stdout_lines

    up = up_at(registry_addr, tmp_path / "data", tmp_path / "up-1")
    request.node._switchboard_processes.append(up)
    agent_id = sdk.wait_registered(timeout=30)
    assert agent_id.startswith("sdk-agent-"), agent_id
    gateway = f"http://{up.listeners['gateway']}/mcp"
    eventually(lambda: {"dated_echo", "plain_echo"} <= set(list_tools(gateway)),
               timeout=10, exceptions=(AssertionError, Exception))
    assert call_tool(gateway, "plain_echo", {"text": "routed"}) == (False, "routed")

    # A provider joining later is pushed to it, and the gateway call uses it.
    date = agents.rust("date-service", registry_addr)
    eventually(lambda: sdk.wirings()[-1].endswith(f"dated_echo.date_service={date.agent_id}"),
               timeout=REWIRE_TIMEOUT)
    is_error, text = call_tool(gateway, "dated_echo", {"text": "routed"})
    assert not is_error and text.startswith("routed @ 20"), text
    assert sdk.proc.poll() is None


def test_require_registry_fails_fast_when_the_registry_is_unreachable(start_registry, tmp_path):
    gone = start_registry()  # a free address that nothing listens on once this one is stopped
    address = gone.grpc_addr
    gone.stop()
    workdir = tmp_path / "strict"
    workdir.mkdir()
    env = {"SWITCHBOARD_REGISTRY": address, "SWITCHBOARD_AGENT_PORT": "0",
           "SDK_AGENT_REQUIRE_REGISTRY": "1"}
    done = subprocess.run([sys.executable, str(SDK_AGENT)], env={**os.environ, **env},
                          cwd=workdir, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done
    assert f"registry at {address}" in done.stderr and "require_registry" in done.stderr, done.stderr
    assert "REGISTERED" not in done.stdout, done.stdout


def _probe(agent, path: str) -> tuple[int, dict]:
    """GET an agent's probe: status code and JSON body."""
    import urllib.error
    import urllib.request

    url = f"http://{agent.mcp_addr}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_failing_health_check_degrades_the_agent_until_it_passes(
        start_registry, agents, pb, tmp_path):
    registry = start_registry()
    marker = tmp_path / "unhealthy"
    sdk = agents.python(registry.grpc_addr, SDK_AGENT, env={"SDK_AGENT_UNHEALTHY_FILE": str(marker)})
    channel, stub = registry_stub(pb, registry.grpc_addr)
    healthy, degraded = pb.types.AGENT_STATUS_HEALTHY, pb.types.AGENT_STATUS_DEGRADED

    def agent():
        return stub.GetAgent(pb.registry.GetAgentRequest(agent_id=sdk.agent_id), timeout=10).agent

    try:
        assert eventually(lambda: agent().status == healthy)
        code, body = _probe(sdk, "/readyz")
        assert (code, body["status"], body["registered"]) == (200, "ready", True), body

        marker.touch()
        got = eventually(lambda: (a := agent()).status == degraded and a)
        assert got.status_cause == pb.types.STATUS_REASON_AGENT_UNHEALTHY, got
        assert got.status_reason == "agent reports unhealthy", got
        code, body = eventually(lambda: (p := _probe(sdk, "/readyz"))[0] == 503 and p)
        [check] = body["checks"]
        assert (check["name"], check["ok"]) == ("marker_absent", False), body
        assert check["last_error"] == f"{marker} exists", body
        assert check["last_run"].endswith("Z"), body
        assert _probe(sdk, "/healthz")[0] == 200, "alive though not ready"

        marker.unlink()
        assert eventually(lambda: agent().status == healthy)
        assert _probe(sdk, "/readyz")[0] == 200
    finally:
        channel.close()


def test_the_agent_exports_its_process_metrics(start_registry, agents):
    """The same process series as the Rust agents: one alert covers agents in either language."""
    import urllib.request

    registry = start_registry()
    sdk = agents.python(registry.grpc_addr, SDK_AGENT)
    with urllib.request.urlopen(f"http://{sdk.mcp_addr}/metrics", timeout=5) as response:
        body = response.read().decode()
    values = {line.split()[0]: float(line.split()[1])
              for line in body.splitlines() if line and not line.startswith("#")}
    assert values["process_resident_memory_bytes"] > 1_000_000, body
    assert values["process_open_fds"] >= 3, body
    assert values["process_cpu_seconds_total"] > 0, body
