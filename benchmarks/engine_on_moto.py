"""Copy-engine figures against moto's S3 server on 127.0.0.1 (the test endpoint), for the engine issue's note.

Run: ``.venv/bin/python -m benchmarks.engine_on_moto``. It copies 1,000 small objects (CopyObject) and one
64 MiB object (multipart, 8 MiB parts), and, as a peer measured in the same run, the same work with boto3's
managed ``copy()`` (s3transfer) on a thread pool. moto copies the bytes itself and caps at a few hundred
requests per second on two cores, so these figures measure moto as much as the engine: the S3 emulator
benchmarks (``make bench``) measure the engine alone.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from boto3.s3.transfer import TransferConfig

from mxtransfer_worker.manifest import ManifestRow
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.parts import MiB
from mxtransfer_worker.runner import copy_rows
from mxtransfer_worker.s3client import make_s3_client

OBJECTS = 1000
OBJECT_BYTES = 64 * 1024
LARGE_BYTES = 64 * MiB
CONCURRENCY = 32


def _start_moto() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[name] = value
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _timed(label: str, objects: int, total_bytes: int, work) -> None:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"{label:<48} {objects:>6} objects {total_bytes / MiB:>8.1f} MiB {seconds:>7.2f} s "
          f"{objects / seconds:>8.1f} objects/s {total_bytes / MiB / seconds:>8.1f} MiB/s")


def main() -> None:
    server, endpoint = _start_moto()
    client = make_s3_client(max_pool_connections=2 * CONCURRENCY + 4, endpoint_url=endpoint)
    # boto3's managed copy() is a method of boto3's clients only (the engine's is botocore's)
    boto3_client = make_s3_client(max_pool_connections=2 * CONCURRENCY + 4, endpoint_url=endpoint,
                                  session=boto3.session.Session())
    for bucket in ("bench-src", "bench-dst-engine", "bench-dst-boto3"):
        client.create_bucket(Bucket=bucket)
    keys = [f"small/{i:05d}.bin" for i in range(OBJECTS)]
    body = os.urandom(OBJECT_BYTES)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda key: client.put_object(Bucket="bench-src", Key=key, Body=body), keys))
    client.put_object(Bucket="bench-src", Key="large/master.mxf", Body=os.urandom(LARGE_BYTES))

    def engine(bucket: str, rows: list[ManifestRow], **overrides) -> None:
        options = CopyOptions(destination_bucket=bucket, copy_annotations=False, object_concurrency=CONCURRENCY,
                              part_concurrency=CONCURRENCY, **overrides)
        failures = []
        copy_rows(client, rows, options, lambda result: result.status == "failed" and failures.append(result))
        assert not failures, failures[0].message

    transfer_config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                                     max_concurrency=CONCURRENCY)

    def managed_copy(bucket: str, key_list: list[str]) -> None:
        with ThreadPoolExecutor(CONCURRENCY if len(key_list) > 1 else 1) as pool:
            list(pool.map(lambda key: boto3_client.copy({"Bucket": "bench-src", "Key": key}, bucket, key,
                                                        Config=transfer_config), key_list))

    print(f"moto server {endpoint}; concurrency {CONCURRENCY}; CPUs {os.cpu_count()}")
    _timed("mxtransfer engine: 1,000 x 64 KiB (CopyObject)", OBJECTS, OBJECTS * OBJECT_BYTES,
           lambda: engine("bench-dst-engine", [ManifestRow("bench-src", key) for key in keys]))
    _timed("boto3 managed copy(): 1,000 x 64 KiB", OBJECTS, OBJECTS * OBJECT_BYTES,
           lambda: managed_copy("bench-dst-boto3", keys))
    _timed("mxtransfer engine: 64 MiB, 8 MiB parts", 1, LARGE_BYTES,
           lambda: engine("bench-dst-engine", [ManifestRow("bench-src", "large/master.mxf")],
                          multipart_threshold=8 * MiB, part_size=8 * MiB))
    _timed("boto3 managed copy(): 64 MiB, 8 MiB parts", 1, LARGE_BYTES,
           lambda: managed_copy("bench-dst-boto3", ["large/master.mxf"]))
    _timed("mxtransfer engine: re-run of 1,000 (all skipped)", OBJECTS, 0,
           lambda: engine("bench-dst-engine", [ManifestRow("bench-src", key) for key in keys]))
    server.stop()


if __name__ == "__main__":
    main()
