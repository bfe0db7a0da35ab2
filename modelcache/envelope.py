"""Signed storage format of a cached model (no Django here: the signing key is passed in).

A blob is::

    MAGIC (8 bytes) | HMAC-SHA256 signature (32 bytes) | header length (4 bytes, big endian)
    | header (UTF-8 JSON) | payload (joblib.dump(model, compress=3))

The signature covers everything after itself (length, header and payload), under a key derived
from the configured signing key. ``open_envelope`` checks magic, length and signature with
``hmac.compare_digest`` *before* it parses the header or lets joblib (pickle) near the payload:
a blob that was tampered with, truncated, written by someone else or signed under another key
raises :class:`EnvelopeSignatureError` / :class:`EnvelopeFormatError` and nothing of it is
unpickled. The header is JSON, never pickle, so the library versions that built the payload can
be compared with the running ones before loading it (as PyOD's own ``pyod.utils.persistence``
records them beside a saved detector).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import joblib

MAGIC = b"REIMSMC\x01"
FORMAT_VERSION = 1
SIGNATURE_SIZE = hashlib.sha256().digest_size
_LENGTH = struct.Struct(">I")
_PREFIX_SIZE = len(MAGIC) + SIGNATURE_SIZE + _LENGTH.size
# A header is a few hundred bytes; anything much larger is not ours.
MAX_HEADER_SIZE = 64 * 1024
JOBLIB_COMPRESS = 3
# The libraries whose upgrade may change what a pickled detector means or whether it loads.
TRACKED_LIBRARIES = ("pyod", "sklearn", "numpy", "joblib")
# The libraries whose change invalidates a cached model (joblib only reads and writes it).
INVALIDATING_LIBRARIES = ("pyod", "sklearn", "numpy")


class EnvelopeError(Exception):
    """The blob cannot be turned back into a model; it must be discarded and retrained."""


class EnvelopeFormatError(EnvelopeError):
    """Not an envelope of ours: wrong magic, truncated, unknown format version."""


class EnvelopeSignatureError(EnvelopeError):
    """The signature does not match: tampered with, or signed under another key."""


class EnvelopeLoadError(EnvelopeError):
    """Signed by us, but the payload does not load in this environment (missing class...)."""


@dataclass(frozen=True)
class EnvelopeHeader:
    format_version: int
    library_versions: dict[str, str]
    created_at: str
    model_class: str
    payload_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "library_versions": dict(self.library_versions),
            "created_at": self.created_at,
            "model_class": self.model_class,
            "payload_size": self.payload_size,
        }


def current_library_versions() -> dict[str, str]:
    import numpy
    import pyod
    import sklearn

    return {
        "pyod": pyod.__version__,
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "joblib": joblib.__version__,
    }


def changed_libraries(recorded: dict[str, str], current: dict[str, str] | None = None) -> list[str]:
    """'numpy 1.26.4 -> 2.4.6' for every invalidating library whose version differs."""
    current = current or current_library_versions()
    changes = []
    for name in INVALIDATING_LIBRARIES:
        before, now = recorded.get(name), current.get(name)
        if before != now:
            changes.append(f"{name} {before or '?'} -> {now or '?'}")
    return changes


def _derived_key(key: str | bytes) -> bytes:
    # A purpose-specific key: the default signing key is SECRET_KEY, which also signs sessions.
    raw = key.encode() if isinstance(key, str) else key
    if not raw:
        raise ValueError("the model cache signing key is empty")
    return hmac.new(raw, b"reims.modelcache.envelope.v1", hashlib.sha256).digest()


def _sign(key: str | bytes, signed_part: bytes) -> bytes:
    return hmac.new(_derived_key(key), signed_part, hashlib.sha256).digest()


def seal(model: Any, *, key: str | bytes, created_at: datetime | None = None) -> bytes:
    """Serialise ``model`` with joblib (compress=3) and wrap it in a signed envelope."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=JOBLIB_COMPRESS)
    payload = buffer.getvalue()
    header = EnvelopeHeader(
        format_version=FORMAT_VERSION,
        library_versions=current_library_versions(),
        created_at=(created_at or datetime.now(UTC)).isoformat(),
        model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        payload_size=len(payload),
    )
    header_bytes = json.dumps(header.to_dict(), sort_keys=True).encode()
    signed_part = _LENGTH.pack(len(header_bytes)) + header_bytes + payload
    return MAGIC + _sign(key, signed_part) + signed_part


def _verified_parts(blob: bytes, key: str | bytes) -> tuple[EnvelopeHeader, memoryview]:
    blob = bytes(blob)
    if len(blob) < _PREFIX_SIZE or not blob.startswith(MAGIC):
        raise EnvelopeFormatError("not a model cache envelope (bad magic or truncated)")
    signature = blob[len(MAGIC) : len(MAGIC) + SIGNATURE_SIZE]
    signed_part = blob[len(MAGIC) + SIGNATURE_SIZE :]
    if not hmac.compare_digest(signature, _sign(key, signed_part)):
        raise EnvelopeSignatureError("model cache envelope signature mismatch (tampered or foreign blob)")
    # Only now, with the content authenticated, do we look inside.
    (header_size,) = _LENGTH.unpack_from(signed_part)
    if header_size > MAX_HEADER_SIZE or _LENGTH.size + header_size > len(signed_part):
        raise EnvelopeFormatError("model cache envelope header length is out of range")
    try:
        raw = json.loads(signed_part[_LENGTH.size : _LENGTH.size + header_size])
        header = EnvelopeHeader(
            format_version=int(raw["format_version"]),
            library_versions={str(k): str(v) for k, v in raw["library_versions"].items()},
            created_at=str(raw["created_at"]),
            model_class=str(raw["model_class"]),
            payload_size=int(raw["payload_size"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EnvelopeFormatError(f"model cache envelope header is unreadable: {exc}") from exc
    if header.format_version != FORMAT_VERSION:
        raise EnvelopeFormatError(f"unsupported model cache envelope format {header.format_version}")
    payload = memoryview(signed_part)[_LENGTH.size + header_size :]
    if len(payload) != header.payload_size:
        raise EnvelopeFormatError("model cache envelope payload size does not match its header")
    return header, payload


def read_header(blob: bytes, *, key: str | bytes) -> EnvelopeHeader:
    """The authenticated header, without touching the payload."""
    return _verified_parts(blob, key)[0]


def open_envelope(blob: bytes, *, key: str | bytes) -> tuple[Any, EnvelopeHeader]:
    """Verify the signature, then load the payload. Raises an :class:`EnvelopeError`."""
    header, payload = _verified_parts(blob, key)
    try:
        model = joblib.load(io.BytesIO(payload))
    except Exception as exc:  # a signed payload that no longer loads here (library change...)
        raise EnvelopeLoadError(f"signed model payload does not load: {type(exc).__name__}: {exc}") from exc
    return model, header
