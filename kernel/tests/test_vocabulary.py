"""One vocabulary: the models' choices, the parsers, the generator and the numeric core read the
same definitions."""

from __future__ import annotations

import pytest

from anomalies.detection import context, reconcile
from anomalies.models import AnomalyDetection, AnomalyType
from documents.demo import generator
from documents.models import DocumentType, PropertyType
from documents.parsing import DOCUMENT_TYPES as PARSED_DOCUMENT_TYPES
from kernel import vocabulary
from kernel.values import fitting


def test_models_choices_are_built_from_the_vocabulary():
    assert DocumentType.choices == list(vocabulary.DOCUMENT_TYPE_LABELS.items())
    assert PropertyType.choices == list(vocabulary.PROPERTY_TYPE_LABELS.items())
    assert AnomalyType.choices == list(vocabulary.ANOMALY_KIND_LABELS.items())
    assert DocumentType.CASH_FLOW == "cash_flow" and DocumentType.CASH_FLOW.label == "Cash flow statement"
    assert AnomalyType.OUTLIER == vocabulary.OUTLIER


def test_document_types_and_error_signatures_are_the_same_objects_everywhere():
    assert PARSED_DOCUMENT_TYPES is vocabulary.DOCUMENT_TYPES
    assert generator.DOCUMENT_TYPES is vocabulary.DOCUMENT_TYPES
    assert reconcile.SIGNATURES is vocabulary.ERROR_SIGNATURES
    assert context.PATTERN_FACTORS is vocabulary.ERROR_SIGNATURES
    assert set(vocabulary.PATTERN_NAMES.values()) <= set(vocabulary.ANOMALY_KINDS)
    assert set(generator.ANOMALY_KINDS) <= set(vocabulary.ANOMALY_KINDS)


def test_overlong_values_raise_instead_of_being_truncated():
    assert fitting(AnomalyDetection, "account_code", "4010-0000") == "4010-0000"
    with pytest.raises(ValueError, match="account_code: .* is 41 characters, the column holds 40"):
        fitting(AnomalyDetection, "account_code", "A" * 41)
