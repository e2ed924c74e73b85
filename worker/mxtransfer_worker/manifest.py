"""S3 Batch Operations CSV manifests (``bucket,key[,versionId]``, keys URL-encoded) and S3 Inventory reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One object named by a manifest: its bucket, decoded key, optional version id and size (if known).

    ``line`` is the row's 1-based line number in the manifest it was read from (0 when built in code).
    """

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    line: int = 0
