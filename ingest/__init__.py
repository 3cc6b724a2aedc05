"""Ingestion of the municipality's data into PostGIS.

One pipeline per data family (terrain, climate, water, energy, waste,
utilities) on one shared loader, and :mod:`ingest.sample`, the generator of
the fictional sample municipality that the demo and the tests load through
the real ingestion path.
"""
