"""The agent's own health checks, with the Rust SDK's semantics.

A check is a function (async or not) run every `interval` seconds with a `timeout`; it fails when
it raises, returns False, or times out, and its last error is what it raised. While a check fails
the agent keeps serving and heartbeating, but its heartbeats say it is not ready (naming the
failing checks): the registry makes it DEGRADED with cause "agent reports unhealthy", unroutable
while a healthy replica exists and a last resort otherwise. A change of verdict is sent at once.
`/readyz` answers 503 meanwhile; `/healthz` (always 200 while serving) and `/readyz` list every
check as JSON. A check whose first run has not finished counts as passing.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("switchboard_agent")

DEFAULT_INTERVAL = 10.0  # seconds
DEFAULT_TIMEOUT = 2.0  # seconds
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass
class HealthCheck:
    """One check: `name` (`[a-z0-9][a-z0-9_.-]{0,63}`), the function, its interval and timeout."""

    name: str
    fn: Callable[[], Any]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    ok: bool | None = field(default=None, init=False)
    last_error: str | None = field(default=None, init=False)
    last_run: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"health check {self.name!r}: bad name: want [a-z0-9][a-z0-9_.-]{{0,63}}")
        if not self.interval > 0:
            raise ValueError(f"health check {self.name!r}: interval must be above zero")
        if not self.timeout > 0:
            raise ValueError(f"health check {self.name!r}: timeout must be above zero")

    async def run_once(self) -> str | None:
        """One run: None when it passes, else why it failed."""
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await asyncio.wait_for(self.fn(), self.timeout)
            else:
                result = await asyncio.wait_for(asyncio.to_thread(self.fn), self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout}s"
        except Exception as e:  # noqa: BLE001 - any failure of the check is its verdict
            return str(e) or type(e).__name__
        return "check returned False" if result is False else None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "last_error": self.last_error,
                "last_run": self.last_run, "interval_secs": self.interval,
                "timeout_secs": self.timeout}


class Health:
    """The running checks of one agent: their states, the verdict, and an event set on a change."""

    def __init__(self, checks: Sequence[HealthCheck]) -> None:
        names = [c.name for c in checks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"health check {twice[0]!r} is registered twice")
        self.checks = list(checks)
        self.failing: list[str] = []
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        return not self.failing

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(check)) for check in self.checks]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    def heartbeat_field(self, pb: Any) -> Any:
        """The heartbeat's `health`: absent without checks (as older SDKs send), else the verdict."""
        if not self.checks:
            return None
        return pb.AgentHealth(ready=self.ready, failing_checks=list(self.failing))

    def as_json(self) -> list[dict[str, Any]]:
        return [check.as_json() for check in self.checks]

    async def _run(self, check: HealthCheck) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            error = await check.run_once()
            if error is not None and check.ok is not False:
                log.warning("health check %s failing: agent not ready: %s", check.name, error)
            elif error is None and check.ok is False:
                log.info("health check %s passes again", check.name)
            check.ok, check.last_error = error is None, error
            check.last_run = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            failing = [c.name for c in self.checks if c.ok is False]
            if failing != self.failing:
                self.failing = failing
                self.changed.set()
            await asyncio.sleep(max(0.0, check.interval - (loop.time() - started)))
