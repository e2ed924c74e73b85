"""What S3's checksums and ETags say about two objects' bytes: whether HEAD answers (or a copy's answer) show the
same content, and which source checksums S3 can verify for a multipart copy."""

from __future__ import annotations

from dataclasses import dataclass

#: Full-object checksums S3 can compute for a multipart upload from its parts, so they can be verified.
FULL_OBJECT_ALGORITHMS = ("CRC64NVME", "CRC32C", "CRC32")


@dataclass(frozen=True)
class Checksum:
    """An additional checksum of an object: its algorithm, its value, and whether it covers the whole object
    (``FULL_OBJECT``) or is made of its parts' (``COMPOSITE``)."""

    algorithm: str
    value: str
    full_object: bool


def checksum_of(head: dict) -> Checksum | None:
    """The additional checksum a HEAD (with ``ChecksumMode=ENABLED``) reports, if any."""
    for name, value in head.items():
        if name.startswith("Checksum") and name != "ChecksumType" and isinstance(value, str):
            checksum_type = head.get("ChecksumType")
            if checksum_type is None:  # servers that omit the type: a multipart ETag means COMPOSITE
                checksum_type = "COMPOSITE" if "-" in head.get("ETag", "") else "FULL_OBJECT"
            return Checksum(name[len("Checksum"):], value, checksum_type == "FULL_OBJECT")
    return None


def full_object_checksum(source: dict) -> Checksum | None:
    """The source's checksum if S3 can compute it for a multipart upload from its parts, and so verify it."""
    checksum = checksum_of(source)
    return checksum if checksum and checksum.full_object and checksum.algorithm in FULL_OBJECT_ALGORITHMS else None


def compare_checksums(source: dict, other: dict) -> tuple[str, bool] | None:
    """``(algorithm, equal)`` when both HEAD answers carry checksums that decide whether the bytes are equal:
    full-object checksums of one algorithm always do; composite (per-part) ones only when equal, since the
    same bytes uploaded with other part sizes give another composite value. None when they cannot decide."""
    first = checksum_of(source)
    second = first and checksum_of(other)
    if not second or first.algorithm != second.algorithm or first.full_object != second.full_object:
        return None
    equal = first.value == second.value
    if not first.full_object and not equal:
        return None
    return first.algorithm, equal


def same_content(source: dict, destination: dict) -> str | None:
    """Why ``destination`` holds the same bytes as ``source`` (both HEAD answers), or None if it does not or
    cannot be shown to. Sizes must match; then a deciding checksum, or equal ETags, decide."""
    if source["ContentLength"] != destination["ContentLength"]:
        return None
    checksums = compare_checksums(source, destination)
    if checksums:
        algorithm, equal = checksums
        return f"same size and {algorithm}" if equal else None
    if source["ETag"] == destination["ETag"]:
        return "same size and ETag"
    # No comparable checksum (e.g. a legacy source without one, copied by parts): like `aws s3 sync`, accept a
    # destination of the same size written after the source was last modified.
    if destination["LastModified"] >= source["LastModified"]:
        return "same size, destination newer than source (no comparable checksum)"
    return None
