"""Check a cron expression the way Kubeflow Pipelines will read it, before submitting.

KFP's API server validates ``trigger.cron_schedule.cron`` of a recurring run with
``cron.Parse`` from ``github.com/robfig/cron`` v1.2.0, and its ScheduledWorkflow
controller schedules with the same function. That parser wants **six** fields with
seconds first::

    second minute hour day-of-month month day-of-week
    0      0      2    *            *     *            -> every day at 02:00:00

or a descriptor: ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/
``@midnight``, ``@hourly`` or ``@every <Go duration>`` (``@every 1h30m``). Fields take
numbers, ``*``, ``?``, ranges ``a-b``, steps ``/n`` and lists ``a,b``; months also take
``JAN``-``DEC`` and days of week ``SUN``-``SAT`` (Sunday is 0; 7 is refused). There is no
``L``, ``W``, ``#`` and no ``TZ=`` prefix; schedules run in the controller's time zone.

The server also accepts five fields, but reads them as *second minute hour day month*
(day of week defaults to ``*``), so the Unix crontab ``0 9 * * 1`` ("Mondays at 09:00")
would silently mean "minute 9 of every hour in January". :func:`validate_cron` refuses
five fields for that reason and suggests the six-field form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kfp_mlops.errors import KfpMlopsError

EXAMPLE = "'0 0 2 * * *' (every day at 02:00:00)"
FIELD_ORDER = "second minute hour day-of-month month day-of-week"
DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_EVERY = "@every "
# Go's time.ParseDuration: an optional sign, then one or more <number><unit>, or "0".
_GO_DURATION = re.compile(r"^[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$")
_INT = re.compile(r"^[+-]?\d+$")  # what Go's strconv.Atoi accepts

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    words: str = ""  # the names, as a person writes them

    def allowed(self) -> str:
        return f"{self.low}-{self.high}{self.words}, *, ?, a-b, */n, a,b"


FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS, " or JAN-DEC"),
    _Field("day-of-week", 0, 6, _DAYS, " or SUN-SAT (Sunday is 0)"),
)


class CronError(KfpMlopsError, ValueError):
    """A cron expression KFP would refuse or misread; the message names the field and a fix."""

    def __init__(self, message: str, field: str | None = None, value: str | None = None):
        super().__init__(message)
        self.field = field
        self.value = value


def validate_cron(expression: str) -> str:
    """Return ``expression`` without surrounding blanks if KFP accepts it as meant.

    Raises :class:`CronError` naming the bad field, what it allows, and an example.
    """
    spec = expression.strip()
    if not spec:
        raise CronError(f"the cron expression is empty; use six fields ({FIELD_ORDER}), "
                        f"e.g. {EXAMPLE}, or a descriptor such as @daily")
    if spec.startswith("@"):
        _check_descriptor(spec)
        return spec
    fields = spec.split()
    if len(fields) == 5:
        raise CronError(
            f"cron {spec!r} has 5 fields, but KFP reads cron with a seconds field first "
            f"({FIELD_ORDER}) and would take these as second minute hour day month; "
            f"for the Unix crontab meaning use {'0 ' + spec!r}",
            field=None, value=spec,
        )
    if len(fields) != 6:
        raise CronError(
            f"cron {spec!r} has {len(fields)} field(s); KFP needs 6 ({FIELD_ORDER}), "
            f"e.g. {EXAMPLE}",
            value=spec,
        )
    for field, text in zip(FIELDS, fields, strict=True):
        _check_field(spec, field, text)
    return spec


def _check_descriptor(spec: str) -> None:
    if spec in DESCRIPTORS:
        return
    if spec.startswith(_EVERY):
        duration = spec[len(_EVERY):]
        if _GO_DURATION.match(duration):
            return
        raise CronError(
            f"cron {spec!r}: {duration!r} is not a Go duration; write it like 30m, 6h or 1h30m "
            "(units ns, us, ms, s, m, h), e.g. '@every 6h'",
            field="@every", value=duration,
        )
    raise CronError(
        f"cron {spec!r}: unknown descriptor; use one of {', '.join(DESCRIPTORS)} or "
        "'@every <duration>' such as '@every 6h', or six fields like " + EXAMPLE,
        field="descriptor", value=spec,
    )


def _fail(spec: str, field: _Field, text: str, problem: str) -> CronError:
    return CronError(
        f"cron {spec!r}: {field.name} field {text!r} {problem}; the {field.name} field takes "
        f"{field.allowed()}. Fields are {FIELD_ORDER}, e.g. {EXAMPLE}",
        field=field.name, value=text,
    )


def _number(spec: str, field: _Field, text: str, part: str) -> int:
    if field.names and part.lower() in field.names:
        return field.names[part.lower()]
    if not _INT.match(part):
        raise _fail(spec, field, text, f"has {part!r}, which is not a number")
    value = int(part)
    if value < 0:
        raise _fail(spec, field, text, f"has the negative number {value}")
    return value


def _check_field(spec: str, field: _Field, text: str) -> None:
    for item in text.split(","):
        if not item:
            raise _fail(spec, field, text, "has an empty list item")
        _check_range(spec, field, text, item)


def _check_range(spec: str, field: _Field, text: str, item: str) -> None:
    range_and_step = item.split("/")
    if len(range_and_step) > 2:
        raise _fail(spec, field, text, "has more than one '/'")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        if len(low_high) > 1:
            raise _fail(spec, field, text, f"mixes {low_high[0]!r} with a range")
        start, end = field.low, field.high
    else:
        if len(low_high) > 2:
            raise _fail(spec, field, text, "has more than one '-'")
        start = _number(spec, field, text, low_high[0])
        end = _number(spec, field, text, low_high[1]) if len(low_high) == 2 else start
    if len(range_and_step) == 2:
        step_text = range_and_step[1]
        if not _INT.match(step_text) or int(step_text) < 1:
            raise _fail(spec, field, text, f"has step {step_text!r}; a step is a whole number >= 1")
        if len(low_high) == 1 and low_high[0] not in ("*", "?"):
            end = field.high  # robfig: "N/step" means "N-max/step"
    if start < field.low:
        raise _fail(spec, field, text, f"starts at {start}, below the minimum {field.low}")
    if end > field.high:
        raise _fail(spec, field, text, f"reaches {end}, above the maximum {field.high}")
    if start > end:
        raise _fail(spec, field, text, f"has a range from {start} down to {end}")
