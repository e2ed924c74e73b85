"""``listing.ParallelLister``: many prefixes listed at once through awscrt, against moto's server."""

from __future__ import annotations

import pytest

from mxtransfer_worker.inventory import ListingCounts, ObjectFilter, select_listed
from mxtransfer_worker.listing import ListingError, ParallelLister, list_prefix
from mxtransfer_worker.s3uri import S3Uri

#: Loose keys, nested prefixes, an empty-named level and keys that need URL encoding in the listing.
KEYS = (["top-a", "top-z", "a//double", "a/b/c/deep", "ünï/çødé", "sp ace/1+1", "tab\there/x", "100%/y"]
        + [f"p{index % 3}/sub{index % 2}/{index:03d}" for index in range(30)])


@pytest.fixture
def bucket(s3, make_bucket):
    name = make_bucket("src")
    for index, key in enumerate(KEYS):
        s3.put_object(Bucket=name, Key=key, Body=b"x" * index)
    return name


@pytest.mark.parametrize("concurrency", [1, 2, 64])
def test_lists_every_key_once_with_sizes_and_etags(s3, bucket, concurrency):
    listed = list(ParallelLister(s3, concurrency).objects(S3Uri(bucket, "")))
    assert sorted(item.key for item in listed) == sorted(KEYS)
    by_key = {item.key: item for item in listed}
    for reference in list_prefix(s3, S3Uri(bucket, "")):
        assert (by_key[reference.key].size, by_key[reference.key].etag, by_key[reference.key].last_modified) == \
            (reference.size, reference.etag, reference.last_modified)


def test_keys_of_one_prefix_come_in_key_order(s3, bucket):
    listed = [item.key for item in ParallelLister(s3, 8).objects(S3Uri(bucket, "p1/"))]
    assert sorted(listed) == sorted(key for key in KEYS if key.startswith("p1/"))
    for sub in ("p1/sub0/", "p1/sub1/"):
        part = [key for key in listed if key.startswith(sub)]
        assert part == sorted(part) and part


def test_pages_continue_across_partitions(s3, make_bucket):
    """More keys than a page (moto's pages hold 1,000 keys), in a flat prefix and two nested ones."""
    name = make_bucket("big")
    keys = [f"flat/{index:05d}" for index in range(1100)] + [f"n/{index % 2}/{index:05d}" for index in range(40)]
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=b"")
    listed = [item.key for item in ParallelLister(s3, 4).objects(S3Uri(name, ""))]
    assert len(listed) == len(keys) and set(listed) == set(keys)


def test_select_listed_in_parallel_filters_and_counts_like_the_sequential_listing(s3, bucket):
    selected = ObjectFilter(include=("*/sub1/*",), min_size=10)
    counts, parallel_counts = ListingCounts(), ListingCounts()
    sequential = list(select_listed(s3, [S3Uri(bucket, "")], selected, counts))
    parallel = list(select_listed(s3, [S3Uri(bucket, "")], selected, parallel_counts, concurrency=16))
    assert sorted(parallel, key=lambda row: row.key) == sequential and len(sequential) > 5
    assert parallel_counts == counts


def test_missing_bucket_is_named(s3):
    with pytest.raises(ListingError, match="cannot list s3://no-such-bucket-here/p/: NoSuchBucket") as caught:
        list(ParallelLister(s3, 4).objects(S3Uri("no-such-bucket-here", "p/")))
    assert caught.value.permanent
