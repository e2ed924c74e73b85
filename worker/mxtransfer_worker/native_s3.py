"""awscrt's native ``S3Client``, set up like a boto3 S3 client: the engine's hot paths (copy requests in
``crt_copy``, the parallel listing in ``listing``) send through it what would cost too much CPU in botocore."""

from __future__ import annotations

import resource
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import unescape

from awscrt.auth import AwsCredentialsProvider
from awscrt.exceptions import AwsCrtError
from awscrt.io import ClientBootstrap, ClientTlsContext, DefaultHostResolver, EventLoopGroup, TlsContextOptions
from awscrt.s3 import S3Client, S3RequestTlsMode, S3RetryConfig
from botocore.awsrequest import HeadersDict
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.utils import is_valid_ipv4_endpoint_url, is_valid_ipv6_endpoint_url


#: Throughput target per connection wanted: awscrt sizes its connection pool at 10 connections per 4 Gbit/s.
_GBPS_PER_CONNECTION = 0.4
#: awscrt's name for an answer of S3 that asks to slow down (503 SlowDown).
_CRT_SLOW_DOWN = "AWS_ERROR_S3_SLOW_DOWN"
#: File descriptors left for everything but the native client's connections (manifest, reports, boto3's pool).
_RESERVED_DESCRIPTORS = 256


def connection_budget(wanted: int) -> int:
    """``wanted`` connections, or as many as the limit on open files leaves room for, after raising its soft
    limit towards the hard one (containers often start at 1,024): a connection awscrt cannot open fails its
    request instead of waiting for one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + _RESERVED_DESCRIPTORS
    if needed > soft:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    return max(1, min(wanted, soft - _RESERVED_DESCRIPTORS))


class NativeS3:
    """An awscrt ``S3Client`` (``crt``) with the endpoint, region, addressing style and credentials of the boto3
    ``client``, at most ``connections`` connections (fewer if open files are limited: ``connection_budget``;
    requests beyond them wait in awscrt's queue); ``address`` says where a request for a bucket goes."""

    def __init__(self, client, connections: int, retry_config: S3RetryConfig | None = None) -> None:
        refuse_proxy(client)
        connections = connection_budget(connections)
        meta = client.meta
        self.region = meta.region_name
        self._service_model = meta.service_model
        self._parser = create_parser("rest-xml")  # thread-safe: one serves all threads of a boto3 client
        endpoint = urlsplit(meta.endpoint_url)
        self.scheme = endpoint.scheme
        self.host, self.base_path = endpoint.netloc, endpoint.path.rstrip("/")
        style = (meta.config.s3 or {}).get("addressing_style") or "auto"
        # as botocore does: an IP address or localhost cannot take the bucket as a host name
        self.path_style = style == "path" or (style == "auto" and (
            endpoint.hostname == "localhost" or is_valid_ipv4_endpoint_url(meta.endpoint_url)
            or is_valid_ipv6_endpoint_url(meta.endpoint_url)))
        credentials = _credentials_provider(client._get_credentials())
        event_loops = EventLoopGroup()
        # The native client opens connections for its throughput target (10 connections per 4 Gbit/s: about 30
        # by default, which capped copies at ~25 in flight); server-side copies move no bytes through this host,
        # so the target is set from the connections wanted, which ``max_active_connections_override`` then caps.
        self.crt = S3Client(
            bootstrap=ClientBootstrap(event_loops, DefaultHostResolver(event_loops)), region=meta.region_name,
            tls_mode=S3RequestTlsMode.ENABLED if endpoint.scheme == "https" else S3RequestTlsMode.DISABLED,
            tls_connection_options=_tls_connection_options(client) if endpoint.scheme == "https" else None,
            credential_provider=credentials,
            throughput_target_gbps=max(10.0, connections * _GBPS_PER_CONNECTION),
            max_active_connections_override=connections, retry_config=retry_config)

    def client_error(self, operation_name: str, status: int, headers, body: bytes) -> ClientError:
        """The ``ClientError`` boto3 would raise for an error answer to ``operation_name`` (S3's ``<Error>`` body,
        read by botocore's own parser); without a code in the body, the status stands in for it."""
        parsed = self._parser.parse({"status_code": status, "headers": HeadersDict(headers), "body": body},
                                    self._service_model.operation_model(operation_name).output_shape)
        if not parsed.get("Error", {}).get("Code"):
            parsed.setdefault("Error", {})["Code"] = "InternalError" if status == 500 else str(status)
        return ClientError(parsed, operation_name)

    @staticmethod
    def slow_down(error: BaseException, operation_name: str) -> ClientError | None:
        """S3's ``SlowDown`` as boto3 raises it, when ``error`` is awscrt's name for it (a throttle that outlasted
        awscrt's own retries, or that it does not retry): the request governor and the engine's retries, and the
        messages users read, know S3's code, not awscrt's. None for any other error."""
        if not (isinstance(error, AwsCrtError) and error.name == _CRT_SLOW_DOWN):
            return None
        return ClientError({"Error": {"Code": "SlowDown", "Message": f"{error.name}: {error.message}"},
                            "ResponseMetadata": {"HTTPStatusCode": 503}}, operation_name)

    def address(self, bucket: str, quoted_key: str = "") -> tuple[str, str]:
        """``(Host header, path)`` of a request for ``bucket`` (and an already URL-quoted key, if any)."""
        key = f"/{quoted_key}" if quoted_key else ""
        if self.path_style or "." in bucket:
            return self.host, f"{self.base_path}/{quote(bucket)}{key}"
        return f"{bucket}.{self.host}", f"{self.base_path}{key}" or "/"


def _http_session(client):
    """botocore's HTTP session of ``client``, which holds the certificate check and the proxy botocore resolved for
    it. botocore has no public accessor for either, and resolving their sources again (arguments, config file,
    environment) could disagree with what the client does."""
    return getattr(client._endpoint, "http_session", None)


class NativeClientUnavailable(ValueError):
    """awscrt's native client cannot reach S3 the way the boto3 client it would be built from does."""


def refuse_proxy(client) -> None:
    """Raise ``NativeClientUnavailable`` when the boto3 ``client`` sends its requests through a proxy (its
    ``proxies`` setting, or ``HTTPS_PROXY``/``HTTP_PROXY`` for an endpoint ``NO_PROXY`` does not exempt): awscrt's
    S3 client takes no proxy, so its requests would go straight to the endpoint, past the proxy, and fail where
    only the proxy gets out. The message leaves out any user and password in the proxy's URL."""
    proxy_config = getattr(_http_session(client), "_proxy_config", None)
    proxy = proxy_config.proxy_url_for(client.meta.endpoint_url) if proxy_config else None
    if proxy:
        address = urlsplit(proxy)
        raise NativeClientUnavailable(
            f"S3 ({client.meta.endpoint_url}) is reached through the proxy {address.scheme}://{address.hostname}"
            f"{f':{address.port}' if address.port else ''}, and awscrt's native client takes no proxy: copy without"
            " it (--no-native-client, or native_client=False in copy_options) and list through boto3"
            " (listing_concurrency=0), or exempt the endpoint in NO_PROXY")


def _tls_connection_options(client):
    """awscrt's TLS options for the certificate check the boto3 ``client`` makes: a CA bundle's path, or False for
    none (botocore resolved it from ``verify``, the ``ca_bundle`` setting, ``AWS_CA_BUNDLE`` or
    ``REQUESTS_CA_BUNDLE``); None (awscrt's default, the system's trust store) where it checks against its default.

    As s3transfer's ``create_s3_crt_client`` does, whose client cannot take this one's connection cap and retry
    configuration."""
    verify = getattr(_http_session(client), "_verify", True)
    if verify is True:
        return None
    options = TlsContextOptions()
    if verify:
        options.override_default_trust_store_from_path(ca_filepath=verify)
    else:
        options.verify_peer = False
    return ClientTlsContext(options).new_connection_options()


def _credentials_provider(credentials) -> AwsCredentialsProvider:
    """awscrt's provider of the boto3 client's credentials. Refreshable ones (a role's) are asked for at each
    request, as boto3's own CRT transfer does; fixed ones are handed over once, since asking Python at each
    request cost about a twentieth of a small copy's CPU."""
    if credentials is None or isinstance(credentials, RefreshableCredentials):
        from s3transfer.crt import BotocoreCRTCredentialsWrapper  # s3transfer's import is worth it only here

        return BotocoreCRTCredentialsWrapper(credentials).to_crt_credentials_provider()
    frozen = credentials.get_frozen_credentials()
    return AwsCredentialsProvider.new_static(frozen.access_key, frozen.secret_key, frozen.token)


def xml_text(raw: bytes) -> str:
    """The text of an XML element's character data as the native requests' readers find it (they read S3's
    answers with regular expressions, cheaper than an XML parser): entities and character references resolved."""
    if b"&" not in raw:
        return raw.decode()
    if raw.count(b"&") == raw.count(b"&quot;"):  # an ETag's quotes, the usual entities (unescape took 1.4 µs)
        return raw.decode().replace("&quot;", '"')
    if b"&#" in raw:  # character references: the XML parser's own rules
        return ElementTree.fromstring(b"<t>" + raw + b"</t>").text or ""
    return unescape(raw.decode(), {"&quot;": '"', "&apos;": "'"})
