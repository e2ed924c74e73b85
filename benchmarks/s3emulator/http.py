"""A minimal HTTP/1.1 server on asyncio protocols: keep-alive (pipelined requests too), ``Expect: 100-continue``,
Content-Length and chunked request bodies, the ``aws-chunked`` content encoding (with trailers) that botocore and
the AWS CLI send, and streamed or early-started (chunked) responses.

A protocol, not asyncio's streams: the head of a request is parsed where its bytes arrive and one task runs the
request, where streams spent a StreamReader, a StreamWriter, a task and a wake-up of that task per read on every
connection (a third of the emulator's CPU when a large copy opens thousands of connections for one request each).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import struct
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable, Iterable
from urllib.parse import unquote_plus

_MAX_HEAD = 64 * 1024
#: The largest XML request body kept (S3's CompleteMultipartUpload of 10,000 parts with checksums: about 2 MiB).
_MAX_XML_BODY = 16 * 1024 * 1024
_ACCEPT_BACKLOG = 65535
_READ_SIZE = 256 * 1024
#: Unread bytes past which a connection stops reading from its socket until its request takes them.
_PAUSE_AT = 2 * _READ_SIZE
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CRLF = "\r\n"


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
    def __init__(self, reader: _Connection, length: int) -> None:
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
    def __init__(self, reader: _Connection) -> None:
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


async def read_body(reader: _Connection, headers: dict[str, str], keep_max: int) -> Body:
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
    """Parse the request line and headers (``head`` ends with its empty line); returns the request and whether the
    connection stays open."""
    request_line, _, lines = head.decode("latin-1")[:-4].partition("\r\n")
    method, target, version = request_line.split(" ", 2)
    headers = {}
    for line in lines.split("\r\n") if lines else ():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Request(method, path, parse_query(query) if query else {}, headers), keep_alive


def parse_query(query: str) -> dict[str, str]:
    """The parameters of a query string, the last of a repeated name winning: ``dict(parse_qsl(query,
    keep_blank_values=True))``, at a quarter of its cost (3 µs a request) where nothing needs unquoting."""
    params = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            if "%" in pair or "+" in pair:
                name, value = unquote_plus(name), unquote_plus(value)
            params[name] = value
    return params


class Exchange:
    """One request's hold on its connection: lets the application start the response early (chunked, then
    keep-alive whitespace), reset the connection or hang it."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.started = False
        self.closed = False

    async def start(self, status: int, headers: list[tuple[str, str]], first_chunk: bytes = b"") -> None:
        """Send the status line and headers now, with ``first_chunk`` of the body if any, in one write (a write
        to a loopback socket costs more than its bytes: a long copy's few writes were a quarter of the emulator's
        CPU in a 5 TiB copy); the rest of the body follows in chunks."""
        self.connection.write(_head(status, headers + [("Transfer-Encoding", "chunked")])
                              + (_chunk(first_chunk) if first_chunk else b""))
        self.started = True
        await self.connection.drain()

    async def send_chunk(self, data: bytes) -> None:
        self.connection.write(_chunk(data))
        await self.connection.drain()

    def reset(self) -> None:
        """Abort the connection with a TCP RST."""
        transport = self.connection.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        self.closed = True

    async def hang(self, max_seconds: float) -> None:
        """Answer nothing until the client closes the connection or ``max_seconds`` pass, then close it."""
        try:
            await asyncio.wait_for(self.connection.until_closed(), max_seconds)
        except asyncio.TimeoutError:
            pass
        self.connection.transport.abort()
        self.closed = True


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = "\r\n".join(map(": ".join, headers))
    return f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n{lines}{_CRLF if headers else ''}\r\n".encode("latin-1")


Handler = Callable[[Request, Exchange], Awaitable[Response]]


class _Connection(asyncio.Protocol):
    """One client connection: parses each request's head as its bytes arrive and runs one request at a time (the
    next one, pipelined or not, when the response is written). It keeps the bytes its request has not taken yet,
    read synchronously for a head and awaited for a body (what ``asyncio.StreamReader`` does, which offers no
    synchronous look at its buffer)."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.task: asyncio.Task | None = None
        self._read_paused = self._write_paused = self._discard = False
        self._waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None
        self._gone: asyncio.Future | None = None

    # ------------------------------------------------------------------------------------- protocol callbacks
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._discard:
            return
        if self.task is None and not self.buffer and data.find(b"\r\n\r\n") == len(data) - 4 <= _MAX_HEAD - 4:
            self._start(data)  # a request's head and nothing more: nearly always so
            return
        self.buffer += data
        self._wake()
        if not self._read_paused and len(self.buffer) > _PAUSE_AT:
            self._read_paused = True
            self.transport.pause_reading()
        if self.task is None:
            self._next()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        self._went()
        if self.task is None:
            self.transport.close()
        # keep the transport: a request in flight still answers (TLS cannot: asyncio closes it and warns at True)
        return self.transport.get_extra_info("ssl_object") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.eof = True
        self._wake()
        self._went()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # ---------------------------------------------------------------------------------------------- requests
    def _next(self) -> None:
        """Start the request whose head is in the buffer, if it is all there; close on a bad or ended stream."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or end + 4 > _MAX_HEAD:
            if len(self.buffer) >= _MAX_HEAD or end >= 0 or self.eof:
                self.transport.close()
            return
        self._start(self.take(end + 4))

    def _start(self, head: bytes) -> None:
        request, keep_alive = parse_head(head)
        self.task = self.server.loop.create_task(self._serve(request, keep_alive))

    async def _serve(self, request: Request, keep_alive: bool) -> None:
        try:
            headers = request.headers
            if headers.get("expect", "").lower() == "100-continue":
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
                # a POST's body is an XML document S3 parses (CompleteMultipartUpload's lists up to 10,000 parts,
                # over 1 MiB), never object bytes: kept whole
                keep_max = self.server.keep_max if request.method != "POST" else _MAX_XML_BODY
                request.body = await read_body(self, headers, keep_max)
            exchange = Exchange(self)
            response = await self.server.handler(request, exchange)
            if exchange.closed:  # reset or hung up: nothing more on this connection
                return
            if exchange.started or not isinstance(response.body, bytes):
                await self._stream_response(exchange, request, response)
            else:
                length = len(response.body) if response.length is None else response.length
                headers = response.headers + [("Content-Length", str(length))]
                if not keep_alive:
                    headers.append(("Connection", "close"))
                head = _head(response.status, headers)
                self.write(head + response.body if request.method != "HEAD" and response.body else head)  # one send
                if self._write_paused:
                    await self.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):  # cancelled: the server closes
            keep_alive = False
        finally:
            self.task = None
        if not keep_alive or self.transport.is_closing():
            self.transport.close()
        elif self.buffer or self.eof:
            self._next()

    async def _stream_response(self, exchange: Exchange, request: Request, response: Response) -> None:
        """A response whose status went early (chunks follow), or whose body is an iterable of pieces."""
        body = response.body
        if exchange.started:
            if isinstance(body, bytes):  # the result of a long copy: its chunk and the end in one write
                self.write((_chunk(body) if body else b"") + b"0\r\n\r\n")
                return
            for piece in body:
                if piece:
                    await exchange.send_chunk(piece)
            self.write(b"0\r\n\r\n")
            return
        self.write(_head(response.status, response.headers + [("Content-Length", str(response.length))]))
        if request.method != "HEAD":
            for piece in body:
                self.write(piece)
                await self.drain()

    # ----------------------------------------------------------------------------------------------- reading
    def take(self, n: int) -> bytes:
        piece = bytes(self.buffer[:n])
        del self.buffer[:n]
        if self._read_paused:
            self._resume_reading()
        return piece

    def _resume_reading(self) -> None:
        if self._read_paused and len(self.buffer) <= _PAUSE_AT // 2:
            self._read_paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self.server.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" at the end of the stream."""
        while not self.buffer and not self.eof:
            await self._wait()
        return self.take(n)

    async def readline(self) -> bytes:
        """Bytes up to and including the next LF, or what is left at the end of the stream."""
        while (end := self.buffer.find(b"\n")) < 0:
            if self.eof:
                return self.take(len(self.buffer))
            await self._wait()
        return self.take(end + 1)

    async def readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if self.eof:
                raise asyncio.IncompleteReadError(self.take(len(self.buffer)), n)
            await self._wait()
        return self.take(n)

    # ----------------------------------------------------------------------------------------------- writing
    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if self._write_paused:
            self._drain_waiter = self.server.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    # ----------------------------------------------------------------------------------------------- hanging
    async def until_closed(self) -> None:
        """Drop whatever the client sends until it closes the connection."""
        self._discard = True
        self.buffer.clear()
        self._resume_reading()
        if not self.eof:
            self._gone = self.server.loop.create_future()
            await self._gone

    def _went(self) -> None:
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)


class HttpServer:
    """Listens on ``host:port`` (port 0: a free one) and serves every connection with ``handler``."""

    def __init__(self, handler: Handler, keep_max: int) -> None:
        self.handler, self.keep_max = handler, keep_max
        self.connections: set[_Connection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> tuple[str, int]:
        # S3 does not drop connection attempts; a full accept queue here does (the client's SYN is retried after
        # 1 s), and a large copy opens thousands of connections at once. The kernel caps this at somaxconn.
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: _Connection(self), host, port, backlog=_ACCEPT_BACKLOG, ssl=tls
        )
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and end every open connection, hung ones included."""
        self._server.close()
        tasks = [connection.task for connection in self.connections if connection.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in list(self.connections):
            connection.transport.close()
        await self._server.wait_closed()
