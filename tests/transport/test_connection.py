"""AMQP settings, TLS contexts, error translation and ``connect``."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import aio_pika
import aiormq
import aiormq.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from broker.errors import BrokerError, ConfigError, TransportBroken, TransportClosed
from broker.transport import AmqpSettings, connect, redact_uri
from broker.transport.connection import translate_amqp_errors
from tests.support.rabbit import RabbitSession


def _certificate(
    tmp: Path, name: str, issuer_key: ec.EllipticCurvePrivateKey | None = None
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key or key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_plain_amqp_has_no_tls_context() -> None:
    settings = AmqpSettings(url="amqp://u:p@broker:5672/evb-at")
    assert (settings.tls, settings.ssl_context()) == (False, None)


def test_amqps_selects_a_verifying_tls_context() -> None:
    settings = AmqpSettings(url="amqps://u:p@broker:5671/evb-at")
    context = settings.ssl_context()
    assert settings.tls
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_files_are_loaded(tmp_path: Path) -> None:
    ca, _ = _certificate(tmp_path, "ca")
    cert, key = _certificate(tmp_path, "client")
    settings = AmqpSettings(
        url="amqps://u:p@broker:5671/evb-at",
        ca_file=ca,
        cert_file=cert,
        key_file=key,
        verify_hostname=False,
    )
    context = settings.ssl_context()
    assert context is not None
    # Only the given CA is trusted, not the system's.
    assert context.cert_store_stats()["x509_ca"] == 1
    # The name check may be off; the chain check never is.
    assert (context.check_hostname, context.verify_mode) == (False, ssl.CERT_REQUIRED)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"url": "http://broker/"}, "amqp:// or amqps://"),
        ({"url": "amqp://broker/", "ca_file": Path("ca.pem")}, "use amqps://"),
        ({"url": "amqps://broker/", "cert_file": Path("c.pem")}, "go together"),
        ({"url": "amqps://broker/", "key_file": Path("k.pem")}, "go together"),
        ({"prefetch": 0}, "prefetch"),
        ({"heartbeat": -1}, "heartbeat"),
        ({"reconnect_interval": 0}, "positive"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AmqpSettings(**kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "E_CONFIG"
    assert fragment in caught.value.message


def test_unreadable_or_mismatched_tls_files(tmp_path: Path) -> None:
    missing = AmqpSettings(url="amqps://broker/", ca_file=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="cannot load the AMQP TLS files"):
        missing.ssl_context()
    cert, _ = _certificate(tmp_path, "a")
    _, other_key = _certificate(tmp_path, "b")
    mismatched = AmqpSettings(url="amqps://broker/", cert_file=cert, key_file=other_key)
    with pytest.raises(ConfigError) as caught:
        mismatched.ssl_context()
    assert caught.value.code == "E_CONFIG"


def test_settings_from_environment(tmp_path: Path) -> None:
    env = {
        "EVB_AMQP_URL": "amqps://n:secret@broker:5671/evb-de",
        "EVB_AMQP_PREFETCH": "7",
        "EVB_AMQP_HEARTBEAT": "11",
        "EVB_AMQP_CONNECTION_NAME": "node DE.CA",
        "EVB_AMQP_CA_FILE": str(tmp_path / "ca.pem"),
        "EVB_AMQP_VERIFY_HOSTNAME": "false",
    }
    settings = AmqpSettings.from_env(env, heartbeat=12)
    assert (settings.url, settings.prefetch, settings.heartbeat) == (env["EVB_AMQP_URL"], 7, 12)
    assert (settings.connection_name, settings.ca_file) == ("node DE.CA", tmp_path / "ca.pem")
    assert settings.verify_hostname is False
    assert settings.redacted_url == "amqps://n:***@broker:5671/evb-de"
    with pytest.raises(ConfigError, match="EVB_AMQP_PREFETCH must be an integer"):
        AmqpSettings.from_env({"EVB_AMQP_PREFETCH": "many"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amqp://user:pw@host/v", "amqp://user:***@host/v"),
        ("amqps://user:p%40ss@host:5671/v?x=1", "amqps://user:***@host:5671/v?x=1"),
        ("see {amqp://a:b@h/v} and http://c:d@e", "see {amqp://a:***@h/v} and http://c:***@e"),
        ("amqp://user@host/v", "amqp://user@host/v"),
        ("amqp:///evb-at", "amqp:///evb-at"),
    ],
)
def test_redact_uri(text: str, expected: str) -> None:
    assert redact_uri(text) == expected


@pytest.mark.parametrize(
    ("raised", "expected", "closing"),
    [
        (aiormq.exceptions.ProbableAuthenticationError("x"), ConfigError, False),
        (aiormq.exceptions.AuthenticationError("x"), ConfigError, False),
        (aiormq.exceptions.ConnectionNotAllowed("x"), ConfigError, False),
        (aiormq.exceptions.ChannelAccessRefused("ACCESS_REFUSED - no"), ConfigError, False),
        (aiormq.exceptions.ChannelNotFoundEntity("NOT_FOUND - no"), ConfigError, False),
        (aiormq.exceptions.ChannelPreconditionFailed("PRECONDITION_FAILED"), ConfigError, False),
        (aiormq.exceptions.ConnectionClosed(320, "forced"), TransportBroken, False),
        (aiormq.exceptions.ChannelInvalidStateError("closed"), TransportBroken, False),
        (ConnectionResetError(), TransportBroken, False),
        (TimeoutError(), TransportBroken, False),
        (aiormq.exceptions.ConnectionClosed(320, "forced"), TransportClosed, True),
        (
            aiormq.exceptions.InvalidFrameError(
                "Expected one of ['Connection.OpenOk'], got <Connection.Close object at 0x1>"
            ),
            ConfigError,
            False,
        ),
        (aiormq.exceptions.InvalidFrameError("Expected Basic.QosOk"), TransportBroken, False),
    ],
)
def test_amqp_errors_are_translated(
    raised: Exception, expected: type[BrokerError], closing: bool
) -> None:
    with pytest.raises(expected) as caught, translate_amqp_errors("do it", closing=closing):
        raise raised
    assert type(caught.value) is expected
    assert caught.value.code == expected.code
    assert caught.value.message.startswith("do it: ")
    assert caught.value.__cause__ is raised or expected is ConfigError


async def test_connect_to_nothing_is_transport_broken() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    settings = AmqpSettings(url=f"amqp://u:secret@127.0.0.1:{port}/", connect_timeout=2)
    with pytest.raises(TransportBroken) as caught:
        await connect(settings)
    assert caught.value.code == "E_TRANSPORT_BROKEN"
    assert "secret" not in str(caught.value)


@pytest.mark.integration
async def test_connect_with_wrong_password_is_config_error(rabbit: RabbitSession) -> None:
    vhost = rabbit.new_vhost("auth")
    url = rabbit.amqp_url(vhost, password="wrong-secret")  # noqa: S106
    settings = AmqpSettings(url=url, connect_timeout=5)
    with pytest.raises(ConfigError) as caught:
        await connect(settings)
    assert caught.value.code == "E_CONFIG"
    assert "refused the credentials" in caught.value.message
    assert "wrong-secret" not in str(caught.value)


@pytest.mark.integration
async def test_amqps_url_really_speaks_tls(rabbit: RabbitSession) -> None:
    # The plain AMQP port does not speak TLS: the handshake fails, which shows that an
    # amqps:// URL makes connect() use the TLS context.
    vhost = rabbit.new_vhost("tls")
    url = rabbit.amqp_url(vhost).replace("amqp://", "amqps://", 1)
    settings = AmqpSettings(url=url, connect_timeout=3, verify_hostname=False)
    with pytest.raises(TransportBroken) as caught:
        await connect(settings)
    assert caught.value.code == "E_TRANSPORT_BROKEN"


@pytest.mark.integration
async def test_connect_opens_a_robust_connection(rabbit: RabbitSession) -> None:
    vhost = rabbit.new_vhost("robust")
    settings = AmqpSettings(url=rabbit.amqp_url(vhost), reconnect_interval=0.7, heartbeat=9)
    connection = await connect(settings)
    async with connection:
        assert isinstance(connection, aio_pika.RobustConnection)
        assert connection.transport is not None
        amqp = cast(aiormq.Connection, connection.transport.connection)
        assert (connection.reconnect_interval, amqp.heartbeat_timeout) == (0.7, 9)
        assert amqp.server_properties["product"] == "RabbitMQ"
    assert connection.is_closed
