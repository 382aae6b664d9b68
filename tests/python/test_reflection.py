"""What an operator does with grpcurl, done through Python's grpcio-reflection.

grpcurl is not installable here (DESIGN.md §11); grpcio-reflection does the same three things
(see grpcurl_like.py): list services, describe them (with the comments from the .proto files), and
invoke RPCs with JSON bodies through dynamic messages, knowing nothing of the contract but what
reflection says.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import eventually
from grpcurl_like import TIMEOUT, Grpcurl, leading_comment, raw_list_services, seconds

SWITCHBOARD_SERVICES = [
    "switchboard.v1.RegistryService",
    "switchboard.v1.HeartbeatService",
    "switchboard.v1.WatchService",
]

WEATHER_AGENT = json.dumps({
    "name": "weather",
    "endpoint": "http://127.0.0.1:9100/mcp",
    "tools": [{
        "name": "forecast",
        "capability": "weather_forecast",
        "version": "1.2.0",
        "tags": ["eu"],
        "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }],
})


@pytest.fixture
def grpcurl(registry_channel) -> Grpcurl:
    return Grpcurl(registry_channel)


def test_reflection_lists_every_registry_service(grpcurl):
    services = grpcurl.list()
    for name in [*SWITCHBOARD_SERVICES, "grpc.health.v1.Health"]:
        assert name in services, services
    reflection = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
    assert reflection & set(services), services


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_answers_on_both_v1_and_v1alpha(registry_channel, version):
    # Newer grpcurl asks grpc.reflection.v1, older tools only v1alpha.
    services = raw_list_services(registry_channel, version)
    for name in SWITCHBOARD_SERVICES:
        assert name in services, services


def test_describe_register_agent_shows_request_fields(grpcurl):
    method = grpcurl.pool.FindServiceByName("switchboard.v1.RegistryService").FindMethodByName(
        "RegisterAgent"
    )
    assert method.input_type.full_name == "switchboard.v1.RegisterAgentRequest"
    assert method.output_type.full_name == "switchboard.v1.RegisterAgentResponse"
    fields = [f.name for f in method.input_type.fields]
    assert fields == ["agent_id", "name", "version", "endpoint", "labels", "tools", "resources",
                      "resource_templates", "prompts", "mcp_capabilities", "mcp_server_info"]
    tool = grpcurl.pool.FindMessageTypeByName("switchboard.v1.Tool")
    assert "input_schema" in tool.fields_by_name
    assert tool.fields_by_name["input_schema"].message_type.full_name == "google.protobuf.Struct"


def test_describe_shows_proto_comments(grpcurl):
    # grpcurl describe prints comments only when the served descriptors keep source_code_info.
    file_proto = grpcurl.db.FindFileContainingSymbol("switchboard.v1.RegistryService")
    assert file_proto.HasField("source_code_info"), f"{file_proto.name} has no source info"
    services = [s.name for s in file_proto.service]
    svc = services.index("RegistryService")
    methods = [m.name for m in file_proto.service[svc].method]
    # FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2.
    comment = leading_comment(file_proto, [6, svc, 2, methods.index("RegisterAgent")])
    assert "Registers an agent" in comment, comment
    # Fields carry comments too: DescriptorProto 4 = message_type, 2 = field.
    messages = [m.name for m in file_proto.message_type]
    msg = messages.index("RegisterAgentRequest")
    fields = [f.name for f in file_proto.message_type[msg].field]
    comment = leading_comment(file_proto, [4, msg, 2, fields.index("name")])
    assert comment.strip(), "RegisterAgentRequest.name has no comment"


def test_agent_lifecycle_through_json_like_grpcurl(grpcurl):
    registered = grpcurl.call("switchboard.v1.RegistryService/RegisterAgent", WEATHER_AGENT)
    agent_id = registered.get("agentId", "")
    assert re.fullmatch(r"weather-[0-9a-f]{8}", agent_id), registered
    assert int(registered["revision"]) >= 1, registered
    hb = registered["heartbeat"]
    interval, degraded, expired = (seconds(hb[k]) for k in ("interval", "degradedAfter",
                                                             "expiredAfter"))
    assert 0 < interval < degraded < expired, hb

    listed = grpcurl.call("switchboard.v1.RegistryService/ListAgents", "{}")
    assert [a["id"] for a in listed.get("agents", [])] == [agent_id], listed

    got = grpcurl.call("switchboard.v1.RegistryService/GetAgent", {"agentId": agent_id})
    agent = got["agent"]
    assert agent["name"] == "weather"
    assert agent["endpoint"] == "http://127.0.0.1:9100/mcp"
    assert agent["status"] == "AGENT_STATUS_HEALTHY", agent
    [tool] = agent["tools"]
    assert tool["capability"] == "weather_forecast"
    assert tool["version"] == "1.2.0"
    assert tool["tags"] == ["eu"]
    assert tool["inputSchema"] == {"type": "object", "properties": {"city": {"type": "string"}}}

    resolved = grpcurl.call(
        "switchboard.v1.RegistryService/ResolveDependencies",
        '{"dependencies":[{"capability":"weather_forecast","version":">=1.0"}]}',
    )
    [resolution] = resolved["resolutions"]
    [provider] = resolution["providers"]
    assert provider["agentId"] == agent_id, resolution
    assert provider["toolName"] == "forecast"
    assert provider["version"] == "1.2.0"
    assert provider["endpoint"] == "http://127.0.0.1:9100/mcp"

    beat = grpcurl.call("switchboard.v1.HeartbeatService/SendHeartbeat",
                        {"agentId": agent_id, "sequence": 1})
    assert beat["ack"]["sequence"] == "1", beat  # uint64 is a string in proto JSON
    assert beat["ack"]["status"] == "AGENT_STATUS_HEALTHY", beat

    removed = grpcurl.call("switchboard.v1.RegistryService/DeregisterAgent", {"agentId": agent_id})
    assert int(removed["revision"]) > int(registered["revision"]), removed
    assert grpcurl.call("switchboard.v1.RegistryService/ListAgents", "{}").get("agents", []) == []
    with pytest.raises(grpc.RpcError) as err:
        grpcurl.call("switchboard.v1.RegistryService/GetAgent", {"agentId": agent_id})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value


def test_invalid_agent_name_is_rejected_naming_the_field(grpcurl):
    body = json.loads(WEATHER_AGENT) | {"name": "Bad Name!"}
    with pytest.raises(grpc.RpcError) as err:
        grpcurl.call("switchboard.v1.RegistryService/RegisterAgent", body)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    assert "name" in err.value.details(), err.value.details()


def test_unknown_agent_heartbeat_is_not_found(grpcurl):
    with pytest.raises(grpc.RpcError) as err:
        grpcurl.call("switchboard.v1.HeartbeatService/SendHeartbeat",
                     {"agentId": "ghost-00000000", "sequence": 1})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value


@pytest.mark.parametrize("service", ["", "switchboard.v1.RegistryService"])
def test_grpc_health_check_reports_serving(registry_channel, service):
    health = health_pb2_grpc.HealthStub(registry_channel)

    def serving():
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, answer
        return True

    eventually(serving)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_admin_probes_answer_ok(registry, path):
    def ok():
        status, body = http_get(f"http://{registry.admin_addr}{path}")
        assert status == 200, (status, body)
        return True

    eventually(ok)


def test_admin_metrics_expose_registry_agents(registry):
    status, body = http_get(f"http://{registry.admin_addr}/metrics")
    assert status == 200, body
    assert "switchboard_registry_agents" in body, body[:2000]
