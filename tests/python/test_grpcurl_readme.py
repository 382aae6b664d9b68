"""Every grpcurl command of the README's grpcurl section, run in order against a real registry.

The commands are read from the ```sh blocks of the doc, parsed as a shell would split them, and
run through grpcio-reflection and dynamic JSON messages (grpcurl_like.py) with the documented
address (`switchboard up`'s default, 127.0.0.1:7600) replaced by the test registry's. So the doc
cannot drift from the contract: a renamed field, a missing RPC or a bad JSON body fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from conftest import REPO_ROOT
from grpcurl_like import Grpcurl, commands_in_markdown, parse_command, run_command

DOC = REPO_ROOT / "README.md"
SECTION = "### grpcurl"
DOCUMENTED_ADDRESS = "127.0.0.1:7600"
AGENT_ID = "weather-0a1b2c3d"
SWITCHBOARD_SERVICES = [
    "switchboard.v1.RegistryService",
    "switchboard.v1.HeartbeatService",
    "switchboard.v1.WatchService",
]


def grpcurl_section() -> str:
    """The README from its grpcurl heading to the next heading of the same level."""
    text = Path(DOC).read_text()
    start = text.index(SECTION)
    end = text.find("\n### ", start + len(SECTION))
    return text[start:] if end == -1 else text[start:end]


def documented_commands():
    return [parse_command(text) for text in commands_in_markdown(grpcurl_section())]


def method_name(symbol: str) -> str:
    """`pkg.Service.Method` and `pkg.Service/Method` → `pkg.Service/Method`."""
    return symbol if "/" in symbol else "/".join(symbol.rsplit(".", 1))


def test_the_doc_covers_every_rpc_against_the_default_address(registry_channel):
    commands = documented_commands()
    assert commands, f"no grpcurl command in {DOC}"
    for command in commands:
        assert command.address == DOCUMENTED_ADDRESS, command.text
        assert command.flags.get("-plaintext"), command.text
    invoked = {method_name(c.symbol) for c in commands if c.verb == "invoke"}
    grpcurl = Grpcurl(registry_channel)
    for service in SWITCHBOARD_SERVICES:
        for method in grpcurl.pool.FindServiceByName(service).methods:
            assert f"{service}/{method.name}" in invoked, f"{service}/{method.name} not in {DOC}"
    assert "grpc.health.v1.Health/Check" in invoked
    assert {"list", "describe"} <= {c.verb for c in commands}


def test_every_documented_command_runs(registry):
    channel = grpc.insecure_channel(registry.grpc_addr)
    grpc.channel_ready_future(channel).result(timeout=10)

    def channel_for(address: str) -> grpc.Channel:
        assert address == DOCUMENTED_ADDRESS, address
        return channel

    def past_snapshot(message: dict) -> bool:
        return message.get("type") != "EVENT_TYPE_SNAPSHOT"

    try:
        seen: dict[str, list] = {}
        for command in documented_commands():
            result = run_command(command, channel_for, stream_until=past_snapshot)
            key = command.verb if command.verb != "invoke" else method_name(command.symbol)
            seen.setdefault(key, []).append(result)
            CHECKS[key](command, result, seen)
        # After DeregisterAgent the registry is empty again.
        listed = Grpcurl(channel).call("switchboard.v1.RegistryService/ListAgents")
        assert listed.get("agents", []) == [], listed
    finally:
        channel.close()


# === What each documented command must answer ===


def check_list(command, result, _seen):
    if not command.symbol:
        for name in [*SWITCHBOARD_SERVICES, "grpc.health.v1.Health"]:
            assert name in result, result
    else:
        assert f"{command.symbol}.RegisterAgent" in result, result


def check_describe(command, result, _seen):
    assert result.full_name == command.symbol, (result.full_name, command.symbol)


def check_register(command, result, _seen):
    body = json.loads(command.data)
    assert result["agentId"] == AGENT_ID == body["agent_id"], result
    assert result["created"] is True, result
    [tool] = result["resolutions"]
    assert tool["toolName"] == "forecast", result
    [dependency] = tool["dependencies"]
    assert dependency["spec"]["capability"] == "date_service", dependency
    assert not dependency.get("providers"), dependency  # nobody serves date_service here
    assert dependency["reason"], dependency
    assert result["heartbeat"]["interval"].endswith("s"), result


def check_send_heartbeat(_command, result, _seen):
    assert result["ack"]["sequence"] == "1", result
    assert result["ack"]["status"] == "AGENT_STATUS_HEALTHY", result


def check_get_agent(_command, result, _seen):
    agent = result["agent"]
    assert agent["id"] == AGENT_ID, agent
    assert agent["status"] == "AGENT_STATUS_HEALTHY", agent
    assert agent["labels"] == {"team": "forecasts"}, agent
    [tool] = agent["tools"]
    assert tool["inputSchema"]["required"] == ["city"], tool
    assert tool["dependencies"] == [{"capability": "date_service", "version": ">=1.0"}], tool
    assert result["resolutions"][0]["toolName"] == "forecast", result


def check_list_agents(_command, result, _seen):
    assert [a["id"] for a in result.get("agents", [])] == [AGENT_ID], result


def check_list_capabilities(_command, result, _seen):
    capabilities = {c["capability"]: c for c in result.get("capabilities", [])}
    forecast = capabilities["weather_forecast"]
    assert forecast["versions"] == ["1.2.0"], forecast
    assert forecast["providers"] == 1 and forecast["healthyProviders"] == 1, forecast


def check_resolve(_command, result, _seen):
    [resolution] = result["resolutions"]
    [provider] = resolution["providers"]
    assert provider["agentId"] == AGENT_ID and provider["toolName"] == "forecast", resolution
    assert any(c["chosen"] and c["reason"] for c in resolution["candidates"]), resolution


def check_watch(command, result, _seen):
    since = json.loads(command.data).get("since_revision", 0)
    if since == 0:
        *snapshot, end = result
        assert [m["agent"]["id"] for m in snapshot] == [AGENT_ID], result
        assert all(m["type"] == "EVENT_TYPE_SNAPSHOT" for m in snapshot), result
        assert end["type"] == "EVENT_TYPE_END_OF_SNAPSHOT", result
    else:
        # A replay from a revision in the history: no snapshot, only what came after it.
        for message in result:
            assert message["type"] != "EVENT_TYPE_SNAPSHOT", result
            assert int(message.get("revision", "0")) >= since, result


def check_stream_heartbeats(_command, result, _seen):
    acks = [m["ack"] for m in result if "ack" in m]
    assert [a["sequence"] for a in acks] == ["2"], result
    assert acks[0]["status"] == "AGENT_STATUS_HEALTHY", result


def check_deregister(_command, result, seen):
    registered = seen["switchboard.v1.RegistryService/RegisterAgent"][0]
    assert int(result["revision"]) > int(registered["revision"]), result


def check_health(_command, result, _seen):
    assert result["status"] == "SERVING", result


CHECKS = {
    "list": check_list,
    "describe": check_describe,
    "switchboard.v1.RegistryService/RegisterAgent": check_register,
    "switchboard.v1.HeartbeatService/SendHeartbeat": check_send_heartbeat,
    "switchboard.v1.RegistryService/GetAgent": check_get_agent,
    "switchboard.v1.RegistryService/ListAgents": check_list_agents,
    "switchboard.v1.RegistryService/ListCapabilities": check_list_capabilities,
    "switchboard.v1.RegistryService/ResolveDependencies": check_resolve,
    "switchboard.v1.WatchService/Watch": check_watch,
    "switchboard.v1.HeartbeatService/StreamHeartbeats": check_stream_heartbeats,
    "switchboard.v1.RegistryService/DeregisterAgent": check_deregister,
    "grpc.health.v1.Health/Check": check_health,
}


@pytest.mark.parametrize(
    "markdown, expected",
    [
        ("```sh\ngrpcurl -plaintext h:1 list\n```", ["grpcurl -plaintext h:1 list"]),
        ("```json\ngrpcurl -plaintext h:1 list\n```", []),
        ("```sh\n# a comment\ngrpcurl -plaintext \\\n  h:1 list\n```", ["grpcurl -plaintext   h:1 list"]),
        ("```sh\ngrpcurl -d '{\n \"a\": 1\n}' h:1 s.S/M\n```", ["grpcurl -d '{\n \"a\": 1\n}' h:1 s.S/M"]),
        (
            "```sh\ngrpcurl -d @ h:1 s.S/M <<'EOF'\n{\"a\": 1}\nEOF\n```",
            ["grpcurl -d @ h:1 s.S/M <<'EOF'\n{\"a\": 1}\nEOF"],
        ),
    ],
)
def test_commands_are_read_as_a_shell_would(markdown, expected):
    assert commands_in_markdown(markdown) == expected


def test_heredoc_bodies_become_the_request_stream():
    command = parse_command("grpcurl -plaintext -d @ h:1 s.S/M <<'EOF'\n{\"a\": 1}\n{\"a\": 2}\nEOF")
    assert command.messages() == ['{"a": 1}', '{"a": 2}']
    assert command.symbol == "s.S/M" and command.address == "h:1"
