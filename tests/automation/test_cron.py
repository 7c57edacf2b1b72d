"""validate_cron accepts what KFP's robfig/cron v1.2.0 parser accepts, as the user meant it."""

from __future__ import annotations

import pytest

from kfp_mlops.app.automation.cron import CronError, validate_cron


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 2 * * *",  # daily at 02:00:00
        "0 */15 * * * *",
        "0 0 9 ? * 2-6",  # the kfp.Client docstring's example
        "0 0 9 * * MON-FRI",
        "0 30 6 1,15 jan-jun sun",
        "0 0 0 1/2 * *",  # N/step means N-max/step
        "*/10 * * * * *",
        "  0 0 2 * * *  ",
        "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
        "@every 1h30m", "@every 90s", "@every 1.5h",
    ],
)
def test_accepted(cron):
    assert validate_cron(cron) == cron.strip()


@pytest.mark.parametrize(
    ("cron", "field", "says"),
    [
        ("0 0 24 * * *", "hour", "above the maximum 23"),
        ("60 * * * * *", "second", "above the maximum 59"),
        ("0 0 0 0 * *", "day-of-month", "below the minimum 1"),
        ("0 0 0 * 13 *", "month", "above the maximum 12"),
        ("0 0 0 * * 7", "day-of-week", "Sunday is 0"),
        ("0 0 5-1 * * *", "hour", "from 5 down to 1"),
        ("0 */0 * * * *", "minute", "step '0'"),
        ("0 0 0 * * funday", "day-of-week", "not a number"),
        ("0 0 0 L * *", "day-of-month", "not a number"),
        ("0 0 1-2-3 * * *", "hour", "more than one '-'"),
        ("0 0 */2/3 * * *", "hour", "more than one '/'"),
        ("0,,5 * * * * *", "second", "empty list item"),
        ("@every soon", "@every", "not a Go duration"),
        ("@fortnightly", "descriptor", "unknown descriptor"),
    ],
)
def test_rejected_with_the_field_named(cron, field, says):
    with pytest.raises(CronError) as info:
        validate_cron(cron)
    assert info.value.field == field
    message = str(info.value)
    assert says in message
    assert "'0 0 2 * * *'" in message or "@every 6h" in message  # an example to copy


def test_five_fields_are_refused_with_the_six_field_form():
    # KFP would read these as second minute hour day month: minute 9 of every hour in January.
    with pytest.raises(CronError) as info:
        validate_cron("0 9 * * 1")
    assert "'0 0 9 * * 1'" in str(info.value) and "seconds field first" in str(info.value)


@pytest.mark.parametrize("cron", ["", "   ", "* * * *", "TZ=UTC 0 0 2 * * *"])
def test_wrong_field_count_or_empty(cron):
    with pytest.raises(CronError, match="6|six"):
        validate_cron(cron)


def test_cron_error_is_a_value_error():
    assert issubclass(CronError, ValueError)
