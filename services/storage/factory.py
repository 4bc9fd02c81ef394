"""The storage backends, by the name `storage.backend` gives (one module and one constructor each)."""

from __future__ import annotations

from collections.abc import Callable

from services.storage.backend import StorageBackend
from shared.config.settings import StorageSettings


def _rocksdb(settings: StorageSettings) -> StorageBackend:
    from services.storage.rocksdb_backend import RocksBackend

    return RocksBackend(settings)


BACKENDS: dict[str, Callable[[StorageSettings], StorageBackend]] = {"rocksdb": _rocksdb}


def open_backend(settings: StorageSettings) -> StorageBackend:
    """The backend the settings name (not yet started)."""
    return BACKENDS[settings.backend](settings)
