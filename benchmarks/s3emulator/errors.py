"""S3 errors: the exception handlers raise and its XML error body, with S3's codes, statuses and messages."""

from __future__ import annotations

from xml.sax.saxutils import escape


class S3Error(Exception):
    """An S3 error response: HTTP status, S3 error code, message and extra XML elements (e.g. ``Key``)."""

    def __init__(self, status: int, code: str, message: str, **fields: object) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def to_xml(self, request_id: str) -> bytes:
        extra = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in self.fields.items())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'  # the declaration exactly as handlers._XML_DECLARATION
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted"
        " or completed.",
        UploadId=upload_id,
    )


def access_denied() -> S3Error:
    return S3Error(403, "AccessDenied", "Access Denied")


def precondition_failed(condition: str) -> S3Error:
    return S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", Condition=condition)


def invalid_argument(message: str, name: str, value: str) -> S3Error:
    return S3Error(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def invalid_request(message: str) -> S3Error:
    return S3Error(400, "InvalidRequest", message)


def malformed_xml() -> S3Error:
    return S3Error(
        400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema"
    )


def invalid_object_state(storage_class: str, message: str = "The operation is not valid for the object's storage class") -> S3Error:
    return S3Error(403, "InvalidObjectState", message, StorageClass=storage_class)


def slow_down() -> S3Error:
    return S3Error(503, "SlowDown", "Please reduce your request rate.")


def internal_error() -> S3Error:
    return S3Error(500, "InternalError", "We encountered an internal error. Please try again.")


def not_implemented(what: str) -> S3Error:
    return S3Error(501, "NotImplemented", "A header you provided implies functionality that is not implemented", Header=what)


def bad_digest(algorithm: str) -> S3Error:
    return S3Error(400, "BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")
