"""The generated switchboard.v1 modules, in one place.

setup.py generates them at build time from proto/ into `_generated/`; a source checkout that was
never built has none, which is reported here with the fix.
"""

from __future__ import annotations

try:
    from ._generated import registry_pb2 as registry
    from ._generated import registry_pb2_grpc as registry_grpc
    from ._generated import types_pb2 as types
    from ._generated import watch_pb2 as watch
    from ._generated import watch_pb2_grpc as watch_grpc
except ImportError as e:  # pragma: no cover - only in an unbuilt checkout
    raise ImportError(
        "switchboard_agent has no generated stubs: install it with `pip install ./sdk/python`"
    ) from e

__all__ = ["registry", "registry_grpc", "types", "watch", "watch_grpc"]
