"""The core that every geoby package uses.

- :mod:`layers.settings`: configuration from ``GEOBY_*`` environment variables.
- :mod:`layers.errors`: the exception hierarchy and its problem-details form.
- :mod:`layers.pgcluster`: the private PostgreSQL + PostGIS cluster under ``./var/pg``.
- :mod:`layers.database`: connection pools, the database boundary, role-scoped connections.
- :mod:`layers.migrations`: numbered SQL migrations and the database roles.
- :mod:`layers.catalog`: the layer catalog describing every dataset.
- :mod:`layers.crs`: storage CRS, supported output CRSs and cached transformers.
- :mod:`layers.progress`: progress bars for long work.
"""
