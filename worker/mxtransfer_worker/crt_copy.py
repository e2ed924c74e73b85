"""The copy hot path: ``CopyObject`` and ``UploadPartCopy`` through awscrt's native S3 client.

boto3 spends about 3 ms of CPU per request on this kind of machine, most of it in botocore's event hooks,
signing and user-agent building; awscrt's ``S3Client`` (the package behind ``botocore[crt]``) signs, sends,
pools connections and retries in native code, at a tenth of that (field notes, "Peers and limits"). Its
automatic copy type adds a HEAD per copy and fixes its own part size, so each request is sent as a
``DEFAULT`` request named after its S3 operation, built here from botocore's own service model (header names),
so that callers see what the boto3 client would give them: the same answer dicts, and ``ClientError`` with
S3's error code for a failure (``errors.classify`` needs nothing new). Error answers go through botocore's XML
parser; success answers (a flat result element and a few headers) are read here, since botocore's generic
parser costs more CPU than the whole native request. boto3 stays the client for everything else (HEADs,
multipart control calls, listings).

``send`` returns an ``Answer`` that awscrt's own thread completes and hands to the caller's callback, so a caller
keeps thousands of requests in flight (the parts of a large object) without a thread for each; ``copy_object`` and
``upload_part_copy`` wait for it.
awscrt has no timeout for a request's whole life, so one thread cancels requests that outlive the boto3
client's read timeout (they fail with botocore's ``ReadTimeoutError``).

Each request emits botocore's ``before-send.s3.<Operation>`` and ``response-received.s3.<Operation>`` events on
the boto3 client's event system, so what observes that client's requests there (``throttle.RequestGovernor``:
its pace and its counts) observes these too. As in botocore, a ``before-send`` handler that returns a response
is answered with it instead of sending the request. The native client retries nothing (``S3RetryMode.NONE``):
awscrt would retry a SlowDown up to 5 times with backoffs of up to 20 s, unseen by the governor, which then
learns of the throttling only once those retries ran out, while the requests it let through sleep in awscrt.
The copier retries a failed request instead (``ObjectCopier``), and the governor sees every answer.
"""

from __future__ import annotations

import _thread
import ctypes
import functools
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import _awscrt
import awscrt.exceptions
from awscrt import NativeResource
from awscrt.exceptions import AwsCrtError
from awscrt.http import HttpHeaders, HttpRequest
from awscrt.s3 import S3Request, S3RequestType, S3RetryConfig, S3RetryMode
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, HTTPClientError, ReadTimeoutError
from botocore.hooks import first_non_none_response

from .native_s3 import NativeS3, xml_text

#: The operations sent through the native client, by the boto3 method name that callers use.
OPERATIONS = {"copy_object": "CopyObject", "upload_part_copy": "UploadPartCopy"}
#: A 200 answer to these may still carry an ``<Error>`` body (S3 failed after sending the status line).
_ERROR_ROOT = b"<Error>"
#: The leaf elements of a success answer's result (``<ETag>&quot;9b2c...&quot;</ETag>``...).
_LEAF = re.compile(rb"<([A-Za-z0-9]+)>([^<]*)</\1>")
#: Characters ``quote`` never changes, and those with ``/`` (safe in a path).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.\-~]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9_.\-~/]*")


def _quoted(text: str, safe: str) -> str:
    """``urllib.parse.quote``: text of unreserved characters (and ``safe``) as it is, the rest remembered: the
    parts of one object repeat its key, upload id and copy source, and quoting them anew (character by character
    in Python) cost a fifth of the engine's CPU per part; small objects' keys rarely repeat."""
    if (_UNRESERVED_PATH if "/" in safe else _UNRESERVED).fullmatch(text):
        return text
    return _remembered_quote(text, safe)


@functools.lru_cache(maxsize=1024)
def _remembered_quote(text: str, safe: str) -> str:
    return quote(text, safe=safe)


class _Operation:
    """How one S3 operation's arguments become a request and its answer a dict, from botocore's model."""

    def __init__(self, operation_model) -> None:
        self.name = operation_model.name
        self.before_send, self.response_received = f"before-send.s3.{self.name}", f"response-received.s3.{self.name}"
        self.output_shape = operation_model.output_shape
        self.headers: dict[str, str] = {}
        self.query: dict[str, str] = {}
        for member, shape in operation_model.input_shape.members.items():
            location = shape.serialization.get("location")
            if location == "header":
                self.headers[member] = shape.serialization["name"]
            elif location == "querystring":
                self.query[member] = shape.serialization["name"]
        #: answer header (lower case) -> (member, type); the result element's member and its leaves' types
        self.answer_headers: dict[str, tuple[str, str]] = {}
        self.result, self.result_types = "", {}
        for member, shape in self.output_shape.members.items():
            location = shape.serialization.get("location")
            if location == "header":
                self.answer_headers[shape.serialization["name"].lower()] = (member, shape.type_name)
            elif location is None and shape.type_name == "structure":
                self.result, self.result_types = member, {name: leaf.type_name for name, leaf in shape.members.items()}

    def success(self, status: int, headers, body: bytes) -> dict:
        """A success answer as botocore's parser gives it, for the flat result element these operations have."""
        answer: dict = {"ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(headers)}}
        for name, value in headers:
            member = self.answer_headers.get(name.lower())
            if member is not None:
                answer[member[0]] = _typed(value, member[1])
        result = {}
        for name, value in _LEAF.findall(body):
            member = name.decode()
            if member in self.result_types:
                result[member] = _typed(xml_text(value), self.result_types[member])
        answer[self.result] = result
        return answer


def _typed(text: str, type_name: str):
    if type_name == "timestamp":
        return datetime.fromisoformat(text)
    if type_name == "boolean":
        return text == "true"
    if type_name in ("integer", "long"):
        return int(text)
    return text


def _copy_source_header(value) -> str:
    """``CopySource`` as S3 wants it in ``x-amz-copy-source`` (what botocore's copy-source handler sends)."""
    if isinstance(value, str):
        return value
    header = _quoted(f"{value['Bucket']}/{value['Key']}", "/~")
    if value.get("VersionId"):
        header += "?versionId=" + _quoted(value["VersionId"], "")
    return header


class CrtCopyClient:
    """Sends ``copy_object`` and ``upload_part_copy`` (boto3's arguments and answers) through awscrt's
    ``S3Client``, with the endpoint, region, credentials, addressing style, TLS and timeout of the boto3
    ``client`` it is built from, over at most ``connections`` connections (``NativeS3``). Thread-safe; the native client is
    freed with it (requests a stopping worker abandoned keep it alive until they end)."""

    def __init__(self, client, connections: int) -> None:
        meta = client.meta
        self._native = NativeS3(client, connections, S3RetryConfig(retry_mode=S3RetryMode.NONE))
        self._events = meta.events
        self._deadlines = _Deadlines(meta.config.read_timeout)
        self._operations = {method: _Operation(meta.service_model.operation_model(name))
                            for method, name in OPERATIONS.items()}

    @property
    def shutdown_event(self) -> threading.Event:
        """Set once the native client has shut down, its connections closed (after the last reference to it, this
        client's or a request's, is gone)."""
        return self._native.crt.shutdown_event

    def copy_object(self, **args) -> dict:
        return self.send("copy_object", args).result()

    def upload_part_copy(self, **args) -> dict:
        return self.send("upload_part_copy", args).result()

    # -- one request -----------------------------------------------------------------------------------------
    def _request(self, operation: _Operation, args: dict) -> tuple[str, str, list[tuple[str, str]]]:
        """``(host, path, headers)`` of the request for ``args`` (a list: awscrt's headers cost a call each)."""
        host, path = self._native.address(args["Bucket"], _quoted(args["Key"], "/~"))
        headers = [("Host", host), ("Content-Length", "0")]
        query = []
        for name, value in args.items():
            header = operation.headers.get(name)
            if header is not None:
                headers.append((header, _copy_source_header(value) if name == "CopySource" else str(value)))
            elif name in operation.query:
                query.append(f"{operation.query[name]}={_quoted(str(value), '')}")
            elif name not in ("Bucket", "Key"):
                raise TypeError(f"{operation.name}: argument {name} is not supported by the native copy client")
        if query:
            path += "?" + "&".join(query)
        return host, path, headers

    def send(self, method: str, args: dict, on_done: Callable[[Answer], None] | None = None) -> Answer:
        """Send one request (``method`` with boto3's arguments) without waiting: the ``Answer`` boto3 would give (a
        dict, or the exception it would raise), handed to ``on_done`` once there (on awscrt's thread, or on this
        one when a ``before-send`` handler answered)."""
        operation = self._operations[method]
        host, path, headers = self._request(operation, args)
        prepared = AWSPreparedRequest("PUT", f"{self._native.scheme}://{host}{path}", dict(headers), None, False)
        given = first_non_none_response(self._events.emit(operation.before_send, request=prepared))
        answer = Answer(on_done)
        if given is not None:
            self._finish(answer, operation,
                         lambda: self._parse(operation, given.status_code, list(given.headers.items()), given.content))
            return answer
        http_request = HttpRequest("PUT", path, HttpHeaders(headers))
        self._deadlines.watch(_NativeRequest(self._native, http_request, _Callbacks(self, operation, answer)), answer)
        return answer

    def _finish(self, answer: Answer, operation: _Operation, outcome) -> None:
        """Complete ``answer`` with ``outcome()`` (the answer dict, or the exception it raises), after the
        ``response-received`` event."""
        parsed = exception = None
        try:
            parsed = outcome()
        except ClientError as error:
            parsed, exception = error.response, error
        except Exception as error:  # noqa: BLE001 - handed to the caller through the answer
            exception = error
        self._deadlines.forget(answer)
        self._events.emit(operation.response_received, response_dict=None, parsed_response=parsed,
                          context={}, exception=None if isinstance(exception, ClientError) else exception)
        answer.complete(parsed, exception)

    def _answer(self, operation: _Operation, answer: Answer, error_code: int, status: int, headers, body: bytes) -> dict:
        """The answer of a native request that ended with ``error_code`` (0 for success), with the answer's
        ``status``, ``headers`` and ``body`` if there was one (awscrt's ``S3ResponseError`` for an error answer)."""
        if not error_code or status and headers is not None:
            return self._parse(operation, status, headers, body)
        if self._deadlines.expired(answer):
            raise ReadTimeoutError(endpoint_url=f"{operation.name} to {self._native.host}")
        error = awscrt.exceptions.from_code(error_code)
        # S3's throttle, not a broken connection: the request governor slows down and the engine retries the
        # object as it does for SlowDown
        if throttle := self._native.slow_down(error, operation.name):
            raise throttle
        if isinstance(error, AwsCrtError):
            raise HTTPClientError(error=f"{operation.name}: {error.name}: {error.message}")
        raise error

    def _parse(self, operation: _Operation, status: int, headers, body: bytes) -> dict:
        """The answer as the boto3 client gives it; raises ``ClientError`` for an error answer."""
        if status == 200 and (not body.strip() or _ERROR_ROOT in body[:256]):
            status = 500  # like botocore: an empty or error body on 200 is a failure worth retrying
        if status < 300:
            return operation.success(status, headers, body)
        raise self._native.client_error(operation.name, status, headers, body)


class Answer:
    """The outcome of one request of ``CrtCopyClient.send``: ``result()`` and ``exception()`` wait for it, as a
    ``concurrent.futures.Future``'s do. Not one of those: its condition (a Python ``RLock`` and ``Condition``
    made, entered and notified per request) was a tenth of a small copy's CPU; this is a plain lock, held until
    the outcome is in, and one callback given when the request is sent (so none can be added too late)."""

    __slots__ = ("_pending", "_result", "_exception", "_on_done")

    def __init__(self, on_done: Callable[[Answer], None] | None) -> None:
        self._pending = _thread.allocate_lock()
        self._pending.acquire()
        self._result = self._exception = None
        self._on_done = on_done

    def complete(self, result, exception: BaseException | None) -> None:
        self._result, self._exception = result, exception
        self._pending.release()
        if self._on_done is not None:
            self._on_done(self)

    def done(self) -> bool:
        return not self._pending.locked()

    def cancel(self) -> bool:
        """False: a sent request cannot be taken back (as a running ``Future``)."""
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the outcome came within ``timeout`` seconds (None: however long it takes)."""
        if self._pending.acquire(timeout=-1 if timeout is None else timeout):
            self._pending.release()
            return True
        return False

    def exception(self) -> BaseException | None:
        self.wait()
        return self._exception

    def result(self):
        self.wait()
        if self._exception is not None:
            raise self._exception
        return self._result


#: Marks the threads whose Python thread state ``_keep_thread_state`` kept: a thread state's own.
_kept = threading.local()


def _keep_thread_state() -> None:
    """Keep the calling thread's Python thread state for the rest of the thread's life. awscrt's event-loop
    threads enter Python through ``PyGILState_Ensure``, whose ``PyGILState_Release`` destroys the thread state
    it made: four times per request (headers, body, finish, shutdown), each a thread state made and destroyed
    with its 16 KiB frame stack mapped, faulted in and unmapped (``mmap``/``munmap``, TLB shootdowns), about
    a sixth of a small copy's CPU. One more ``PyGILState_Ensure`` that is never released keeps the state's
    count above zero, so later calls reuse it (Python has no other way to attach a thread state to a thread it
    did not start); a thread state per event-loop thread is left behind when the native client ends."""
    if not hasattr(_kept, "state"):
        _kept.state = ctypes.pythonapi.PyGILState_Ensure()


class _Callbacks:
    """What awscrt's native side calls for one request of ``CrtCopyClient.send`` (the methods of awscrt's private
    ``_S3RequestCore``), which completes the request's answer on awscrt's thread."""

    __slots__ = ("client", "operation", "answer", "status", "headers", "body")

    def __init__(self, client: CrtCopyClient, operation: _Operation, answer: Answer) -> None:
        self.client, self.operation, self.answer = client, operation, answer
        self.status, self.headers, self.body = 200, [], []

    # Each callback keeps its thread's Python thread state: awscrt calls them on more than one of its threads
    # (headers and the finish on one, the body, progress and shutdown on another, in one run).
    def _on_headers(self, status_code: int, headers: list) -> None:
        _keep_thread_state()
        self.status, self.headers = status_code, headers

    def _on_body(self, chunk: bytes, offset: int) -> None:
        _keep_thread_state()
        self.body.append(chunk)

    def _on_finish(self, error_code: int, status_code: int, error_headers, error_body: bytes, *_) -> None:
        _keep_thread_state()
        status, headers, body = ((status_code, error_headers, error_body) if error_code
                                 else (self.status, self.headers, b"".join(self.body)))
        self.client._finish(self.answer, self.operation,
                            lambda: self.client._answer(self.operation, self.answer, error_code, status, headers, body))

    def _on_shutdown(self) -> None:
        _keep_thread_state()

    def _on_progress(self, progress: int) -> None:
        _keep_thread_state()


class _NativeRequest(S3Request):
    """One ``DEFAULT`` request of the native client, made through awscrt's binding with ``_Callbacks``.
    ``S3Client.make_request`` builds a future and an event per request (two conditions and their locks), which
    ``send`` does not need, and calls back with keyword arguments: that was about a tenth of a small copy's CPU.
    The binding's arguments are those ``S3Request.__init__`` passes in awscrt 0.38 (pinned in setup.cfg)."""

    __slots__ = ()

    def __init__(self, native: NativeS3, request: HttpRequest, callbacks: _Callbacks) -> None:
        NativeResource.__init__(self)
        self._binding = _awscrt.s3_client_make_meta_request(
            self, native.crt, request, S3RequestType.DEFAULT, callbacks.operation.name, None, None, None, None,
            native.region, 0, 0, False, None, 0, 0, 0, 0, False, False, 0.0, False, 0, callbacks)


class _Deadlines:
    """Cancels native requests still in flight ``timeout`` seconds after they were sent: one thread, waking every
    second while requests are in flight, for all the requests of a client (awscrt bounds connecting, not a
    request's whole life). Requests are watched in the order they were sent, which is their deadlines' order."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._watched: dict[Answer, tuple[float, object]] = {}
        self._expired: set[Answer] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, request, answer: Answer) -> None:
        """Cancel ``request`` if ``answer`` (its outcome) is not ``forget``-ten in time."""
        with self._lock:
            self._watched[answer] = (time.monotonic() + self.timeout, request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._sweep, name="mxtransfer-crt-deadlines", daemon=True)
                self._thread.start()

    def expired(self, answer: Answer) -> bool:
        """Whether ``answer``'s request was cancelled for outliving its deadline."""
        with self._lock:
            return answer in self._expired

    def forget(self, answer: Answer) -> None:
        """``answer``'s request ended."""
        with self._lock:
            self._watched.pop(answer, None)
            self._expired.discard(answer)

    def _sweep(self) -> None:
        """Until no request is watched (``watch`` starts it again)."""
        while True:
            time.sleep(1.0)
            now, late = time.monotonic(), []
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return
                for answer, (deadline, request) in self._watched.items():
                    if deadline > now:
                        break  # the rest were sent later
                    late.append((answer, request))
                for answer, _ in late:
                    del self._watched[answer]
                    self._expired.add(answer)
            for _, request in late:
                request.cancel()
