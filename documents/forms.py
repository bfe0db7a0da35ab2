"""The admin's "Import documents" form."""

from __future__ import annotations

from django import forms

from documents.filters import PERIOD_VALIDATOR
from documents.models import DocumentType


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files (Django's documented pattern)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportDocumentsForm(forms.Form):
    files = MultipleFileField(
        help_text="Canonical CSV, XLSX or text PDF; several files are imported together or not at all."
    )
    property_code = forms.RegexField(
        r"^[A-Za-z0-9_-]{1,20}$", required=False, label="Property code", help_text="fills or overrides the files'"
    )
    document_type = forms.ChoiceField(
        choices=[("", "— from the file —"), *DocumentType.choices], required=False, help_text="fills or overrides"
    )
    period = forms.CharField(required=False, validators=[PERIOD_VALIDATOR], help_text="YYYY-MM; fills or overrides")
    detect = forms.BooleanField(
        required=False,
        initial=True,
        label="Detect anomalies",
        help_text="queue detection of the imported documents on the anomaly queue",
    )
