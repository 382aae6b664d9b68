"""What grpcurl does, done with Python's grpcio-reflection (grpcurl is not installable here,
DESIGN.md §11): list services and methods, describe symbols, and invoke unary and server-streaming
RPCs with JSON bodies through dynamic messages, knowing nothing of the contract but what server
reflection says.

`Grpcurl` is the library; `run_command(argv, channel_for)` runs one grpcurl command line (as
written in the README's grpcurl section) and returns what grpcurl would print, parsed.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable, Iterator

import grpc
from google.protobuf import descriptor, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 10  # seconds, for every RPC


class Grpcurl:
    """`grpcurl list / describe / -d JSON` over one channel, through server reflection."""

    def __init__(self, channel: grpc.Channel):
        self.channel = channel
        self.db = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.db)

    def list(self) -> list[str]:
        return list(self.db.get_services())

    def list_methods(self, service: str) -> list[str]:
        """`grpcurl list SERVICE`: the service's fully-qualified method names."""
        svc = self.pool.FindServiceByName(service)
        return [f"{service}.{m.name}" for m in svc.methods]

    def describe(self, symbol: str):
        """`grpcurl describe SYMBOL`: the descriptor of a service, method, message or enum.

        The file that defines the symbol is fetched once through reflection, then searched (asking
        the pool for the wrong kind of symbol would make it fetch the same file again).
        """
        file = self._file_containing(symbol)
        candidates = []
        for service in file.services_by_name.values():
            candidates += [service, *service.methods]
        messages = list(file.message_types_by_name.values())
        while messages:
            message = messages.pop()
            candidates += [message, *message.enum_types]
            messages += message.nested_types
        candidates += file.enum_types_by_name.values()
        for candidate in candidates:
            if candidate.full_name == symbol:
                return candidate
        raise KeyError(f"symbol not found: {symbol}")

    def _file_containing(self, symbol: str):
        """The file defining `symbol`; for a method (which reflection may not index), the file of
        its service, as grpcurl does."""
        name = symbol
        while True:
            try:
                return self.pool.FindFileContainingSymbol(name)
            except KeyError:
                if "." not in name:
                    raise KeyError(f"symbol not found: {symbol}") from None
                name = name.rsplit(".", 1)[0]

    def method(self, method: str) -> descriptor.MethodDescriptor:
        """`pkg.Service/Method` or `pkg.Service.Method` (grpcurl accepts both)."""
        if "/" in method:
            service, name = method.split("/")
        else:
            service, name = method.rsplit(".", 1)
        return self.pool.FindServiceByName(service).FindMethodByName(name)

    def _classes(self, desc: descriptor.MethodDescriptor):
        return (
            message_factory.GetMessageClass(desc.input_type),
            message_factory.GetMessageClass(desc.output_type),
        )

    def call(self, method: str, body: str | dict = "{}") -> dict:
        """Invoke a unary RPC with a JSON body; returns the JSON answer as a dict."""
        desc = self.method(method)
        request_cls, response_cls = self._classes(desc)
        request = json_format.Parse(body if isinstance(body, str) else json.dumps(body),
                                    request_cls())
        stub = self.channel.unary_unary(
            f"/{desc.containing_service.full_name}/{desc.name}",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        return json_format.MessageToDict(stub(request, timeout=TIMEOUT))

    def bidi(self, method: str, bodies: list[str], timeout: float = TIMEOUT) -> list[dict]:
        """A client- or bidi-streaming RPC: sends every body, half-closes (as grpcurl does at the
        end of stdin), and returns every answer until the server ends the stream."""
        desc = self.method(method)
        request_cls, response_cls = self._classes(desc)
        requests = [json_format.Parse(body, request_cls()) for body in bodies]
        stub = self.channel.stream_stream(
            f"/{desc.containing_service.full_name}/{desc.name}",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        return [json_format.MessageToDict(m) for m in stub(iter(requests), timeout=timeout)]

    def stream(self, method: str, body: str | dict = "{}", timeout: float = TIMEOUT) -> Iterator[dict]:
        """Invoke a server-streaming RPC; yields each message as a dict (close the generator to
        cancel, as ctrl-c does for grpcurl)."""
        desc = self.method(method)
        request_cls, response_cls = self._classes(desc)
        request = json_format.Parse(body if isinstance(body, str) else json.dumps(body),
                                    request_cls())
        stub = self.channel.unary_stream(
            f"/{desc.containing_service.full_name}/{desc.name}",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        call = stub(request, timeout=timeout)
        try:
            for message in call:
                yield json_format.MessageToDict(message)
        finally:
            call.cancel()


def raw_list_services(channel: grpc.Channel, version: str) -> list[str]:
    """`list_services` on grpc.reflection.<version>.ServerReflection, with no client library.

    grpcio-reflection ships only v1alpha stubs; v1 has the same messages on the wire (only the
    proto package differs), so the v1alpha message classes serve both.
    """
    info = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(info(iter([request]), timeout=TIMEOUT))
    assert len(responses) == 1, responses
    assert responses[0].WhichOneof("message_response") == "list_services_response", responses[0]
    return [s.name for s in responses[0].list_services_response.service]


def leading_comment(file_proto, path: list[int]) -> str:
    for location in file_proto.source_code_info.location:
        if list(location.path) == path:
            return location.leading_comments
    return ""


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


# === grpcurl command lines ===


@dataclass
class Command:
    """One `grpcurl` command line, parsed."""

    text: str
    address: str
    verb: str  # "list", "describe" or "invoke"
    symbol: str = ""
    data: str | None = None
    flags: dict[str, str | bool] = field(default_factory=dict)

    def messages(self) -> list[str]:
        """The request bodies: grpcurl reads a stream of JSON objects from `-d` (or stdin)."""
        text, decoder, bodies, at = (self.data or "{}").strip(), json.JSONDecoder(), [], 0
        while at < len(text):
            _, end = decoder.raw_decode(text, at)
            bodies.append(text[at:end])
            at = end
            while at < len(text) and text[at].isspace():
                at += 1
        return bodies


# grpcurl flags the docs may use: the ones taking a value, and the boolean ones.
VALUE_FLAGS = {"-d", "-max-time", "-connect-timeout", "-format", "-H"}
BOOL_FLAGS = {"-plaintext", "-emit-defaults", "-v"}


HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?\s*$")


def parse_command(text: str) -> Command:
    """Parses `grpcurl [flags] ADDRESS [list|describe] [SYMBOL]` as a shell would split it, with
    `-d @` reading a here-document (`<<'EOF'` … `EOF`) as stdin."""
    stdin = None
    first, _, after = text.partition("\n")
    heredoc = HEREDOC.search(first)
    if heredoc:
        lines = after.split("\n")
        assert heredoc.group(1) in lines, f"unterminated here-document: {text}"
        stdin = "\n".join(lines[: lines.index(heredoc.group(1))])
        text = first[: heredoc.start()]
    words = shlex.split(text)
    assert words and words[0] == "grpcurl", text
    flags: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 1
    while i < len(words):
        word = words[i]
        if word.startswith("-") and not rest:
            name, _, inline = word.partition("=")
            if name in BOOL_FLAGS:
                flags[name] = True
            elif name in VALUE_FLAGS:
                if inline:
                    flags[name] = inline
                else:
                    i += 1
                    flags[name] = words[i]
            else:
                raise AssertionError(f"grpcurl flag {name} is not emulated: {text}")
            i += 1
            continue
        rest.append(word)
        i += 1
    assert rest, f"no address: {text}"
    address, *args = rest
    data = flags.get("-d")
    if data == "@":
        assert stdin is not None, f"-d @ reads stdin: give it a here-document: {text}"
        data = stdin
    if args and args[0] in ("list", "describe"):
        return Command(text, address, args[0], args[1] if len(args) > 1 else "", None, flags)
    assert len(args) == 1, f"expected one method: {text}"
    return Command(text, address, "invoke", args[0], data if isinstance(data, str) else None, flags)


def commands_in_markdown(markdown: str) -> list[str]:
    """The `grpcurl` command lines of the ```sh blocks, in order.

    A command may span lines: a trailing backslash, or a single-quoted `-d '...'` JSON body that
    runs over several lines (the shell joins both). Comment lines (`#`) are skipped.
    """
    commands: list[str] = []
    in_block = False
    pending = ""
    continued = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if in_block:
                assert not pending, f"unterminated command in a sh block: {pending!r}"
            in_block = stripped in ("```sh", "```bash", "```shell") and not in_block
            continue
        if not in_block:
            continue
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        # A backslash-newline disappears (the shell joins the lines); other newlines stay (inside
        # a quoted JSON body, or a here-document).
        pending = (pending + line if continued else f"{pending}\n{line}") if pending else line
        continued = pending.endswith("\\")
        if continued:
            pending = pending[:-1]
            continue
        first = pending.split("\n", 1)[0]
        heredoc = HEREDOC.search(first)
        if heredoc:
            if stripped != heredoc.group(1) or pending == first:
                continue  # the here-document goes on
        else:
            try:
                shlex.split(pending)
            except ValueError:  # an open quote: the command goes on
                continue
        if shlex.split(first if heredoc else pending)[0] == "grpcurl":
            commands.append(pending)
        pending = ""
    return commands


def run_command(
    command: Command,
    channel_for: Callable[[str], grpc.Channel],
    stream_until: Callable[[dict], bool] | None = None,
):
    """Runs a parsed command like grpcurl would, returning what it prints, parsed:
    `list` → names; `describe` → the descriptor; a unary call → the answer as a dict;
    a streaming call → the messages up to the first one for which `stream_until` is true."""
    assert command.flags.get("-plaintext"), f"the registry serves plaintext: {command.text}"
    grpcurl = Grpcurl(channel_for(command.address))
    if command.verb == "list":
        return grpcurl.list_methods(command.symbol) if command.symbol else grpcurl.list()
    if command.verb == "describe":
        return grpcurl.describe(command.symbol)
    desc = grpcurl.method(command.symbol)
    bodies = command.messages()
    if desc.client_streaming:
        return grpcurl.bidi(command.symbol, bodies)
    [body] = bodies
    if not desc.server_streaming:
        return grpcurl.call(command.symbol, body)
    max_time = float(command.flags.get("-max-time", TIMEOUT))
    messages = []
    stream = grpcurl.stream(command.symbol, body, timeout=max_time)
    try:
        for message in stream:
            messages.append(message)
            if stream_until is not None and stream_until(message):
                break
    except grpc.RpcError as e:
        # grpcurl -max-time ends a stream with DEADLINE_EXCEEDED after printing what came.
        if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    finally:
        stream.close()
    return messages
