"""A minimal HTTP/1.1 server on asyncio streams: keep-alive, ``Expect: 100-continue``, Content-Length and
chunked request bodies, the ``aws-chunked`` content encoding (with trailers) that botocore and the AWS CLI send,
and streamed or early-started (chunked) responses.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable, Iterable
from urllib.parse import parse_qsl

_MAX_HEAD = 64 * 1024
_ACCEPT_BACKLOG = 65535
_READ_SIZE = 256 * 1024
_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass
class Body:
    """A request body: its bytes while at most the keep limit (else None), its size, MD5 and aws-chunked trailers."""

    data: bytes | None
    size: int
    md5: str
    trailers: dict[str, str] = field(default_factory=dict)


EMPTY_BODY = Body(b"", 0, hashlib.md5(b"").hexdigest())


@dataclass
class Request:
    method: str
    #: The request path, still percent-encoded.
    path: str
    query: dict[str, str]
    #: Header names in lower case.
    headers: dict[str, str]
    body: Body = field(default_factory=lambda: EMPTY_BODY)


@dataclass
class Response:
    """A response; ``body`` is bytes or an iterable of byte pieces, then ``length`` gives the Content-Length."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None


class _BodySink:
    def __init__(self, keep_max: int) -> None:
        self.keep_max = keep_max
        self.pieces: list[bytes] | None = []
        self.size = 0
        self.md5 = hashlib.md5()

    def feed(self, piece: bytes) -> None:
        self.size += len(piece)
        self.md5.update(piece)
        if self.pieces is not None:
            if self.size > self.keep_max:
                self.pieces = None
            else:
                self.pieces.append(piece)

    def body(self, trailers: dict[str, str]) -> Body:
        data = b"".join(self.pieces) if self.pieces is not None else None
        return Body(data, self.size, self.md5.hexdigest(), trailers)


class _LengthSource:
    def __init__(self, reader: asyncio.StreamReader, length: int) -> None:
        self.reader, self.remaining = reader, length

    async def read(self) -> bytes:
        if self.remaining <= 0:
            return b""
        piece = await self.reader.read(min(self.remaining, _READ_SIZE))
        if not piece:
            raise asyncio.IncompleteReadError(b"", self.remaining)
        self.remaining -= len(piece)
        return piece


class _ChunkedSource:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader, self.remaining, self.done = reader, 0, False

    async def read(self) -> bytes:
        if self.done:
            return b""
        if self.remaining == 0:
            size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await self.reader.readline()).strip():
                    pass
                self.done = True
                return b""
            self.remaining = size
        piece = await self.reader.read(min(self.remaining, _READ_SIZE))
        if not piece:
            raise asyncio.IncompleteReadError(b"", self.remaining)
        self.remaining -= len(piece)
        if self.remaining == 0:
            await self.reader.readexactly(2)
        return piece


class _Buffered:
    """Line and bounded reads over a body source, for the aws-chunked framing inside it."""

    def __init__(self, source) -> None:
        self.source, self.buffer = source, bytearray()

    async def _fill(self) -> bool:
        piece = await self.source.read()
        self.buffer += piece
        return bool(piece)

    async def readline(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            if not await self._fill():
                line = bytes(self.buffer)
                self.buffer.clear()
                return line
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def read_upto(self, n: int) -> bytes:
        if not self.buffer and not await self._fill():
            raise asyncio.IncompleteReadError(b"", n)
        piece = bytes(self.buffer[:n])
        del self.buffer[:n]
        return piece


async def _decode_aws_chunked(source, sink: _BodySink) -> dict[str, str]:
    buffered = _Buffered(source)
    while True:
        size = int((await buffered.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        while size:
            piece = await buffered.read_upto(size)
            sink.feed(piece)
            size -= len(piece)
        await buffered.readline()
    trailers = {}
    while line := (await buffered.readline()).strip():
        name, _, value = line.decode("latin-1").partition(":")
        trailers[name.strip().lower()] = value.strip()
    while await source.read():
        pass
    return trailers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str], keep_max: int) -> Body:
    """Read the request body whatever its framing; bytes beyond ``keep_max`` are hashed and dropped."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        source = _ChunkedSource(reader)
    else:
        length = int(headers.get("content-length") or 0)
        if length == 0:
            return EMPTY_BODY
        source = _LengthSource(reader, length)
    sink = _BodySink(keep_max)
    if "aws-chunked" in headers.get("content-encoding", "") or headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
        trailers = await _decode_aws_chunked(source, sink)
    else:
        trailers = {}
        while piece := await source.read():
            sink.feed(piece)
    return sink.body(trailers)


def parse_head(head: bytes) -> tuple[Request, bool]:
    """Parse the request line and headers; returns the request and whether the connection stays open."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Request(method, path, dict(parse_qsl(query, keep_blank_values=True)), headers), keep_alive


class Exchange:
    """One request's hold on its connection: lets the application start the response early (chunked, then
    keep-alive whitespace), reset the connection or hang it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.started = False
        self.closed = False

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Send the status line and headers now; the body follows in chunks."""
        self.writer.write(_head(status, headers + [("Transfer-Encoding", "chunked")]))
        self.started = True
        await self.writer.drain()

    async def send_chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    def reset(self) -> None:
        """Abort the connection with a TCP RST."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.closed = True

    async def hang(self, max_seconds: float) -> None:
        """Answer nothing until the client closes the connection or ``max_seconds`` pass, then close it."""
        try:
            await asyncio.wait_for(self._drain_until_eof(), max_seconds)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        self.writer.transport.abort()
        self.closed = True

    async def _drain_until_eof(self) -> None:
        while await self.reader.read(_READ_SIZE):
            pass


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


Handler = Callable[[Request, Exchange], Awaitable[Response]]


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler, keep_max: int) -> None:
    """Serve requests on one connection until the client closes it, asks to, or the handler resets it."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            request, keep_alive = parse_head(head)
            if request.headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.body = await read_body(reader, request.headers, keep_max)
            exchange = Exchange(reader, writer)
            response = await handler(request, exchange)
            if exchange.closed:
                return
            await _write_response(writer, exchange, request, response, keep_alive)
            if not keep_alive:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        if not writer.transport.is_closing():
            writer.close()


async def _write_response(writer, exchange: Exchange, request: Request, response: Response, keep_alive: bool) -> None:
    body = response.body
    if exchange.started:
        if isinstance(body, bytes):
            body = [body]
        for piece in body:
            if piece:
                await exchange.send_chunk(piece)
        writer.write(b"0\r\n\r\n")
        return
    headers = response.headers
    if not keep_alive:
        headers = headers + [("Connection", "close")]
    if isinstance(body, bytes):
        length = len(body) if response.length is None else response.length
        writer.write(_head(response.status, headers + [("Content-Length", str(length))]))
        if request.method != "HEAD" and body:
            writer.write(body)
        if writer.transport.get_write_buffer_size() > _READ_SIZE:
            await writer.drain()
        return
    writer.write(_head(response.status, headers + [("Content-Length", str(response.length))]))
    if request.method != "HEAD":
        for piece in body:
            writer.write(piece)
            await writer.drain()


class HttpServer:
    """Listens on ``host:port`` (port 0: a free one) and serves every connection with ``handler``."""

    def __init__(self, handler: Handler, keep_max: int) -> None:
        self.handler, self.keep_max = handler, keep_max
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        # S3 does not drop connection attempts; a full accept queue here does (the client's SYN is retried after
        # 1 s), and a large copy opens thousands of connections at once. The kernel caps this at somaxconn.
        self._server = await asyncio.start_server(
            self._on_connection, host, port, limit=_MAX_HEAD, backlog=_ACCEPT_BACKLOG
        )
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and end every open connection, hung ones included."""
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await serve_connection(reader, writer, self.handler, self.keep_max)
        except asyncio.CancelledError:  # close(): the connection simply ends
            pass
        finally:
            self._connections.discard(task)
