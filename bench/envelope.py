"""Benchmark: envelopes sealed and opened per second, against the raw cryptography.

Product, per 2 KiB form, schema validation excluded from both sides (as issue #4 asks):
* seal: route and key checks against the trust directory, the authority's seal (JCS +
  Ed25519), HPKE to the recipient bound to the header, the node signature, the
  envelope model — ``broker.envelope._seal_form``;
* open: strict parse, envelope model, key judged at ``sent_at``, signature, policy,
  recipient, HPKE open, the plaintext's shape, the seal — ``authenticate_envelope``,
  ``_authorise``, ``_decrypt`` and ``_check_seal``.

Raw baseline in the same run, on the same bytes: one Ed25519 sign + one HPKE seal
(and one Ed25519 verify + one HPKE open) with ``cryptography`` directly. The seal
side of the product signs twice (seal and envelope) and the open side verifies twice,
so a ratio near 0.5 is the ceiling for a design with two signatures.

``value`` is round trips per second (seal, then open); ``pass`` judges the issue's
target: both the seal and the open ratio at least 0.4 for the classic suite. The
hybrid suite (ML-KEM-768+X25519, ML-DSA-65 alongside Ed25519) is reported beside it.

Usage: ``python bench/envelope.py [--quick]``. The last line of output is JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from broker import crypto
from broker.envelope import (
    _authorise,
    _check_seal,
    _decrypt,
    _seal_form,
    authenticate_envelope,
)
from broker.keys import KeySet, generate_keyset
from broker.trust import (
    TrustDirectory,
    add_participant,
    dump_directory,
    init_directory,
    sign_directory,
    verify_directory,
)

TARGET_RATIO = 0.4
FORM_BYTES = 2048
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def rate(work: Callable[[], object], seconds: float) -> float:
    """Return calls per second of ``work``, measured for about ``seconds``."""
    for _ in range(20):
        work()
    calls = 0
    start = time.perf_counter()
    while True:
        for _ in range(20):
            work()
        calls += 20
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def network(hybrid: bool) -> tuple[TrustDirectory, KeySet, KeySet]:
    """Return a signed directory with a sender and a recipient of one suite."""
    root = crypto.generate_signing_key("root1")
    sender = generate_keyset("DE.247", hybrid=hybrid, now=T0)
    recipient = generate_keyset("AT.247", hybrid=hybrid, now=T0)
    document = init_directory([root.public()], 1, timedelta(days=365), T0)
    for keys, country in ((sender, "DE"), (recipient, "AT")):
        document = add_participant(document, keys.public(), "contact_point", country, now=T0)
    signed = sign_directory(document, root)
    return verify_directory(dump_directory(signed), now=NOW), sender, recipient


def form_of_size(size: int) -> dict[str, Any]:
    """Return a free-form JSON object of about ``size`` bytes (validation is excluded)."""
    return {"necessity": "x" * (size - 20)}


def measure(hybrid: bool, seconds: float) -> dict[str, float]:
    """Measure the product and the raw baseline for one suite."""
    directory, sender, recipient = network(hybrid)
    form = form_of_size(FORM_BYTES)
    form_type = "coe.art29.preservation"

    def seal() -> bytes:
        return _seal_form(
            form_type=form_type, form_data=form, sender="DE.247", recipient="AT.247",
            directory=directory, signer=sender.sig, sealer=sender.seal, now=NOW, case=None,
            in_reply_to=None, priority="normal", signer_pq=sender.sig_pq, message_id=None,
        ).to_bytes()  # fmt: skip

    raw = seal()

    def open_() -> str:
        authenticated = authenticate_envelope(raw, directory, max_bytes=1 << 22)
        _authorise(directory, authenticated.envelope)
        data, seal_ = _decrypt(authenticated, "AT.247", [recipient.enc])
        return _check_seal(directory, authenticated.envelope, data, seal_)

    if open_() != "DE.247":
        raise SystemExit("the benchmark envelope does not open")
    plaintext = json.dumps(form).encode()
    enc_key = recipient.enc.public()
    signer, verifier = sender.sig, sender.sig.public()
    signer_pq = sender.sig_pq
    enc, ct = crypto.hpke_seal(enc_key, plaintext, b"info")
    signature = signer.sign(plaintext)
    signature_pq = signer_pq.sign(plaintext) if signer_pq else b""

    def raw_seal() -> None:
        crypto.hpke_seal(enc_key, plaintext, b"info")
        signer.sign(plaintext)
        if signer_pq is not None:
            signer_pq.sign(plaintext)

    def raw_open() -> None:
        verifier.verify(signature, plaintext)
        if signer_pq is not None:
            signer_pq.public().verify(signature_pq, plaintext)
        crypto.hpke_open(recipient.enc, enc_key.suite, enc, ct, b"info")

    result = {
        "seal_per_s": rate(seal, seconds),
        "raw_seal_per_s": rate(raw_seal, seconds),
        "open_per_s": rate(open_, seconds),
        "raw_open_per_s": rate(raw_open, seconds),
        "envelope_bytes": float(len(raw)),
    }
    result["seal_ratio"] = result["seal_per_s"] / result["raw_seal_per_s"]
    result["open_ratio"] = result["open_per_s"] / result["raw_open_per_s"]
    result["round_trips_per_s"] = 1 / (1 / result["seal_per_s"] + 1 / result["open_per_s"])
    result["raw_round_trips_per_s"] = 1 / (
        1 / result["raw_seal_per_s"] + 1 / result["raw_open_per_s"]
    )
    return result


def main() -> None:
    """Run the benchmark and print one JSON line last."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run")
    parser.add_argument("--seconds", type=float, help="seconds per measurement (overrides)")
    args = parser.parse_args()
    seconds = args.seconds or (1.5 if args.quick else 8.0)
    classic = measure(False, seconds)
    hybrid = measure(True, seconds)
    for name, figures in (("classic", classic), ("hybrid", hybrid)):
        print(
            f"{name}: seal {figures['seal_per_s']:,.0f}/s (raw {figures['raw_seal_per_s']:,.0f}/s,"
            f" ratio {figures['seal_ratio']:.2f}); open {figures['open_per_s']:,.0f}/s (raw "
            f"{figures['raw_open_per_s']:,.0f}/s, ratio {figures['open_ratio']:.2f}); "
            f"{figures['envelope_bytes']:.0f} bytes"
        )
    ratio = classic["round_trips_per_s"] / classic["raw_round_trips_per_s"]
    line: dict[str, object] = {
        "name": "envelope",
        "value": round(classic["round_trips_per_s"], 1),
        "unit": "round trips/s (seal+open, classic, 2 KiB form)",
        "baseline": round(classic["raw_round_trips_per_s"], 1),
        "ratio": round(ratio, 4),
        "target": TARGET_RATIO,
        "pass": min(classic["seal_ratio"], classic["open_ratio"]) >= TARGET_RATIO,
        "seconds_per_measurement": seconds,
    }
    for name, figures in (("classic", classic), ("hybrid", hybrid)):
        for key, value in figures.items():
            line[f"{name}_{key}"] = round(value, 4 if "ratio" in key else 1)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
