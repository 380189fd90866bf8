"""What validation learnt from each file's content, kept between nightly runs (an optimisation only).

An entry is keyed by the SHA-256 of the workbook's bytes and the hints of its name and sender (the
office they name changes what the same bytes mean), and holds `validate.Content`: everything of a
verdict but its provenance (name, received time, sender), which is put back from the file as found
tonight. The whole cache is keyed by the catalog version,
the limits and a hash of this package's own source, so a new plan, new limits or new code start
from scratch. Deleting `outbox/.cache/` changes nothing but time; a cache that cannot be read is
ignored.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.limits import Limits

CACHE_FILE = "validation.pickle"
FORMAT = 2


@cache
def code_version() -> str:
    """A hash of the package's own source and schemas: new code never reuses old verdicts."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for folder in (root, root.parent / "schemas"):
        for path in sorted(folder.glob("*.py")) + sorted(folder.glob("*.yaml")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class ResultCache:
    """Load once, `get` and `put` during the run, `save` at the end (only what this run used)."""

    def __init__(self, folder: Path, catalog_version: str, limits: Limits) -> None:
        self.path = folder / CACHE_FILE
        self.key = (FORMAT, catalog_version, code_version(), tuple(sorted(asdict(limits).items())))
        self._old: dict[str, Any] = {}
        self._new: dict[str, Any] = {}
        self._dirty = False
        self.hits = 0
        try:
            with open(self.path, "rb") as fh:  # streamed: not the file's bytes and their objects at once
                key, entries = pickle.load(fh)
            if key == self.key:
                self._old = entries
        except Exception:  # missing, damaged or from another version: start empty
            self._old = {}

    def get(self, key: str) -> Any:
        entry = self._new.get(key) or self._old.get(key)
        if entry is not None:
            self.hits += 1
            self._new[key] = entry
        return entry

    def put(self, key: str, entry: Any) -> None:
        self._new[key] = entry
        self._dirty = True

    @property
    def changed(self) -> bool:
        """Whether this run used other entries than were there (then `save` has something to do)."""
        return self._dirty or self._new.keys() != self._old.keys()

    def save(self) -> None:
        """Keep what this run used; nothing to do when it used exactly what was there."""
        if not self.changed:
            return
        from pipeline.atomic import write_bytes_atomically

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(self.path, pickle.dumps((self.key, self._new), protocol=pickle.HIGHEST_PROTOCOL))

    def write_to(self, path: Path) -> None:
        """What `save` would keep, written to `path` (a temporary the caller renames over `self.path`
        once the run's outputs are in place): the pickling can run beside the writing."""
        with open(path, "wb") as fh:
            pickle.dump((self.key, self._new), fh, protocol=pickle.HIGHEST_PROTOCOL)
