"""Waste-planning analytics.

This package will hold live bin sensor readings (MQTT and HTTP), fill
forecasts, collection planning, truck routing with PyVRP and recycling-station
coverage. It is filled by the waste issue; it depends only on :mod:`layers`
and never on FastAPI or the CLI framework.
"""
