"""Forms of this instrument (filled in by the form-catalogue work)."""

from __future__ import annotations

from broker.forms.base import Form

__all__ = ["FORMS"]

#: The form models this module defines.
FORMS: tuple[type[Form], ...] = ()
