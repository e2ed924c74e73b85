"""Check a copy object by object: every source object at its destination key, same size, bytes and metadata."""

from __future__ import annotations

import hashlib

from mxtransfer_worker.inventory import list_prefix
from mxtransfer_worker.s3uri import S3Uri

#: Object headers a copy must carry.
CARRIED = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Metadata")


def compare_prefix(s3, source: S3Uri, destination: S3Uri) -> tuple[int, list[str]]:
    """Compare every object under ``source`` with the object at its destination key (the source prefix
    replaced by ``destination``'s); returns how many objects were checked and one line per problem."""
    checked, problems = 0, []
    for listed in list_prefix(s3, source):
        checked += 1
        key = destination.key + listed.key[len(source.key):]
        where = f"s3://{source.bucket}/{listed.key} -> s3://{destination.bucket}/{key}"
        try:
            copy = s3.head_object(Bucket=destination.bucket, Key=key)
        except s3.exceptions.ClientError as error:
            problems.append(f"{where}: missing at the destination ({error.response['Error'].get('Code')})")
            continue
        original = s3.head_object(Bucket=source.bucket, Key=listed.key)
        if copy["ContentLength"] != original["ContentLength"]:
            problems.append(f"{where}: {copy['ContentLength']} bytes instead of {original['ContentLength']}")
            continue
        for header in CARRIED:
            if copy.get(header) != original.get(header):
                problems.append(f"{where}: {header} is {copy.get(header)!r}, the source's {original.get(header)!r}")
        if _sha256(s3, destination.bucket, key) != _sha256(s3, source.bucket, listed.key):
            problems.append(f"{where}: content differs (SHA-256)")
    return checked, problems


def _sha256(s3, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        for chunk in body.iter_chunks(1024 * 1024):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()
