"""The run store: every probe run and every hunt, in one SQLite file beside the repository.

Owns the file format (a versioned schema, migrated in place), durable writes (WAL, a commit
after every write, so a killed hunt loses nothing it already recorded), reuse look-ups, and
moving stores between machines (export to one file, import without duplicates).
It must not run probes, call git or decide anything: it only remembers what others did.

Callers use what this package exports; the modules inside split it by concern:
`schema` (opening the file, its versions), `rows` (how runs and hunts become table
rows), `transfer` (copies and merges between store files), `store` (the `Store` itself).
"""

from __future__ import annotations

from .rows import Hunt
from .schema import StoreError, default_store_path, schema_version
from .store import Store, UnknownHunt, UnknownRun

__all__ = [
    "Hunt",
    "Store",
    "StoreError",
    "UnknownHunt",
    "UnknownRun",
    "default_store_path",
    "schema_version",
]
