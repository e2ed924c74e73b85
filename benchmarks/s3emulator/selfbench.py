"""The emulator's own ceiling: ``python -m benchmarks.s3emulator.selfbench [--seconds 5] [--connections 64]``.

Starts the emulator in its own process (no latency, instant copies, no rate ceilings), fills a bucket with
virtual objects, then drives it with raw keep-alive HTTP/1.1 requests from client processes (asyncio, a few
microseconds of client CPU per request) and prints requests per second for HeadObject, CopyObject and ListObjectsV2
(pages of 1,000 keys), and for UploadPartCopy with a new connection per request (the requests of a large copy,
which opens thousands of connections at once), plus requests per CPU-second of the server process: the rate it
would reach with a core to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

from .server import EVENT_LOOP

OBJECTS = 1000
#: The operation measured with a new connection per request.
NEW_CONNECTIONS = "UploadPartCopy"
#: The headers every request carries besides its own, as awscrt's native client sends them.
_COMMON = ("User-Agent: CRTS3NativeClient/1.5.1 platform/unknown\r\nX-Amz-Date: 20261126T073819Z\r\n"
           "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA/20261126/us-east-1/s3/"
           "aws4_request, SignedHeaders=content-length;host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64 + "\r\n")


def _request(operation: str, index: int, host: str, upload_id: str) -> bytes:
    source = f"/bench/src/{index % OBJECTS:06d}"
    if operation == NEW_CONNECTIONS:  # 5 MiB parts of one source object, part numbers 1-10,000 over and over
        return (f"PUT /bench/dst/big?uploadId={upload_id}&partNumber={index % 10_000 + 1} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Length: 0\r\nx-amz-copy-source: bench/src/000000\r\n"
                f"x-amz-copy-source-range: bytes=0-5242879\r\n{_COMMON}\r\n").encode()
    if operation == "ListObjectsV2":  # one page of all OBJECTS keys
        return (f"GET /bench?list-type=2&prefix=src%2F&encoding-type=url HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x\r\n\r\n").encode()
    if operation == "HeadObject":
        return f"HEAD {source} HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA/x\r\n\r\n".encode()
    return (f"PUT /bench/dst/{index:09d} HTTP/1.1\r\nHost: {host}\r\nx-amz-copy-source: {source[1:]}\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x\r\nContent-Length: 0\r\n\r\n").encode()


async def _connection(host: str, port: int, operation: str, upload_id: str, start: int, step: int, deadline: float,
                      counts: Counter) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = start
    while time.monotonic() < deadline:
        if operation == NEW_CONNECTIONS and index != start:
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(_request(operation, index, f"{host}:{port}", upload_id))
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length and operation != "HeadObject":
            await reader.readexactly(length)
        counts[int(head[9:12])] += 1
        index += step
    writer.close()


def _client(url: str, operation: str, upload_id: str, connections: int, process_index: int, processes: int, seconds: float,
            queue) -> None:
    parts = urlsplit(url)
    counts: Counter = Counter()
    deadline = time.monotonic() + seconds
    step = connections * processes

    async def run() -> None:
        await asyncio.gather(*(
            _connection(parts.hostname, parts.port, operation, upload_id, process_index * connections + c, step, deadline,
                        counts)
            for c in range(connections)
        ))

    asyncio.run(run())
    queue.put(dict(counts))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _create_upload(url: str) -> str:
    """The upload id of a new multipart upload of ``bench/dst/big``."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(f"POST /bench/dst/big?uploads HTTP/1.1\r\nHost: {parts.netloc}\r\n{_COMMON}\r\n".encode())
        answer = b""
        while b"</UploadId>" not in answer:
            piece = sock.recv(65536)
            if not piece:
                raise ConnectionError(f"no upload id in {answer!r}")
            answer += piece
    return answer.partition(b"<UploadId>")[2].partition(b"</UploadId>")[0].decode()


def measure(url: str, server_pid: int, operation: str, seconds: float, connections: int, processes: int) -> dict:
    """Drive ``operation`` for ``seconds``; returns counts by status, requests/s and requests per server CPU-second."""
    queue = multiprocessing.Queue()
    upload_id = _create_upload(url) if operation == NEW_CONNECTIONS else ""
    cpu_before, wall_before = _cpu_seconds(server_pid), time.monotonic()
    workers = [multiprocessing.Process(target=_client, args=(url, operation, upload_id, connections, i, processes, seconds,
                                                             queue))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    statuses: Counter = Counter()
    for _ in workers:
        statuses.update(queue.get())
    for worker in workers:
        worker.join()
    wall, cpu = time.monotonic() - wall_before, _cpu_seconds(server_pid) - cpu_before
    total = sum(statuses.values())
    return {"operation": operation, "statuses": dict(statuses), "requests": total,
            "per_second": total / wall, "per_server_cpu_second": total / cpu if cpu else float("nan")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.s3emulator.selfbench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per operation")
    parser.add_argument("--connections", type=int, default=64, help="per client process")
    parser.add_argument("--client-processes", type=int, default=1)
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.s3emulator", "--port", "0", "--latency-ms", "0", "--bandwidth-mbps", "0",
         "--write-rate", "0", "--read-rate", "0", "--populate", f"bench/src/:{OBJECTS}:1G"],
        stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        url = server.stdout.readline().strip()
        print(f"emulator at {url} on {EVENT_LOOP}; {args.client_processes} client process(es) x {args.connections}"
              f" connections, {args.seconds:g} s per operation, {os.cpu_count()} CPUs")
        for operation in ("HeadObject", "CopyObject", "ListObjectsV2", NEW_CONNECTIONS):
            result = measure(url, server.pid, operation, args.seconds, args.connections, args.client_processes)
            keys = (f"; {result['per_server_cpu_second'] * OBJECTS:,.0f} listed keys per server CPU-second"
                    if operation == "ListObjectsV2" else "")
            label = f"{operation}, a new connection each" if operation == NEW_CONNECTIONS else operation
            print(f"{label:>40}: {result['per_second']:8.0f} requests/s  "
                  f"({result['per_server_cpu_second']:.0f} per server CPU-second{keys}; statuses {result['statuses']})")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
