"""The in-process tier: deserialised models, least recently used first out, bounded in bytes.

An entry's size is the length of its serialised blob (what the table stores): a fair, cheap
measure of what the deserialised model holds in memory.  An entry larger than the whole bound is
not kept (it is still served to its caller, only not remembered), so a workload larger than the
LRU costs loads and retraining, never correctness.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class LruEntry:
    model: Any
    pk: int
    generation: int
    expires_at: datetime | None
    fingerprint: str
    sample: list[float] | None
    drift_column: int
    n_features: int | None
    size_bytes: int
    checked_at: float
    checked_run: int
    from_db: bool = False  # loaded by prefetch: its first use is a database-tier hit


class ModelLru:
    """A thread-safe LRU of ``LruEntry`` by model key whose entries' sizes sum to at most ``max_bytes``."""

    def __init__(self, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._entries: OrderedDict[str, LruEntry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_key: object) -> bool:
        return model_key in self._entries

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def get(self, model_key: str) -> LruEntry | None:
        """The entry, now the most recently used; None when absent."""
        with self._lock:
            entry = self._entries.get(model_key)
            if entry is not None:
                self._entries.move_to_end(model_key)
            return entry

    def peek(self, model_key: str) -> LruEntry | None:
        """The entry without touching its recency."""
        with self._lock:
            return self._entries.get(model_key)

    def put(self, model_key: str, entry: LruEntry) -> bool:
        """Keep ``entry`` as the most recent, evicting the oldest until the bound holds; False
        when the entry alone exceeds the bound (then it is not kept)."""
        with self._lock:
            self._drop(model_key)
            if entry.size_bytes > self.max_bytes:
                return False
            self._entries[model_key] = entry
            self._bytes += entry.size_bytes
            while self._bytes > self.max_bytes:
                _key, oldest = self._entries.popitem(last=False)
                self._bytes -= oldest.size_bytes
            return True

    def evict(self, model_keys: Iterable[str]) -> None:
        with self._lock:
            for key in model_keys:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, model_key: str) -> None:
        entry = self._entries.pop(model_key, None)
        if entry is not None:
            self._bytes -= entry.size_bytes
