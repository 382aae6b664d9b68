"""`weather`: a Python Switchboard agent on the switchboard-agent SDK (`pip install ./sdk/python`).

`weather_report(city)` depends on `date_service >=1.0` (the Rust `date-service` agent) and answers
degraded when nothing is wired; `forecast(city, days)` needs nothing. Settings come from the
environment: SWITCHBOARD_REGISTRY, SWITCHBOARD_AGENT_ADDR (or _HOST / _PORT),
SWITCHBOARD_AGENT_ENDPOINT, SWITCHBOARD_AGENT_ALLOWED_HOSTS, SWITCHBOARD_TOKEN (for a registry
started with --auth), SWITCHBOARD_TLS_CA / _CLIENT_CERT / _CLIENT_KEY (TLS to the registry),
SWITCHBOARD_TLS_CERT / _KEY / _CLIENT_CA (serve HTTPS), SWITCHBOARD_LOG.
"""

from switchboard_agent import Dependency, DependencyError, Mesh

mesh = Mesh("weather", version="1.0.0", labels={"language": "python"})


@mesh.tool(capability="weather_report", tags=["python", "demo"],
           dependencies=[Dependency("date_service", ">=1.0")],
           description="Weather report for a city, dated by the mesh's date service")
async def weather_report(city: str, date: Dependency) -> str:
    try:
        today = await date.call_text()
    except DependencyError as e:  # Unresolved too: nothing wired, or not registered yet
        return f"Weather report for {city}: sunny, 21 °C (degraded: {e})"
    return f"Weather report for {city} on {today}: sunny, 21 °C"


@mesh.tool(capability="weather_forecast", tags=["python"],
           description="Forecast for the next days (1-7)")
async def forecast(city: str, days: int = 3) -> str:
    return f"{city}: " + ", ".join(f"day {d}: sunny" for d in range(1, max(1, min(days, 7)) + 1))


if __name__ == "__main__":
    mesh.run()
