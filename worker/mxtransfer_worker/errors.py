"""Classify S3 errors as temporary (retry) or permanent, with a message naming the cause and a hint."""

from __future__ import annotations

import logging
import re

from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError, HTTPClientError,
                                 SSLError)

#: Codes S3 answers when it is overloaded or failed internally: worth retrying with backoff.
TEMPORARY_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
    "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable", "OperationAborted",
    "500", "502", "503", "504",
})

#: What a user should do about the permanent errors the engine meets.
HINTS = {
    "NoSuchKey": "the object does not exist (deleted, or wrong key or version id in the manifest)",
    "NoSuchBucket": "the bucket does not exist or its name is misspelled",
    "NoSuchVersion": "the version id named in the manifest does not exist",
    "AccessDenied": "check that the job role may read the source (s3:GetObject, s3:GetObjectTagging) and write "
    "the destination (s3:PutObject, s3:PutObjectTagging), the bucket policies, KMS key policies, and the "
    "expected bucket owner accounts",
    "InvalidObjectState": "the object is archived (Glacier Flexible Retrieval/Deep Archive or an archive tier): "
    "restore it first (RestoreObject) and re-run the transfer",
    "PreconditionFailed": "the source changed while it was being copied (its ETag no longer matches), or "
    "someone else wrote the destination meanwhile; re-run to compare and copy again",
    "KMS.AccessDeniedException": "the job role may not use the KMS key of the source or destination object",
    "KMS.DisabledException": "the KMS key is disabled",
    "NoSuchUpload": "the multipart upload was aborted or expired (a lifecycle rule may abort incomplete uploads)",
    "UntrustedCertificate": "the endpoint's certificate is not signed by a CA the worker trusts (a private "
    "S3-compatible endpoint, or a proxy that signs with its own CA): give its CA bundle as the operators' verify "
    "or AWS_CA_BUNDLE",
}


#: Secrets a text may carry: query parameters and header values of presigned or signed requests, and access
#: key ids (``AKIA``/``ASIA`` and 16 more characters).
_SECRETS = (
    (re.compile(r"(?i)\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|AWSAccessKeyId|Signature|"
                r"aws_session_token|aws_secret_access_key)(\s*[=:]\s*['\"]?)[^&\s'\"<>,]+"), r"\1\2<redacted>"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "<access key id>"),
)


def redact(text: str) -> str:
    """``text`` without the signatures, credentials and session tokens of signed requests or presigned URLs it
    may quote (S3 and botocore messages sometimes echo a request's URL or credential scope)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record with its message ``redact``-ed (arguments merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class CopyError(Exception):
    """A failure to copy one object: an error ``code``, a message for people (secrets redacted), and whether a
    retry may help."""

    def __init__(self, code: str, message: str, temporary: bool = False):
        message = redact(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.temporary = temporary


def classify(error: Exception, action: str) -> CopyError:
    """Turn a botocore exception raised while doing ``action`` (e.g. "copy s3://a/b") into a ``CopyError``."""
    if isinstance(error, CopyError):
        return error
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code") or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        code = {"404": "NotFound", "403": "AccessDenied", "412": "PreconditionFailed"}.get(code, code)
        text = details.get("Message") or code
        if "kms" in text.lower() and code == "AccessDenied":
            code = "KMS.AccessDeniedException"
        hint = HINTS.get(code)
        message = f"{action}: {code}: {text}" + (f" ({hint})" if hint else "")
        return CopyError(code, message, temporary=code in TEMPORARY_CODES)
    if isinstance(error, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(error):  # no retry makes it trusted
        return CopyError("UntrustedCertificate", f"{action}: {error} ({HINTS['UntrustedCertificate']})")
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return CopyError("ConnectionError", f"{action}: connection failed: {error}", temporary=True)
    if isinstance(error, BotoCoreError):
        return CopyError(type(error).__name__, f"{action}: {error}", temporary=False)
    raise error
