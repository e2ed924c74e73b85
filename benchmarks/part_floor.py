"""The floor this machine sets for one large object: ``python -m benchmarks.part_floor [--tib 1]``.

Starts the emulator (the ``large`` scenario's S3-like settings, in a process of its own), creates one multipart
upload and sends the object's parts (the engine's: ``tapered_plan``) at the engine's pace (``PART_RATE``, a
second's worth at once, then ``PART_BATCH_SECONDS`` apart) through the engine's native copy client from one
thread, with none of the engine's work around it (no manifest, HEADs, checkpoints, governor, retries or report),
twice: with new connections, then with the connections of the first round. Then, once that client's connections
are closed and the prefix's burst has come back (as a worker finds it), the engine's own ``copy_rows`` copies the
object in this process on new connections (paced parts, governor, HEADs, create, complete and verification; no
process start-up, manifest or report, which the ``large`` scenario's wall time includes). Each line prints the wall
time against the settings' limit, and the CPU seconds of this process and of the emulator: what any client could
reach against this emulator on this machine, and how near the engine's copy comes.
"""

from __future__ import annotations

import argparse
import threading
import time

from benchmarks.suite.scenarios import S3_LIKE, MiB, TiB, copy_limit
from benchmarks.suite.server import EmulatorProcess, process_cpu
from benchmarks.suite.tools import use_dummy_credentials

#: Seconds between the bare rounds and the engine's: the prefix's burst (a second's worth) comes back meanwhile.
_SETTLE_SECONDS = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.part_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tib", type=float, default=1.0, help="object size in TiB (default 1)")
    args = parser.parse_args()
    use_dummy_credentials()
    from mxtransfer_worker.crt_copy import CrtCopyClient
    from mxtransfer_worker.manifest import ManifestRow
    from mxtransfer_worker.options import CopyOptions
    from mxtransfer_worker.parts import PART_BATCH_SECONDS, PART_RATE, tapered_plan
    from mxtransfer_worker.runner import copy_rows
    from mxtransfer_worker.s3client import make_s3_client
    from mxtransfer_worker.throttle import AimdRate, RequestGovernor, Turns

    size = int(args.tib * TiB)
    limit, derivation = copy_limit([("big/object", size)], S3_LIKE)
    plan = tapered_plan(size, CopyOptions(destination_bucket="floor").part_size)
    parts = plan.count
    print(f"{size / TiB:g} TiB in {parts:,} parts of up to {plan.head / MiB:,.0f} MiB; limit {limit:.2f} s ({derivation})")
    with EmulatorProcess(**S3_LIKE) as server:
        server.call("populate", "src", [("big/object", size)])
        server.call("create_bucket", "dst")
        client = make_s3_client(endpoint_url=server.url)
        etag = client.head_object(Bucket="src", Key="big/object")["ETag"]
        copier = CrtCopyClient(client, parts + 16)
        for label in ("new connections", "connections of the first round"):
            upload = client.create_multipart_upload(Bucket="dst", Key="big/object")["UploadId"]
            done, failures = threading.Semaphore(0), []
            server_cpu, cpu, started = server.call("cpu"), process_cpu(), time.monotonic()
            turns = Turns(PART_RATE, burst=1.0)
            for number, first, last in plan.ranges():
                while wait := turns.wait(time.monotonic()):
                    time.sleep(max(wait, PART_BATCH_SECONDS))  # the engine's batches
                turns.take(time.monotonic())
                copier.send("upload_part_copy", {
                    "Bucket": "dst", "Key": "big/object", "UploadId": upload, "PartNumber": number,
                    "CopySource": {"Bucket": "src", "Key": "big/object"}, "CopySourceIfMatch": etag,
                    "CopySourceRange": f"bytes={first}-{last}",
                }, lambda answer: (answer.exception() and failures.append(answer.exception()), done.release()))
            sent = time.monotonic() - started
            for _ in range(parts):
                done.acquire()
            wall = time.monotonic() - started
            print(f"{label}: all sent in {sent:.2f} s, all done in {wall:.2f} s ({limit / wall:.0%} of the limit);"
                  f" client CPU {process_cpu() - cpu:.2f} s, emulator CPU {server.call('cpu') - server_cpu:.2f} s;"
                  f" {len(failures)} failed (awscrt retries nothing: SlowDowns count here)")
            client.abort_multipart_upload(Bucket="dst", Key="big/object", UploadId=upload)
        # The engine's round on new connections too: the bare client's are closed first (closing thousands takes
        # the CPUs a while, and made a round after it 0.7 s slower), and the prefix's burst has come back.
        shutdown = copier.shutdown_event
        del copier
        if not shutdown.wait(60):
            print("the bare client's connections were still open after 60 s: the engine's round shares the CPUs")
        time.sleep(_SETTLE_SECONDS)
        governor, results = RequestGovernor(AimdRate()), []
        governor.attach(client)  # as a worker's shard does (shard.run_shard), with its pacing
        server_cpu, cpu, started = server.call("cpu"), process_cpu(), time.monotonic()
        copy_rows(client, [ManifestRow("src", "big/object", size=size)],
                  CopyOptions(destination_bucket="dst", copy_annotations=False), results.append, paced=True)
        wall = time.monotonic() - started
        (result,) = results
        print(f"the engine's copy_rows: {result.status} in {wall:.2f} s ({limit / wall:.0%} of the limit); client CPU"
              f" {process_cpu() - cpu:.2f} s, emulator CPU {server.call('cpu') - server_cpu:.2f} s;"
              f" {governor.counts()['throttled_requests']} SlowDowns; {result.message}")


if __name__ == "__main__":
    main()
