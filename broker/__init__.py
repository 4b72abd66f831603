"""evidence-broker: signed, encrypted, schema-checked cross-border evidence requests.

The public API. Everything a user of the library calls is re-exported here;
modules not named here are internal and may change.
"""

from __future__ import annotations

from broker.errors import (
    AdapterError,
    BrokerError,
    ConfigError,
    DecryptionFailed,
    DirectoryExpired,
    DirectoryRollback,
    DirectoryUnsigned,
    InputError,
    KeyExpired,
    KeyRevoked,
    KeyUnknown,
    NotRecipient,
    ParseError,
    PolicyError,
    Problem,
    SchemaError,
    SealInvalid,
    SemanticError,
    SignatureInvalid,
    StoreError,
    TooLargeError,
    TransportBroken,
    TransportClosed,
    TransportError,
    TrustError,
    UnknownTypeError,
    VerificationError,
)
from broker.forms import MODELS, Form
from broker.labels import Label
from broker.schema import DEFAULT_MAX_BYTES, Catalogue, FormType, catalogue

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MODELS",
    "AdapterError",
    "BrokerError",
    "Catalogue",
    "ConfigError",
    "DecryptionFailed",
    "DirectoryExpired",
    "DirectoryRollback",
    "DirectoryUnsigned",
    "Form",
    "FormType",
    "InputError",
    "KeyExpired",
    "KeyRevoked",
    "KeyUnknown",
    "Label",
    "NotRecipient",
    "ParseError",
    "PolicyError",
    "Problem",
    "SchemaError",
    "SealInvalid",
    "SemanticError",
    "SignatureInvalid",
    "StoreError",
    "TooLargeError",
    "TransportBroken",
    "TransportClosed",
    "TransportError",
    "TrustError",
    "UnknownTypeError",
    "VerificationError",
    "catalogue",
]
