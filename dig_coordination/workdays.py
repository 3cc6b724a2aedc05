"""The working-day calendar and the owners' answer deadlines.

Working days are Monday to Friday, less Danish public holidays (from the
``holidays`` package, ``holidays.country_holidays("DK")``) and the days in
``DigLimits.extra_non_working_days`` (``MM-DD``; by default LER's 5 June,
24 and 31 December). Store Bededag (the Great Prayer Day) is a holiday up to
2023 only; the ``holidays`` package knows it was abolished from 2024.

The deadline rule is LER's (Lov 564/2022 §10): a request received on a
working day between ``workday_start`` and ``workday_end`` (local time, by
default 07:00-16:00) must be answered within ``answer_within_hours`` (2 h);
one received at any other time by ``next_day_answer_at`` (09:00) on the next
working day. Where the law is silent we decided:

* The window is half-open: 07:00 is inside it, 16:00 is not.
* A request received late in the window keeps its full allowance even though
  the deadline then falls after ``workday_end`` (15:30 -> 17:30). The current
  law says "2 hours if received 07-16"; the older rule that carried the clock
  over to the next day after 14:00 (bek. 1473/2019 §22) no longer applies.
* A request received on a working day before ``workday_start`` is due at
  ``next_day_answer_at`` the same day: that is the next working morning.
* The allowance is elapsed time (a 2 h deadline is 2 real hours even across
  a DST change); the next-morning deadline is a local wall-clock time, so it
  is 09:00 local on either side of a DST change.

Deadlines are timezone-aware datetimes in the calendar's zone
(``DigLimits.timezone``); naive datetimes are refused, since a deadline off
by the UTC offset would be wrong by one or two hours.

Examples
--------
>>> from datetime import date, datetime
>>> from zoneinfo import ZoneInfo
>>> from layers.settings import DigLimits
>>> cal = WorkingCalendar(DigLimits())
>>> cal.is_working_day(date(2026, 12, 24))
False
>>> cal.answer_due(datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))).hour
12
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from layers.settings import DigLimits


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


class WorkingCalendar:
    """Danish working days and LER answer deadlines, configured by :class:`DigLimits`.

    Parameters
    ----------
    settings
        ``timezone``, ``workday_start``, ``workday_end``, ``next_day_answer_at``,
        ``answer_within_hours`` and ``extra_non_working_days`` are read.
    """

    def __init__(self, settings: DigLimits) -> None:
        self.tz = ZoneInfo(settings.timezone)
        self.workday_start = _clock(settings.workday_start)
        self.workday_end = _clock(settings.workday_end)
        self.next_day_answer_at = _clock(settings.next_day_answer_at)
        self.answer_within = timedelta(hours=settings.answer_within_hours)
        self.extra_days = frozenset(_month_day(d) for d in settings.extra_non_working_days)
        self._holidays = holidays.country_holidays("DK")

    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` is a working day: a weekday, no public holiday, not an extra day off."""
        if isinstance(d, datetime):
            raise TypeError("is_working_day takes a date; convert a datetime to local time first")
        return (
            d.weekday() < 5 and d not in self._holidays and (d.month, d.day) not in self.extra_days
        )

    def add_working_days(self, d: date, n: int) -> date:
        """The date ``n`` working days after ``d`` (before it when ``n`` is negative).

        ``d`` itself is not counted and need not be a working day; ``n == 0``
        returns ``d`` unchanged. ``working_days_between(d, add_working_days(d, n)) == n``.
        """
        step = timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """Working days stepped over from ``a`` to ``b``: those in ``(a, b]``, or minus those
        in ``[b, a)`` when ``b`` is before ``a`` (the inverse of :meth:`add_working_days`)."""
        one = timedelta(days=1)
        if b < a:
            return -self.working_days_between(b - one, a - one)  # [b, a) is (b - 1, a - 1]
        return sum(self.is_working_day(a + i * one) for i in range(1, (b - a).days + 1))

    def next_working_day(self, d: date) -> date:
        """The first working day after ``d``."""
        return self.add_working_days(d, 1)

    def answer_due(self, received: datetime) -> datetime:
        """When an owner's answer to a request received at ``received`` is due (LER §10).

        Raises
        ------
        ValueError
            ``received`` is naive.
        """
        if received.tzinfo is None or received.utcoffset() is None:
            raise ValueError("answer_due needs a timezone-aware datetime")
        local = received.astimezone(self.tz)
        day = local.date()
        if self.is_working_day(day):
            if self.workday_start <= local.time() < self.workday_end:
                # Elapsed time: aware arithmetic in a zoneinfo zone is wall-clock time.
                return (received.astimezone(UTC) + self.answer_within).astimezone(self.tz)
            if local.time() < self.workday_start:
                return datetime.combine(day, self.next_day_answer_at, tzinfo=self.tz)
        return datetime.combine(self.next_working_day(day), self.next_day_answer_at, tzinfo=self.tz)
