"""Benchmarks and the tools they need (the S3 emulator lives in :mod:`benchmarks.s3emulator`)."""
