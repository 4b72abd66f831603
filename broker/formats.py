"""String formats checked by every validation engine of the project.

``jsonschema`` silently ignores ``format`` unless it is given a format checker, and
its stock e-mail check only looks for an ``@``. This module is the one table of
format checks: the reference engine (``jsonschema``), the fast engine
(``jsonschema-rs``) and the pydantic models all call the same functions, so they
cannot disagree on what a valid date-time, e-mail or country code is.

Stock checks come from the ``jsonschema[format-nongpl]`` extra's libraries
(``rfc3339-validator``, ``rfc3986-validator``, ``fqdn``); e-mail, E.164 phone
numbers and ISO country / language codes are checked here, more strictly.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

import rfc3339_validator
import rfc3986_validator
from fqdn import FQDN

from broker.resources import read_json

__all__ = ["FORMATS", "check_format"]

# Local part: RFC 5322 dot-atom (no quoted strings: no authority writes them and they
# hide injection tricks). Domain: a fully qualified DNS name with a TLD of letters.
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_TLD = re.compile(r"^[A-Za-z]{2,63}$|^xn--[A-Za-z0-9-]{1,59}$")
# ITU-T E.164: a '+', a country code that does not start with 0, at most 15 digits.
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@functools.cache
def _codes(name: str) -> frozenset[str]:
    data = read_json("data", name)
    return frozenset(data["codes"])


def is_email(value: str) -> bool:
    """An addr-spec ``local@domain`` with a dot-atom local part and a real domain name."""
    local, sep, domain = value.rpartition("@")
    if not sep or not local or len(local) > 64 or len(value) > 254:
        return False
    if not _EMAIL_LOCAL.match(local):
        return False
    return is_hostname(domain) and "." in domain and bool(_TLD.match(domain.rsplit(".", 1)[1]))


def is_e164(value: str) -> bool:
    """A telephone number in E.164 form, e.g. ``+431531260``."""
    return bool(_E164.match(value))


def is_country(value: str) -> bool:
    """An officially assigned ISO 3166-1 alpha-2 code, upper case (``AT``, ``DE``)."""
    return value in _codes("iso3166-1-alpha2.json")


def is_language(value: str) -> bool:
    """An ISO 639-1 two-letter language code, lower case (``en``, ``fr``, ``de``)."""
    return value in _codes("iso639-1.json")


def is_date_time(value: str) -> bool:
    """An RFC 3339 date-time; RFC 3339 requires an offset (``Z`` or ``±hh:mm``).

    Leap seconds (``:60``) are refused: no system of the network can represent them,
    and the models, which hold real ``datetime`` values, could not either.
    """
    if not rfc3339_validator.validate_rfc3339(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_date(value: str) -> bool:
    """An RFC 3339 full-date, ``YYYY-MM-DD``, that exists in the calendar."""
    if not _DATE.match(value):
        return False
    return is_date_time(value + "T00:00:00Z")


def is_uri(value: str) -> bool:
    """An absolute RFC 3986 URI."""
    return bool(rfc3986_validator.validate_rfc3986(value, rule="URI"))


def is_ipv4(value: str) -> bool:
    """A dotted-quad IPv4 address (no leading zeros, which are ambiguous)."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv6(value: str) -> bool:
    """An IPv6 address (no zone index)."""
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return "%" not in value


def is_ip(value: str) -> bool:
    """An IPv4 or IPv6 address."""
    return is_ipv4(value) or is_ipv6(value)


def is_hostname(value: str) -> bool:
    """A DNS host name (RFC 1123), optionally with a trailing dot."""
    if not value or value.startswith(".") or len(value) > 253:
        return False
    return bool(FQDN(value, min_labels=1).is_valid)


def is_domain(value: str) -> bool:
    """A registrable domain name: a host name with at least two labels."""
    return is_hostname(value) and "." in value.rstrip(".")


def is_uuid(value: str) -> bool:
    """A UUID in its canonical lower-case 8-4-4-4-12 hexadecimal form."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


#: Every format name the schemas may use, mapped to its check. A schema that uses a
#: format not in this table is refused when the catalogue loads.
FORMATS: Mapping[str, Callable[[str], bool]] = {
    "country": is_country,
    "date": is_date,
    "date-time": is_date_time,
    "domain": is_domain,
    "e164": is_e164,
    "email": is_email,
    "hostname": is_hostname,
    "ip": is_ip,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "language": is_language,
    "uri": is_uri,
    "uuid": is_uuid,
}


def check_format(name: str, value: str) -> bool:
    """Return whether ``value`` is valid for the format ``name`` (unknown names raise KeyError)."""
    return FORMATS[name](value)
