"""The JSON documents the engine reads back from S3 (checkpoints, shard summaries, completion report manifests,
hand-off records): each must be one JSON object, and anything else is refused the same way."""

from __future__ import annotations

import json


def json_object(data: bytes) -> dict:
    """The JSON object ``data`` holds; ``ValueError`` saying why it holds none: ``not JSON (...)`` (invalid JSON or
    UTF-8) or ``not a JSON object but <type>``."""
    try:
        value = json.loads(data)
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object but {type(value).__name__}")
    return value
