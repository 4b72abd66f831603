"""Benchmark: forms validated per second on one core.

What the product does per document (``Catalogue.parse``): size check, strict JSON
parse (UTF-8, no duplicate keys), JSON Schema verdict with the fast engine, strict
pydantic model with the rules beyond the schema. The baseline is the fastest pure
validation call on the same document in the same run: the compiled ``jsonschema-rs``
validator's ``is_valid`` on the already-parsed document (for XML: ``lxml``'s compiled
XSD on the already-parsed tree). The ratio is for information; ``pass`` judges the
issue's target of at least 10 000 JSON forms per second.

Usage: ``python bench/validate.py [--quick]``. The last line of output is JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from lxml import etree

from broker.resources import schema_root
from broker.schema import catalogue

TARGET_FORMS_PER_SECOND = 10_000
JSON_TYPE = "coe.art29.preservation"
XML_TYPE = "eu.eio.a"


def rate(work: Callable[[], object], seconds: float) -> float:
    """Return calls per second of ``work``, measured for about ``seconds``."""
    for _ in range(50):  # warm caches and compiled validators
        work()
    calls = 0
    batch = 100
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            work()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def main() -> None:
    """Run the benchmark and print one JSON line last."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (a few seconds)")
    parser.add_argument("--seconds", type=float, help="seconds per measurement (overrides)")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    cat = catalogue()

    raw = cat.template(JSON_TYPE)
    value = json.loads(raw)
    fast = cat._compile(JSON_TYPE).fast  # the compiled validator the product uses
    cat.parse(JSON_TYPE, raw)  # must be valid, or the figures mean nothing
    json_value = rate(lambda: cat.parse(JSON_TYPE, raw), seconds)
    json_baseline = rate(lambda: fast.is_valid(value), seconds)
    print(
        f"{JSON_TYPE} (JSON, {len(raw)} bytes): {json_value:,.0f} forms/s; "
        f"baseline jsonschema-rs is_valid {json_baseline:,.0f}/s"
    )

    result: dict[str, object] = {
        "name": "validate",
        "value": round(json_value, 1),
        "unit": "forms/s",
        "baseline": round(json_baseline, 1),
        "ratio": round(json_value / json_baseline, 4),
        "target": TARGET_FORMS_PER_SECOND,
        "pass": json_value >= TARGET_FORMS_PER_SECOND,
        "json_type": JSON_TYPE,
        "json_bytes": len(raw),
        "seconds_per_measurement": seconds,
    }

    if cat.get(XML_TYPE).xml:  # the EIO annexes are the XML forms
        xml = cat.template(XML_TYPE, "xml")
        cat.parse(XML_TYPE, xml, "xml")
        xsd = etree.XMLSchema(etree.parse(str(schema_root().joinpath("xsd", XML_TYPE + ".xsd"))))
        tree = etree.fromstring(xml)
        xml_value = rate(lambda: cat.parse(XML_TYPE, xml, "xml"), seconds)
        xml_baseline = rate(lambda: xsd.validate(tree), seconds)
        print(
            f"{XML_TYPE} (XML, {len(xml)} bytes): {xml_value:,.0f} forms/s; "
            f"baseline lxml XSD validate {xml_baseline:,.0f}/s"
        )
        result.update(
            xml_type=XML_TYPE,
            xml_bytes=len(xml),
            xml_value=round(xml_value, 1),
            xml_baseline=round(xml_baseline, 1),
            xml_ratio=round(xml_value / xml_baseline, 4),
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
