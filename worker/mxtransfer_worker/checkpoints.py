"""Checkpoints of in-flight multipart copies, so that a worker restarted after a Spot reclaim, a crash or a
timeout resumes a large copy from the parts already done.

One small JSON object per in-flight copy, at ``<prefix>/<sha256 of source and destination>.json``: the upload
id, the part plan (``parts.PartPlan``), the source's ETag and size, and the parts done when it was last
written. It is written when the upload is created, now and then while parts are copied, and when the worker
stops; it is deleted when the copy ends. The parts it lists are informational: on resume, ``ListParts`` says
which parts exist. One this engine cannot read (corrupt, or written by another version with other fields) is
not used: the copy starts over and replaces it, and the bucket's lifecycle rule aborts any upload it named.
"""

from __future__ import annotations

import functools
import hashlib
import json
import typing
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime

from botocore.exceptions import ClientError

from .errors import CopyError, classify
from .jsondoc import json_object
from .manifest import ManifestRow
from .parts import PartPlan
from .s3uri import S3Uri

#: Seconds between checkpoint writes while parts are being copied.
DEFAULT_INTERVAL = 30.0


@dataclass
class Checkpoint:
    """An in-flight multipart copy of one source object (version) to one destination key."""

    source_bucket: str
    source_key: str
    source_version_id: str | None
    source_etag: str
    source_size: int
    destination_bucket: str
    destination_key: str
    upload_id: str
    #: The first parts' size (every part's in a uniform plan).
    part_size: int
    #: Parts done: ``PartNumber``, ``ETag`` and any ``Checksum*`` fields, as CompleteMultipartUpload takes them.
    parts: list[dict] = field(default_factory=list)
    #: The rest of the part plan (``parts.PartPlan``): how many parts are ``part_size`` bytes, by how much each
    #: later one is smaller, and the smallest they get; 0 in a uniform plan and in checkpoints written before
    #: plans tapered.
    steady_parts: int = 0
    part_step: int = 0
    smallest_part: int = 0

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        """The checkpoint ``data`` holds (as ``CheckpointStore.save`` writes it); ValueError saying what is wrong
        when it is not one: not JSON, a field missing, of the wrong type or unknown (e.g. written by another
        version of the engine, whose plan this one might misread)."""
        values = json_object(data)
        types, required = _field_types()
        unknown = sorted(set(values) - set(types))
        missing = [name for name in required if name not in values]
        if unknown or missing:
            raise ValueError("; ".join(filter(None, [unknown and f"unknown fields {', '.join(unknown)}",
                                                     missing and f"missing fields {', '.join(missing)}"])))
        for name, value in values.items():
            negative = isinstance(value, int) and value < 0
            if not isinstance(value, types[name]) or isinstance(value, bool) or negative:
                raise ValueError(f"field {name} is {value!r}")
        if values["part_size"] == 0:
            raise ValueError("field part_size is 0")
        return cls(**values)

    @property
    def plan(self) -> PartPlan:
        """The parts this copy is made of."""
        return PartPlan(self.source_size, self.part_size, self.steady_parts, self.part_step, self.smallest_part)

    def mismatch(self, source: dict, plan: PartPlan) -> str | None:
        """Why this checkpoint cannot resume a copy of the ``source`` HEAD answer in the parts of ``plan``, or
        None if it can."""
        if (source["ETag"], source["ContentLength"]) != (self.source_etag, self.source_size):
            return (f"the source changed (now ETag {source['ETag']} and {source['ContentLength']:,} bytes, "
                    f"was {self.source_etag} and {self.source_size:,} bytes)")
        if plan != self.plan:
            return (f"the part plan changed (now {plan.count:,} parts of up to {plan.head:,} bytes, was "
                    f"{self.plan.count:,} of up to {self.part_size:,})")
        return None


@functools.cache
def _field_types() -> tuple[dict[str, object], list[str]]:
    """``Checkpoint``'s fields with the JSON types they take (``list`` for ``list[dict]``), and those it must have."""
    hints = typing.get_type_hints(Checkpoint)
    types = {name: list if typing.get_origin(hint) is list else hint for name, hint in hints.items()}
    required = [item.name for item in fields(Checkpoint)
                if item.default is MISSING and item.default_factory is MISSING]
    return types, required


class UnreadableCheckpoint(Exception):
    """The checkpoint at ``location`` is not one this engine can read (``cause`` says why): the copy it was for
    cannot resume from it and starts over."""

    def __init__(self, location: S3Uri, cause: str):
        super().__init__(f"the checkpoint {location} is unreadable: {cause}")
        self.location, self.cause = location, cause


class CheckpointStore:
    """Reads, writes and deletes checkpoints under the S3 prefix ``prefix_uri`` with ``client``;
    ``interval`` is the time in seconds between writes while a copy runs."""

    def __init__(self, client, prefix_uri: str, interval: float = DEFAULT_INTERVAL):
        self.client = client
        self.prefix = S3Uri.parse(prefix_uri).join("")
        self.interval = interval

    def location(self, row: ManifestRow, destination_bucket: str, destination_key: str) -> S3Uri:
        """Where the checkpoint of copying ``row``'s object to ``destination_bucket/destination_key`` lives."""
        identity = json.dumps([row.bucket, row.key, row.version_id or "", destination_bucket, destination_key])
        return self.prefix.join(hashlib.sha256(identity.encode()).hexdigest() + ".json")

    def _location_of(self, checkpoint: Checkpoint) -> S3Uri:
        row = ManifestRow(checkpoint.source_bucket, checkpoint.source_key, checkpoint.source_version_id)
        return self.location(row, checkpoint.destination_bucket, checkpoint.destination_key)

    def load(self, row: ManifestRow, destination_bucket: str, destination_key: str) -> Checkpoint | None:
        """The checkpoint of this copy, or None if there is none; ``UnreadableCheckpoint`` if it is not one."""
        where = self.location(row, destination_bucket, destination_key)
        try:
            body = self.client.get_object(Bucket=where.bucket, Key=where.key)["Body"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return None
            if code in ("AccessDenied", "403"):
                raise CopyError("AccessDenied", f"read the checkpoint {where}: AccessDenied (checkpoints need "
                                "s3:GetObject, s3:PutObject and s3:DeleteObject on the report prefix, and "
                                "s3:ListBucket on it so that a missing checkpoint answers 404)") from error
            raise classify(error, f"read the checkpoint {where}") from error
        with body:
            return self._read(where, body.read())

    def entries(self) -> Iterator[tuple[Checkpoint | UnreadableCheckpoint, datetime]]:
        """Every checkpoint under the prefix (or the ``UnreadableCheckpoint`` saying why it is none), with the time
        it was last written."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.prefix.bucket, Prefix=self.prefix.key)
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"].endswith(".json") and "/" not in item["Key"][len(self.prefix.key):]:
                    with self.client.get_object(Bucket=self.prefix.bucket, Key=item["Key"])["Body"] as body:
                        data = body.read()
                    try:
                        checkpoint = self._read(S3Uri(self.prefix.bucket, item["Key"]), data)
                    except UnreadableCheckpoint as unreadable:
                        checkpoint = unreadable
                    yield checkpoint, item["LastModified"]

    @staticmethod
    def _read(where: S3Uri, data: bytes) -> Checkpoint:
        try:
            return Checkpoint.from_json(data)
        except ValueError as error:
            raise UnreadableCheckpoint(where, str(error)) from None

    def save(self, checkpoint: Checkpoint) -> S3Uri:
        """Write ``checkpoint``; returns where."""
        where = self._location_of(checkpoint)
        self.client.put_object(Bucket=where.bucket, Key=where.key, ContentType="application/json",
                               Body=json.dumps(asdict(checkpoint)).encode())
        return where

    def create(self, checkpoint: Checkpoint) -> bool:
        """Write ``checkpoint`` only if there is none for its copy yet; returns whether it was written. Workers
        sharing one upload (``split.py``) agree on it this way."""
        return self._put_if_absent(self._location_of(checkpoint), json.dumps(asdict(checkpoint)))

    def claim_completion(self, checkpoint: Checkpoint, claimant: str) -> bool:
        """Whether ``claimant`` may complete ``checkpoint``'s upload: the first to ask gets it, and keeps it when
        it asks again (its retry). Workers sharing one upload (``split.py``) agree on one completer this way,
        since S3 answers a second completion of an upload with success too."""
        where = self._claim_location(checkpoint)
        if self._put_if_absent(where, claimant):
            return True
        with self.client.get_object(Bucket=where.bucket, Key=where.key)["Body"] as body:
            return body.read().decode() == claimant

    def drop_claim(self, checkpoint: Checkpoint) -> None:
        """Remove the completion claim of ``checkpoint``'s upload (the claim outlives the completion, so that no
        other worker completes it again; cleanup drops it with the checkpoint)."""
        where = self._claim_location(checkpoint)
        self.client.delete_object(Bucket=where.bucket, Key=where.key)

    def _claim_location(self, checkpoint: Checkpoint) -> S3Uri:
        """Next to the checkpoint, named after its upload (a later upload of the same copy has another claim)."""
        upload = hashlib.sha256(checkpoint.upload_id.encode()).hexdigest()[:16]
        return self.prefix.join(self._location_of(checkpoint).key[len(self.prefix.key):-len(".json")] + f".{upload}.completer")

    def _put_if_absent(self, where: S3Uri, body: str) -> bool:
        """Write ``body`` at ``where`` unless something is there (a conditional write, ``If-None-Match``)."""
        try:
            self.client.put_object(Bucket=where.bucket, Key=where.key, Body=body.encode(), IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            return False
        return True

    def delete(self, checkpoint: Checkpoint | UnreadableCheckpoint) -> None:
        """Remove ``checkpoint`` (the copy it describes ended), or the object that is not one."""
        where = checkpoint.location if isinstance(checkpoint, UnreadableCheckpoint) else self._location_of(checkpoint)
        self.client.delete_object(Bucket=where.bucket, Key=where.key)
