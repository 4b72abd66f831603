"""The AMQP connection of a node: settings, TLS, ``connect`` and error translation.

This module owns how a node reaches RabbitMQ: :class:`AmqpSettings` (URL, prefetch,
heartbeat, connection name, TLS files), :func:`connect` (aio-pika ``connect_robust``,
which reconnects by itself and replays the channels it knows), and
:func:`translate_amqp_errors`, the one place where aiormq / aio-pika exceptions become
:mod:`broker.errors` (the httpx ``map_httpcore_exceptions`` pattern)::

    authentication refused, vhost not allowed     -> ConfigError      E_CONFIG
    ACCESS_REFUSED (403), PRECONDITION_FAILED     -> ConfigError      E_CONFIG
    NOT_FOUND (404)                               -> ConfigError      E_CONFIG
    connection or channel lost, timeout           -> TransportBroken  E_TRANSPORT_BROKEN
    any of those after a deliberate close         -> TransportClosed  E_TRANSPORT_CLOSED

Callers that give a 404 or a return another meaning (the publisher: ``Unroutable``)
catch those first. Credentials never appear in an error or a log line:
:func:`redact_uri` masks the password of every URI that is shown.

TLS: an ``amqps://`` URL always gets an :class:`ssl.SSLContext` (system CAs, or
``ca_file``; a client certificate with ``cert_file``/``key_file``; hostname check
unless ``verify_hostname`` is off). TLS files with a plain ``amqp://`` URL are refused
(``E_CONFIG``) rather than silently ignored or silently upgraded.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiormq.exceptions
import pamqp.exceptions
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from yarl import URL

from broker.errors import BrokerError, ConfigError, TransportBroken, TransportClosed

__all__ = [
    "DEFAULT_AMQP_URL",
    "AmqpSettings",
    "close_quietly",
    "connect",
    "open_channel",
    "redact_uri",
    "translate_amqp_errors",
]

_log = structlog.get_logger(__name__)

#: The broker a node talks to unless told otherwise (``EVB_AMQP_URL``).
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

# userinfo with a password inside any URI-looking text: scheme://user:password@
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\"'<>]*:)[^@\s\"'<>]*@")


def redact_uri(text: str) -> str:
    """Mask the password of every ``scheme://user:password@`` in ``text``.

    Used on every URI (and every error text that may quote one, e.g. a RabbitMQ
    validation message) before it is shown or logged.
    """
    return _USERINFO.sub(r"\g<head>***@", text)


@dataclass(frozen=True)
class AmqpSettings:
    """How a node connects to its site's RabbitMQ.

    Attributes:
        url: ``amqp://`` or ``amqps://`` URL, credentials and vhost included.
        prefetch: unacknowledged deliveries per consumer (``basic.qos``).
        heartbeat: AMQP heartbeat in seconds; a dead peer is noticed within about two.
        connection_name: shown in the RabbitMQ management UI.
        ca_file: CA bundle (PEM) that signs the broker's certificate; system CAs if unset.
        cert_file: client certificate (PEM) for mutual TLS.
        key_file: the client certificate's private key (PEM).
        verify_hostname: check that the broker's certificate names the URL's host.
        connect_timeout: seconds for the first connection attempt.
        reconnect_interval: seconds between reconnection attempts after a loss.
    """

    url: str = DEFAULT_AMQP_URL
    prefetch: int = 32
    heartbeat: int = 30
    connection_name: str = "evidence-broker"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True
    connect_timeout: float = 10.0
    reconnect_interval: float = 2.0

    def __post_init__(self) -> None:
        scheme = URL(self.url).scheme
        if scheme not in ("amqp", "amqps"):
            raise ConfigError(f"the AMQP URL must be amqp:// or amqps://, not {scheme or 'empty'}")
        if self.prefetch < 1:
            raise ConfigError("prefetch must be at least 1")
        if self.heartbeat < 0:
            raise ConfigError("heartbeat must not be negative")
        if self.connect_timeout <= 0 or self.reconnect_interval <= 0:
            raise ConfigError("connect_timeout and reconnect_interval must be positive")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("cert_file and key_file go together (mutual TLS)")
        if scheme == "amqp" and self._tls_files():
            raise ConfigError("TLS files are given but the URL is amqp://; use amqps://")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> AmqpSettings:
        """Build settings from ``EVB_AMQP_*`` variables (``overrides`` win).

        Variables: ``EVB_AMQP_URL``, ``EVB_AMQP_PREFETCH``, ``EVB_AMQP_HEARTBEAT``,
        ``EVB_AMQP_CONNECTION_NAME``, ``EVB_AMQP_CA_FILE``, ``EVB_AMQP_CERT_FILE``,
        ``EVB_AMQP_KEY_FILE``, ``EVB_AMQP_VERIFY_HOSTNAME`` (``0``/``false`` to disable).

        Raises:
            ConfigError: a value is malformed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "EVB_AMQP_URL" in env:
            values["url"] = env["EVB_AMQP_URL"]
        for name, key in (("prefetch", "EVB_AMQP_PREFETCH"), ("heartbeat", "EVB_AMQP_HEARTBEAT")):
            if key in env:
                try:
                    values[name] = int(env[key])
                except ValueError:
                    raise ConfigError(f"{key} must be an integer") from None
        if "EVB_AMQP_CONNECTION_NAME" in env:
            values["connection_name"] = env["EVB_AMQP_CONNECTION_NAME"]
        for name, key in (
            ("ca_file", "EVB_AMQP_CA_FILE"),
            ("cert_file", "EVB_AMQP_CERT_FILE"),
            ("key_file", "EVB_AMQP_KEY_FILE"),
        ):
            if env.get(key):
                values[name] = Path(env[key])
        if "EVB_AMQP_VERIFY_HOSTNAME" in env:
            values["verify_hostname"] = env["EVB_AMQP_VERIFY_HOSTNAME"].lower() not in (
                "0",
                "false",
                "no",
            )
        values.update(overrides)
        return cls(**values)

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS (``amqps://``)."""
        return URL(self.url).scheme == "amqps"

    @property
    def redacted_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        return redact_uri(self.url)

    def _tls_files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.ca_file, self.cert_file, self.key_file) if p is not None)

    def ssl_context(self) -> ssl.SSLContext | None:
        """Return the TLS context of an ``amqps://`` URL, or ``None`` for plain AMQP.

        Raises:
            ConfigError: a TLS file cannot be read or does not hold what it should.
        """
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH,
                cafile=str(self.ca_file) if self.ca_file is not None else None,
            )
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            # The reason names the file problem; the files hold no secret worth hiding here
            # except the key, whose content never appears in an OSError/SSLError text.
            raise ConfigError(f"cannot load the AMQP TLS files: {exc}") from exc
        # Verification of the certificate chain always stays on; only the name check
        # may be relaxed (e.g. a broker reached by IP address in a lab).
        context.check_hostname = self.verify_hostname
        context.verify_mode = ssl.CERT_REQUIRED
        return context


@contextmanager
def translate_amqp_errors(what: str, *, closing: bool = False) -> Iterator[None]:
    """Map aiormq / aio-pika exceptions raised inside the block to :mod:`broker.errors`.

    Args:
        what: what was being done, for the message ("declare evb.AT.247.inbox").
        closing: the transport is being closed on purpose; a loss is then
            ``TransportClosed``, not ``TransportBroken``.

    Raises:
        ConfigError: refused credentials or permissions, a missing entity, or an
            entity declared with other arguments.
        TransportBroken: the connection or channel was lost, or an operation timed out.
        TransportClosed: as ``TransportBroken``, but after a deliberate close.
    """
    try:
        yield
    except (aiormq.exceptions.AuthenticationError, aiormq.exceptions.ProbableAuthenticationError):
        raise ConfigError(f"{what}: the broker refused the credentials") from None
    except aiormq.exceptions.ConnectionNotAllowed as exc:
        raise ConfigError(f"{what}: the user may not use this vhost") from exc
    except aiormq.exceptions.InvalidFrameError as exc:
        # A vhost the user may not use: RabbitMQ answers connection.open with
        # connection.close (530 NOT_ALLOWED), which aiormq reports only as an unexpected
        # frame, in text. Anything else unexpected is a broken transport.
        text = str(exc)
        if "Connection.OpenOk" in text and "Connection.Close" in text:
            raise ConfigError(
                f"{what}: the broker refused to open the vhost for this user"
            ) from exc
        kind = TransportClosed if closing else TransportBroken
        raise kind(f"{what}: {type(exc).__name__}") from exc
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise ConfigError(f"{what}: ACCESS_REFUSED: {_reply_text(exc)}") from exc
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise ConfigError(f"{what}: NOT_FOUND: {_reply_text(exc)}") from exc
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigError(f"{what}: PRECONDITION_FAILED: {_reply_text(exc)}") from exc
    except (
        aiormq.exceptions.AMQPError,
        aiormq.exceptions.ChannelInvalidStateError,
        pamqp.exceptions.PAMQPException,
        ConnectionError,
        OSError,
        TimeoutError,
        asyncio.InvalidStateError,
    ) as exc:
        kind = TransportClosed if closing else TransportBroken
        raise kind(f"{what}: {type(exc).__name__}") from exc


def _reply_text(exc: BaseException) -> str:
    """The broker's reply text of a channel error (names of entities, no payload)."""
    for arg in exc.args:
        text = getattr(arg, "reply_text", None)
        if isinstance(text, str):
            return redact_uri(text)
    return (
        redact_uri(" ".join(str(arg) for arg in exc.args if isinstance(arg, str)))
        or type(exc).__name__
    )


async def connect(settings: AmqpSettings) -> AbstractRobustConnection:
    """Open a robust connection: it reconnects by itself and restores its channels.

    The caller owns the connection and closes it (``async with`` or ``close()``).

    Raises:
        ConfigError: refused credentials or vhost, unreadable TLS files.
        TransportBroken: the broker cannot be reached within ``connect_timeout``.
    """
    context = settings.ssl_context()
    log = _log.bind(amqp=settings.redacted_url, connection_name=settings.connection_name)
    with translate_amqp_errors(f"connect to {settings.redacted_url}"):
        try:
            connection = await aio_pika.connect_robust(
                settings.url,
                ssl_context=context,
                timeout=settings.connect_timeout,
                client_properties={"connection_name": settings.connection_name},
                reconnect_interval=settings.reconnect_interval,
                heartbeat=settings.heartbeat,
            )
        except ssl.SSLError as exc:
            raise TransportBroken(
                f"TLS handshake with {settings.redacted_url} failed: {exc.reason}"
            ) from exc
    log.info("amqp_connected", tls=settings.tls)
    return connection


async def open_channel(
    connection: AbstractRobustConnection,
    what: str,
    *,
    publisher_confirms: bool = False,
    on_return_raises: bool = False,
    timeout: float = 10.0,
) -> AbstractRobustChannel:
    """Open a channel of a robust connection; on failure leave nothing behind.

    A robust connection keeps every channel object it handed out and reopens it after
    a reconnect. A channel whose first opening failed (the connection was down) is
    therefore closed here before the error is raised, or the next reconnect would open
    it for nobody.

    Raises:
        TransportBroken: the connection is lost or the channel did not open in time.
        ConfigError: the broker refused the channel.
    """
    channel = connection.channel(
        publisher_confirms=publisher_confirms, on_return_raises=on_return_raises
    )
    try:
        with translate_amqp_errors(what):
            await channel.initialize(timeout=timeout)
    except BaseException:
        await close_quietly(channel)
        raise
    return channel


async def close_quietly(channel: AbstractRobustChannel) -> None:
    """Close a channel that may be half-open or dead; errors are logged, not raised."""
    try:
        with translate_amqp_errors("close a channel", closing=True):
            await channel.close()
    except BrokerError as exc:
        _log.debug("amqp_channel_close_failed", code=exc.code)
