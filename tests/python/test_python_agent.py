"""The Python agent (examples/python-agent) in a real mesh: the `switchboard` registry, the Rust
`date-service` agent, and the agent itself, ~30 lines on the switchboard-agent SDK (sdk/python,
installed into the test venv; its stubs are generated from proto/ when the package is built).

Contract relied on (the Rust SDK's, which the Python agent mirrors): an agent prints
`LISTEN agent-mcp HOST:PORT` and `REGISTERED <id>` on stdout; the Python agent also prints
`WIRING <revision> <tool>.<capability>=<provider ids|unresolved>` each time it applies wiring.
"""

from __future__ import annotations

import functools
import subprocess
import threading

import grpc
import pytest

from conftest import (REWIRE_TIMEOUT, Process, assert_deregisters_on_sigterm, call_tool, eventually,
                      list_tools, registry_stub, switchboard_bin)


def test_python_agent_joins_the_mesh_and_follows_its_wiring(registry, agents, pb):
    date = agents.rust("date-service", registry.grpc_addr)
    weather = agents.python(registry.grpc_addr)
    channel, stub = registry_stub(pb, registry.grpc_addr)
    try:
        # Registered with every tool in one call, heartbeating, wired to the Rust provider.
        def healthy():
            got = stub.GetAgent(pb.registry.GetAgentRequest(agent_id=weather.agent_id), timeout=10)
            assert got.agent.status == pb.types.AGENT_STATUS_HEALTHY, got.agent
            assert got.agent.HasField("last_heartbeat_at"), got.agent
            return got

        got = eventually(healthy)
        agent = got.agent
        assert agent.name == "weather" and agent.version == "1.0.0", agent
        assert agent.endpoint == weather.endpoint, agent
        assert dict(agent.labels) == {"language": "python"}, agent
        tools = {tool.name: tool for tool in agent.tools}
        assert set(tools) == {"weather_report", "forecast"}, tools
        report = tools["weather_report"]
        assert (report.capability, report.version) == ("weather_report", "1.0.0"), report
        assert list(report.tags) == ["python", "demo"], report
        assert [(d.capability, d.version) for d in report.dependencies] == [("date_service", ">=1.0")]
        assert "city" in report.input_schema["properties"], report.input_schema
        assert list(report.input_schema["required"]) == ["city"], report.input_schema
        assert tools["forecast"].capability == "weather_forecast", tools["forecast"]
        [wiring] = [r for r in got.resolutions if r.tool_name == "weather_report"]
        assert [p.agent_id for p in wiring.dependencies[0].providers] == [date.agent_id], wiring

        # The Python tool calls the Rust agent's tool through its resolved dependency.
        is_error, today = call_tool(date.endpoint, "get_date")
        assert not is_error and len(today) == 10, today
        is_error, text = call_tool(weather.endpoint, "weather_report", {"city": "Lyon"})
        assert not is_error, text
        assert text == f"Weather report for Lyon on {today}: sunny, 21 °C", text
        assert any(f"weather_report.date_service={date.agent_id}" in w for w in weather.wirings())

        # The provider crashes: the registry pushes "unresolved"; the tool answers degraded.
        date.kill()
        eventually(lambda: weather.wirings()[-1].endswith("weather_report.date_service=unresolved"),
                   timeout=REWIRE_TIMEOUT)
        is_error, text = call_tool(weather.endpoint, "weather_report", {"city": "Lyon"})
        assert not is_error, text
        assert "degraded" in text and today not in text, text

        # A new provider joins: wired again, without restarting anything.
        date2 = agents.rust("date-service", registry.grpc_addr)
        eventually(lambda: weather.wirings()[-1].endswith(f"weather_report.date_service={date2.agent_id}"),
                   timeout=REWIRE_TIMEOUT)
        is_error, text = call_tool(weather.endpoint, "weather_report", {"city": "Nice"})
        assert not is_error and text.startswith("Weather report for Nice on 20"), text

        assert_deregisters_on_sigterm(weather, stub, pb)
    finally:
        channel.close()


def test_python_agent_reregisters_with_a_registry_that_lost_it(start_registry, agents, pb,
                                                               tmp_path):
    first = start_registry()
    weather = agents.python(first.grpc_addr)
    first.proc.kill()  # SIGKILL; the next registry starts on the same address with an empty store
    first.proc.wait()
    workdir = tmp_path / "registry-again"
    workdir.mkdir()
    again = Process(
        [switchboard_bin(), "registry", "--data-dir", str(tmp_path / "fresh-data"),
         "--registry-addr", first.grpc_addr, "--registry-admin-addr", "127.0.0.1:0"],
        workdir, ("registry-grpc",),
    )
    try:
        channel, stub = registry_stub(pb, again.listeners["registry-grpc"])

        def reregistered():
            try:
                got = stub.GetAgent(pb.registry.GetAgentRequest(agent_id=weather.agent_id),
                                    timeout=10)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
                return None
            return got.agent.status == pb.types.AGENT_STATUS_HEALTHY

        # The stream breaks, reconnects with backoff, is told CONTROL_ACTION_REREGISTER, and the
        # agent registers again under the same id with all its tools.
        eventually(reregistered, timeout=30)
        got = stub.GetAgent(pb.registry.GetAgentRequest(agent_id=weather.agent_id), timeout=10)
        assert {t.name for t in got.agent.tools} == {"weather_report", "forecast"}, got.agent
        assert weather.proc.poll() is None, "the agent must keep running while the registry is away"
        channel.close()
    finally:
        weather.stop()
        again.stop()


# === Through the gateway ===


@functools.cache
def gateway_missing() -> str | None:
    """Why the gateway cannot be tested yet, or None when it is built.

    Skipping is allowed for one reason only: the binary says the gateway is not built yet (in
    `switchboard gateway --help`, or when `switchboard gateway` refuses to start saying so).
    """
    binary = switchboard_bin()
    shown = subprocess.run([binary, "gateway", "--help"], capture_output=True, text=True,
                           timeout=30)
    if "not built yet" in (shown.stdout + shown.stderr):
        return "switchboard gateway --help says the gateway is not built yet"
    probe = subprocess.Popen(
        [binary, "gateway", "--gateway-addr", "127.0.0.1:0", "--registry", "127.0.0.1:1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Built: it announces its port and keeps running. Not built: it exits saying so.
    first_line = []
    reader = threading.Thread(target=lambda: first_line.append(probe.stdout.readline()))
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive() or first_line[0].startswith("LISTEN gateway "):
        probe.kill()
        probe.wait()
        reader.join()
        return None
    _, stderr = probe.communicate(timeout=10)
    if "not built yet" in stderr:
        return f"switchboard gateway says: {stderr.strip()}"
    return None


def test_python_agent_is_callable_through_the_gateway(tmp_path, agents, request):
    reason = gateway_missing()
    if reason:
        pytest.skip(f"GATEWAY NOT BUILT YET — rerun once it is: {reason}")
    workdir = tmp_path / "up"
    workdir.mkdir()
    up = Process(
        [switchboard_bin(), "up", "--data-dir", str(tmp_path / "data"),
         "--registry-addr", "127.0.0.1:0", "--registry-admin-addr", "127.0.0.1:0",
         "--gateway-addr", "127.0.0.1:0"],
        workdir, ("registry-grpc", "gateway"),
    )
    request.node._switchboard_processes = [up]
    try:
        registry_addr = up.listeners["registry-grpc"]
        gateway = f"http://{up.listeners['gateway']}/mcp"
        agents.rust("date-service", registry_addr)
        weather = agents.python(registry_addr)
        eventually(lambda: {"weather_report", "forecast", "get_date"} <= set(list_tools(gateway)),
                   timeout=10, exceptions=(AssertionError, Exception))
        is_error, text = call_tool(gateway, "weather_report", {"city": "Brest"})
        assert not is_error, text
        assert text.startswith("Weather report for Brest on 20") and "degraded" not in text, text
        is_error, text = call_tool(gateway, "forecast", {"city": "Brest", "days": 2})
        assert (is_error, text) == (False, "Brest: day 1: sunny, day 2: sunny"), text
        weather.stop()
    finally:
        up.stop()
