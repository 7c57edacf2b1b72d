"""Data drift between a reference dataset and a current one, feature by feature.

Both sides are scanned with :mod:`kfp_mlops.data.stats` (streamed by batches from Parquet,
or from a DataFrame). Numeric tests run on the scan's bounded value sample: every value
up to ``sample_size`` (default 100,000) rows, above that a Bernoulli sample coordinated by
row number (any sharding of the table keeps the same rows: see
:mod:`kfp_mlops.data.stats`). Category tests use the scan's exact category counts.

Metrics: numeric features get PSI (10 bins at reference deciles), the two-sample
Kolmogorov-Smirnov test and the Wasserstein distance (also normed by the reference
standard deviation); categorical ones the chi-square test of the 2 x K contingency table
and the Jensen-Shannon distance. Which metric decides follows Evidently's defaults (see
:class:`DriftThresholds`), so results are comparable with its data-drift report.

No false alarms: a column drifts only when its shift is both significant and large
enough to matter. The p-values of every tested column (KS for numbers, chi-square for
categories) are adjusted together with Benjamini-Hochberg, which keeps the expected
share of false discoveries among the flagged columns at ``fdr`` (0.01), where 30
uncorrected tests at 0.05 flag 1.5 unshifted columns on average. Where a p-value decides
(small reference data) the shift must also reach a minimum effect (0.1 reference
standard deviations of Wasserstein distance, or 0.1 Jensen-Shannon distance: the
thresholds a distance decides with on large data); where a distance decides (large
data) the adjusted p-value must be below ``fdr`` too, so a small current window whose
distance is noise is not flagged either. Measured on generated tables of 30 columns
(tests/data/test_drift_fdr.py): 0 of 60 unshifted windows of 100-500 rows flagged a
column at 0.01 (1 to 4 of 60 at 0.05), against references of 800 and 20,000 rows, and
every shifted column of the shifted windows was flagged.

The dataset-level share counts input features. A ``target`` named to :func:`detect_drift`
is tested and reported too (label drift), but stays out of the share unless
``count_target=True``; a caller that names no target gets every compared column counted
as a feature, as before.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kfp_mlops.data.kinds import DATETIME, NUMERIC_KINDS
from kfp_mlops.data.pvalues import chi2_sf, kolmogorov_sf
from kfp_mlops.data.stats import DatasetStatistics, Scan, scan_any, sorted_quantiles
from kfp_mlops.errors import KfpMlopsError

if TYPE_CHECKING:
    import pandas as pd

_EPS = 1e-4  # floor for empty bins: keeps PSI's logarithm finite, as Evidently does


class DriftError(KfpMlopsError, ValueError):
    """The two datasets cannot be compared as given; the message names the column."""


@dataclass
class DriftThresholds:
    """When a feature, and the dataset, count as drifted (defaults follow Evidently).

    Attributes:
        small_rows: up to this many reference rows a statistical test decides
            (KS or chi-square p-value); above it a distance does, because with many rows
            p-values flag even negligible shifts (1000, Evidently's switch-over point).
        ks_pvalue: numeric, small data: drifted if the KS p-value is below (0.05).
        wasserstein_normed: numeric, large data: drifted if the Wasserstein distance in
            reference standard deviations is above (0.1).
        chi2_pvalue: categorical, small data: drifted if the chi-square p-value is below
            (0.05).
        jensenshannon: categorical, large data: drifted if the Jensen-Shannon distance
            (natural log, range 0 to 0.83) is above (0.1).
        psi: PSI above this is reported (0.2, the usual "significant shift" rule of
            thumb); it only decides when ``method="psi"``.
        drift_share: the dataset drifts when at least this share of features drift (0.5).
        few_values: a numeric feature with at most this many distinct values is tested
            as categorical (5, as Evidently).
        method: "auto" (the rules above) or "psi" (PSI decides every numeric feature).
        sample_size: bound on values per numeric feature for KS, Wasserstein and PSI.
        correction: "bh" (Benjamini-Hochberg across the tested columns: the adjusted
            p-values are compared with ``fdr``) or "none" (each column tested alone
            against ``ks_pvalue`` / ``chi2_pvalue``, as Evidently does).
        fdr: the false-discovery rate the Benjamini-Hochberg correction keeps (0.01).
        min_wasserstein_normed: numeric, small data: the least shift, in reference
            standard deviations, that counts as drift however small the p-value (0.1).
        min_jensenshannon: categorical, small data: the least Jensen-Shannon distance
            that counts as drift (0.1).

    """

    small_rows: int = 1000
    ks_pvalue: float = 0.05
    wasserstein_normed: float = 0.1
    chi2_pvalue: float = 0.05
    jensenshannon: float = 0.1
    psi: float = 0.2
    drift_share: float = 0.5
    few_values: int = 5
    method: str = "auto"
    sample_size: int = 100_000
    correction: str = "bh"
    fdr: float = 0.01
    min_wasserstein_normed: float = 0.1
    min_jensenshannon: float = 0.1


@dataclass
class FeatureDrift:
    """Drift figures for one feature; ``test`` names the metric that decided."""

    column: str
    kind: str
    test: str
    score: float
    threshold: float
    drifted: bool
    metrics: dict[str, float] = field(default_factory=dict)
    role: str = "feature"  # or "target": the label column, reported beside the features


@dataclass
class DriftResult:
    """Per-feature drift and the dataset-level decision.

    ``features`` are the columns the drift share counts; ``target_drift`` is the target's
    test when a target was named and left out of the share (with ``count_target`` it is
    in ``features`` instead, marked ``role="target"``).
    """

    features: list[FeatureDrift]
    drift_share: float
    dataset_drift: bool
    reference_rows: int
    current_rows: int
    thresholds: DriftThresholds
    reference_stats: DatasetStatistics | None = field(default=None, repr=False)
    current_stats: DatasetStatistics | None = field(default=None, repr=False)
    target_drift: FeatureDrift | None = None  # the target's test, not in the share

    @property
    def columns(self) -> list[FeatureDrift]:
        """Every tested column, in order: the counted features, then an uncounted target."""
        return self.features + ([self.target_drift] if self.target_drift else [])

    @property
    def target(self) -> str | None:
        """The target column's name, if one was named and tested."""
        named = [f.column for f in self.columns if f.role == "target"]
        return named[0] if named else None

    @property
    def target_counted(self) -> bool:
        """Whether the target's drift is part of the drift share."""
        return any(f.role == "target" for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the counted columns flagged as drifted."""
        return [f.column for f in self.features if f.drifted]

    @property
    def reason(self) -> str:
        """One line a pipeline can log next to the gate's boolean; says where the target is."""
        n, total = len(self.drifted_features), len(self.features)
        verdict = "dataset drift" if self.dataset_drift else "no dataset drift"
        listed = f": {', '.join(self.drifted_features)}" if n else ""
        share = f"{self.drift_share:.0%}, threshold {self.thresholds.drift_share:.0%}"
        if self.target_counted:
            return (f"{verdict}: {n} of {total} columns drifted ({total - 1} features and the "
                    f"target {self.target!r}; {share}){listed}")
        line = f"{verdict}: {n} of {total} features drifted ({share}){listed}"
        if self.target_drift is not None:
            moved = "drifted" if self.target_drift.drifted else "did not drift"
            line += f"; the target {self.target!r} {moved} (not counted in the share)"
        return line

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (the embedded statistics are left out)."""
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "reason": self.reason,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "thresholds": asdict(self.thresholds),
            "features": [asdict(f) for f in self.features],
            "target": self.target,
            "target_counted": self.target_counted,
            "target_drift": asdict(self.target_drift) if self.target_drift else None,
        }

    def to_json(self) -> str:
        """JSON of :meth:`to_dict` plus both sides' statistics (for the report's overlays)."""
        return json.dumps({
            **self.to_dict(),
            "reference_stats": self.reference_stats.to_dict() if self.reference_stats else None,
            "current_stats": self.current_stats.to_dict() if self.current_stats else None,
        })

    @classmethod
    def from_json(cls, text: str) -> DriftResult:
        """Rebuild from :meth:`to_json` output (another task's drift artifact)."""
        data = json.loads(text)
        stats = {k: DatasetStatistics.from_dict(data[k]) if data[k] else None
                 for k in ("reference_stats", "current_stats")}
        target = data["target_drift"]
        return cls(
            features=[FeatureDrift(**f) for f in data["features"]],
            drift_share=data["drift_share"], dataset_drift=data["dataset_drift"],
            reference_rows=data["reference_rows"], current_rows=data["current_rows"],
            thresholds=DriftThresholds(**data["thresholds"]),
            target_drift=FeatureDrift(**target) if target else None, **stats,
        )


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Compute the population stability index, with bins at the reference's quantiles."""
    return _psi_sorted(np.sort(reference), np.sort(current), bins)


def _bin_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` from the sorted values, the same integers.

    numpy counts explicit edges by sorting the values in blocks and searching them; the
    samples here are sorted already, for the KS test.
    """
    return np.diff(np.concatenate([ordered.searchsorted(edges[:-1], "left"),
                                   ordered.searchsorted(edges[-1:], "right")]))


def _psi_sorted(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """:func:`psi` of two sorted samples (drift sorts them once for every test)."""
    cuts = np.sort(sorted_quantiles(reference, np.linspace(0, 1, bins + 1)))
    edges = cuts[np.append(True, cuts[1:] != cuts[:-1])]  # np.unique, without numpy.ma
    edges[0], edges[-1] = -np.inf, np.inf
    if len(edges) < 2:
        edges = np.array([-np.inf, np.inf])
    ref = _bin_counts(reference, edges) / len(reference)
    cur = _bin_counts(current, edges) / len(current)
    ref, cur = np.maximum(ref, _EPS), np.maximum(cur, _EPS)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two count vectors, as scipy computes it."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt((left + right) / 2.0))


def _chi2_pvalue(table: np.ndarray) -> float:
    """p-value of the chi-square test of a 2 x K table, with scipy's defaults.

    As ``scipy.stats.chi2_contingency``: expected counts from the margins, Yates'
    continuity correction when there is one degree of freedom.
    """
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    observed = table
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return chi2_sf(statistic, dof)


def _categorical_metrics(ref: dict[str, int], cur: dict[str, int]) -> dict[str, float]:
    keys = sorted(set(ref) | set(cur))
    table = np.array([[ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys]], float)
    if table.sum(axis=1).min() == 0:
        return {"chi2_pvalue": float("nan"), "jensenshannon": float("nan")}
    if len(keys) < 2:
        chi2_p = 1.0  # one category on both sides: nothing can have shifted
    else:
        chi2_p = _chi2_pvalue(table)
    return {"chi2_pvalue": chi2_p, "jensenshannon": _jensenshannon(table[0], table[1])}


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {f"{k:g}": int(n) for k, n in zip(keys, counts, strict=True)}


def _running_count(flags: np.ndarray) -> np.ndarray:
    """``np.cumsum(flags)`` of a boolean array, in 32 bits where that cannot overflow.

    numpy's 64-bit running sum of booleans is about 15x slower (1.8 ms on 190,000).
    """
    return np.cumsum(flags, dtype=np.int32 if len(flags) < 2**31 else np.int64)


def _ascending(values: np.ndarray) -> bool:
    return bool(np.all(values[1:] >= values[:-1]))


@dataclass(frozen=True)
class _Sorted:
    """Both samples sorted once, and each one's CDF at every pooled value."""

    ref: np.ndarray
    cur: np.ndarray
    pooled: np.ndarray
    order: np.ndarray  # pooled = concatenate([ref, cur])[order]

    @classmethod
    def of(cls, r: np.ndarray, c: np.ndarray) -> _Sorted:
        # A scan's samples come sorted (stats._finish): checking costs a twentieth of a sort.
        ref, cur = (x if _ascending(x) else np.sort(x) for x in (r, c))
        both = np.concatenate([ref, cur])
        order = np.argsort(both, kind="stable")  # two sorted runs: one merge
        return cls(ref, cur, both[order], order)

    @cached_property
    def steps(self) -> np.ndarray:
        """``np.diff(pooled)``: where the value changes, and the Wasserstein widths."""
        return np.diff(self.pooled)

    def distinct(self) -> int:
        return int(np.count_nonzero(self.steps)) + 1

    def gaps(self) -> np.ndarray:
        """``F_ref - F_cur`` after each pooled value but the last, in one pass.

        The count of reference values up to each position is the running count of
        reference values in the merged order: no binary search. Inside a run of tied
        values the gap is partial; at each run's last position (where ``steps`` is not
        zero) it is ``F_ref(x) - F_cur(x)``, the same numbers as ``searchsorted(...,
        "right")`` gives, without mapping every position to its run's end.
        """
        n1, n2 = len(self.ref), len(self.cur)
        ref_le = _running_count(self.order[:-1] < n1)
        cur_le = np.arange(1, n1 + n2, dtype=ref_le.dtype) - ref_le
        return ref_le / n1 - cur_le / n2


# Both samples larger than this: the KS p-value from Kolmogorov's limiting distribution.
_KS_LIMIT_ROWS = 10_000


def _ks_and_wasserstein(s: _Sorted) -> tuple[float, float, float]:
    """KS statistic and p-value, and the Wasserstein distance, from one sort.

    The statistic and the distance are ``scipy.stats.ks_2samp``'s and
    ``wasserstein_distance``'s arithmetic (which would each sort both samples again).
    With both samples over 10,000 values the p-value is Kolmogorov's limiting
    distribution at ``sqrt(n1 n2 / (n1 + n2)) D`` (``scipy.special.kolmogorov``, computed
    in :mod:`kfp_mlops.data.pvalues`; what ``ks_2samp``'s asymptotic mode was before
    scipy 1.5): within 0.002 of scipy's current figure at these sizes (tested), and it
    spares importing ``scipy.stats`` (about a second) for a number that does not decide
    there (a distance does). Smaller samples
    get ``ks_2samp``'s own p-value (exact up to 10,000 values).
    """
    size = np.abs(s.gaps())
    # A partial gap inside a run of ties weighs a zero step; KS reads only the runs' ends
    # (the gap after the last value, 0, is left out: the maximum starts at 0).
    statistic = float(size.max(initial=0.0, where=s.steps != 0))
    distance = float(np.sum(size * s.steps))
    n1, n2 = len(s.ref), len(s.cur)
    if min(n1, n2) > _KS_LIMIT_ROWS:
        pvalue = kolmogorov_sf(float(np.sqrt(n1 * n2 / (n1 + n2)) * statistic))
    else:
        from scipy.stats import ks_2samp

        pvalue = float(ks_2samp(s.ref, s.cur).pvalue)
    return statistic, pvalue, distance


def _feature_drift(
    name: str, kind: str, ref: Scan, cur: Scan, t: DriftThresholds
) -> FeatureDrift:
    small = ref.stats.rows <= t.small_rows
    if kind in NUMERIC_KINDS:
        r, c = ref.samples[name], cur.samples[name]
        if len(r) == 0 or len(c) == 0:
            return FeatureDrift(name, kind, "none", float("nan"), float("nan"), False,
                                {"note_empty": 1.0})
        ordered = _Sorted.of(r, c)
        if ordered.distinct() <= t.few_values:
            metrics = _categorical_metrics(_counts(r), _counts(c))
            return _decide_categorical(name, kind, metrics, small, t)
        norm = max(float(np.std(r)), 0.001)  # Evidently's floor for a constant reference
        ks_statistic, ks_pvalue, distance = _ks_and_wasserstein(ordered)
        metrics = {
            "psi": _psi_sorted(ordered.ref, ordered.cur),
            "ks_statistic": ks_statistic,
            "ks_pvalue": ks_pvalue,
            "wasserstein": distance,
            "wasserstein_normed": distance / norm,
        }
        if t.method == "psi":
            return FeatureDrift(name, kind, "psi", metrics["psi"], t.psi,
                                metrics["psi"] > t.psi, metrics)
        if small:
            return FeatureDrift(name, kind, "ks", metrics["ks_pvalue"], t.ks_pvalue,
                                metrics["ks_pvalue"] < t.ks_pvalue, metrics)
        return FeatureDrift(name, kind, "wasserstein_normed", metrics["wasserstein_normed"],
                            t.wasserstein_normed,
                            metrics["wasserstein_normed"] > t.wasserstein_normed, metrics)
    rc = ref.stats.columns[name].category_counts()
    cc = cur.stats.columns[name].category_counts()
    return _decide_categorical(name, kind, _categorical_metrics(rc, cc), small, t)


def _decide_categorical(
    name: str, kind: str, metrics: dict[str, float], small: bool, t: DriftThresholds
) -> FeatureDrift:
    if np.isnan(metrics["jensenshannon"]):
        return FeatureDrift(name, kind, "none", float("nan"), float("nan"), False, metrics)
    if small:
        p = metrics["chi2_pvalue"]
        return FeatureDrift(name, kind, "chi2", p, t.chi2_pvalue, p < t.chi2_pvalue, metrics)
    js = metrics["jensenshannon"]
    return FeatureDrift(name, kind, "jensenshannon", js, t.jensenshannon,
                        js > t.jensenshannon, metrics)


def benjamini_hochberg(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN and is not counted).

    Flagging the columns whose adjusted p-value is below ``a`` keeps the expected share
    of false discoveries among them at ``a`` or below (independent or positively
    dependent tests), as ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``.
    """
    values = np.asarray(pvalues, dtype=float)
    out = np.full(len(values), np.nan)
    present = np.flatnonzero(~np.isnan(values))
    if not len(present):
        return out.tolist()
    order = present[np.argsort(values[present], kind="mergesort")]
    m = len(order)
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out.tolist()


def _pvalue(f: FeatureDrift) -> float:
    return float(f.metrics.get("ks_pvalue", f.metrics.get("chi2_pvalue", float("nan"))))


def _control_false_discoveries(columns: list[FeatureDrift], t: DriftThresholds) -> None:
    """Decide each column on its adjusted p-value and its effect size (see the module)."""
    tested = [f for f in columns if f.test != "none"]
    raw = [_pvalue(f) for f in tested]
    adjusted = benjamini_hochberg(raw) if t.correction == "bh" else raw
    for f, q in zip(tested, adjusted, strict=True):
        if np.isnan(q):
            continue
        numeric = "wasserstein_normed" in f.metrics
        level = t.fdr if t.correction == "bh" else (t.ks_pvalue if numeric else t.chi2_pvalue)
        f.metrics["adjusted_pvalue"] = float(q)
        if f.test in ("ks", "chi2"):
            effect = f.metrics["wasserstein_normed" if numeric else "jensenshannon"]
            floor = t.min_wasserstein_normed if numeric else t.min_jensenshannon
            f.score, f.threshold = float(q), float(level)
            f.drifted = bool(q < level and effect >= floor)
        else:  # a distance (or PSI) decides; a shift that is only noise does not count
            f.drifted = bool(f.drifted and q < level)


def detect_drift(
    reference: pd.DataFrame | str | Path,
    current: pd.DataFrame | str | Path,
    thresholds: DriftThresholds | None = None,
    columns: list[str] | None = None,
    *,
    target: str | None = None,
    count_target: bool = False,
    fork: bool = False,
) -> DriftResult:
    """Compare ``current`` with ``reference`` (DataFrames or Parquet paths).

    ``columns`` limits the columns compared (default: every column both share that is
    numeric, categorical or boolean). Columns only one side has are validation's
    business (missing/extra column), not drift's. ``target`` names the label column:
    it is tested and reported, but counts in the drift share only with
    ``count_target`` (a target missing from either side is skipped).

    ``fork=True`` scans the current file in a forked child while this process scans the
    reference (both must be paths, on Linux, with a second CPU; otherwise the scans run
    one after the other). The CLI asks for it: a process owns its interpreter, so the
    two scans do not contend for the GIL as threads did. A library caller may hold
    threads or locks a fork would copy, so it is off by default. The figures are the
    same either way (each scan is seeded and deterministic).
    """
    t = thresholds or DriftThresholds()
    # One scan after the other, in this thread. Side by side (a thread each) the two
    # contend for the GIL on every small numpy call of a batch: on two 1M-row files that
    # took 1.6x the CPU, more wall time (load 3-4 on 2 cores) and 90 MiB more peak memory.
    # Their quantiles (the report's medians) come from the value sample the tests use:
    # the statistics' KLL sketch took most of the scan's time on large files. A file's
    # columns are decoded one after the other (less memory, same figures).
    def scan_one(data: pd.DataFrame | str | Path, seed: int) -> Scan:
        return scan_any(data, sample_size=t.sample_size, count_duplicates=False, seed=seed,
                        quantiles="sample",
                        **({"use_threads": False} if isinstance(data, (str, Path)) else {}))

    if fork and _can_fork(reference, current):
        # The child scans the current file while this process scans the reference.
        child = _ForkedScan(lambda: scan_one(current, 1))
        try:
            ref = scan_one(reference, 0)
        except BaseException:
            child.cancel()
            raise
        cur = child.result()
    else:
        ref, cur = scan_one(reference, 0), scan_one(current, 1)
    return drift_from_scans(ref, cur, t, columns, target=target, count_target=count_target)


def _can_fork(reference: object, current: object) -> bool:
    """Whether the current file can be scanned in a forked child beside this process.

    The suite's own rule for forking (:func:`kfp_mlops.processes.pool_context`: Linux
    only), a second CPU this process may run on, and anonymous memory files for the
    child's answer (``os.memfd_create``, Linux 3.17 on).
    """
    import os

    from kfp_mlops.processes import pool_context, usable_cores

    return (isinstance(reference, (str, Path)) and isinstance(current, (str, Path))
            and hasattr(os, "memfd_create")
            and pool_context().get_start_method() == "fork" and usable_cores() > 1)


class _ForkedScan:
    """Run ``work`` in a forked child; :meth:`result` returns its value or raises its error.

    The child pickles its outcome with its arrays out of band (protocol 5) into an
    anonymous memory file the parent maps: the value samples (10 MiB for two 1M-row
    files) are written once and read in place, where a pipe moved them 64 KiB at a time
    (about 50 ms against 10). It then writes one byte to a pipe and exits with
    ``os._exit`` (no atexit handlers, no flushing of buffers it shares with the parent).
    An error that does not pickle comes back as a :class:`DriftError` naming it.
    """

    def __init__(self, work: Any) -> None:
        import os

        self._read, write = os.pipe()
        self._memory = os.memfd_create("kfp-mlops-drift-scan")  # Linux: forking is too
        self._pid = os.fork()
        if self._pid == 0:  # the child
            code = 0
            try:
                os.close(self._read)
                try:
                    outcome: tuple[bool, Any] = (True, work())
                except BaseException as exc:  # noqa: BLE001 - every error goes to the parent
                    outcome, code = (False, exc), 1
                _write_outcome(self._memory, outcome)
                os.write(write, b"1")
            finally:
                os._exit(code)
        os.close(write)

    def cancel(self) -> None:
        """Stop the child and reap it (this process failed; its answer is not needed)."""
        import os
        import signal

        os.close(self._read)
        os.close(self._memory)
        os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)

    def result(self) -> Any:
        import os

        with os.fdopen(self._read, "rb") as pipe:
            done = pipe.read()  # one byte once the outcome is written; nothing if it died
        try:
            ok, value = _read_outcome(self._memory) if done else (False, None)
        finally:
            os.close(self._memory)
        _, status = os.waitpid(self._pid, 0)  # after the answer: the child's exit is slow
        if not done:
            raise DriftError(
                f"the scan of the current data ended without an answer (child exit status "
                f"{status}); run again, or without fork=True to see its error here")
        if not ok:
            raise value
        return value


_ALIGN = 64  # each array's bytes start on a cache line


def _write_outcome(fd: int, outcome: tuple[bool, Any]) -> None:
    """``outcome`` into the file ``fd``: lengths, the pickle, then each out-of-band array."""
    import os
    import pickle
    import struct

    buffers: list[pickle.PickleBuffer] = []
    try:
        header = pickle.dumps(outcome, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:  # noqa: BLE001
        buffers = []
        header = pickle.dumps((False, DriftError(
            f"the scan of the current data failed in its child process: {exc!r}")))
    raws = [b.raw() for b in buffers]
    with os.fdopen(fd, "wb", closefd=False) as out:
        out.write(struct.pack(f"<{len(raws) + 2}q", len(header), len(raws),
                              *(r.nbytes for r in raws)))
        out.write(header)
        for raw in raws:
            out.write(bytes(-out.tell() % _ALIGN))
            out.write(raw)


def _read_outcome(fd: int) -> tuple[bool, Any]:
    """What :func:`_write_outcome` wrote, the arrays left in the mapped file (no copy)."""
    import mmap
    import os
    import pickle
    import struct

    size = os.fstat(fd).st_size
    view = memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_COPY))  # writable, private
    header_size, count = struct.unpack_from("<2q", view)
    sizes = struct.unpack_from(f"<{count}q", view, 16)
    at = 16 + 8 * count
    header = view[at:at + header_size]
    at += header_size
    buffers = []
    for nbytes in sizes:
        at += -at % _ALIGN
        buffers.append(view[at:at + nbytes])
        at += nbytes
    return pickle.loads(header, buffers=buffers)


def drift_from_scans(
    ref: Scan, cur: Scan, thresholds: DriftThresholds | None = None,
    columns: list[str] | None = None,
    *,
    target: str | None = None,
    count_target: bool = False,
) -> DriftResult:
    """Drift from two finished scans (lets a caller reuse scans it already made)."""
    t = thresholds or DriftThresholds()
    if t.method not in ("auto", "psi"):
        raise DriftError(f"drift method {t.method!r} is unknown; use 'auto' or 'psi'")
    if t.correction not in ("bh", "none"):
        raise DriftError(f"drift correction {t.correction!r} is unknown; use 'bh' "
                         "(Benjamini-Hochberg) or 'none'")
    shared = [n for n in ref.stats.columns if n in cur.stats.columns]
    names = columns if columns is not None else shared
    tested = []
    for name in names:
        if name not in shared:
            raise DriftError(
                f"column {name!r} is not in both datasets; drop it from columns= or check "
                "the data"
            )
        kind, other = ref.stats.columns[name].kind, cur.stats.columns[name].kind
        if kind == DATETIME:
            continue  # time stamps always move forward; drift on them says nothing
        if (kind in NUMERIC_KINDS) != (other in NUMERIC_KINDS):
            raise DriftError(
                f"column {name!r} is {kind} in the reference but {other} in the current data; "
                "fix the type (data validation reports it as type_change) before drift"
            )
        tested.append((name, kind))
    # Two at a time: the tests are numpy sorts and searches, which release the GIL.
    with ThreadPoolExecutor(2) as pool:
        features = list(pool.map(lambda column: _feature_drift(*column, ref, cur, t), tested))
    label = None
    if target is not None and target in shared:
        features = [f for f in features if f.column != target]  # tested once, below
        kind, other = ref.stats.columns[target].kind, cur.stats.columns[target].kind
        if (kind in NUMERIC_KINDS) != (other in NUMERIC_KINDS):
            raise DriftError(f"target {target!r} is {kind} in the reference but {other} in "
                             "the current data; fix the type before drift")
        label = _feature_drift(target, kind, ref, cur, t)
        label.role = "target"
    _control_false_discoveries(features + ([label] if label is not None else []), t)
    if label is not None:
        if count_target:
            features.append(label)
            label = None
    share = sum(f.drifted for f in features) / len(features) if features else 0.0
    return DriftResult(
        features=features,
        drift_share=share,
        dataset_drift=bool(features) and share >= t.drift_share,
        reference_rows=ref.stats.rows,
        current_rows=cur.stats.rows,
        thresholds=t,
        reference_stats=ref.stats,
        current_stats=cur.stats,
        target_drift=label,
    )
