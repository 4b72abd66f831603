"""XML forms: hardened parsing, XSD validation and the lossless XML <-> model mapping.

Judicial systems exchange the European Investigation Order forms as XML. Each type of
:data:`XML_TYPES` has an XSD written for this project, ``schemas/xsd/<type>.xsd``
(target namespace ``urn:evb:xml:<type>:1``), that mirrors its JSON Schema member for
member, so the mapping is mechanical:

* element names are the JSON member names, in the order of the JSON Schema;
* an array is a wrapper element named after the member with one ``<item>`` per entry;
* leaves hold text: strings exactly as written, dates and date-times as written (after
  the whitespace collapse XSD applies to them), ``true`` / ``false``, integers.

The shape that drives the mapping (which member is an object, an array, a boolean …)
is read from the JSON Schema, so an XSD error location maps to an RFC 6901 pointer into
the mapped model, the same pointer the JSON form of the document would get.

Decoding one document, in order (each step fails closed with a :class:`ParseError` or
:class:`SchemaError`; the catalogue has already checked the size):

1. parse with a hardened lxml parser: no entity substitution, no DTD loading, no
   network, no huge trees (libxml2's limits on text nodes and depth), comments dropped,
   every external reference resolved to nothing; then refuse any DOCTYPE (entity
   bombs, XXE, external DTDs and parameter entities all need one), processing
   instructions, ``xsi:type`` / ``xsi:nil``, encodings other than UTF-8 and nesting
   deeper than :data:`MAX_DEPTH` (all ``E_PARSE``). XInclude is never processed: an
   ``xi:include`` element is just an unknown element (``E_SCHEMA``);
2. validate against the XSD: ``lxml.etree.XMLSchema`` gives the verdict; when it says
   no, ``xmlschema`` decides and explains (a document is only refused when ``xmlschema``
   finds a problem; ``tests/forms/test_xmlforms.py`` proves both agree on every XML
   example), with messages that never repeat the offending value;
3. map the tree to JSON-compatible data; the catalogue then applies the JSON Schema and
   the model exactly as for a JSON document.

XSD 1.0 cannot express everything the JSON Schema says (``if``/``then``, ISO code lists,
identifier values checked for their type), so step 3 is not a formality: a document can
pass the XSD and fail the JSON Schema, with a pointer to the same place.

The JSON form is the richer one in two corners: a JSON string may hold characters XML
1.0 cannot carry (most C0 control characters), and RFC 3339 allows UTC offsets beyond
the ±14:00 of ``xs:dateTime``. :func:`encode` refuses such documents.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import xmlschema
from lxml import etree

from broker.errors import ParseError, Problem, SchemaError
from broker.resources import read_json, schema_root

__all__ = [
    "MAX_DEPTH",
    "XML_TYPES",
    "decode",
    "encode",
    "fast_verdict",
    "namespace",
    "parse_xml",
    "reference_problems",
    "reference_schema",
    "root_element",
]

#: Root element of each type that has an XML form.
_ROOTS: Mapping[str, str] = {
    "eu.eio.a": "european_investigation_order",
    "eu.eio.b": "eio_receipt_confirmation",
    "eu.eio.c": "eio_interception_notification",
}

#: Catalogue types that have an XML form.
XML_TYPES: frozenset[str] = frozenset(_ROOTS)

#: Deepest element nesting accepted (the forms need at most 6 levels).
MAX_DEPTH = 32

_SHARED = "urn:evb:schema:defs:1#/$defs/"
_XSI_TYPING = (
    "{http://www.w3.org/2001/XMLSchema-instance}type",
    "{http://www.w3.org/2001/XMLSchema-instance}nil",
)
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def namespace(form_type: str) -> str:
    """Return the XML namespace of a type's XML form, ``urn:evb:xml:<type>:1``."""
    return f"urn:evb:xml:{form_type}:1"


def root_element(form_type: str) -> str:
    """Return the local name of the root element of a type's XML form."""
    return _ROOTS[form_type]


# -- the shape of a form, read from its JSON Schema -----------------------------------


@dataclass(frozen=True)
class _Object:
    members: Mapping[str, _Node]


@dataclass(frozen=True)
class _Array:
    item: _Node
    min_items: int
    max_items: int | None


@dataclass(frozen=True)
class _Leaf:
    # "string": text kept exactly; "date", "date-time": kept as written after the
    # whitespace collapse XSD applies to them; "boolean" and "integer": converted.
    kind: str


_Node = _Object | _Array | _Leaf


def _shape_of(node: dict[str, Any], local: dict[str, Any], shared: dict[str, Any]) -> _Node:
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref.startswith(_SHARED):
            return _shape_of(shared[ref[len(_SHARED) :]], shared, shared)
        return _shape_of(local[ref[len("#/$defs/") :]], local, shared)
    kind = node.get("type")
    if kind == "object":
        return _Object(
            {
                name: _shape_of(sub, local, shared)
                for name, sub in node.get("properties", {}).items()
            }
        )
    if kind == "array":
        return _Array(
            _shape_of(node["items"], local, shared),
            int(node.get("minItems", 0)),
            node.get("maxItems"),
        )
    if kind == "boolean" or isinstance(node.get("const"), bool):
        return _Leaf("boolean")
    if kind == "integer":
        return _Leaf("integer")
    if node.get("format") in ("date", "date-time"):
        return _Leaf(str(node["format"]))
    return _Leaf("string")


@functools.cache
def _shape(form_type: str) -> _Object:
    schema = read_json("json", form_type + ".json")
    shared = read_json("json", "_defs.json")["$defs"]
    shape = _shape_of(schema, schema.get("$defs", {}), shared)
    if not isinstance(shape, _Object):
        raise TypeError(f"{form_type}: a form must be an object")
    return shape


# -- hardened parsing -------------------------------------------------------------------


class _NothingResolver(etree.Resolver):
    """Resolve every external reference (DTD, entity) to an empty document.

    libxml2 still asks for an external DTD subset or parameter entity named in a
    DOCTYPE even with ``load_dtd=False``; answering here means no file or URL is ever
    opened (not even to find out that it exists). The DOCTYPE is refused afterwards.
    """

    # lxml-stubs lag behind lxml: resolve() takes a context, resolve_string() no base_url.
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        return self.resolve_string("", context)  # type: ignore[call-arg]


def _parser() -> etree.XMLParser:
    # A new parser per document: lxml parsers keep state and are not thread-safe.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=False,
        strip_cdata=True,
        recover=False,
        collect_ids=False,
    )
    parser.resolvers.add(_NothingResolver())
    return parser


def parse_xml(raw: bytes) -> etree._Element:
    """Parse untrusted XML with the hardened parser, without validating it.

    Raises:
        ParseError: not well-formed, or a forbidden construct (DOCTYPE, processing
            instruction, entity reference, ``xsi:type`` / ``xsi:nil``, an encoding other
            than UTF-8, XML 1.1, nesting deeper than :data:`MAX_DEPTH`).
    """
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        # lxml's message may quote names or text from the document: keep the position only.
        where = f" at line {exc.lineno}, column {exc.offset}" if exc.lineno else ""
        raise ParseError(f"malformed XML{where}") from exc
    except (ValueError, TypeError) as exc:
        raise ParseError("the document cannot be parsed as XML") from exc
    info = root.getroottree().docinfo
    doctype = info.doctype  # type: ignore[union-attr]  # missing in lxml-stubs
    if doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise ParseError("a DOCTYPE is not allowed in an XML form")
    if (info.encoding or "").upper() != "UTF-8":
        raise ParseError("an XML form must be encoded in UTF-8")
    if info.xml_version != "1.0":
        raise ParseError("an XML form must be XML 1.0")
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        _refuse_node(sibling)
    _inspect(root)
    return root


def _refuse_node(node: etree._Element) -> None:
    if isinstance(node, etree._ProcessingInstruction):
        raise ParseError("processing instructions are not allowed in an XML form")
    if isinstance(node, etree._Entity):
        raise ParseError("entity references are not allowed in an XML form")


def _inspect(root: etree._Element) -> None:
    """One walk over the tree: forbidden nodes and attributes, and the nesting depth."""
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        _refuse_node(node)
        if depth > MAX_DEPTH:
            raise ParseError(f"the document is nested deeper than {MAX_DEPTH} levels")
        for name in node.attrib if isinstance(node.tag, str) else ():
            # xsi:type and xsi:nil would let the sender choose how the XSD applies.
            if name in _XSI_TYPING:
                raise ParseError("xsi:type and xsi:nil are not allowed in an XML form")
        stack.extend((child, depth + 1) for child in node)


# -- XSD validation ---------------------------------------------------------------------


@functools.cache
def _xsd_bytes(form_type: str) -> bytes:
    return schema_root().joinpath("xsd", form_type + ".xsd").read_bytes()


@functools.cache
def _fast_schema(form_type: str) -> etree.XMLSchema:
    """The hot-path engine: libxml2's XSD validator, through lxml."""
    return etree.XMLSchema(etree.fromstring(_xsd_bytes(form_type), parser=_parser()))


@functools.cache
def reference_schema(form_type: str) -> xmlschema.XMLSchema10:
    """The reference engine (``xmlschema``): decides refusals and explains them.

    It is given the XSD as text and may open no resource (``allow="none"``); it never
    follows ``xsi:schemaLocation`` hints in documents.
    """
    return xmlschema.XMLSchema10(
        _xsd_bytes(form_type).decode("utf-8"), allow="none", defuse="always"
    )


def fast_verdict(form_type: str, root: etree._Element) -> bool:
    """Return the fast engine's verdict alone (for tests and benchmarks)."""
    return bool(_fast_schema(form_type).validate(root.getroottree()))


def reference_problems(form_type: str, root: etree._Element) -> tuple[Problem, ...]:
    """Diagnose a parsed document with the reference engine (no fast path)."""
    errors = reference_schema(form_type).iter_errors(root.getroottree())
    ranked = sorted(
        (_problem(form_type, root, error) for error in errors), key=lambda found: found[0]
    )
    # Several facets may fail on one value (pattern and length, say): the most
    # specific one is reported, one problem per pointer, as for JSON documents.
    by_pointer: dict[str, Problem] = {}
    for _rank, problem in ranked:
        by_pointer.setdefault(problem.pointer, problem)
    return tuple(sorted(by_pointer.values()))


def _require_xml_type(form_type: str) -> None:
    if form_type not in XML_TYPES:
        raise ParseError(f"{form_type} has no XML form")


# -- XSD errors -> problems with pointers into the mapped model ----------------------------


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _locate(
    form_type: str, root: etree._Element, element: etree._Element | None
) -> tuple[list[str | int], _Node | None]:
    """Return the model path of an element of the tree, and its shape where known."""
    chain: list[etree._Element] = []
    while element is not None and element is not root:
        chain.append(element)
        element = element.getparent()
    if element is None:  # not inside the document: report at the root
        return [], _shape(form_type)
    path: list[str | int] = []
    node: _Node | None = _shape(form_type)
    for child in reversed(chain):
        parent = child.getparent()
        if isinstance(node, _Array) and parent is not None:
            path.append(_children(parent).index(child))
            node = node.item
        else:
            name = _local(child)
            path.append(name)
            known = isinstance(node, _Object) and etree.QName(child).namespace == namespace(
                form_type
            )
            node = node.members.get(name) if known and isinstance(node, _Object) else None
    return path, node


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _problem(form_type: str, root: etree._Element, error: Any) -> tuple[int, Problem]:
    """Translate one ``xmlschema`` error; the rank orders several errors at one pointer."""
    element = getattr(error, "elem", None)
    expected_root = etree.QName(namespace(form_type), root_element(form_type))
    if not isinstance(element, etree._Element) or etree.QName(root) != expected_root:
        message = f"not a {form_type} XML form (root element or namespace)"
        return 0, Problem("", "E_SCHEMA", message)
    path, node = _locate(form_type, root, element)
    if isinstance(error, xmlschema.XMLSchemaChildrenValidationError):
        return 0, _children_problem(form_type, error, element, path, node)
    rank, message = _describe(error.validator, node)
    return rank, Problem(_pointer(path), "E_SCHEMA", message)


def _children_problem(
    form_type: str,
    error: Any,
    element: etree._Element,
    path: list[str | int],
    node: _Node | None,
) -> Problem:
    children = _children(element)
    index = int(error.index)
    expected = [e for e in (error.expected or ()) if getattr(e, "local_name", None)]
    if isinstance(node, _Array):
        if index < len(children) and _local(children[index]) != "item":
            return Problem(_pointer([*path, index]), "E_SCHEMA", "not allowed here")
        if index < len(children):
            return Problem(
                _pointer(path), "E_SCHEMA", f"must have at most {node.max_items} item(s)"
            )
        return Problem(_pointer(path), "E_SCHEMA", f"must have at least {node.min_items} item(s)")
    if not isinstance(node, _Object):
        return Problem(_pointer(path), "E_SCHEMA", "must not contain elements")
    present = {_local(c) for c in children if etree.QName(c).namespace == namespace(form_type)}
    missing = [
        str(e.local_name) for e in expected if e.min_occurs > 0 and e.local_name not in present
    ]
    if index < len(children):
        child = children[index]
        name = _local(child)
        if name not in node.members or etree.QName(child).namespace != namespace(form_type):
            return Problem(_pointer([*path, name]), "E_SCHEMA", "unknown member")
        if not missing:
            return Problem(
                _pointer([*path, name]), "E_SCHEMA", "member is repeated or out of order"
            )
    if missing:
        return Problem(_pointer([*path, missing[0]]), "E_SCHEMA", "required member is missing")
    return Problem(_pointer(path), "E_SCHEMA", "the content is not complete")


_LEAF_MESSAGES = {
    "date": "not a valid date",
    "date-time": "not a valid date-time",
    "boolean": "must be of type boolean",
    "integer": "must be of type integer",
}


def _describe(validator: Any, node: _Node | None) -> tuple[int, str]:
    """A message for an XSD error that never repeats the offending value.

    ``xmlschema``'s own reasons quote the value, so the message is built from the kind
    of the failing component instead. Rank 0 is specific, rank 1 generic.
    """
    kind = type(validator).__name__
    value = getattr(validator, "value", None)
    if kind == "XsdEnumerationFacets":
        return 0, "must be one of: " + ", ".join(map(str, validator.enumeration))
    facets = {
        "XsdMinLengthFacet": f"must be at least {value} characters long",
        "XsdMaxLengthFacet": f"must be at most {value} characters long",
        "XsdLengthFacet": f"must be exactly {value} characters long",
        "XsdMinInclusiveFacet": f"must be at least {value}",
        "XsdMaxInclusiveFacet": f"must be at most {value}",
    }
    if kind in facets:
        return 0, facets[kind]
    if kind.startswith("XsdAttribute") or kind == "XsdAnyAttribute":
        return 0, "attributes are not allowed here"
    if isinstance(node, _Leaf):
        if kind == "XsdElement":
            return 0, "must not contain elements"
        if node.kind in _LEAF_MESSAGES:
            return 0, _LEAF_MESSAGES[node.kind]
        if kind == "XsdPatternFacets":
            return 1, "has a character or form that is not allowed here"
    elif node is not None:
        return 0, "text is not allowed here"
    return 1, "does not match the XML schema here"


# -- mapping ------------------------------------------------------------------------------


def _to_json(element: etree._Element, node: _Node) -> Any:
    if isinstance(node, _Object):
        return {
            _local(child): _to_json(child, node.members[_local(child)])
            for child in _children(element)
        }
    if isinstance(node, _Array):
        return [_to_json(child, node.item) for child in _children(element)]
    text = element.text or ""
    if node.kind == "string":
        return text
    # xs:boolean, xs:integer, xs:date and xs:dateTime collapse whitespace; the XSD has
    # already checked the lexical form, so these conversions cannot fail.
    collapsed = text.strip(" \t\r\n")
    if node.kind == "boolean":
        return collapsed == "true"
    if node.kind == "integer":
        return int(collapsed)
    return collapsed


def decode(form_type: str, raw: bytes) -> dict[str, Any]:
    """Parse an XML form into the JSON model of its type.

    Args:
        form_type: a type of :data:`XML_TYPES`.
        raw: the document's bytes (the caller has checked the size limit).

    Returns:
        JSON-compatible data, ready for the JSON Schema and the model.

    Raises:
        ParseError: not a type with an XML form; malformed XML; a DOCTYPE, processing
            instruction, other encoding than UTF-8 or too deep nesting.
        SchemaError: the document violates the XSD; every problem has a pointer into
            the mapped model.
    """
    _require_xml_type(form_type)
    root = parse_xml(raw)
    if not fast_verdict(form_type, root):
        try:
            problems = reference_problems(form_type, root)
        except xmlschema.XMLSchemaException as exc:
            raise SchemaError("the XML form cannot be checked against its XSD") from exc
        if problems:
            raise SchemaError("the document does not match its XSD", problems)
    value = _to_json(root, _shape(form_type))
    if not isinstance(value, dict):
        raise SchemaError("the document does not match its XSD")
    return value


def encode(form_type: str, doc: Mapping[str, Any]) -> bytes:
    """Render a document of a type as UTF-8 XML with an XML declaration.

    The document should be valid; :func:`encode` checks only what the mapping needs
    (members it knows, of the right JSON type, with characters XML can carry).

    Raises:
        ParseError: not a type with an XML form.
        SchemaError: the document cannot be written as this type's XML form.
    """
    _require_xml_type(form_type)
    ns = namespace(form_type)
    root = etree.Element(etree.QName(ns, root_element(form_type)), nsmap={None: ns})  # type: ignore[dict-item]
    _fill(root, doc, _shape(form_type), ns, [])
    body = etree.tostring(root, encoding="UTF-8", pretty_print=True)
    return _DECLARATION + bytes(body)


def _fill(element: etree._Element, value: Any, node: _Node, ns: str, path: list[str | int]) -> None:
    if isinstance(node, _Object):
        if not isinstance(value, Mapping):
            raise _unencodable(path, "must be of type object")
        for name in value:
            if name not in node.members:
                raise _unencodable([*path, name], "unknown member")
        for name, member in node.members.items():
            if name in value:
                child = etree.SubElement(element, etree.QName(ns, name))
                _fill(child, value[name], member, ns, [*path, name])
        return
    if isinstance(node, _Array):
        if not isinstance(value, list | tuple):
            raise _unencodable(path, "must be of type array")
        for index, item in enumerate(value):
            _fill(
                etree.SubElement(element, etree.QName(ns, "item")),
                item,
                node.item,
                ns,
                [*path, index],
            )
        return
    try:
        element.text = _leaf_text(value, node, path)
    except ValueError as exc:
        # lxml refuses text that XML 1.0 cannot carry (most C0 controls, lone surrogates).
        raise _unencodable(path, "contains characters that XML cannot carry") from exc


def _leaf_text(value: Any, node: _Leaf, path: list[str | int]) -> str:
    if node.kind == "boolean":
        if not isinstance(value, bool):
            raise _unencodable(path, "must be of type boolean")
        return "true" if value else "false"
    if node.kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _unencodable(path, "must be of type integer")
        return str(value)
    if not isinstance(value, str):
        raise _unencodable(path, "must be of type string")
    return value


def _unencodable(path: list[str | int], message: str) -> SchemaError:
    pointer = _pointer(path)
    return SchemaError(
        "the document cannot be written as XML", (Problem(pointer, "E_SCHEMA", message),)
    )
