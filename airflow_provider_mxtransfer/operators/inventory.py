"""Write the manifest of a transfer: list sources (or read an S3 Inventory report) into a CSV in S3."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.exceptions import AirflowException, AirflowFailException

from mxtransfer_worker.inventory import ListingCounts, ObjectFilter, select_inventory, select_listed
from mxtransfer_worker.listing import DEFAULT_LISTING_CONCURRENCY, ListingError
from mxtransfer_worker.manifest import SIZES_SUFFIX, upload_manifest
from mxtransfer_worker.options import CopyOptions
from mxtransfer_worker.s3uri import S3Uri

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class GenerateInventoryOperator(AwsBaseOperator[S3Hook]):
    """List source bucket/prefix pairs, or read an S3 Inventory report, into a manifest at ``manifest_uri``.

    Streams: keys go from the listing through the filters into the uploaded manifest (and its ``.sizes``
    sidecar, used for sharding) without being collected. Returns (XCom) the manifest URI and counts, never
    keys. An empty selection writes an empty manifest and logs it, or fails with ``fail_on_empty``. A source
    bucket that is missing or may not be listed fails the task at once, without retries, naming the bucket.

    :param manifest_uri: ``s3://bucket/key`` to write the manifest to (templated).
    :param sources: ``s3://bucket/prefix`` pairs to list (templated). With ``inventory_manifest`` they only
        restrict which inventory rows are kept.
    :param inventory_manifest: ``s3://.../manifest.json`` of a CSV S3 Inventory report to read instead of
        listing (templated).
    :param include: glob patterns; keep only keys matching one (relative to their source prefix; templated).
    :param exclude: glob patterns; leave out keys matching any (templated).
    :param modified_after: keep objects last modified at or after this time, e.g. ``{{ data_interval_start }}``
        (templated; ISO 8601 text or datetime; naive means UTC).
    :param modified_before: keep objects last modified before this time, e.g. ``{{ data_interval_end }}``.
    :param min_size: keep objects of at least this many bytes (templated).
    :param max_size: keep objects of at most this many bytes (templated).
    :param skip_identical_at: ``s3://bucket/prefix`` the transfer copies to; objects whose destination key
        (``source_prefix`` replaced by this prefix, as the copy does) already holds the same size and ETag
        are left out. A cheap pre-filter from a second listing: the copy engine still verifies every row.
    :param source_prefix: the copy's source prefix, used with ``skip_identical_at`` (templated).
    :param fail_on_empty: fail the task when nothing is selected instead of writing an empty manifest.
    :param requester_pays: list requester-pays buckets.
    :param listing_concurrency: ``ListObjectsV2`` requests in flight per source: prefixes are found with
        delimited listings and listed at once through awscrt, and a prefix whose listing runs to more pages is
        split into key ranges listed at once too (the manifest is then in key order within each prefix or
        range only). 0 lists one page at a time through boto3, in key order. ``skip_identical_at`` always
        lists in key order.
    """

    aws_hook_class = S3Hook
    template_fields: Sequence[str] = aws_template_fields(
        "manifest_uri", "sources", "inventory_manifest", "include", "exclude", "modified_after",
        "modified_before", "min_size", "max_size", "skip_identical_at", "source_prefix",
    )
    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        manifest_uri: str,
        sources: str | Sequence[str] = (),
        inventory_manifest: str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        modified_after: str | datetime | None = None,
        modified_before: str | datetime | None = None,
        min_size: int | str | None = None,
        max_size: int | str | None = None,
        skip_identical_at: str | None = None,
        source_prefix: str = "",
        fail_on_empty: bool = False,
        requester_pays: bool = False,
        listing_concurrency: int = DEFAULT_LISTING_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifest_uri = manifest_uri
        self.sources = sources
        self.inventory_manifest = inventory_manifest
        self.include = include
        self.exclude = exclude
        self.modified_after = modified_after
        self.modified_before = modified_before
        self.min_size = min_size
        self.max_size = max_size
        self.skip_identical_at = skip_identical_at
        self.source_prefix = source_prefix
        self.fail_on_empty = fail_on_empty
        self.requester_pays = requester_pays
        self.listing_concurrency = listing_concurrency

    def execute(self, context: Context) -> dict[str, Any]:
        sources = [S3Uri.parse(uri) for uri in ([self.sources] if isinstance(self.sources, str) else self.sources)]
        if not sources and not self.inventory_manifest:
            raise ValueError(f"{self.task_id}: give sources (s3://bucket/prefix) to list, or an inventory_manifest")
        object_filter = ObjectFilter(
            include=self.include or (),
            exclude=self.exclude or (),
            modified_after=_timestamp(self.modified_after, "modified_after"),
            modified_before=_timestamp(self.modified_before, "modified_before"),
            min_size=_size(self.min_size, "min_size"),
            max_size=_size(self.max_size, "max_size"),
        )
        client = self.hook.conn
        counts = ListingCounts()
        if self.inventory_manifest:
            if self.skip_identical_at:
                raise ValueError("skip_identical_at needs ETags from a listing: it cannot be used with inventory_manifest")
            rows = select_inventory(client, self.inventory_manifest, object_filter, counts, sources)
        else:
            skip_identical = None
            if self.skip_identical_at:
                destination = S3Uri.parse(self.skip_identical_at)
                skip_identical = CopyOptions(destination.bucket, destination.key, self.source_prefix or "")
            rows = select_listed(client, sources, object_filter, counts, skip_identical, self.requester_pays,
                                 self.listing_concurrency)
        try:
            stats = upload_manifest(client, rows, self.manifest_uri)
        except ListingError as error:
            if error.permanent:  # a missing bucket or denied access: retries would fail the same way
                raise AirflowFailException(str(error)) from error
            raise

        result = {
            "manifest": self.manifest_uri,
            "sizes": None if stats.unknown_sizes else self.manifest_uri + SIZES_SUFFIX,
            "objects": stats.rows,
            "bytes": stats.bytes,
            "unknown_sizes": stats.unknown_sizes,
            "listed": counts.listed,
            "filtered_out": counts.filtered_out,
            "skipped_identical": counts.identical,
            "skipped_identical_bytes": counts.identical_bytes,
        }
        where = ", ".join(counts.sources)
        if stats.rows == 0:
            message = (
                f"nothing to transfer from {where}: listed {counts.listed} objects, {counts.filtered_out} left out "
                f"by the filters, {counts.identical} already identical at the destination"
            )
            if self.fail_on_empty:
                raise AirflowException(message + " (fail_on_empty is set)")
            self.log.warning("%s; wrote an empty manifest to %s", message, self.manifest_uri)
        else:
            self.log.info(
                "manifest %s: %d objects, %d bytes from %s (listed %d, %d left out by the filters, %d already "
                "identical at the destination)", self.manifest_uri, stats.rows, stats.bytes, where, counts.listed,
                counts.filtered_out, counts.identical,
            )
        return result


def _timestamp(value: str | datetime | None, name: str) -> datetime | None:
    """A datetime from a rendered template (ISO 8601 text), a datetime, or nothing ("", "None")."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    if text in ("", "None"):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 date or time: {text!r}") from None


def _size(value: int | str | None, name: str) -> int | None:
    """A byte count from an int or decimal text; nothing for None or ""."""
    if value is None or value == "" or value == "None":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number of bytes, got {value!r}") from None
