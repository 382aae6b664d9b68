"""The Python SDK given several registry addresses (`SWITCHBOARD_REGISTRY=a,b`): it registers at
one, and when that registry is SIGKILLed it moves to the other, re-registers there under the same
id and is HEALTHY, while its dependency proxy keeps calling the provider it had until the new
registry pushes wiring of its own.

The two registries are separate processes with separate data directories: what moves is the
agent, not the state. The agent starts while only the first registry is up, so it lands there
whichever address it tries first.
"""

from __future__ import annotations

import socket

import grpc

from conftest import REWIRE_TIMEOUT, Process, call_tool, eventually, registry_stub, switchboard_bin


def free_addr() -> str:
    """A loopback address nothing listens on (reserved, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def status_at(stub, pb, agent_id: str):
    try:
        got = stub.GetAgent(pb.registry.GetAgentRequest(agent_id=agent_id), timeout=10)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
        return None
    return got.agent.status


def test_python_agent_moves_to_the_other_registry_and_keeps_its_wiring(start_registry, agents, pb,
                                                                        tmp_path):
    first = start_registry()
    second_addr = free_addr()
    # The provider knows only the first registry: the second never hears of it.
    date = agents.rust("date-service", first.grpc_addr)
    weather = agents.python(f"{first.grpc_addr},{second_addr}")
    eventually(lambda: any(f"weather_report.date_service={date.agent_id}" in w
                           for w in weather.wirings()), timeout=REWIRE_TIMEOUT)
    is_error, today = call_tool(date.endpoint, "get_date")
    assert not is_error and len(today) == 10, today

    workdir = tmp_path / "second-registry"
    workdir.mkdir()
    second = Process(
        [switchboard_bin(), "registry", "--data-dir", str(tmp_path / "second-data"),
         "--registry-addr", second_addr, "--registry-admin-addr", "127.0.0.1:0"],
        workdir, ("registry-grpc",),
    )
    channel, stub = registry_stub(pb, second_addr)
    try:
        first.proc.kill()
        first.proc.wait()
        eventually(lambda: status_at(stub, pb, weather.agent_id) == pb.types.AGENT_STATUS_HEALTHY,
                   timeout=30)
        assert weather.proc.poll() is None, "the agent keeps running across the move"
        assert status_at(stub, pb, date.agent_id) is None, "the provider stayed behind"

        # The second registry has no provider for it yet: the proxy keeps the one it had.
        is_error, text = call_tool(weather.endpoint, "weather_report", {"city": "Lyon"})
        assert not is_error, text
        assert text == f"Weather report for Lyon on {today}: sunny, 21 °C", text

        # A provider joining the second registry is pushed to the agent.
        date2 = agents.rust("date-service", second_addr)
        eventually(lambda: weather.wirings()[-1].endswith(
            f"weather_report.date_service={date2.agent_id}"), timeout=REWIRE_TIMEOUT)
    finally:
        channel.close()
        weather.stop()
        second.stop()


def test_a_bad_entry_in_the_registry_list_is_named(agents, tmp_path):
    from switchboard_agent import Mesh

    mesh = Mesh("weather", registry="127.0.0.1:1,,127.0.0.1:2")
    try:
        mesh.make_agent()
    except ValueError as e:
        assert "registry: bad registry address '': empty entry" in str(e), e
    else:
        raise AssertionError("a bad registry list must be refused")
