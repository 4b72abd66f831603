"""Case replies an operator sends: the form of each ``evb reply`` kind, built and validated.

``evb reply KIND CASE [FORM.json] [flags]`` answers (or follows up) a request. This
module turns the operator's input into the form of the reply and validates it; it
does no I/O. The node wraps the result in an envelope, which carries the case id,
``in_reply_to``, ``from``, ``to`` and ``sent_at`` (the forms never repeat them).

Each kind maps to one catalogue type (:data:`KINDS`). The operator's FORM.json, when
given, is the base; the flags fill or override the members they name; what the node
knows about the case (:class:`ReplyContext`) fills the rest where a sensible default
exists. The form is then validated by the catalogue, so a reply is never built that
the recipient would refuse on schema grounds.

Errors, for the operator to correct (never a ``ValueError``):

* an unknown kind → :class:`~broker.errors.UnknownTypeError` (``E_UNKNOWN_TYPE``);
* a refusal without a ground, with a ground its instrument or the sender's role does
  not provide, or without a motivation → :class:`~broker.errors.GroundError`
  (``E_GROUND``, from :func:`broker.lifecycle.check_refusal`);
* any other missing, unusable or inapplicable input, or a form that does not
  validate → :class:`~broker.errors.SchemaError` (``E_SCHEMA``) or
  :class:`~broker.errors.SemanticError` (``E_SEMANTIC``), each problem with the
  RFC 6901 pointer of the member concerned.

Whether the case's state allows the reply is not decided here: the node checks the
step against the instrument's state machine when it records the reply.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NoReturn

from broker.clock import wire_time
from broker.errors import GroundError, NotParty, Problem, SchemaError, UnknownTypeError
from broker.forms.responses import status_codes
from broker.lifecycle import PARTIES, check_refusal, grounds_for, machine, rules
from broker.schema import catalogue

__all__ = ["DEFAULT_TOPIC", "KINDS", "ReplyContext", "build_reply"]

#: The reply kinds of ``evb reply`` and the catalogue type each one sends.
KINDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ack": "case.ack",
        "status": "case.status",
        "refuse": "case.refusal",
        "clarify": "case.clarification_request",
        "extend": "case.extension",
        "withdraw": "case.withdrawal",
        "respond": "case.response",
    }
)

# The inputs each kind takes besides its form ("text" stands for text or motivation).
# A flag that a kind does not use is refused: silently dropping it would send a reply
# other than the one the operator asked for.
_USES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "ack": frozenset({"text"}),
        "status": frozenset({"status", "until", "text"}),
        "refuse": frozenset({"ground", "text", "article"}),
        "clarify": frozenset({"text", "until"}),
        "extend": frozenset({"until", "period", "text", "article"}),
        "withdraw": frozenset({"text", "until"}),
        "respond": frozenset({"text"}),
    }
)
#: The topic of a question asked with a flag rather than in FORM.json.
DEFAULT_TOPIC: Final = "The request"


@dataclass(frozen=True)
class ReplyContext:
    """What the node knows about the case a reply belongs to.

    Attributes:
        case_id: the case id.
        instrument: the catalogue type of the request that opened the case
            (``coe.art29.preservation``, ``eu.eio.a``, ``eu.epoc`` …).
        request_id: the message id of that request.
        me: this node's participant id (``AT.247``).
        peer: the other party's participant id (``DE.247``).
        role: this node's role in the case: ``requester``, ``requested`` or
            (Regulation (EU) 2023/1543 enforcing authority, CETS 224 Art 7(5)
            authority) ``notified``.
        now: the current time, timezone-aware.
        received_at: when the request was received, if the node recorded it (the
            acknowledgement states it; without it, ``now`` is stated).

    Raises:
        ValueError: a naive time, or a role that is no party (a programming error:
            the node builds the context from its own records).
    """

    case_id: str
    instrument: str
    request_id: str
    me: str
    peer: str
    role: str
    now: datetime
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or (
            self.received_at is not None and self.received_at.tzinfo is None
        ):
            raise ValueError("a reply context needs timezone-aware times")
        if self.role not in PARTIES or self.role == "clock":
            raise ValueError(f"{self.role!r} is not a party's role")


@dataclass(frozen=True)
class _Input:
    """The operator's flags, once checked against the kind."""

    ground: str | None
    status: str | None
    until: datetime | None
    period: str | None
    text: str | None
    article: str | None


_Builder = Callable[[ReplyContext, dict[str, Any], _Input], None]


def build_reply(
    kind: str,
    context: ReplyContext,
    *,
    form: Mapping[str, Any] | None = None,
    ground: str | None = None,
    motivation: str | None = None,
    status: str | None = None,
    until: datetime | None = None,
    period: str | None = None,
    text: str | None = None,
    article: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Build the form of a case reply and validate it.

    Args:
        kind: one of :data:`KINDS` (``ack``, ``status``, ``refuse``, ``clarify``,
            ``extend``, ``withdraw``, ``respond``).
        context: what the node knows about the case.
        form: the operator's FORM.json, the base that the flags fill or override
            (required for ``respond``).
        ground: ``refuse``: the ground code (``--ground``).
        motivation: the free text of the reply (``--motivation``): the refusal's
            motivation, the status's or acknowledgement's note, the question of a
            clarification request, the reason of an extension or withdrawal, the
            response's note.
        status: ``status``: the status code (``--status``).
        until: a time (``--until``): ``preserved_until`` of a status about preserved
            data (``expected_by`` of a status that requires it), ``new_until`` of an
            extension, ``respond_by`` of a clarification request, ``effective_at``
            of a withdrawal.
        period: ``extend``: the extension as an ISO 8601 duration (``P30D``).
        text: the same as ``motivation`` (give one of them, or both alike).
        article: ``refuse``: a more precise article than the ground's; ``extend``:
            the provision that allows the extension (required, here or in the form).

    Returns:
        The catalogue type of the reply and its form data (JSON-ready), valid.

    Raises:
        UnknownTypeError: an unknown kind, or an instrument that opens no case.
        NotParty: the context's role is not a party of the instrument.
        GroundError: see the module docstring.
        SchemaError: see the module docstring (``SemanticError`` included).
    """
    form_type = KINDS.get(kind)
    if form_type is None:
        raise UnknownTypeError(f"not a reply kind; one of {', '.join(KINDS)}")
    if context.role not in machine(context.instrument).parties:
        raise NotParty(f"a {context.role!r} is not a party to a {context.instrument} case")
    flags = _input(
        kind,
        _Input(
            ground=ground,
            status=status,
            until=until,
            period=period,
            text=_one_text(text, motivation),
            article=article,
        ),
    )
    data = _base(form)
    _BUILDERS[kind](context, data, flags)
    catalogue().parse_obj(form_type, data)
    return form_type, data


# -- input ----------------------------------------------------------------------------------


def _refuse(member: str, message: str) -> NoReturn:
    pointer = f"/{member}" if member else ""
    raise SchemaError(message, (Problem(pointer, SchemaError.code, message),))


def _one_text(text: str | None, motivation: str | None) -> str | None:
    if text is not None and motivation is not None and text != motivation:
        _refuse("", "give the reply's text once (text or motivation), not two different ones")
    return text if text is not None else motivation


def _input(kind: str, flags: _Input) -> _Input:
    given = [name for name, value in vars(flags).items() if value is not None]
    unused = [name for name in given if name not in _USES[kind]]
    if unused:
        _refuse("", f"{', '.join(unused)} does not apply to the {kind} reply")
    # A blank motivation of a refusal is a GroundError (check_refusal), not a form error.
    if flags.text is not None and not flags.text.strip() and kind != "refuse":
        _refuse("", "the reply's text is blank")
    if flags.until is not None and flags.until.tzinfo is None:
        _refuse("", "a time needs its UTC offset")
    return flags


def _base(form: Mapping[str, Any] | None) -> dict[str, Any]:
    if form is None:
        return {}
    if not isinstance(form, Mapping):
        _refuse("", "the form must be a JSON object")
    # A deep copy: the caller's form is not changed, and the result shares nothing.
    return {key: copy.deepcopy(value) for key, value in form.items()}


def _string(data: Mapping[str, Any], member: str) -> str | None:
    value = data.get(member)
    if value is not None and not isinstance(value, str):
        _refuse(member, "must be a string")
    return value


def _same_instrument(context: ReplyContext, data: Mapping[str, Any]) -> bool:
    named: object = data.get("instrument", context.instrument)
    return named == context.instrument


# -- one builder per kind -------------------------------------------------------------------


def _ack(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    data.setdefault("received_at", wire_time(context.received_at or context.now))
    # The recipient's own file number for the request: the node's case id.
    data.setdefault("reference", context.case_id)
    data.setdefault("competent", "forwarded_to" not in data)
    if flags.text is not None:
        data["note"] = flags.text


def _status(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    code = flags.status if flags.status is not None else _string(data, "status")
    if code is None:
        _refuse("status", "a status reply needs a status code")
    row = status_codes().get(context.instrument, {}).get(code)
    if row is None:
        valid = ", ".join(sorted(status_codes().get(context.instrument, {})))
        _refuse("status", f"not a status of {context.instrument}; one of {valid}")
    if not _same_instrument(context, data):
        _refuse("instrument", "the form names another instrument than the case's")
    data["status"] = code
    data["instrument"] = context.instrument
    if flags.until is not None:
        requires: list[str] = row.get("requires", [])
        if "preserved_until" in requires + row.get("allows", []):
            data["preserved_until"] = wire_time(flags.until)
        elif "expected_by" in requires:
            data["expected_by"] = wire_time(flags.until)
        else:
            _refuse("preserved_until", "this status does not concern preserved data")
    if flags.text is not None:
        data["note"] = flags.text


def _refusal(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    if not _same_instrument(context, data):
        raise GroundError("the refusal names another instrument than the case's")
    code = flags.ground if flags.ground is not None else _string(data, "ground")
    if not code:
        valid = grounds_for(context.instrument, context.role)
        offer = f": one of {', '.join(valid)}" if valid else f"; the {context.role} has none"
        raise GroundError(f"a refusal of {context.instrument} needs a ground{offer}")
    motivation = flags.text if flags.text is not None else _string(data, "motivation")
    # 1. the ground fits the instrument and the refuser's role, 2. it is motivated.
    row = check_refusal(context.instrument, code, motivation or "", by=context.role)
    data["instrument"] = context.instrument
    data["ground"] = code
    data["motivation"] = motivation
    if flags.article is not None:
        data["article"] = flags.article
    data.setdefault("article", row["article"])
    # Listing refused items only makes sense in a partial refusal.
    data.setdefault("partial", "refused_items" in data)


def _clarification_request(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    if flags.text is not None:
        questions = data.get("questions", [])
        if not isinstance(questions, list):
            _refuse("questions", "must be a list")
        # A question asked with the flag is added to those of the form.
        data["questions"] = [*questions, {"topic": DEFAULT_TOPIC, "question": flags.text}]
    if not data.get("questions"):
        _refuse("questions", "a clarification request needs a question")
    if flags.until is not None:
        data["respond_by"] = wire_time(flags.until)
    # Whether the clock stops while the question is open is the instrument's rules'
    # call (pauses_on in deadline_rules.json), not the operator's.
    data.setdefault(
        "clock_suspended",
        any(
            "clarification_request" in rule.pauses_on
            for rule in rules()
            if rule.instrument == context.instrument
        ),
    )


def _extension(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    if flags.until is not None and flags.period is not None:
        _refuse("period", "give either a period or a new end (until), not both")
    if flags.until is not None:
        data.pop("period", None)
        data["new_until"] = wire_time(flags.until)
    if flags.period is not None:
        data.pop("new_until", None)
        data["period"] = flags.period
    if "period" not in data and "new_until" not in data:
        _refuse("period", "an extension needs a period or a new end (until)")
    # The party that owes the step asks for more time; the other one grants it.
    data.setdefault("kind", "request" if context.role == "requester" else "grant")
    if flags.text is not None:
        data["reason"] = flags.text
    if flags.article is not None:
        data["article"] = flags.article
    if "article" not in data:
        # Several rules (with their articles) may be extended; the operator names it.
        _refuse("article", "name the provision that allows the extension")


def _withdrawal(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    del context  # a withdrawal needs nothing from the case
    if flags.text is not None:
        data["reason"] = flags.text
    if "reason" not in data:
        _refuse("reason", "a withdrawal needs a reason")
    if flags.until is not None:
        data["effective_at"] = wire_time(flags.until)


def _response(context: ReplyContext, data: dict[str, Any], flags: _Input) -> None:
    if not data:
        _refuse("", "a response needs its form (FORM.json): the disposition and the data")
    data.setdefault("produced_at", wire_time(context.now))
    if flags.text is not None:
        data["note"] = flags.text


_BUILDERS: Final[Mapping[str, _Builder]] = MappingProxyType(
    {
        "ack": _ack,
        "status": _status,
        "refuse": _refusal,
        "clarify": _clarification_request,
        "extend": _extension,
        "withdraw": _withdrawal,
        "respond": _response,
    }
)
