"""Builds switchboard-agent: generates the switchboard.v1 gRPC stubs from proto/ first.

The .proto files are found at `../../proto` (this package inside the repository) or at
`$SWITCHBOARD_PROTO_DIR`. The stubs land in `switchboard_agent/_generated/` as flat modules
(`types_pb2`, `registry_pb2`, ...) whose imports of each other are rewritten to be relative, so
the package never adds a top-level `switchboard` package to `sys.path`. Generated code: never
edit or commit it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
OUT = HERE / "switchboard_agent" / "_generated"
# `from switchboard.v1 import types_pb2 as ...` → `from . import types_pb2 as ...`
SIBLING_IMPORT = re.compile(r"^from switchboard\.v1 import ", re.MULTILINE)


def proto_dir() -> Path:
    found = Path(os.environ.get("SWITCHBOARD_PROTO_DIR") or HERE.parent.parent / "proto")
    if not (found / "switchboard" / "v1" / "registry.proto").is_file():
        raise SystemExit(
            f"no switchboard/v1/*.proto under {found}: set SWITCHBOARD_PROTO_DIR to the "
            "repository's proto/ directory"
        )
    return found


def generate() -> None:
    from grpc_tools import protoc  # a build requirement (pyproject.toml)

    source = proto_dir()
    protos = sorted(str(p) for p in (source / "switchboard" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["grpc_tools.protoc", f"-I{source}", f"-I{include}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit(f"grpc_tools.protoc failed on {source}")
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        for generated in sorted((Path(tmp) / "switchboard" / "v1").iterdir()):
            text = SIBLING_IMPORT.sub("from . import ", generated.read_text())
            (OUT / generated.name).write_text(text)
    (OUT / "__init__.py").write_text('"""Generated from proto/switchboard/v1: never edit."""\n')


class BuildPy(build_py):
    def run(self) -> None:
        generate()
        super().run()


setup(cmdclass={"build_py": BuildPy})
