"""The Python example agent joins a registry started with `--auth` using a token
(`SWITCHBOARD_TOKEN`), issued with the CLI from the bootstrap admin token; without a token, or
with one scoped to other names, it is refused.
"""

from __future__ import annotations

import json
import subprocess

import grpc

from conftest import eventually, registry_stub, switchboard_bin


def issue(registry, *args: str) -> str:
    """`switchboard token create ARGS` as the bootstrap admin; returns the secret."""
    admin_file = registry.data_dir / "admin.token"
    done = subprocess.run(
        [switchboard_bin(), "token", "create", *args, "--registry", registry.grpc_addr,
         "--token-file", str(admin_file), "--output", "json"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["secret"]


def test_python_agent_joins_a_secured_mesh_with_a_token(start_registry, agents, pb):
    registry = start_registry(extra_args=("--auth",))
    secret = issue(registry, "--name", "weather", "--role", "agent", "--agent", "weather",
                   "--provides", "weather_*", "--ttl", "1h")
    weather = agents.python(registry.grpc_addr, env={"SWITCHBOARD_TOKEN": secret})
    channel, stub = registry_stub(pb, registry.grpc_addr)
    metadata = (("authorization", f"Bearer {secret}"),)
    try:
        def healthy():
            got = stub.GetAgent(pb.registry.GetAgentRequest(agent_id=weather.agent_id),
                                timeout=10, metadata=metadata)
            assert got.agent.status == pb.types.AGENT_STATUS_HEALTHY, got.agent
            assert got.agent.HasField("last_heartbeat_at"), got.agent
            return got.agent

        agent = eventually(healthy)
        assert agent.owner == "token:weather", agent
        # Reads without a token are refused on this registry.
        try:
            stub.GetAgent(pb.registry.GetAgentRequest(agent_id=weather.agent_id), timeout=10)
            raise AssertionError("read without a token")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        # SIGTERM: it deregisters with its token.
        assert weather.terminate() == 0, weather.stderr_text()
        try:
            stub.GetAgent(pb.registry.GetAgentRequest(agent_id=weather.agent_id), timeout=10,
                          metadata=metadata)
            raise AssertionError("still registered after SIGTERM")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
    finally:
        channel.close()


def test_python_agent_outside_its_scope_or_without_a_token_is_refused(start_registry, agents, pb):
    registry = start_registry(extra_args=("--auth",))
    secret = issue(registry, "--name", "other", "--role", "agent", "--agent", "radar",
                   "--provides", "radar_*")
    for env, why in (({"SWITCHBOARD_TOKEN": secret}, "agent name \"weather\""),
                     ({"SWITCHBOARD_TOKEN": ""}, "missing credentials")):
        agent = agents.python(registry.grpc_addr, registered=False, env=env)
        eventually(lambda a=agent, w=why: w in a.stderr_text(), timeout=15)
        assert not any(line.startswith("REGISTERED ") for line in agent.stdout_lines)
        agent.stop()
