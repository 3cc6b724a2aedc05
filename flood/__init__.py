"""Flood-risk analytics on the terrain model.

This package will hold depressions (bluespots) and their hierarchy,
fill-spill-merge cloudburst routing, sea-level flooding connected to the sea,
flow paths and watersheds, terrain edits for scenarios, and the exposure of
buildings, roads and buried assets. It is filled by the flood issue; it depends
only on :mod:`layers` and never on FastAPI or the CLI framework.
"""
