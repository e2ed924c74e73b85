"""One large object's parts split between the shards of an array job (``split.py``): several worker processes
on the S3 emulator share one multipart upload, the last to finish completes it, and a worker killed mid-way
resumes its parts on restart and completes the copy. Also the planning of the slices (``sharding``)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys

import pytest

from mxtransfer_worker.cli import EXIT_OK
from mxtransfer_worker.manifest import ManifestRow, upload_manifest
from mxtransfer_worker.parts import GiB, MiB
from mxtransfer_worker.sharding import PartSlice, plan_shards, shard_work

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402
from test_resume import KEY, PART, SIZE, TOTAL_PARTS, Transfer, wait_for  # noqa: E402 - same directory

WORKERS = 3


# -- planning ------------------------------------------------------------------------------------------------
def _manifest(sizes):
    rows = [ManifestRow("bkt", f"obj-{index:03d}", None, size, index + 1) for index, size in enumerate(sizes)]
    return lambda: iter(rows)


def _work(rows, count, threshold=GiB, part_size=PART):
    return [list(shard_work(rows, index, count, threshold, part_size)) for index in range(count)]


def test_spare_shards_split_the_large_objects_parts_into_runs_that_cover_each_once():
    rows = _manifest([SIZE, 10 * MiB, 2 * MiB, SIZE // 2])
    shards = _work(rows, 8)
    assert shards == _work(rows, 8)  # deterministic
    slices = [item for shard in shards for item in shard if isinstance(item, PartSlice)]
    by_object: dict[str, list[PartSlice]] = {}
    for piece in slices:
        by_object.setdefault(piece.row.key, []).append(piece)
    # 8 shards: the rest (12 MiB) keeps one; the 2 GiB and 1 GiB objects share 7 so that the heaviest shard
    # holds as little as possible (512 MiB: 4 and 3, as each spare shard goes to the most weight per shard)
    assert {key: len(pieces) for key, pieces in by_object.items()} == {"obj-000": 4, "obj-003": 3}
    for pieces in by_object.values():
        numbers = [number for piece in pieces for number in range(piece.first_part, piece.last_part + 1)]
        assert numbers == list(range(1, pieces[0].part_count + 1))
        assert sum(piece.bytes for piece in pieces) == pieces[0].row.size
        assert [piece.group_start + piece.member for piece in pieces] == \
            list(range(pieces[0].group_start, pieces[0].group_start + len(pieces)))
    assert [len(shard) for shard in shards] == [1] * 7 + [2] and shards[7][0].key == "obj-001"
    plan = plan_shards(rows, 8, GiB, PART)
    assert sum(plan.bytes) == SIZE + SIZE // 2 + 12 * MiB and plan.dedicated_shards == 7


def test_without_a_split_part_size_large_objects_keep_one_shard_each():
    shards = _work(_manifest([SIZE, 10 * MiB]), 4, part_size=None)
    assert shards[0] == [ManifestRow("bkt", "obj-000", None, SIZE, 1)] and not any(
        isinstance(item, PartSlice) for shard in shards for item in shard)


def test_an_object_never_gets_more_shards_than_parts():
    shards = _work(_manifest([12 * MiB]), 5, threshold=6 * MiB)  # 3 parts of 5, 5 and 2 MiB
    pieces = [item for shard in shards for item in shard]
    assert [(piece.first_part, piece.last_part) for piece in pieces] == [(1, 1), (2, 2), (3, 3)]
    assert shards[3:] == [[], []]


# -- workers on the emulator ---------------------------------------------------------------------------------
@pytest.fixture
def emulator():
    # a 5 MiB part copy takes about 100 ms: four at a time, one worker's run of 137 parts takes about 3.5 s
    with S3Emulator(copy_bandwidth=50e6, write_rate=0, read_rate=0, copy_keepalive_s=0) as instance:
        yield instance


class SplitTransfer(Transfer):
    """``test_resume``'s transfer with the 2 GiB object alone in the manifest (with its size, which the split
    plan needs), copied by ``WORKERS`` shards that split its parts."""

    def __init__(self, emulator: S3Emulator):
        super().__init__(emulator)
        upload_manifest(self.client, [ManifestRow(self.source, KEY, size=SIZE)], self.manifest)

    def command(self, grace_seconds: float = 60, index: int = 0) -> list[str]:
        return [*super().command(grace_seconds), "--shard-index", str(index), "--shard-count", str(WORKERS),
                "--split-objects-over", "1GiB"]

    def shard_rows(self, index: int) -> list[dict]:
        name = f"report/shard-{index:05d}-of-{WORKERS:05d}.csv"
        body = self.client.get_object(Bucket=self.work, Key=name)["Body"].read().decode()
        return list(csv.DictReader(io.StringIO(body, newline="")))

    def checkpoints(self) -> list[dict]:
        """The checkpoints left (``test_resume``'s check); the completion claim next to one stays on purpose."""
        listing = self.client.list_objects_v2(Bucket=self.work, Prefix="report/checkpoints/").get("Contents", [])
        claims = [item["Key"] for item in listing if item["Key"].endswith(".completer")]
        assert len(claims) <= 1 and all(self.client.get_object(Bucket=self.work, Key=key)["Body"].read().startswith(b"shard ")
                                        for key in claims)
        return [json.loads(self.client.get_object(Bucket=self.work, Key=item["Key"])["Body"].read())
                for item in listing if item["Key"].endswith(".json")]

    def destination_exists(self) -> bool:
        return bool(self.client.list_objects_v2(Bucket=self.destination).get("Contents"))


def _finish(worker: subprocess.Popen) -> int:
    _, stderr = worker.communicate(timeout=300)
    assert worker.returncode == EXIT_OK, stderr
    return worker.returncode


def test_workers_share_one_upload_and_exactly_one_completes_and_reports_it(emulator):
    transfer = SplitTransfer(emulator)
    for worker in [transfer.start_worker(index=index) for index in range(WORKERS)]:
        _finish(worker)
    transfer.assert_copied_and_clean()
    assert transfer.parts_copied() == TOTAL_PARTS
    rows = [row for index in range(WORKERS) for row in transfer.shard_rows(index)]
    (row,) = rows
    assert (row["key"], row["status"], int(row["bytes"])) == (KEY, "succeeded", SIZE)
    assert f"{TOTAL_PARTS} parts by {WORKERS} workers, completed by this one" in row["message"]
    assert row["message"].endswith("verified size and CRC64NVME at completion")


def test_workers_that_find_an_unreadable_checkpoint_replace_it_and_share_one_upload(emulator):
    from mxtransfer_worker.checkpoints import CheckpointStore

    transfer = SplitTransfer(emulator)
    where = CheckpointStore(transfer.client, transfer.report + "checkpoints/").location(
        ManifestRow(transfer.source, KEY), transfer.destination, KEY)
    transfer.client.put_object(Bucket=where.bucket, Key=where.key, Body=b'{"upload_id": "gone", "par')
    for worker in [transfer.start_worker(index=index) for index in range(WORKERS)]:
        _finish(worker)
    transfer.assert_copied_and_clean()
    assert transfer.parts_copied() == TOTAL_PARTS
    (row,) = [row for index in range(WORKERS) for row in transfer.shard_rows(index)]
    assert (row["status"], int(row["bytes"])) == ("succeeded", SIZE)


def test_a_worker_killed_mid_way_resumes_its_parts_and_completes_the_upload(emulator):
    transfer = SplitTransfer(emulator)
    workers = [transfer.start_worker(index=index) for index in range(WORKERS)]
    wait_for(lambda: transfer.parts_copied() >= 60)
    workers[1].send_signal(signal.SIGKILL)
    workers[1].communicate(timeout=60)
    _finish(workers[0])
    _finish(workers[2])
    assert not transfer.destination_exists()  # the killed worker's parts are missing: nobody completed
    assert [transfer.shard_rows(index) for index in (0, 2)] == [[], []]
    (checkpoint,) = transfer.checkpoints()
    (upload,) = transfer.uploads()
    assert checkpoint["upload_id"] == upload["UploadId"]
    before = transfer.parts_copied()

    _finish(transfer.start_worker(index=1))
    (row,) = transfer.shard_rows(1)
    assert (row["status"], int(row["bytes"])) == ("succeeded", SIZE) and "completed by this one" in row["message"]
    assert "resumed from a checkpoint" in row["message"]
    transfer.assert_copied_and_clean()
    # the restart copied only its own missing parts, into the same upload
    assert transfer.parts_copied() - before < TOTAL_PARTS // WORKERS + 1


def test_one_worker_claims_the_completion_and_keeps_it_on_its_retry(s3, make_bucket):
    from mxtransfer_worker.checkpoints import Checkpoint, CheckpointStore

    store = CheckpointStore(s3, f"s3://{make_bucket('work')}/report/checkpoints/")
    checkpoint = Checkpoint("src", KEY, None, '"etag"', SIZE, "dst", KEY, "upload-1", PART)
    assert store.claim_completion(checkpoint, "shard 2")
    assert not store.claim_completion(checkpoint, "shard 0")
    assert store.claim_completion(checkpoint, "shard 2")
    later = Checkpoint("src", KEY, None, '"etag"', SIZE, "dst", KEY, "upload-2", PART)  # a new upload of the copy
    assert store.claim_completion(later, "shard 0")
    store.drop_claim(checkpoint)
    assert store.claim_completion(checkpoint, "shard 1")
