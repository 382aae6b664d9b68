"""A decorated agent for test_python_sdk.py, using what the example agent does not: a dependency
given as a mapping, an optional injected parameter, a synchronous tool, `require_registry` (set
`SDK_AGENT_REQUIRE_REGISTRY=1`), a health check (`marker_absent`: fails while the file named by
`SDK_AGENT_UNHEALTHY_FILE` exists)."""

import os
from pathlib import Path

from switchboard_agent import Dependency, Mesh, Unresolved

mesh = Mesh("sdk-agent", version="2.0.0", labels={"suite": "sdk"},
            require_registry=os.environ.get("SDK_AGENT_REQUIRE_REGISTRY") == "1")


@mesh.tool(capability="dated_echo", version="2.1.0", tags=["sdk"],
           dependencies=[{"capability": "date_service", "version": ">=1.0"}])
async def dated_echo(text: str, date: Dependency | None = None) -> str:
    """Echoes text, dated by the mesh's date service."""
    assert date is not None, "the SDK injects the dependency proxy"
    try:
        today = await date.call_text()
    except Unresolved:
        return f"{text} (degraded: date_service unresolved)"
    return f"{text} @ {today}"


@mesh.tool(capability="plain_echo")
def plain_echo(text: str) -> str:
    """Echoes text."""
    return text


UNHEALTHY_FILE = os.environ.get("SDK_AGENT_UNHEALTHY_FILE")
if UNHEALTHY_FILE:

    @mesh.health_check(interval=0.1, timeout=1.0)
    def marker_absent() -> None:
        if Path(UNHEALTHY_FILE).exists():
            raise RuntimeError(f"{UNHEALTHY_FILE} exists")


if __name__ == "__main__":
    mesh.run()
