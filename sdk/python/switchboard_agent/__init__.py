"""switchboard-agent: Python agents for a Switchboard mesh, on the official MCP SDK.

    from switchboard_agent import Dependency, Mesh

    mesh = Mesh("weather", version="1.0.0")

    @mesh.tool(capability="weather_report", dependencies=[Dependency("date_service", ">=1.0")])
    async def weather_report(city: str, date: Dependency) -> str:
        return f"{city} on {await date.call_text()}"

    mesh.run()
"""

from .dependency import Dependency, DependencyError, Unresolved, text_of
from .health import HealthCheck
from .mesh import Mesh, configure_logging
from .runtime import DEFAULT_REGISTRY, Backoff, MeshAgent, MeshTool, Wiring
from .tls import TlsConfigError

__all__ = [
    "DEFAULT_REGISTRY",
    "Backoff",
    "Dependency",
    "DependencyError",
    "HealthCheck",
    "Mesh",
    "MeshAgent",
    "MeshTool",
    "TlsConfigError",
    "Unresolved",
    "Wiring",
    "configure_logging",
    "text_of",
]
