"""The cache services: keys, tiers, invalidation rules, refusal of tampered blobs, usage flush,
batch loading, concurrency and cleanup."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from anomalies.detection import detectors, engine
from anomalies.detection.features import FEATURE_NAMES
from anomalies.detection.provider import CURRENT_FEATURE_VERSION, ModelRequest, SeriesModelKey, generate_model_key
from kernel.exceptions import ApplicationError
from modelcache import envelope
from modelcache.models import AnomalyModelCache, ModelCacheStats
from modelcache.services import (
    CachedModelProvider,
    CacheOutcome,
    ModelCache,
    cached_models,
    cleanup_model_cache,
    default_cache,
    get_or_train_model,
    invalidate_cache,
)
from modelcache.services.rules import DRIFT_SAMPLE_MAX, should_invalidate
from modelcache.tests.helpers import (
    CONFIG,
    CountingTrainer,
    PropertyFactory,
    lookup,
    malicious_pickle,
    request_for,
    series,
    train_hbos,
)

pytestmark = pytest.mark.django_db
# Room for every model of a test (the HBOS stand-ins are a few KB each).
ROOMY = 10_000_000


def the_row(prop, account="4010-0000") -> AnomalyModelCache:
    return AnomalyModelCache.objects.get(property=prop, account_code=account)


# --- Keys -----------------------------------------------------------------------------------------


def test_generate_model_key_is_sha256_of_sorted_json_of_the_four_parts():
    key = generate_model_key(7, "4010-0000", "ECOD", {"b": 2, "a": 1})
    expected = hashlib.sha256(
        json.dumps(
            {"property_id": 7, "account_code": "4010-0000", "model_type": "ECOD", "config": {"a": 1, "b": 2}},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    assert key == expected
    assert key == generate_model_key(7, "4010-0000", "ECOD", {"a": 1, "b": 2})
    others = {
        generate_model_key(8, "4010-0000", "ECOD", {"a": 1, "b": 2}),
        generate_model_key(7, "4020-0000", "ECOD", {"a": 1, "b": 2}),
        generate_model_key(7, "4010-0000", "HBOS", {"a": 1, "b": 2}),
        generate_model_key(7, "4010-0000", "ECOD", {"a": 1, "b": 3}),
    }
    assert key not in others and len(others) == 4


def test_document_type_model_version_and_feature_version_separate_keys():
    series_key = SeriesModelKey(1, "cash_flow", "1000")
    base = ModelRequest(series_key, "auto", CONFIG)
    others = {
        ModelRequest(SeriesModelKey(1, "balance_sheet", "1000"), "auto", CONFIG).model_key,
        ModelRequest(series_key, "auto", CONFIG, model_version="reims-detect-0.9").model_key,
        ModelRequest(series_key, "auto", CONFIG, feature_version="0:level").model_key,
    }
    assert base.model_key not in others and len(others) == 3
    assert base.model_version == detectors.MODEL_VERSION
    assert base.feature_version == CURRENT_FEATURE_VERSION and ",".join(FEATURE_NAMES) in CURRENT_FEATURE_VERSION
    # Still the seed's formula: sha256 of the sorted JSON of the four parts.
    assert base.model_key == generate_model_key(1, "1000", "auto", base.key_config())


def test_a_feature_change_stops_serving_the_old_model():
    prop = PropertyFactory()
    x = series(1)
    trainer = CountingTrainer(x)
    old = request_for(prop)
    get_or_train_model(request=old, x_train=x, train=trainer)
    new = ModelRequest(old.series, old.model_type, old.config, feature_version=old.feature_version + "+new")
    _, outcome = get_or_train_model(request=new, x_train=x, train=trainer)
    assert outcome is CacheOutcome.MISS and trainer.calls == 2
    assert set(AnomalyModelCache.objects.values_list("model_key", flat=True)) == {old.model_key, new.model_key}
    default_cache().lru.clear()
    provider = CachedModelProvider()
    assert provider.prefetch([new]) == 1  # only the model of the current versions is loaded
    assert list(default_cache().lru.keys()) == [new.model_key]


# --- Tiers ----------------------------------------------------------------------------------------


def test_miss_trains_and_stores_then_lru_hit_then_database_hit():
    prop = PropertyFactory()
    x = series(1)
    trainer = CountingTrainer(x)

    model, outcome = lookup(prop, x, trainer)
    assert outcome is CacheOutcome.MISS and trainer.calls == 1
    row = the_row(prop)
    assert row.is_active and row.model_type == "HBOS" and row.document_type == "income_statement"
    assert row.size_bytes == len(bytes(row.model_binary)) > 0
    assert row.model_metadata["library_versions"] == envelope.current_library_versions()
    assert row.model_metadata["requested_model_type"] == "auto"
    assert row.training_data_size == 36
    assert abs((row.expires_at - row.trained_at) - timedelta(days=30)) < timedelta(seconds=5)

    again, outcome = lookup(prop, x, trainer)
    assert outcome is CacheOutcome.LRU_HIT and trainer.calls == 1
    assert again is model

    default_cache().clear()  # as in a freshly started worker
    from_db, outcome = lookup(prop, x, trainer)
    assert outcome is CacheOutcome.DB_HIT and trainer.calls == 1
    np.testing.assert_allclose(from_db.decision_function(x), model.decision_function(x))


def test_disabled_flag_bypasses_everything(cache_disabled, django_assert_num_queries):
    prop = PropertyFactory()
    x = series(1)
    trainer = CountingTrainer(x)
    with django_assert_num_queries(0):
        for _ in range(3):
            model, outcome = lookup(prop, x, trainer)
            assert outcome is CacheOutcome.BYPASS
        assert CachedModelProvider().prefetch([request_for(prop)]) == 0
    assert trainer.calls == 3
    assert not AnomalyModelCache.objects.exists()
    assert len(default_cache()) == 0


def test_lru_is_bounded_in_bytes_and_evicts_the_least_recently_used():
    prop = PropertyFactory()
    x = series(1)
    lookup(prop, x, CountingTrainer(x), account="4000")
    size = the_row(prop, "4000").size_bytes  # the HBOS stand-ins all serialise to about this
    cache = ModelCache(max_bytes=int(size * 3.5))
    keys = []
    for i in range(4):
        lookup(prop, x, CountingTrainer(x), account=f"40{i}0", cache=cache)
        keys.append(request_for(prop, f"40{i}0").model_key)
    assert len(cache) == 3 and keys[0] not in cache
    assert cache.lru.total_bytes <= cache.lru.max_bytes

    lookup(prop, x, CountingTrainer(x), account="4010", cache=cache)  # touch: most recent now
    lookup(prop, x, CountingTrainer(x), account="4990", cache=cache)  # evicts the oldest: 4020
    assert keys[1] in cache and keys[2] not in cache and len(cache) == 3
    assert AnomalyModelCache.objects.count() == 5  # evicted from memory, still in the table


def test_a_model_larger_than_the_whole_lru_is_served_but_not_kept():
    prop = PropertyFactory()
    x = series(1)
    cache = ModelCache(max_bytes=100)
    trainer = CountingTrainer(x)
    model, outcome = lookup(prop, x, trainer, cache=cache)
    assert outcome is CacheOutcome.MISS and model is not None and len(cache) == 0
    again, outcome = lookup(prop, x, trainer, cache=cache)
    assert outcome is CacheOutcome.DB_HIT and trainer.calls == 1
    np.testing.assert_allclose(again.decision_function(x), model.decision_function(x))


# --- Usage without a write per hit -----------------------------------------------------------------


def test_hits_write_nothing_until_flush_and_flush_is_a_few_queries(django_assert_num_queries, django_assert_max_num_queries):
    prop = PropertyFactory()
    cache = ModelCache(max_bytes=ROOMY, flush_every=10_000, flush_seconds=3600)
    x = series(1)
    for i in range(5):
        lookup(prop, x, CountingTrainer(x), account=f"50{i}0", cache=cache)
    cache.flush_usage()  # the misses' statistics

    with django_assert_num_queries(0):
        for _ in range(40):
            for i in range(5):
                _, outcome = lookup(prop, x, CountingTrainer(x), account=f"50{i}0", cache=cache)
                assert outcome is CacheOutcome.LRU_HIT
    assert set(AnomalyModelCache.objects.values_list("use_count", flat=True)) == {0}

    with django_assert_max_num_queries(5):  # savepoint, one UPDATE for 5 rows, stats insert+update, release
        assert cache.flush_usage() == 5
    rows = AnomalyModelCache.objects.filter(property=prop)
    assert set(rows.values_list("use_count", flat=True)) == {40}
    assert all(r.last_used_at is not None for r in rows)
    stats = dict(ModelCacheStats.objects.values_list("counter", "value"))
    assert stats["lru_hit"] == 200 and stats["lru_miss"] == 5 and stats["db_miss"] == 5 and stats["trained"] == 5


def test_usage_is_flushed_by_itself_every_n_hits():
    prop = PropertyFactory()
    cache = ModelCache(max_bytes=ROOMY, flush_every=50, flush_seconds=3600)
    x = series(1)
    lookup(prop, x, CountingTrainer(x), cache=cache)
    for _ in range(120):
        lookup(prop, x, CountingTrainer(x), cache=cache)
    assert the_row(prop).use_count == 100  # two automatic flushes of 50
    cache.flush_usage()
    assert the_row(prop).use_count == 120


def test_flush_usage_of_the_default_cache_and_stats_hit_rate():
    prop = PropertyFactory()
    x = series(1)
    lookup(prop, x, CountingTrainer(x))
    lookup(prop, x, CountingTrainer(x))
    default_cache().flush_usage()
    assert the_row(prop).use_count == 1
    assert default_cache().counters.snapshot()["lru_hit"] == 1


# --- Invalidation rules ----------------------------------------------------------------------------


@pytest.fixture
def stored(db):
    prop = PropertyFactory()
    x = series(1)
    lookup(prop, x, CountingTrainer(x))
    default_cache().clear()
    return prop, x, the_row(prop)


def test_a_fresh_entry_is_valid_even_with_new_data_of_the_same_distribution(stored):
    _prop, x, row = stored
    assert should_invalidate(row) is None
    assert should_invalidate(row, X_new=x) is None
    assert should_invalidate(row, X_new=series(99)) is None  # other noise, same distribution


def test_rule_age(stored, settings):
    _prop, _x, row = stored
    assert should_invalidate(row, now=row.expires_at - timedelta(seconds=1)) is None
    settings.MODEL_CACHE_TTL_DAYS = 30
    assert should_invalidate(row, now=row.trained_at + timedelta(days=31)).startswith("expired")


def test_rule_validation_accuracy(stored, settings):
    _prop, _x, row = stored
    settings.MODEL_CACHE_MIN_VALIDATION_ACCURACY = 0.6
    row.validation_accuracy = 0.55
    assert should_invalidate(row).startswith("validation accuracy 0.550 below 0.600")
    row.validation_accuracy = 0.65
    assert should_invalidate(row) is None


def test_rule_distribution_drift(stored):
    _prop, _x, row = stored
    reason = should_invalidate(row, X_new=series(5, shift=3.0))
    assert reason.startswith("drift: KS")


def test_rule_feature_count(stored):
    _prop, _x, row = stored
    assert should_invalidate(row, X_new=series(1, cols=5)) == "feature count changed: 6 -> 5"


@pytest.mark.parametrize("library", ["pyod", "sklearn", "numpy"])
def test_rule_library_version_change(stored, library):
    _prop, _x, row = stored
    row.model_metadata["library_versions"][library] = "0.0.1"
    assert should_invalidate(row) == f"library changed: {library} 0.0.1 -> {envelope.current_library_versions()[library]}"


def test_rule_manual_invalidation(stored):
    prop, _x, row = stored
    assert invalidate_cache(property_id=prop.pk, reason="manual: test") == 1
    row.refresh_from_db()
    assert should_invalidate(row) == "inactive: manual: test"


def mutate_row(row: AnomalyModelCache, rule: str) -> None:
    if rule == "age":
        row.expires_at = timezone.now() - timedelta(seconds=1)
    elif rule == "accuracy":
        row.validation_accuracy = 0.01
    elif rule == "library":
        row.model_metadata["library_versions"]["numpy"] = "1.0.0"
    elif rule == "manual":
        row.is_active = False
        row.invalidated_reason = "manual: test"
    row.save()


@pytest.mark.parametrize("rule", ["age", "accuracy", "library", "manual", "drift", "features"])
def test_each_rule_makes_the_next_lookup_retrain_and_replace_the_row(stored, rule):
    prop, x, row = stored
    mutate_row(row, rule)
    x_new = {"drift": series(5, shift=3.0), "features": series(1, cols=5)}.get(rule, x)
    trainer = CountingTrainer(x_new)

    model, outcome = lookup(prop, x_new, trainer)

    assert outcome is CacheOutcome.STALE and trainer.calls == 1
    fresh = the_row(prop)
    assert fresh.pk == row.pk and fresh.is_active and fresh.generation > row.generation
    assert should_invalidate(fresh, X_new=x_new) is None
    _, outcome = lookup(prop, x_new, trainer)
    assert outcome is CacheOutcome.LRU_HIT and trainer.calls == 1


def test_drift_and_feature_count_are_also_checked_on_lru_copies():
    prop = PropertyFactory()
    x = series(1)
    lookup(prop, x, CountingTrainer(x))
    _, outcome = lookup(prop, series(5, shift=3.0), CountingTrainer(series(5, shift=3.0)))
    assert outcome is CacheOutcome.STALE
    assert the_row(prop).model_metadata["training_sample"][0] == pytest.approx(series(5, shift=3.0)[0, 0])
    _, outcome = lookup(prop, series(1, cols=4), CountingTrainer(series(1, cols=4)))
    assert outcome is CacheOutcome.STALE
    assert the_row(prop).model_metadata["n_features"] == 4


def test_expiry_is_checked_on_lru_copies():
    prop = PropertyFactory()
    x = series(1)
    cache = ModelCache(max_bytes=ROOMY)
    lookup(prop, x, CountingTrainer(x), cache=cache)
    entry = cache.lru.get(cache.lru.keys()[0])
    entry.expires_at = timezone.now() - timedelta(seconds=1)  # as revalidation would have read it
    trainer = CountingTrainer(x)
    _, outcome = lookup(prop, x, trainer, cache=cache)
    assert outcome is CacheOutcome.STALE and trainer.calls == 1


def test_training_sample_is_bounded_to_the_main_column():
    prop = PropertyFactory()
    x = series(1, rows=1000, cols=3)
    lookup(prop, x, CountingTrainer(x))
    metadata = the_row(prop).model_metadata
    assert len(metadata["training_sample"]) == DRIFT_SAMPLE_MAX
    assert metadata["training_sample"][0] == pytest.approx(x[0, 0])
    assert metadata["training_sample"][-1] == pytest.approx(x[-1, 0])


# --- Tampered or foreign blobs ----------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["foreign_pickle", "tampered_envelope", "other_key"])
def test_tampered_blob_is_refused_never_loaded_logged_deactivated_and_retrained(stored, tmp_path, caplog, attack):
    prop, x, row = stored
    target = tmp_path / "pwned"
    genuine = bytes(row.model_binary)
    header = envelope.read_header(genuine, key=_key())
    evil = malicious_pickle(str(target))
    if attack == "foreign_pickle":
        blob = evil
    elif attack == "tampered_envelope":
        blob = genuine[: len(genuine) - header.payload_size] + evil
    else:
        blob = envelope.seal(train_hbos(x), key="not-our-key")
    AnomalyModelCache.objects.filter(pk=row.pk).update(model_binary=blob)
    trainer = CountingTrainer(x)

    with caplog.at_level(logging.ERROR, logger="modelcache.services"):
        model, outcome = lookup(prop, x, trainer)

    assert not target.exists()
    assert outcome is CacheOutcome.REFUSED and trainer.calls == 1
    assert any("refused blob" in r.getMessage() for r in caplog.records)
    fresh = the_row(prop)
    assert fresh.is_active and fresh.generation >= row.generation + 2  # deactivated, then replaced
    reloaded, _ = envelope.open_envelope(bytes(fresh.model_binary), key=_key())
    np.testing.assert_allclose(reloaded.decision_function(x), model.decision_function(x))
    assert default_cache().counters.snapshot()["refused"] == 1


def test_refused_blob_stays_deactivated_with_its_reason_when_seen_in_a_batch(stored, tmp_path):
    prop, _x, row = stored
    AnomalyModelCache.objects.filter(pk=row.pk).update(model_binary=malicious_pickle(str(tmp_path / "pwned")))
    assert cached_models(model_keys=[row.model_key]) == {}
    row.refresh_from_db()
    assert not row.is_active and row.invalidated_reason.startswith("refused: not a model cache envelope")
    assert not (tmp_path / "pwned").exists()


def _key() -> str:
    from django.conf import settings

    return settings.MODEL_CACHE_SIGNING_KEY


# --- Another process changes a row ------------------------------------------------------------------


def test_lru_copy_invalidated_elsewhere_is_dropped_at_the_next_run():
    prop = PropertyFactory()
    x = series(1)
    provider = CachedModelProvider()
    key = request_for(prop)
    trainer = CountingTrainer(x)
    provider.get_or_train(key, x, trainer)
    # Another process invalidates the row: a plain UPDATE, our LRU is not told.
    AnomalyModelCache.objects.filter(property=prop).update(is_active=False, generation=2)

    provider.get_or_train(key, x, trainer)
    assert trainer.calls == 1  # same run, within the revalidation window: the copy is still used

    next_run = CachedModelProvider()
    next_run.get_or_train(key, x, trainer)
    assert trainer.calls == 2 and next_run.outcomes == {"stale": 1}
    assert the_row(prop).is_active


def test_lru_copy_is_revalidated_after_the_window():
    prop = PropertyFactory()
    x = series(1)
    cache = ModelCache(max_bytes=ROOMY, revalidate_seconds=0)
    trainer = CountingTrainer(x)
    lookup(prop, x, trainer, cache=cache)
    AnomalyModelCache.objects.filter(property=prop).update(is_active=False, generation=5)
    _, outcome = lookup(prop, x, trainer, cache=cache)
    assert outcome is CacheOutcome.STALE and trainer.calls == 2


def test_invalidate_cache_filters_and_evicts_local_copies():
    a, b = PropertyFactory(), PropertyFactory()
    x = series(1)
    for prop in (a, b):
        for account in ("4010", "4020"):
            lookup(prop, x, CountingTrainer(x), account=account)
    assert len(default_cache()) == 4
    with pytest.raises(ApplicationError):
        invalidate_cache(reason="no filter")
    assert invalidate_cache(property_id=a.pk, account_code="4010", reason="manual") == 1
    assert invalidate_cache(account_code="4020", reason="manual") == 2
    assert invalidate_cache(account_code="4020", reason="manual") == 0  # already inactive
    assert len(default_cache()) == 1
    trainer = CountingTrainer(x)
    _, outcome = lookup(a, x, trainer, account="4010")
    assert outcome is CacheOutcome.STALE and trainer.calls == 1
    assert invalidate_cache(everything=True, reason="manual: all") == 2


# --- Batch form ----------------------------------------------------------------------------------


def test_cached_models_loads_a_chunk_in_one_query(django_assert_num_queries):
    prop = PropertyFactory()
    x = series(1)
    keys = []
    for i in range(12):
        lookup(prop, x, CountingTrainer(x), account=f"6{i:03d}")
        keys.append(the_row(prop, f"6{i:03d}").model_key)
    default_cache().clear()
    with django_assert_num_queries(1):
        models = cached_models(model_keys=keys + ["0" * 64])
    assert set(models) == set(keys)
    with django_assert_num_queries(0):
        _, outcome = lookup(prop, x, CountingTrainer(x), account="6000")
    assert outcome is CacheOutcome.DB_HIT  # loaded from the table for this use
    _, outcome = lookup(prop, x, CountingTrainer(x), account="6000")
    assert outcome is CacheOutcome.LRU_HIT


def test_provider_prefetch_costs_at_most_two_queries(django_assert_max_num_queries, django_assert_num_queries):
    props = [PropertyFactory(), PropertyFactory()]
    x = series(1)
    requests = []
    for prop in props:
        for i in range(8):
            lookup(prop, x, CountingTrainer(x), account=f"7{i:03d}")
            requests.append(request_for(prop, f"7{i:03d}"))
    lookup(props[0], x, CountingTrainer(x), account="7000", document_type="cash_flow")  # not asked for
    default_cache().clear()

    provider = CachedModelProvider()
    with django_assert_max_num_queries(2):
        assert provider.prefetch(requests) == 16
    trainer = CountingTrainer(x)
    with django_assert_num_queries(0):
        for request in requests:
            provider.get_or_train(request, x, trainer)
    assert trainer.calls == 0 and provider.outcomes == {"db_hit": 16}
    assert len(default_cache()) == 16

    # Next run: the 16 LRU copies are revalidated in one light query, nothing is reloaded.
    next_run = CachedModelProvider()
    with django_assert_max_num_queries(1):
        assert next_run.prefetch(requests) == 16
    with django_assert_num_queries(0):
        for request in requests:
            next_run.get_or_train(request, x, trainer)
    assert next_run.outcomes == {"lru_hit": 16}


def test_provider_flushes_usage_on_exit():
    prop = PropertyFactory()
    x = series(1)
    request = request_for(prop)
    with CachedModelProvider() as provider:
        provider.get_or_train(request, x, CountingTrainer(x))
    default_cache().clear()
    with CachedModelProvider() as provider:
        assert provider.prefetch([request]) == 1
        provider.get_or_train(request, x, CountingTrainer(x))
    assert the_row(prop).use_count == 1


def test_provider_with_the_real_detection_engine():
    prop = PropertyFactory()
    x = series(3, cols=len(FEATURE_NAMES))
    series_key = SeriesModelKey(prop.pk, "income_statement", "4010-0000")
    request = ModelRequest(series_key, "auto", {"min_history": engine.MIN_HISTORY})
    calls = []

    def train():
        calls.append(1)
        return detectors.train_model("ECOD", x, seed=0)

    first = CachedModelProvider().get_or_train(request, x, train)
    default_cache().clear()
    provider = CachedModelProvider()
    second = provider.get_or_train(request, x, train)
    assert len(calls) == 1 and provider.outcomes == {"db_hit": 1}
    np.testing.assert_allclose(second.calibrated_z(x), first.calibrated_z(x))
    row = the_row(prop)
    assert row.model_type == "ECOD" and row.model_key == request.model_key
    assert row.model_version == first.model_version


# --- Concurrency (both backends) ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_training_the_same_key_leave_one_entry_and_no_error():
    # Two threads with their own connections: on PostgreSQL the second insert waits on the unique
    # index, on SQLite (a file, IMMEDIATE transactions) on the write lock; either way it fails
    # with IntegrityError once the first commits, and its worker reads and uses the winner.
    prop = PropertyFactory()
    barrier = threading.Barrier(2, timeout=30)
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        x = series(10 + n)  # different data: the two models differ

        def train():
            model = train_hbos(x)
            barrier.wait()  # both have trained before either stores
            return model

        try:
            results[n] = get_or_train_model(
                request=request_for(prop, "4010"),
                x_train=x,
                train=train,
                cache=ModelCache(max_bytes=ROOMY),  # one per worker process
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert AnomalyModelCache.objects.count() == 1
    probe = series(50)
    (m1, o1), (m2, o2) = results[1], results[2]
    assert {o1, o2} == {CacheOutcome.MISS}
    # Both score with the winner's model.
    np.testing.assert_allclose(m1.decision_function(probe), m2.decision_function(probe))


# --- Cleanup ---------------------------------------------------------------------------------------


def test_cleanup_deletes_expired_and_inactive_in_slices_and_keeps_active():
    prop = PropertyFactory()
    x = series(1)
    for i in range(7):
        lookup(prop, x, CountingTrainer(x), account=f"8{i:03d}")
    rows = list(AnomalyModelCache.objects.order_by("pk"))
    AnomalyModelCache.objects.filter(pk__in=[r.pk for r in rows[:3]]).update(is_active=False)
    AnomalyModelCache.objects.filter(pk__in=[r.pk for r in rows[3:5]]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert cleanup_model_cache(slice_size=2) == 5
    assert list(AnomalyModelCache.objects.order_by("pk").values_list("pk", flat=True)) == [r.pk for r in rows[5:]]
    assert cleanup_model_cache() == 0
