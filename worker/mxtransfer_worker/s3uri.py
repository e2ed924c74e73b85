"""Parse and build ``s3://bucket/key`` URIs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class S3Uri:
    """A bucket and a key (or key prefix), as written ``s3://bucket/key``."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> "S3Uri":
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in S3 URI: {uri!r}")
        return cls(bucket, key)

    def join(self, name: str) -> "S3Uri":
        """The URI of ``name`` under this one, treating this key as a folder."""
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Uri(self.bucket, prefix + name)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
