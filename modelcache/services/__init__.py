"""Writes of the model cache, by concept:

- ``rules``: why a cached model must not be used any more (expiry, libraries, accuracy, drift);
- ``lru``: the in-process tier of deserialised models, bounded in bytes;
- ``usage``: counters and use counts kept in memory and written in bulk;
- ``cache``: ``ModelCache``, one process's LRU, usage and runs;
- ``store``: storing a trained model, tolerating a concurrent winner;
- ``lookup``: LRU, then table, then train;
- ``maintenance``: invalidation and cleanup;
- ``provider``: the engine's ``ModelProvider`` on top of it all.

The key of an entry is ``anomalies.detection.provider.ModelRequest.model_key``: the engine writes
the same key on the detections a model scored.
"""

from modelcache.services.cache import FLAG, ModelCache, default_cache, reset_model_cache
from modelcache.services.lookup import CacheOutcome, cached_models, get_or_train_model
from modelcache.services.maintenance import cleanup_model_cache, invalidate_cache, model_cache_entry_invalidate
from modelcache.services.provider import CachedModelProvider
from modelcache.services.usage import hit_rates

__all__ = [
    "FLAG",
    "CacheOutcome",
    "CachedModelProvider",
    "ModelCache",
    "cached_models",
    "cleanup_model_cache",
    "default_cache",
    "get_or_train_model",
    "hit_rates",
    "invalidate_cache",
    "model_cache_entry_invalidate",
    "reset_model_cache",
]
