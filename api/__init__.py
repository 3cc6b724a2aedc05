"""The adapters over geoby's core: the HTTP application and the command line.

- :mod:`api.app`: the FastAPI application (landing page, ``/status``,
  ``/healthz``, domain routes under ``/api``; the OGC APIs at ``/ogc``).
- :mod:`api.problems`: the one mapping of errors to problem-details responses.
- :mod:`api.cli`: the ``geoby`` command.

Both adapters stay thin: they parse input, call a core function in
:mod:`layers`, :mod:`ingest`, :mod:`dig_coordination`, :mod:`flood` or
:mod:`waste`, and format the result. Importing this package imports neither
FastAPI nor click.
"""
