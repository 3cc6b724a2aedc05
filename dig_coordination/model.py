"""The dig coordinator's vocabulary and the answer it gives.

A dig request is one polygon (or a line with a width) with a period, work
types, a planned depth, a kind and a contact. Its answer lists every buried
asset within the dig area plus the answer buffer, each with the precautions
its owner's rules and the defaults require, and the state of every owner
concerned. The renderers (GeoJSON, LER-structured GML, PDF/PNG map) all read
an :class:`Answer`; geometries are shapely objects in the storage CRS
(EPSG:25832).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from shapely.geometry.base import BaseGeometry

KINDS = ("normal", "planning", "emergency")
ROLES = ("contractor", "utility", "planner", "admin")
WORK_TYPES = (
    "machine_excavation",
    "hand_digging",
    "directional_drilling",
    "pile_driving",
    "sheet_piling",
    "ploughing",
    "soil_investigation",
)
ACTIONS = ("on_site_marking", "hand_dig", "contact_owner", "supervision", "stop")
ACCURACY_M = {"0.25": 0.25, "0.5": 0.5, "1": 1.0, "2": 2.0}
UNKNOWN_ACCURACY_M = 2.0
"""Accuracy assumed for ``>2`` and unknown classes when rules reduce a distance."""


def least_distance(distance_m: float, accuracy_class: str | None) -> float:
    """How close the asset may really be: the distance less its position accuracy, at least 0."""
    return max(0.0, distance_m - ACCURACY_M.get(accuracy_class or "", UNKNOWN_ACCURACY_M))


@dataclass(frozen=True)
class Action:
    """One required precaution for one asset."""

    action: str
    text: str
    blocks: bool
    notice_working_days: int | None = None
    rule_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "text": self.text,
            "blocks": self.blocks,
            "notice_working_days": self.notice_working_days,
            "rule_id": self.rule_id,
        }


@dataclass
class Conflict:
    """One asset within the dig area plus buffer, clipped to it."""

    layer: str
    asset_fid: int
    asset_id: str
    owner: str
    utility_type: str
    subtype: str | None
    asset_kind: str | None
    hazard_class: str | None
    status: str | None
    depth_m: float | None
    depth_reference: str | None
    accuracy_class: str | None
    diameter_mm: float | None
    voltage_kv: float | None
    pressure_bar: float | None
    distance_m: float
    geometry: BaseGeometry
    actions: list[Action] = field(default_factory=list)

    @property
    def blocks(self) -> bool:
        return any(a.blocks for a in self.actions)

    @property
    def depth_text(self) -> str:
        """The depth as a person reads it; unknown depth said plainly."""
        if self.depth_m is None:
            return "depth unknown"
        ref = f" below {self.depth_reference.replace('_', ' ')}" if self.depth_reference else ""
        return f"{self.depth_m:.2f} m{ref}"

    def properties(self) -> dict[str, Any]:
        """The GeoJSON properties of the conflict (the HTTP contract)."""
        return {
            "owner": self.owner,
            "utility_type": self.utility_type,
            "subtype": self.subtype,
            "asset_kind": self.asset_kind,
            "asset_id": self.asset_id,
            "layer": self.layer,
            "hazard_class": self.hazard_class,
            "status": self.status,
            "distance_m": round(self.distance_m, 3),
            "least_distance_m": round(least_distance(self.distance_m, self.accuracy_class), 3),
            "depth_m": self.depth_m,
            "depth_known": self.depth_m is not None,
            "depth_reference": self.depth_reference,
            "depth_text": self.depth_text,
            "accuracy_class": self.accuracy_class,
            "diameter_mm": self.diameter_mm,
            "voltage_kv": self.voltage_kv,
            "pressure_bar": self.pressure_bar,
            "required_actions": [a.as_json() for a in self.actions],
            "blocks_ready_to_dig": self.blocks,
        }


@dataclass
class OwnerState:
    """An owner concerned by a request and where its answer stands."""

    owner: str
    mode: str  # automatic | manual
    status: str  # pending | answered | overdue (pending past its due time)
    asset_count: int
    due_at: datetime | None = None
    answered_at: datetime | None = None
    notified_at: datetime | None = None
    remarks: str = ""
    marking_required: bool = False
    marking_booked_for: datetime | None = None
    marking_done_at: datetime | None = None
    precautions_agreed_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {
            "owner": self.owner,
            "mode": self.mode,
            "status": self.status,
            "asset_count": self.asset_count,
            "due_at": iso(self.due_at),
            "answered_at": iso(self.answered_at),
            "notified_at": iso(self.notified_at),
            "remarks": self.remarks,
            "marking_required": self.marking_required,
            "marking_booked_for": iso(self.marking_booked_for),
            "marking_done_at": iso(self.marking_done_at),
            "precautions_agreed_at": iso(self.precautions_agreed_at),
        }


@dataclass
class DigRequest:
    """A filed request as stored (geometry in EPSG:25832)."""

    id: str
    reference: str
    organisation: str
    kind: str
    status: str
    geometry: BaseGeometry
    start_date: date
    end_date: date
    work_types: list[str]
    depth_m: float | None
    description: str
    contact: dict[str, Any]
    buffer_m: float
    created_at: datetime
    valid_until: datetime
    line_width_m: float | None = None
    answered_at: datetime | None = None
    cancelled_at: datetime | None = None
    renewed_from: str | None = None
    org_id: int | None = None
    user_id: int | None = None


@dataclass
class Answer:
    """Everything an answer discloses: the request, its conflicts and its owners."""

    request: DigRequest
    conflicts: list[Conflict]
    owners: list[OwnerState]
    links: list[dict[str, Any]] = field(default_factory=list)
    generated_at: datetime | None = None

    def for_owner(self, owner: str) -> Answer:
        """The same answer restricted to one owner's assets (the per-owner package)."""
        return Answer(
            self.request,
            [c for c in self.conflicts if c.owner == owner],
            [o for o in self.owners if o.owner == owner],
            self.links,
            self.generated_at,
        )

    @property
    def ready_to_dig(self) -> bool:
        """All owners answered and every blocking precaution cleared; never for planning.

        A blocking on-site marking is cleared when its owner records the marking
        done; any other blocking precaution (contact ahead, supervision, consent)
        when its owner records the precautions agreed.
        """
        if self.request.kind == "planning" or self.request.status == "cancelled":
            return False
        states = {o.owner: o for o in self.owners}
        if any(o.status != "answered" for o in self.owners):
            return False
        if any(o.marking_required and o.marking_done_at is None for o in self.owners):
            return False
        for c in self.conflicts:
            state = states.get(c.owner)
            for a in c.actions:
                if not a.blocks:
                    continue
                if a.action == "on_site_marking":
                    if state is None or state.marking_done_at is None:
                        return False
                elif state is None or state.precautions_agreed_at is None:
                    return False
        return True
