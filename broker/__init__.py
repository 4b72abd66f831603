"""evidence-broker: signed, encrypted, schema-checked cross-border evidence requests.

The public API. Everything a user of the library calls is re-exported here;
modules not named here are internal and may change.
"""

from __future__ import annotations

from broker.envelope import (
    Envelope,
    OpenedEnvelope,
    open_envelope,
    seal_envelope,
    verify_envelope,
)
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
from broker.keys import KeySet, generate_keyset, load_keyset, read_public, write_keyset
from broker.labels import Label
from broker.schema import DEFAULT_MAX_BYTES, Catalogue, FormType, catalogue
from broker.trust import TrustDirectory, verify_directory

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
    "Envelope",
    "Form",
    "FormType",
    "InputError",
    "KeyExpired",
    "KeyRevoked",
    "KeySet",
    "KeyUnknown",
    "Label",
    "NotRecipient",
    "OpenedEnvelope",
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
    "TrustDirectory",
    "TrustError",
    "UnknownTypeError",
    "VerificationError",
    "catalogue",
    "generate_keyset",
    "load_keyset",
    "open_envelope",
    "read_public",
    "seal_envelope",
    "verify_directory",
    "verify_envelope",
    "write_keyset",
]
