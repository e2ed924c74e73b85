"""The JSON documents the engine reads back from S3 (checkpoints, shard summaries, completion report manifests,
hand-off records): each must be one JSON object, and anything else is refused the same way."""

from __future__ import annotations

import json


def json_object(data: bytes, not_one: str | None = None) -> dict:
    """The JSON object ``data`` holds; ``ValueError`` saying why it holds none: ``not JSON (...)`` (invalid JSON or
    UTF-8) or ``not a JSON object but <type>``, after ``not_one`` (what the caller says the document is not) and in
    parentheses when given."""
    try:
        value = json.loads(data)
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = f"not JSON ({error})"
    else:
        if isinstance(value, dict):
            return value
        why = f"not a JSON object but {type(value).__name__}"
    raise ValueError(why if not_one is None else f"{not_one} ({why})")
