"""Registers or deregisters agents for the dashboard's browser tests (which have no gRPC client).

    mesh_agents.py REGISTRY register FIRST COUNT [STEP]   # agent-FIRST, agent-(FIRST+STEP), ...
    mesh_agents.py REGISTRY deregister ID...

Agent i serves capability `cap{(i // 2) % 10}` (so even indices alone cover every capability and an
odd one sorts between two of them in the same column); when i % 20 == 0 it also has a tool that
depends on the next capability, so the topology has edges. No heartbeats are sent: the records stay (DEGRADED,
then EXPIRED, kept for the retention period), which is all a layout test needs. Prints the ids.
"""

from __future__ import annotations

import sys

import grpc
from switchboard_agent import _proto


def agent(i: int):
    types = _proto.types
    cap = (i // 2) % 10
    tools = [types.Tool(name=f"serve_{cap}", capability=f"cap{cap}", version="1.0.0")]
    if i % 20 == 0:
        spec = types.DependencySpec(capability=f"cap{(cap + 1) % 10}", version=">=1.0")
        tools.append(types.Tool(name="use_next", dependencies=[spec]))
    return _proto.registry.RegisterAgentRequest(
        agent_id=f"agent-{i:04d}", name=f"agent-{i:04d}", version="1.0.0",
        endpoint=f"http://127.0.0.1:9/agent-{i:04d}/mcp", tools=tools,
    )


def main(registry: str, command: str, *args: str) -> None:
    with grpc.insecure_channel(registry) as channel:
        stub = _proto.registry_grpc.RegistryServiceStub(channel)
        if command == "register":
            first, count = int(args[0]), int(args[1])
            step = int(args[2]) if len(args) > 2 else 1
            for i in range(first, first + count * step, step):
                print(stub.RegisterAgent(agent(i), timeout=10).agent_id)
        elif command == "deregister":
            for agent_id in args:
                stub.DeregisterAgent(_proto.registry.DeregisterAgentRequest(agent_id=agent_id), timeout=10)
                print(agent_id)
        else:
            raise SystemExit(f"unknown command {command!r}: want register or deregister")


if __name__ == "__main__":
    main(*sys.argv[1:])
