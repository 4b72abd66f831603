"""A node's configuration: one TOML file, every setting also from ``EVB_*`` variables.

The file (``evb node run --config FILE``; ``EVB_CONFIG`` names it for every command)::

    participant = "AT.247"                 # EVB_PARTICIPANT
    keys = "keys"                          # EVB_KEYS: directory of the private keys
    directory = "directory.json"           # EVB_DIRECTORY: the signed trust directory
    store = "sqlite:///var/lib/evb/at.db"  # EVB_STORE (or postgresql://…)
    storage_key_file = "storage.key"       # EVB_STORAGE_KEY_FILE (or EVB_STORAGE_KEY)

    [amqp]                                 # EVB_AMQP_<KEY>
    url = "amqp://evb-at.247:…@rabbit-at:5672/evb-at"
    prefetch = 32
    heartbeat = 30
    ca_file = ""; cert_file = ""; key_file = ""   # TLS (amqps://)
    max_length = 100000                    # inbound queue length (overflow rejects)
    delivery_limit = 20                    # redeliveries before dead-lettering
    concurrency = 8                        # deliveries handled at once per lane group

    [limits]                               # EVB_LIMITS_<KEY>
    max_envelope_bytes = 2097152
    future_skew = "PT5M"                   # sent_at may be this far ahead of our clock
    max_age = "P2D"                        # and at most this old (>= every retry profile)

    [publisher]                            # EVB_PUBLISHER_<KEY>
    batch = 64                             # outbox rows claimed per round
    window = 64                            # publisher confirms in flight
    lease = "PT30S"                        # a claimed row is not re-claimed before this

    [deadlines]                            # EVB_DEADLINES_<KEY>
    ack_normal = ""                        # the node's acknowledgement target for 24/7
    ack_emergency = ""                     #   requests (empty: the rules table's PT24H / PT1H)
    scheduler_interval = "PT30S"           # how often reminders and escalations are due

    [audit]                                # EVB_AUDIT_<KEY>
    checkpoint_interval = "PT60S"          # sign a checkpoint of the log at least this often
    checkpoint_every = 1000                #   or after this many new records
    witnesses = "*"                        # who cosigns our checkpoints: "*" every other
                                           #   participant of the directory, "" nobody,
                                           #   or a list ("DE.247,FR.247" in the env)
    receipt_proofs = true                  # send each sender a follow-up receipt with the
                                           #   inclusion proof of its message's log entry

    [retention]                            # EVB_RETENTION_<KEY>
    closed_case_period = ""                # shred a case this long after its lifecycle
                                           #   ended (P3650D; days at most: no years);
                                           #   empty: never automatically
    sweep_interval = "PT1H"                # how often the node looks for such cases

    [retry]
    profile = "PT5S,PT15S,PT1M,PT5M,PT15M,PT1H,PT2H,PT4H"   # EVB_RETRY_PROFILE
    [retry.peers]                          # per-peer profiles (file only)
    "ISP.mailhost" = "PT1M,PT10M,PT1H,PT6H,PT12H"

Relative paths are taken from the configuration file's directory. An environment
variable wins over the file. Anything missing, unknown or malformed is a
:class:`~broker.errors.ConfigError` naming the setting — never a guess.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.delivery import RetryProfile, parse_duration
from broker.errors import ConfigError
from broker.files import read_bounded
from broker.ids import is_participant_id

__all__ = [
    "DEFAULT_AMQP_URL",
    "DEFAULT_RETRY_PROFILE",
    "AmqpConfig",
    "AuditConfig",
    "DeadlineConfig",
    "Limits",
    "NodeConfig",
    "PublisherConfig",
    "RetentionConfig",
    "load_config",
]

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_RETRY_PROFILE = "PT5S,PT15S,PT1M,PT5M,PT15M,PT1H,PT2H,PT4H"
_MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class AmqpConfig:
    """How the node reaches its site's RabbitMQ (secrets stay in ``url``: never logged)."""

    url: str = DEFAULT_AMQP_URL
    prefetch: int = 32
    heartbeat: int = 30
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    max_length: int = 100_000
    delivery_limit: int = 20
    concurrency: int = 8

    def __repr__(self) -> str:
        return f"AmqpConfig(url=<redacted>, prefetch={self.prefetch})"


@dataclass(frozen=True)
class Limits:
    """What the inbox accepts."""

    max_envelope_bytes: int = 2 * 1024 * 1024
    future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=2)


@dataclass(frozen=True)
class PublisherConfig:
    """How the outbox is published."""

    batch: int = 64
    window: int = 64
    lease: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class DeadlineConfig:
    """The node's own deadline settings (the legal ones live in the rules table)."""

    ack_normal: timedelta | None = None
    ack_emergency: timedelta | None = None
    scheduler_interval: timedelta = timedelta(seconds=30)

    def ack_targets(self) -> dict[str, timedelta]:
        """Return the acknowledgement targets that replace the table's, per priority."""
        targets = {"normal": self.ack_normal, "emergency": self.ack_emergency}
        return {k: v for k, v in targets.items() if v is not None}


@dataclass(frozen=True)
class AuditConfig:
    """When the node signs checkpoints of its audit log, and who witnesses them.

    Attributes:
        checkpoint_interval: sign a checkpoint at least this often (when the log grew).
        checkpoint_every: or as soon as this many records were added.
        witnesses: the participants that cosign this node's checkpoints; None means
            every other participant of the trust directory.
        receipt_proofs: whether senders get follow-up receipts with inclusion proofs.
    """

    checkpoint_interval: timedelta = timedelta(seconds=60)
    checkpoint_every: int = 1000
    witnesses: tuple[str, ...] | None = None
    receipt_proofs: bool = True


@dataclass(frozen=True)
class RetentionConfig:
    """When the node erases the payload of closed cases (:mod:`broker.retention`).

    Attributes:
        closed_case_period: how long after its lifecycle ended a case is shredded;
            None: never automatically (``evb case shred`` still works).
        sweep_interval: how often the node looks for cases past that period.
    """

    closed_case_period: timedelta | None = None
    sweep_interval: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node needs to run (see the module docstring for the file)."""

    participant: str
    keys: Path
    directory: Path
    store: str
    storage_key_file: Path | None
    amqp: AmqpConfig = field(default_factory=AmqpConfig)
    limits: Limits = field(default_factory=Limits)
    publisher: PublisherConfig = field(default_factory=PublisherConfig)
    deadlines: DeadlineConfig = field(default_factory=DeadlineConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    retry: RetryProfile = field(default_factory=lambda: RetryProfile.parse(DEFAULT_RETRY_PROFILE))
    retry_peers: Mapping[str, RetryProfile] = field(default_factory=dict)
    source: Path | None = None

    def retry_for(self, peer: str) -> RetryProfile:
        """Return the retry profile of the route to ``peer``."""
        return self.retry_peers.get(peer, self.retry)

    def __repr__(self) -> str:
        return f"NodeConfig(participant={self.participant!r}, source={self.source!s})"


_TOP = ("participant", "keys", "directory", "store", "storage_key_file")
_SECTIONS: dict[str, tuple[str, ...]] = {
    "amqp": tuple(AmqpConfig.__dataclass_fields__),
    "limits": tuple(Limits.__dataclass_fields__),
    "publisher": tuple(PublisherConfig.__dataclass_fields__),
    "deadlines": tuple(DeadlineConfig.__dataclass_fields__),
    "audit": tuple(AuditConfig.__dataclass_fields__),
    "retention": tuple(RetentionConfig.__dataclass_fields__),
    "retry": ("profile",),
}


def _read_file(path: Path) -> dict[str, Any]:
    raw = read_bounded(path, _MAX_CONFIG_BYTES, "the configuration")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the configuration {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(_TOP) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in {path}")
    for section, names in _SECTIONS.items():
        value = data.get(section, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{section}] must be a table in {path}")
        allowed = (*names, "peers") if section == "retry" else names
        extra = sorted(set(value) - set(allowed))
        if extra:
            raise ConfigError(f"unknown setting {section}.{extra[0]} in {path}")
    return data


def _setting(
    data: Mapping[str, Any], env: Mapping[str, str], section: str | None, name: str
) -> Any:
    variable = "EVB_" + (f"{section}_{name}" if section else name).upper()
    if variable in env:
        return env[variable]
    table = data.get(section, {}) if section else data
    return table.get(name)


def _or(value: Any, default: Any) -> Any:
    # An explicit 0 or "" must reach the check (and be refused), not become the default.
    return default if value is None else value


def _int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer")
    if isinstance(value, str):
        try:
            value = int(value, 10)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer") from exc
    if not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer of at least {minimum}")
    return value


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{name} must be true or false")


def _witnesses(value: Any) -> tuple[str, ...] | None:
    """``"*"`` (or unset): every other participant; else a list or comma-separated ids."""
    if value is None or value == "*":
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError('audit.witnesses must be "*" or a list of participant ids')
    ids = tuple(i.strip() for i in items if i.strip())
    for item in ids:
        if not is_participant_id(item):
            raise ConfigError(f"audit.witnesses: {item!r} is not a participant id")
    return ids


def _duration(value: Any, name: str) -> timedelta:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be an ISO 8601 duration such as PT5M")
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc.message}") from exc


def _path(value: Any, name: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _profile(value: Any, name: str) -> RetryProfile:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a comma-separated list of ISO 8601 durations")
    try:
        return RetryProfile.parse(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc.message}") from exc


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> NodeConfig:
    """Read a node configuration from ``path`` (may be None) and the environment.

    Args:
        path: the TOML file; None to configure from the environment alone.
        env: the environment (``os.environ`` if omitted).

    Raises:
        ConfigError: a setting is missing, unknown or malformed.
    """
    env = os.environ if env is None else env
    data = _read_file(path) if path is not None else {}
    base = path.parent.resolve() if path is not None else Path.cwd()

    participant = _setting(data, env, None, "participant")
    if not isinstance(participant, str) or not is_participant_id(participant):
        raise ConfigError("participant must be a participant id such as AT.247")
    required = {}
    for name in ("keys", "directory", "store"):
        value = _setting(data, env, None, name)
        if value is None:
            raise ConfigError(f"the setting {name} is missing (or EVB_{name.upper()})")
        required[name] = value
    store = required["store"]
    if not isinstance(store, str) or ":" not in store:
        raise ConfigError("store must be a URL: sqlite:///path.db or postgresql://…")
    if store.startswith("sqlite:") and not store.startswith(("sqlite:///", "sqlite::memory:")):
        # A relative SQLite path is relative to the configuration, like every path.
        store = "sqlite:///" + str(_path(store.removeprefix("sqlite:"), "store", base))
    storage_key = _setting(data, env, None, "storage_key_file")

    amqp_values = {n: _setting(data, env, "amqp", n) for n in _SECTIONS["amqp"]}
    amqp = AmqpConfig(
        url=str(amqp_values["url"] or DEFAULT_AMQP_URL),
        prefetch=_int(_or(amqp_values["prefetch"], 32), "amqp.prefetch"),
        heartbeat=_int(_or(amqp_values["heartbeat"], 30), "amqp.heartbeat", 0),
        ca_file=_path(amqp_values["ca_file"], "amqp.ca_file", base)
        if amqp_values["ca_file"]
        else None,
        cert_file=_path(amqp_values["cert_file"], "amqp.cert_file", base)
        if amqp_values["cert_file"]
        else None,
        key_file=_path(amqp_values["key_file"], "amqp.key_file", base)
        if amqp_values["key_file"]
        else None,
        max_length=_int(_or(amqp_values["max_length"], 100_000), "amqp.max_length"),
        delivery_limit=_int(_or(amqp_values["delivery_limit"], 20), "amqp.delivery_limit"),
        concurrency=_int(_or(amqp_values["concurrency"], 8), "amqp.concurrency"),
    )
    if amqp.url.split("://", 1)[0] not in ("amqp", "amqps"):
        raise ConfigError("amqp.url must be an amqp:// or amqps:// URL")

    limit_values = {n: _setting(data, env, "limits", n) for n in _SECTIONS["limits"]}
    limits = Limits(
        max_envelope_bytes=_int(
            _or(limit_values["max_envelope_bytes"], Limits.max_envelope_bytes),
            "limits.max_envelope_bytes",
            1024,
        ),
        future_skew=_duration(_or(limit_values["future_skew"], "PT5M"), "limits.future_skew"),
        max_age=_duration(_or(limit_values["max_age"], "P2D"), "limits.max_age"),
    )
    pub_values = {n: _setting(data, env, "publisher", n) for n in _SECTIONS["publisher"]}
    publisher = PublisherConfig(
        batch=_int(_or(pub_values["batch"], 64), "publisher.batch"),
        window=_int(_or(pub_values["window"], 64), "publisher.window"),
        lease=_duration(_or(pub_values["lease"], "PT30S"), "publisher.lease"),
    )
    dl_values = {n: _setting(data, env, "deadlines", n) for n in _SECTIONS["deadlines"]}
    deadlines = DeadlineConfig(
        ack_normal=_duration(dl_values["ack_normal"], "deadlines.ack_normal")
        if dl_values["ack_normal"]
        else None,
        ack_emergency=_duration(dl_values["ack_emergency"], "deadlines.ack_emergency")
        if dl_values["ack_emergency"]
        else None,
        scheduler_interval=_duration(
            _or(dl_values["scheduler_interval"], "PT30S"), "deadlines.scheduler_interval"
        ),
    )
    audit_values = {n: _setting(data, env, "audit", n) for n in _SECTIONS["audit"]}
    audit = AuditConfig(
        checkpoint_interval=_duration(
            _or(audit_values["checkpoint_interval"], "PT60S"), "audit.checkpoint_interval"
        ),
        checkpoint_every=_int(
            _or(audit_values["checkpoint_every"], 1000), "audit.checkpoint_every"
        ),
        witnesses=_witnesses(audit_values["witnesses"]),
        receipt_proofs=_bool(_or(audit_values["receipt_proofs"], True), "audit.receipt_proofs"),
    )
    ret_values = {n: _setting(data, env, "retention", n) for n in _SECTIONS["retention"]}
    period = ret_values["closed_case_period"]
    retention = RetentionConfig(
        # Unset or "": no automatic shredding. Any other value must be a duration
        # (a 0 or false is refused, not read as "unset").
        closed_case_period=_duration(period, "retention.closed_case_period")
        if period is not None and period != ""
        else None,
        sweep_interval=_duration(
            _or(ret_values["sweep_interval"], "PT1H"), "retention.sweep_interval"
        ),
    )
    retry = _profile(
        _setting(data, env, "retry", "profile") or DEFAULT_RETRY_PROFILE, "retry.profile"
    )
    peers_table = data.get("retry", {}).get("peers", {})
    if not isinstance(peers_table, dict):
        raise ConfigError("[retry.peers] must be a table of participant = profile")
    peers: dict[str, RetryProfile] = {}
    for peer, value in peers_table.items():
        if not is_participant_id(peer):
            raise ConfigError(f"retry.peers: {peer!r} is not a participant id")
        peers[peer] = _profile(value, f"retry.peers.{peer}")
    # A re-send of the same signed bytes must never be refused for its age: the age
    # window covers the longest retry profile (issue #5, replay protection).
    longest = max([retry.total(), *(p.total() for p in peers.values())])
    if limits.max_age < longest:
        raise ConfigError(
            f"limits.max_age ({limits.max_age}) is shorter than the longest retry profile"
            f" ({longest}): re-sent messages would be refused as too old"
        )
    return NodeConfig(
        participant=participant,
        keys=_path(required["keys"], "keys", base),
        directory=_path(required["directory"], "directory", base),
        store=store,
        storage_key_file=_path(storage_key, "storage_key_file", base) if storage_key else None,
        amqp=amqp,
        limits=limits,
        publisher=publisher,
        deadlines=deadlines,
        audit=audit,
        retention=retention,
        retry=retry,
        retry_peers=peers,
        source=path,
    )
