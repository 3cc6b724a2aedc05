"""The state pygeoapi's plugins share with the app: database pools and tables.

pygeoapi builds a provider per request from a plain configuration dict, so a
provider cannot be handed a connection pool. The app registers an
:class:`OgcContext` under a key; the generated configuration names that key
and providers look it up here. Nothing in a request reflects a table: the
tables are described once when the configuration is built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from api.ogc.tables import Table
from layers.database import Database
from layers.errors import NotFound
from layers.settings import Settings

_contexts: dict[str, OgcContext] = {}
_lock = threading.Lock()


@dataclass
class OgcContext:
    """What the OGC plugins of one app need."""

    key: str
    settings: Settings
    database: Database
    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, collection_id: str) -> Table:
        """The published table of a collection."""
        try:
            return self.tables[collection_id]
        except KeyError:
            raise NotFound(f"collection {collection_id!r} not found") from None


def register(context: OgcContext) -> None:
    """Make a context known to the plugins."""
    with _lock:
        _contexts[context.key] = context


def lookup(key: str) -> OgcContext:
    """The context a plugin configuration names."""
    try:
        return _contexts[key]
    except KeyError:
        raise RuntimeError(f"no OGC context {key!r}; was the app started?") from None


def forget(key: str) -> None:
    """Drop a context when its app stops."""
    with _lock:
        _contexts.pop(key, None)
