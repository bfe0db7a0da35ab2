"""The signed envelope: round trip, and refusal of anything not signed by us BEFORE unpickling."""

from __future__ import annotations

import io
import pickle
import struct

import joblib
import numpy as np
import pytest

from modelcache import envelope
from modelcache.tests.helpers import FileWriter, malicious_pickle, series, train_hbos

KEY = "test-signing-key"


def test_round_trip_keeps_scores_and_records_library_versions():
    x = series(1)
    model = train_hbos(x)
    blob = envelope.seal(model, key=KEY)

    loaded, header = envelope.open_envelope(blob, key=KEY)

    np.testing.assert_allclose(loaded.decision_function(x), model.decision_function(x))
    assert header.format_version == envelope.FORMAT_VERSION
    assert set(header.library_versions) == {"pyod", "sklearn", "numpy", "joblib"}
    assert header.library_versions == envelope.current_library_versions()
    assert header.model_class.endswith("FittedStandIn")
    assert envelope.read_header(blob, key=KEY) == header


def test_payload_is_joblib_compressed():
    model = train_hbos(series(1))
    blob = envelope.seal(model, key=KEY)
    header = envelope.read_header(blob, key=KEY)
    payload = blob[-header.payload_size :]
    # joblib's zlib container starts with the zlib magic of compress=3
    assert payload[:2] == b"x^"
    assert isinstance(joblib.load(io.BytesIO(payload)), type(model))


def test_the_crafted_pickle_really_writes_a_file_when_loaded(tmp_path):
    # Control: the attack object used below is live, so the refusal tests can fail.
    target = tmp_path / "control"
    pickle.loads(malicious_pickle(str(target)))
    assert target.exists()


@pytest.mark.parametrize("position", ["payload", "header", "signature"])
def test_any_changed_byte_is_refused(position):
    blob = bytearray(envelope.seal(train_hbos(series(2)), key=KEY))
    index = {"payload": len(blob) - 10, "header": len(envelope.MAGIC) + 32 + 4 + 3, "signature": 10}[position]
    blob[index] ^= 0x01
    with pytest.raises(envelope.EnvelopeSignatureError):
        envelope.open_envelope(bytes(blob), key=KEY)


def test_tampered_payload_with_crafted_pickle_is_never_unpickled(tmp_path):
    target = tmp_path / "pwned"
    genuine = envelope.seal(train_hbos(series(3)), key=KEY)
    header_size = struct.unpack_from(">I", genuine, len(envelope.MAGIC) + 32)[0]
    prefix_end = len(envelope.MAGIC) + 32 + 4 + header_size
    evil_payload = joblib_bytes(FileWriter(str(target)))
    # Keep the genuine signature and header, swap the payload (and fix the size so only the
    # signature can tell).
    tampered = genuine[:prefix_end] + evil_payload
    with pytest.raises(envelope.EnvelopeSignatureError):
        envelope.open_envelope(tampered, key=KEY)
    assert not target.exists()


def test_envelope_signed_under_another_key_is_refused(tmp_path):
    target = tmp_path / "pwned"
    foreign = envelope.seal(FileWriter(str(target)), key="someone-elses-key")
    assert not target.exists()  # sealing pickles, it does not load
    with pytest.raises(envelope.EnvelopeSignatureError):
        envelope.open_envelope(foreign, key=KEY)
    assert not target.exists()


@pytest.mark.parametrize("make_blob", ["raw_pickle", "raw_joblib", "empty", "truncated"])
def test_foreign_or_truncated_blobs_are_refused_as_format_errors(tmp_path, make_blob):
    target = tmp_path / "pwned"
    blob = {
        "raw_pickle": lambda: malicious_pickle(str(target)),
        "raw_joblib": lambda: joblib_bytes(FileWriter(str(target))),
        "empty": lambda: b"",
        "truncated": lambda: envelope.seal(train_hbos(series(4)), key=KEY)[:30],
    }[make_blob]()
    with pytest.raises(envelope.EnvelopeFormatError):
        envelope.open_envelope(blob, key=KEY)
    assert not target.exists()


def test_signed_payload_that_does_not_load_raises_load_error():
    header = b'{"created_at": "x", "format_version": 1, "library_versions": {}, "model_class": "m", "payload_size": 5}'
    signed_part = struct.pack(">I", len(header)) + header + b"junk!"
    blob = envelope.MAGIC + envelope._sign(KEY, signed_part) + signed_part
    with pytest.raises(envelope.EnvelopeLoadError):
        envelope.open_envelope(blob, key=KEY)


def test_unknown_format_version_is_refused():
    header = b'{"created_at": "x", "format_version": 99, "library_versions": {}, "model_class": "m", "payload_size": 0}'
    signed_part = struct.pack(">I", len(header)) + header
    blob = envelope.MAGIC + envelope._sign(KEY, signed_part) + signed_part
    with pytest.raises(envelope.EnvelopeFormatError, match="format 99"):
        envelope.read_header(blob, key=KEY)


def test_empty_key_is_rejected():
    with pytest.raises(ValueError):
        envelope.seal(train_hbos(series(5)), key="")


def test_changed_libraries_lists_pyod_sklearn_numpy_but_not_joblib():
    current = {"pyod": "3.6.7", "sklearn": "1.9.1", "numpy": "2.4.6", "joblib": "1.6.0"}
    assert envelope.changed_libraries(dict(current), current) == []
    assert envelope.changed_libraries({**current, "joblib": "1.0"}, current) == []
    assert envelope.changed_libraries({**current, "numpy": "1.26.4"}, current) == ["numpy 1.26.4 -> 2.4.6"]
    assert envelope.changed_libraries({}, current) == ["pyod ? -> 3.6.7", "sklearn ? -> 1.9.1", "numpy ? -> 2.4.6"]


def joblib_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()
