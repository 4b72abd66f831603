"""Pydantic models of every catalogue form, one module per legal instrument.

:data:`MODELS` maps each catalogue type name to its model class; the catalogue
(:mod:`broker.schema`) refuses to load when a schema has no model or a model no schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.forms import (
    audit,
    budapest,
    directory,
    eevidence,
    eio,
    mla,
    protocol2,
    receipt,
    responses,
)
from broker.forms.base import Form

__all__ = ["MODELS", "Form"]

_MODULES = (budapest, mla, protocol2, eio, eevidence, responses, directory, receipt, audit)

#: Every form model by its catalogue type name.
MODELS: Mapping[str, type[Form]] = {
    form.form_type: form for module in _MODULES for form in module.FORMS
}
