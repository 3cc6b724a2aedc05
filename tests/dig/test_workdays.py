"""The working-day calendar: Danish holidays, LER's extra days off and answer deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from dateutil.easter import easter

from dig_coordination.workdays import WorkingCalendar
from layers.settings import DigLimits

CPH = ZoneInfo("Europe/Copenhagen")


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar(DigLimits())


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CPH)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (local(2026, 3, 10, 10, 0), local(2026, 3, 10, 12, 0)),  # Tuesday in the window
        (local(2026, 3, 10, 7, 0), local(2026, 3, 10, 9, 0)),  # the window opens at 07:00
        (local(2026, 3, 10, 15, 30), local(2026, 3, 10, 17, 30)),  # keeps its 2 h past 16:00
        (local(2026, 3, 10, 15, 59), local(2026, 3, 10, 17, 59)),
        (local(2026, 3, 10, 16, 0), local(2026, 3, 11, 9, 0)),  # 16:00 is outside
        (local(2026, 3, 10, 6, 59), local(2026, 3, 10, 9, 0)),  # early: 09:00 the same day
        (local(2026, 3, 10, 0, 0), local(2026, 3, 10, 9, 0)),
        (local(2026, 3, 10, 23, 59), local(2026, 3, 11, 9, 0)),
        (local(2026, 3, 13, 17, 0), local(2026, 3, 16, 9, 0)),  # Friday evening -> Monday
        (local(2026, 3, 14, 11, 0), local(2026, 3, 16, 9, 0)),  # Saturday -> Monday
        (local(2026, 3, 15, 8, 0), local(2026, 3, 16, 9, 0)),  # Sunday -> Monday
        (local(2026, 4, 1, 17, 0), local(2026, 4, 7, 9, 0)),  # over Easter to Tuesday
        (local(2026, 4, 2, 10, 0), local(2026, 4, 7, 9, 0)),  # Maundy Thursday in "the window"
        (local(2026, 12, 23, 16, 30), local(2026, 12, 28, 9, 0)),  # over Christmas
        (local(2026, 12, 30, 18, 0), local(2027, 1, 4, 9, 0)),  # 31 Dec, 1 Jan, weekend
        (local(2026, 6, 4, 20, 0), local(2026, 6, 8, 9, 0)),  # 5 June is a Friday off
    ],
)
def test_answer_due(cal, received, due):
    got = cal.answer_due(received)
    assert got == due
    assert got.tzinfo is not None
    assert got.astimezone(CPH).replace(tzinfo=None) == due.replace(tzinfo=None)


def test_answer_due_reads_utc_as_local_time(cal):
    # 09:00 UTC is 10:00 in Copenhagen in winter: in the window, due 2 h later
    got = cal.answer_due(datetime(2026, 1, 13, 9, 0, tzinfo=UTC))
    assert got == datetime(2026, 1, 13, 11, 0, tzinfo=UTC)
    assert got.utcoffset() == timedelta(hours=1)
    # 05:30 UTC is 07:30 local in summer: in the window
    assert cal.answer_due(datetime(2026, 7, 14, 5, 30, tzinfo=UTC)) == local(2026, 7, 14, 9, 30)
    # 05:30 UTC in winter is 06:30 local: before the window, 09:00 local the same day
    assert cal.answer_due(datetime(2026, 1, 13, 5, 30, tzinfo=UTC)) == local(2026, 1, 13, 9, 0)


def test_answer_due_refuses_naive_datetimes(cal):
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.answer_due(datetime(2026, 3, 10, 10, 0))


def test_dst_weekends_keep_the_next_morning_at_nine_local(cal):
    # Spring: clocks go forward on Sunday 29 March 2026 (CET -> CEST).
    spring = cal.answer_due(local(2026, 3, 27, 17, 0))
    assert spring == local(2026, 3, 30, 9, 0)
    assert spring.utcoffset() == timedelta(hours=2)
    assert spring.astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    # Autumn: clocks go back on Sunday 25 October 2026, 02:00-03:00 happens twice.
    autumn = cal.answer_due(local(2026, 10, 23, 20, 0))
    assert autumn.astimezone(UTC) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    for fold in (0, 1):
        ambiguous = datetime(2026, 10, 25, 2, 30, fold=fold, tzinfo=CPH)
        assert cal.answer_due(ambiguous).astimezone(UTC) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    # The Friday before a spring change: 2 h of elapsed time.
    friday = cal.answer_due(local(2026, 3, 27, 14, 0))
    assert friday - local(2026, 3, 27, 14, 0) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 12, 24), "Christmas Eve (LER)"),
        (date(2026, 12, 31), "New Year's Eve (LER)"),
        (date(2026, 6, 5), "Constitution Day (LER)"),
        (date(2026, 4, 2), "Maundy Thursday"),
        (date(2026, 4, 3), "Good Friday"),
        (date(2026, 4, 6), "Easter Monday"),
        (date(2026, 5, 14), "Ascension Day"),
        (date(2026, 5, 25), "Whit Monday"),
        (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 12, 26), "Boxing Day (a Saturday)"),
        (date(2027, 1, 1), "New Year's Day"),
        (date(2023, 5, 5), "Store Bededag 2023, the last one"),
        (date(2026, 3, 14), "Saturday"),
        (date(2026, 3, 15), "Sunday"),
    ],
)
def test_days_off(cal, day, name):
    assert not cal.is_working_day(day), name


@pytest.mark.parametrize(
    "day",
    [date(2026, 3, 10), date(2026, 4, 7), date(2026, 12, 23), date(2026, 12, 28), date(2026, 6, 4)],
)
def test_working_days(cal, day):
    assert cal.is_working_day(day)


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2030])
def test_store_bededag_is_no_holiday_from_2024(cal, year):
    store_bededag = easter(year) + timedelta(days=26)  # fourth Friday after Easter
    assert store_bededag.weekday() == 4
    assert store_bededag not in holidays.country_holidays("DK", years=year)
    # 2026's falls on 1 May, a day off of its own in LER's rules
    assert cal.is_working_day(store_bededag) is (store_bededag != date(year, 5, 1))


def test_store_bededag_was_a_holiday_until_2023():
    assert easter(2023) + timedelta(days=26) in holidays.country_holidays("DK", years=2023)


def test_extra_days_off_come_from_the_settings():
    may_day = date(2026, 5, 1)
    cal = WorkingCalendar(DigLimits(extra_non_working_days=["05-01", "12-24"]))
    assert not cal.is_working_day(may_day)
    assert cal.is_working_day(date(2026, 12, 31))  # no longer listed
    assert not cal.is_working_day(date(2026, 12, 24))


def test_is_working_day_refuses_datetimes(cal):
    with pytest.raises(TypeError):
        cal.is_working_day(local(2026, 3, 10, 10, 0))


@pytest.mark.parametrize(
    ("start", "n", "end"),
    [
        (date(2026, 12, 23), 1, date(2026, 12, 28)),  # 24-27 December off
        (date(2026, 12, 23), 3, date(2026, 12, 30)),
        (date(2026, 12, 23), 4, date(2027, 1, 4)),  # 31 Dec, 1 Jan, weekend
        (date(2027, 1, 4), -4, date(2026, 12, 23)),
        (date(2026, 12, 24), 1, date(2026, 12, 28)),  # from a day off
        (date(2026, 12, 24), 0, date(2026, 12, 24)),
        (date(2026, 3, 13), 1, date(2026, 3, 16)),  # Friday + 1 = Monday
        (date(2026, 3, 10), 20, date(2026, 4, 10)),  # 20 working days, 3 of Easter off
    ],
)
def test_add_working_days(cal, start, n, end):
    assert cal.add_working_days(start, n) == end
    assert cal.working_days_between(start, end) == n


def test_working_days_between_counts_the_half_open_interval(cal):
    assert cal.working_days_between(date(2026, 3, 9), date(2026, 3, 13)) == 4
    assert cal.working_days_between(date(2026, 3, 13), date(2026, 3, 9)) == -4
    assert cal.working_days_between(date(2026, 3, 10), date(2026, 3, 10)) == 0
    year = cal.working_days_between(date(2025, 12, 31), date(2026, 12, 31))
    # 261 weekdays in 2026 less 7 weekday holidays (1 Jan, 2, 3 and 6 April, 14 and 25 May,
    # 25 Dec) and LER's 4 days off (1 May, 5 June, 24 and 31 December)
    assert year == 261 - 7 - 4


@pytest.mark.parametrize("n", range(-30, 31, 7))
def test_add_and_between_agree(cal, n):
    start = date(2026, 12, 20)
    assert cal.working_days_between(start, cal.add_working_days(start, n)) == n
    assert cal.is_working_day(cal.add_working_days(start, n)) or n == 0


def test_other_workday_settings():
    cal = WorkingCalendar(
        DigLimits(
            workday_start="08:00", workday_end="15:00", next_day_answer_at="10:00",
            answer_within_hours=1.5, timezone="Europe/Copenhagen",
        )
    )  # fmt: skip
    assert cal.answer_due(local(2026, 3, 10, 7, 30)) == local(2026, 3, 10, 10, 0)
    assert cal.answer_due(local(2026, 3, 10, 8, 0)) == local(2026, 3, 10, 9, 30)
    assert cal.answer_due(local(2026, 3, 10, 15, 0)) == local(2026, 3, 11, 10, 0)
