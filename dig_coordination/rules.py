"""Precaution rules: data in ``geoby.precaution_rules``, applied here.

A rule is (owner, utility type, subtype, hazard class, work types, distance
band) -> action, text, notice in working days, and whether it blocks "ready
to dig". NULL in a rule's owner, type, subtype, hazard or work types matches
anything. The defaults (owner NULL) come from migration 0008; an owner's own
rules apply to its assets in addition to the defaults, never instead of
them (an owner can ask for more care, not less).

The distance a rule matches is the asset's *least possible* distance from the
dig area: its horizontal distance less its position accuracy
(:func:`dig_coordination.model.least_distance`), since a cable drawn 1.5 m
away with an accuracy of 1 m may lie 0.5 m away.

Decisions: several rules with the same action on one asset collapse to the
one with the longest notice (and blocking if any of them blocks); actions are
listed in a fixed order of severity: stop, supervision, on_site_marking,
contact_owner, hand_dig.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from dig_coordination.model import ACTIONS, WORK_TYPES, Action, least_distance
from layers.errors import InvalidInput

SEVERITY = ("stop", "supervision", "on_site_marking", "contact_owner", "hand_dig")
COLUMNS = ("id", "owner", "utility_type", "subtype", "hazard_class", "work_types",
           "min_distance_m", "max_distance_m", "action", "text", "notice_working_days",
           "blocks")  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One row of ``geoby.precaution_rules``."""

    id: int | None
    owner: str | None
    utility_type: str | None
    subtype: str | None
    hazard_class: str | None
    work_types: tuple[str, ...] | None
    min_distance_m: float
    max_distance_m: float
    action: str
    text: str
    notice_working_days: int | None
    blocks: bool

    def matches(self, asset: dict[str, Any], work_types: list[str], distance: float) -> bool:
        """Whether the rule applies to ``asset`` for this work at this least distance."""
        return (
            (self.owner is None or self.owner == asset["owner"])
            and (self.utility_type is None or self.utility_type == asset["utility_type"])
            and (self.subtype is None or self.subtype == asset.get("subtype"))
            and (self.hazard_class is None or self.hazard_class == asset.get("hazard_class"))
            and (self.work_types is None or any(w in self.work_types for w in work_types))
            and self.min_distance_m <= distance < self.max_distance_m
        )

    def as_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in COLUMNS}
        doc["work_types"] = list(self.work_types) if self.work_types is not None else None
        return doc


def load(conn: Connection, owners: list[str] | None = None) -> list[Rule]:
    """The default rules and those of ``owners`` (all owners' rules when None)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM geoby.precaution_rules"
                " WHERE owner IS NULL OR %(all)s OR owner = ANY(%(owners)s) ORDER BY id"
            ).format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS))),
            {"all": owners is None, "owners": owners or []},
        )
        return [_rule(row) for row in cur.fetchall()]


def _rule(row: tuple) -> Rule:
    values = dict(zip(COLUMNS, row, strict=True))
    if values["work_types"] is not None:
        values["work_types"] = tuple(values["work_types"])
    return Rule(**values)


def apply(
    rules: list[Rule], asset: dict[str, Any], work_types: list[str], distance_m: float
) -> list[Action]:
    """The actions required for ``asset`` at ``distance_m`` from the dig area."""
    least = least_distance(distance_m, asset.get("accuracy_class"))
    chosen: dict[str, Action] = {}
    for rule in rules:
        if not rule.matches(asset, work_types, least):
            continue
        action = Action(rule.action, rule.text, rule.blocks, rule.notice_working_days, rule.id)
        old = chosen.get(rule.action)
        if old is None:
            chosen[rule.action] = action
        else:
            notice = max(old.notice_working_days or 0, action.notice_working_days or 0) or None
            keep = old if (old.notice_working_days or 0) >= (action.notice_working_days or 0) \
                else action  # fmt: skip
            chosen[rule.action] = Action(keep.action, keep.text, old.blocks or action.blocks,
                                         notice, keep.rule_id)  # fmt: skip
    return sorted(chosen.values(), key=lambda a: SEVERITY.index(a.action))


def add(conn: Connection, owner: str | None, doc: dict[str, Any]) -> Rule:
    """Store a rule for ``owner`` (None: a default, for admins); refused with the field named."""
    action = doc.get("action")
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", field="action")
    work = doc.get("work_types")
    if work is not None:
        if not isinstance(work, list) or not work or any(w not in WORK_TYPES for w in work):
            raise InvalidInput(
                "work_types is a non-empty list of " + ", ".join(WORK_TYPES), field="work_types"
            )
    text = str(doc.get("text") or "").strip()
    if not text:
        raise InvalidInput("a rule needs the text the contractor will read", field="text")
    try:
        low = float(doc.get("min_distance_m", 0))
        high = float(doc["max_distance_m"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("max_distance_m (and min_distance_m) must be numbers",
                           field="max_distance_m") from exc  # fmt: skip
    if not 0 <= low < high:
        raise InvalidInput("need 0 <= min_distance_m < max_distance_m", field="max_distance_m")
    notice = doc.get("notice_working_days")
    if notice is not None and (not isinstance(notice, int) or notice < 0):
        raise InvalidInput("notice_working_days is a whole number >= 0",
                           field="notice_working_days")  # fmt: skip
    hazard = doc.get("hazard_class")
    if hazard is not None and hazard not in ("not_dangerous", "dangerous", "very_dangerous"):
        raise InvalidInput("hazard_class must be not_dangerous, dangerous or very_dangerous",
                           field="hazard_class")  # fmt: skip
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO geoby.precaution_rules (owner, utility_type, subtype, hazard_class,"
                " work_types, min_distance_m, max_distance_m, action, text, notice_working_days,"
                " blocks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}"
            ).format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS))),
            (
                owner,
                doc.get("utility_type"),
                doc.get("subtype"),
                hazard,
                work,
                low,
                high,
                action,
                text,
                notice,
                bool(doc.get("blocks", False)),
            ),  # fmt: skip
        )
        return _rule(cur.fetchone())
