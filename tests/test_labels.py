"""Every field of every form has a label and help text in English, French and German."""

from __future__ import annotations

import pytest

from broker import labels
from broker.forms import MODELS
from broker.schema import catalogue

TYPES = sorted(MODELS)


def test_no_property_lacks_a_label() -> None:
    assert labels.missing_labels(TYPES) == []


def test_no_label_is_stale() -> None:
    assert labels.stale_labels(TYPES) == []


def test_every_type_has_fields() -> None:
    for name in TYPES:
        assert labels.fields(name), name


@pytest.mark.parametrize("language", labels.LANGUAGES)
def test_lookup_through_a_shared_definition(language: str) -> None:
    text = labels.label("coe.art29.preservation", "requesting_authority.contact.phone", language)
    assert text.label
    assert "E.164" in text.help


def test_lookup_of_a_form_field() -> None:
    assert labels.label("coe.art29.preservation", "preservation_days", "fr").label.startswith(
        "Durée"
    )


def test_unknown_field() -> None:
    with pytest.raises(KeyError):
        labels.label("coe.art29.preservation", "no_such_field")


def test_languages_differ() -> None:
    # A copy of the English text is not a translation.
    for name in TYPES:
        for ref in labels.fields(name):
            en = labels.label(name, ref.path, "en")
            assert labels.label(name, ref.path, "fr") != en, (name, ref.path)
            assert labels.label(name, ref.path, "de") != en, (name, ref.path)


def test_catalogue_and_models_list_the_same_types() -> None:
    assert [t.name for t in catalogue().types()] == TYPES
