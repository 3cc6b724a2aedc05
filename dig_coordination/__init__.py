"""Dig-request coordination.

This package will hold dig requests and their validation, conflict detection
against buried assets, precaution rules, owner notification and deadline
clocks, and the coordination of digs that overlap in space and time. It is
filled by the dig-coordinator issue; it depends only on :mod:`layers` and
never on FastAPI or the CLI framework.
"""
