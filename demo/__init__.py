"""``make demo``: an end-to-end run of the aggregation DAG against a local S3 server (``python -m demo``)."""
