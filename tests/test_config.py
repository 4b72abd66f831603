"""Node configuration: TOML file, EVB_* variables over it, every mistake a ConfigError."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from broker.config import DEFAULT_AMQP_URL, load_config
from broker.errors import ConfigError, TooLargeError

MINIMAL = """
participant = "AT.247"
keys = "keys"
directory = "directory.json"
store = "sqlite:at.db"
storage_key_file = "at.storage.key"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), env={})
    base = tmp_path.resolve()
    assert config.participant == "AT.247"
    assert config.keys == base / "keys"
    assert config.directory == base / "directory.json"
    assert config.store == f"sqlite:///{base / 'at.db'}"
    assert config.storage_key_file == base / "at.storage.key"
    assert config.amqp.url == DEFAULT_AMQP_URL
    assert config.amqp.prefetch == 32
    assert config.limits.max_age == timedelta(days=2)
    assert config.publisher.window == 64
    assert config.retry.total() > timedelta(hours=7)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    env = {
        "EVB_PARTICIPANT": "DE.247",
        "EVB_AMQP_URL": "amqps://u:p@rabbit.example:5671/evb-de",
        "EVB_AMQP_PREFETCH": "8",
        "EVB_LIMITS_FUTURE_SKEW": "PT1M",
        "EVB_RETRY_PROFILE": "PT1S,PT2S",
        "EVB_STORE": "postgresql://postgres@127.0.0.1/test",
    }
    config = load_config(write(tmp_path, MINIMAL), env=env)
    assert config.participant == "DE.247"
    assert config.amqp.url.startswith("amqps://")
    assert config.amqp.prefetch == 8
    assert config.limits.future_skew == timedelta(minutes=1)
    assert config.retry.total() == timedelta(seconds=3)
    assert config.store == "postgresql://postgres@127.0.0.1/test"


def test_environment_alone_is_enough(tmp_path: Path) -> None:
    env = {
        "EVB_PARTICIPANT": "AT.247",
        "EVB_KEYS": str(tmp_path / "k"),
        "EVB_DIRECTORY": str(tmp_path / "d.json"),
        "EVB_STORE": "sqlite::memory:",
    }
    config = load_config(None, env=env)
    assert config.keys == tmp_path / "k"
    assert config.storage_key_file is None


def test_per_peer_retry_profiles(tmp_path: Path) -> None:
    text = MINIMAL + '\n[retry]\nprofile = "PT1S"\n[retry.peers]\n"ISP.mailhost" = "PT1H,PT5H"\n'
    config = load_config(write(tmp_path, text), env={})
    assert config.retry_for("ISP.mailhost").total() == timedelta(hours=6)
    assert config.retry_for("DE.247").total() == timedelta(seconds=1)


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, MINIMAL), env={"EVB_AMQP_URL": "amqp://node:s3cret@h:5672/v"}
    )
    assert "s3cret" not in repr(config)
    assert "s3cret" not in repr(config.amqp)


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        (MINIMAL.replace('"AT.247"', '"austria"'), {}, "participant"),
        (MINIMAL.replace('store = "sqlite:at.db"\n', ""), {}, "store is missing"),
        (MINIMAL.replace('"sqlite:at.db"', '"at.db"'), {}, "store must be a URL"),
        (MINIMAL + "colour = 1\n", {}, "unknown setting 'colour'"),
        (MINIMAL + "[amqp]\nprefech = 3\n", {}, "amqp.prefech"),
        (MINIMAL + "[amqp]\nprefetch = 0\n", {}, "amqp.prefetch"),
        (MINIMAL + "[amqp]\nprefetch = true\n", {}, "amqp.prefetch"),
        (MINIMAL, {"EVB_AMQP_PREFETCH": "many"}, "amqp.prefetch"),
        (MINIMAL, {"EVB_AMQP_URL": "http://h/"}, "amqp.url"),
        (MINIMAL + '[limits]\nmax_age = "2 days"\n', {}, "limits.max_age"),
        (MINIMAL + '[limits]\nmax_age = "PT1H"\n', {}, "shorter than the longest retry"),
        (MINIMAL + '[retry]\nprofile = "PT1S,soon"\n', {}, "retry.profile"),
        (MINIMAL + '[retry.peers]\n"isp" = "PT1S"\n', {}, "not a participant id"),
        (MINIMAL + "amqp = 3\n", {}, "[amqp] must be a table"),
        ("participant = ", {}, "not valid TOML"),
    ],
)
def test_mistakes_are_config_errors(
    tmp_path: Path, text: str, env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=env)
    assert fragment in caught.value.message
    assert caught.value.code == "E_CONFIG"


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", env={})
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(TooLargeError):
        load_config(big, env={})
