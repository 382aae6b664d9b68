"""`weather`: a Python Switchboard agent built on the official `mcp` SDK and generated gRPC stubs.

Two tools, registered in one call:

- `weather_report(city)` provides the capability `weather_report` and depends on
  `date_service >=1.0`: it calls the provider's tool (the Rust `date-service` agent's `get_date`)
  through the wiring the registry pushes, and still answers — degraded — when nothing is wired;
- `forecast(city, days)` provides `weather_forecast` and needs nothing.

    ./generate.sh && python agent.py --registry 127.0.0.1:7600 --port 0

Settings (flag, environment, default): `--registry` `SWITCHBOARD_REGISTRY` `127.0.0.1:7600`;
`--host` `SWITCHBOARD_AGENT_HOST` `127.0.0.1`; `--port` `SWITCHBOARD_AGENT_PORT` `0` (a free port);
`--endpoint` `SWITCHBOARD_AGENT_ENDPOINT` (the URL advertised to the mesh, default
`http://<host>:<port>/mcp`); `--allowed-host` `SWITCHBOARD_AGENT_ALLOWED_HOSTS` (extra `Host`
headers accepted, comma-separated; `*` for any); `--stubs` `SWITCHBOARD_STUBS`
(`./_generated`, where `generate.sh` writes).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer

import mesh

HERE = Path(__file__).resolve().parent

server = MCPServer("weather", version="1.0.0", log_level="WARNING")
date = mesh.Dependency("date_service", ">=1.0")


@server.tool(description="Weather report for a city, dated by the mesh's date service")
async def weather_report(city: str) -> str:
    try:
        today = await date.call_text({})
    except mesh.Unresolved:
        return f"Weather report for {city}: sunny, 21 °C (degraded: no date_service provider)"
    except mesh.DependencyError as e:
        return f"Weather report for {city}: sunny, 21 °C (degraded: {e})"
    return f"Weather report for {city} on {today}: sunny, 21 °C"


@server.tool(description="Forecast for the next days (1-7)")
async def forecast(city: str, days: int = 3) -> str:
    days = max(1, min(days, 7))
    return f"{city}: " + ", ".join(f"day {d}: sunny" for d in range(1, days + 1))


TOOLS = {
    "weather_report": mesh.MeshTool(
        capability="weather_report", version="1.0.0", tags=("python", "demo"), dependencies=[date]
    ),
    "forecast": mesh.MeshTool(capability="weather_forecast", version="1.0.0", tags=("python",)),
}


def parse_args() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=env("SWITCHBOARD_REGISTRY") or mesh.DEFAULT_REGISTRY)
    parser.add_argument("--host", default=env("SWITCHBOARD_AGENT_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(env("SWITCHBOARD_AGENT_PORT") or 0))
    parser.add_argument("--endpoint", default=env("SWITCHBOARD_AGENT_ENDPOINT") or None)
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[h for h in (env("SWITCHBOARD_AGENT_ALLOWED_HOSTS") or "").split(",") if h],
    )
    parser.add_argument("--stubs", default=env("SWITCHBOARD_STUBS") or str(HERE / "_generated"))
    parser.add_argument("--log-level", default=env("SWITCHBOARD_LOG") or "WARNING")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # SWITCHBOARD_LOG may be a Rust filter (`info,h2=warn`): its first level applies here.
    level = args.log_level.split(",")[0].rsplit("=", 1)[-1].upper()
    if not isinstance(logging.getLevelName(level), int):
        level = "WARNING"
    # force: the MCP SDK configured the root logger when `server` was created.
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    if level != "DEBUG":
        logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per dependency call
    mesh.load_stubs(args.stubs)
    agent = mesh.MeshAgent(
        server=server,
        name="weather",
        version="1.0.0",
        registry=args.registry,
        host=args.host,
        port=args.port,
        endpoint=args.endpoint,
        labels={"language": "python"},
        tools=TOOLS,
        allowed_hosts=args.allowed_host,
    )
    asyncio.run(agent.serve())


if __name__ == "__main__":
    main()
