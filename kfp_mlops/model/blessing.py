"""Champion/challenger blessing: whether a new model deserves to replace the current one.

A :class:`BlessingPolicy` is a list of metric rules. Each rule says which way is better
(``>=``: higher, ``<=``: lower), optionally an absolute threshold every model must meet,
and a tolerance: how much worse than the champion the challenger may be. The first model
of a name (no champion) is judged on the absolute thresholds only.

Compact form (CLI flags, pipeline parameters)::

    RULE[,RULE...][;tolerance=TOL]
    RULE := METRIC (">=" | "<=") [THRESHOLD] ["~" TOL]
    TOL  := a number in the metric's units, or a percentage of the champion's value ("2%")

    "accuracy>=0.8,f1_macro>=0.7;tolerance=0.01"
    "r2>=0.5,rmse<=~2%"       rmse: lower is better, no floor, at most 2% worse

The dict form is :meth:`BlessingPolicy.to_dict`'s output.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kfp_mlops.errors import DataError, KfpMlopsError

Direction = Literal["higher", "lower"]

_RULE_RE = re.compile(
    r"^(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=)\s*(?P<threshold>[^~\s]*)"
    r"\s*(?:~\s*(?P<tolerance>\S+))?$"
)
_OPS: dict[str, Direction] = {">=": "higher", "<=": "lower"}


# The model gate's defaults, the policy's own (kfp_mlops.model.settings hands them on with
# the run's other defaults). The metric each task is judged on (and tuned for when the
# user names none), and bars clearly better than guessing on typical tabular data, low
# enough that a first model on a small bundled data set passes (the default model scored
# r2 0.16-0.39 on three held-out fifths of the bundled diabetes set, so 0.5 would stop
# every one). Teams should set their own.
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}
DEFAULT_THRESHOLD = {"classification": 0.7, "regression": 0.2}
# How much worse than the production model a challenger may be (metric units).
DEFAULT_TOLERANCE = 0.01
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


class PolicyError(KfpMlopsError, ValueError):
    """A blessing policy spec is malformed."""


def default_spec(
    task: str,
    metric: str | None = None,
    threshold: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """The one-rule compact policy for ``task``: its default metric and bar unless given.

    ``metric>=threshold~tolerance`` (``<=`` for error metrics); a metric other than the
    task's default needs its own threshold.
    """
    if task not in DEFAULT_METRIC:
        raise PolicyError(
            f"no default blessing policy for task {task!r}; tasks: "
            f"{', '.join(DEFAULT_METRIC)}, or pass a policy string"
        )
    metric = DEFAULT_METRIC[task] if metric is None else metric
    if threshold is None:
        if metric != DEFAULT_METRIC[task]:
            raise DataError(f"give a quality threshold for metric {metric!r} (e.g. 0.8)")
        threshold = DEFAULT_THRESHOLD[task]
    op = "<=" if metric in LOWER_IS_BETTER else ">="
    return f"{metric}{op}{threshold:g}~{tolerance:g}"


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the champion is still fine: absolute, or relative to it."""

    value: float = 0.0
    relative: bool = False

    def amount(self, champion: float) -> float:
        """Absolute allowance against a champion value."""
        return abs(champion) * self.value if self.relative else self.value

    def __str__(self) -> str:
        return f"{_fmt(self.value * 100)}%" if self.relative else _fmt(self.value)

    @classmethod
    def parse(cls, text: str, where: str) -> Tolerance:
        """Parse ``0.01`` or ``2%``; ``where`` names the spec part in errors."""
        raw = text.strip()
        relative = raw.endswith("%")
        number = _number(raw[:-1] if relative else raw, where)
        if number < 0:
            raise PolicyError(f"{where}: tolerance {text!r} is negative; use 0 or more")
        return cls(number / 100 if relative else number, relative)


@dataclass(frozen=True)
class MetricRule:
    """One metric's direction, optional absolute threshold and optional own tolerance."""

    metric: str
    direction: Direction
    threshold: float | None = None
    tolerance: Tolerance | None = None  # None: the policy's default tolerance

    def __str__(self) -> str:
        op = ">=" if self.direction == "higher" else "<="
        threshold = "" if self.threshold is None else _fmt(self.threshold)
        tol = "" if self.tolerance is None else f"~{self.tolerance}"
        return f"{self.metric}{op}{threshold}{tol}"


@dataclass(frozen=True)
class BlessingPolicy:
    """Rules a challenger must pass to be blessed."""

    rules: tuple[MetricRule, ...]
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        if not self.rules:
            raise PolicyError(
                "a blessing policy needs at least one metric rule, e.g. accuracy>=0.8"
            )
        names = [r.metric for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PolicyError(f"metric {duplicates[0]!r} has two rules; keep one")

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.rules) + f";tolerance={self.tolerance}"

    def describe(self) -> str:
        """The policy in words: ``accuracy >= 0.7, at most 0.01 worse than the champion``."""
        said = []
        for rule in self.rules:
            op = ">=" if rule.direction == "higher" else "<="
            floor = f"{rule.metric} {op} {_fmt(rule.threshold)}" if rule.threshold is not None \
                else f"{rule.metric} (no {'floor' if rule.direction == 'higher' else 'ceiling'})"
            tolerance = rule.tolerance if rule.tolerance is not None else self.tolerance
            said.append(f"{floor}, at most {tolerance} worse than the champion")
        return "; ".join(said)

    @classmethod
    def parse(cls, spec: str) -> BlessingPolicy:
        """Parse the compact form described in the module docstring."""
        if not spec or not spec.strip():
            raise PolicyError("empty blessing policy; give rules such as 'accuracy>=0.8'")
        rules_text, _, options_text = spec.partition(";")
        tolerance = Tolerance()
        for option in filter(None, (o.strip() for o in options_text.split(";"))):
            key, eq, value = option.partition("=")
            if key.strip() != "tolerance" or not eq:
                raise PolicyError(
                    f"unknown policy option {option!r}; the only option is 'tolerance=TOL'"
                )
            tolerance = Tolerance.parse(value, f"option {option!r}")
        rules = []
        for part in (p.strip() for p in rules_text.split(",")):
            match = _RULE_RE.match(part)
            if not match:
                raise PolicyError(
                    f"bad rule {part!r} in blessing policy {spec!r}; write METRIC>=THRESHOLD "
                    "(higher is better) or METRIC<=THRESHOLD (lower is better), threshold "
                    "optional, '~TOL' optional, e.g. 'accuracy>=0.8' or 'rmse<=~2%'"
                )
            threshold = match["threshold"]
            rules.append(
                MetricRule(
                    metric=match["metric"],
                    direction=_OPS[match["op"]],
                    threshold=_number(threshold, f"rule {part!r}") if threshold else None,
                    tolerance=(
                        Tolerance.parse(match["tolerance"], f"rule {part!r}")
                        if match["tolerance"] else None
                    ),
                )
            )
        return cls(tuple(rules), tolerance)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON; :meth:`from_dict` reads it back."""
        return {
            "rules": [
                {
                    "metric": r.metric,
                    "direction": r.direction,
                    "threshold": r.threshold,
                    "tolerance": None if r.tolerance is None else str(r.tolerance),
                }
                for r in self.rules
            ],
            "tolerance": str(self.tolerance),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BlessingPolicy:
        """Parse the dict form (see :meth:`to_dict`)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
            raise PolicyError(
                "a blessing policy dict needs a 'rules' list of {metric, direction, "
                "threshold, tolerance}"
            )
        unknown = set(raw) - {"rules", "tolerance"}
        if unknown:
            raise PolicyError(f"unknown policy keys {sorted(unknown)}; use 'rules', 'tolerance'")
        rules = []
        for i, rule in enumerate(raw["rules"]):
            where = f"rules[{i}]"
            if not isinstance(rule, dict) or "metric" not in rule:
                raise PolicyError(f"{where} must be a dict with at least 'metric'")
            direction = rule.get("direction", "higher")
            if direction not in ("higher", "lower"):
                raise PolicyError(f"{where}: direction {direction!r}; use 'higher' or 'lower'")
            threshold = rule.get("threshold")
            tol = rule.get("tolerance")
            rules.append(
                MetricRule(
                    metric=str(rule["metric"]),
                    direction=direction,
                    threshold=None if threshold is None else _number(str(threshold), where),
                    tolerance=None if tol is None else Tolerance.parse(str(tol), where),
                )
            )
        return cls(tuple(rules), Tolerance.parse(str(raw.get("tolerance", 0)), "tolerance"))

    @classmethod
    def default(cls, task: str) -> BlessingPolicy:
        """The default policy for ``classification`` or ``regression``: the one a run applies.

        One source: :func:`default_spec`, which
        :class:`kfp_mlops.model.settings.BlessingSettings` with nothing set gives too.
        """
        return cls.parse(default_spec(task))

    @classmethod
    def coerce(
        cls, spec: str | dict[str, Any] | BlessingPolicy | None, task: str
    ) -> BlessingPolicy:
        """Build a policy from a string, a dict, a policy, or ``None`` (the task's default)."""
        if spec is None or (isinstance(spec, str) and not spec.strip()):
            return cls.default(task)
        if isinstance(spec, BlessingPolicy):
            return spec
        if isinstance(spec, dict):
            return cls.from_dict(spec)
        return cls.parse(spec)


@dataclass
class Comparison:
    """One row of the blessing table."""

    metric: str
    direction: Direction
    challenger: float | None
    champion: float | None
    threshold: float | None
    tolerance: float | None  # absolute allowance used against the champion
    passed: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


@dataclass
class Blessing:
    """The verdict: blessed or not, why, and the per-metric table."""

    blessed: bool
    reason: str
    comparisons: list[Comparison]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "blessed": self.blessed,
            "reason": self.reason,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def to_markdown(self) -> str:
        """Render the verdict and the table as Markdown."""
        lines = [
            f"**{'Blessed' if self.blessed else 'Not blessed'}**: {self.reason}",
            "",
            "| metric | better | challenger | champion | threshold | tolerance | passed | why |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in self.comparisons:
            cells = [
                c.metric, c.direction, _cell(c.challenger), _cell(c.champion),
                _cell(c.threshold), _cell(c.tolerance), "yes" if c.passed else "no", c.why,
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def bless(
    challenger: dict[str, float], champion: dict[str, float] | None, policy: BlessingPolicy
) -> Blessing:
    """Judge the ``challenger``'s metrics against the policy and the ``champion``'s."""
    rows = [_compare(rule, policy, challenger, champion) for rule in policy.rules]
    failed = [r for r in rows if not r.passed]
    if failed:
        reason = "not blessed: " + "; ".join(r.why for r in failed)
    elif champion is None:
        reason = f"blessed: first model, all {len(rows)} absolute thresholds met"
    else:
        reason = f"blessed: all {len(rows)} checks passed against the champion"
    return Blessing(blessed=not failed, reason=reason, comparisons=rows)


def _compare(
    rule: MetricRule,
    policy: BlessingPolicy,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
) -> Comparison:
    name = rule.metric
    value = _finite(challenger.get(name))
    best = _finite(champion.get(name)) if champion is not None else None
    tolerance = rule.tolerance or policy.tolerance
    allowance = tolerance.amount(best) if best is not None else None
    row = Comparison(name, rule.direction, value, best, rule.threshold, allowance, False, "")
    higher = rule.direction == "higher"
    if value is None:
        shown = ", ".join(sorted(challenger)) or "none"
        row.why = f"challenger has no finite {name!r} (its metrics: {shown})"
        return row
    if rule.threshold is not None:
        meets = value >= rule.threshold if higher else value <= rule.threshold
        if not meets:
            op = "<" if higher else ">"
            row.why = f"{name} {_fmt(value)} {op} threshold {_fmt(rule.threshold)}"
            return row
    if best is None or allowance is None:
        row.passed = True
        row.why = (
            "no champion: absolute threshold only" if champion is None
            else f"champion has no {name!r}: absolute threshold only"
        )
        if rule.threshold is None and champion is None:
            row.why = "no champion and no threshold: nothing to check"
        return row
    worse_by = (best - value) if higher else (value - best)
    if worse_by > allowance + 1e-12:
        row.why = (
            f"{name} {_fmt(value)} is worse than champion {_fmt(best)} by {_fmt(worse_by)} "
            f"(tolerance {_fmt(allowance)})"
        )
        return row
    row.passed = True
    row.why = (
        f"{name} {_fmt(value)} vs champion {_fmt(best)}: "
        + ("better" if worse_by < 0 else "within tolerance" if worse_by > 0 else "equal")
    )
    return row


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _number(text: str, where: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise PolicyError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise PolicyError(f"{where}: {text!r} is not a finite number")
    return number


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _cell(value: float | None) -> str:
    return "" if value is None else _fmt(value)
