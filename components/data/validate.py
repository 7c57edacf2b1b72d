from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate_data(
    statistics: Input[Artifact],
    store: str,
    schema_name: str,
    report: Output[HTML],
    summary: Output[Markdown],
    validation: Output[Artifact],
    update_schema: bool = False,
    warn_only: bool = False,
    run_id: str = "",
    check_only: bool = False,
) -> NamedTuple("ValidationOutputs", [("passed", bool), ("reason", str)]):
    """The data gate: check the statistics against the stored schema; drives ``dsl.If``.

    The first run infers the schema and stores it as reviewable YAML
    (``schemas/<name>/<version>.yaml``); later runs validate against it. Re-inferring
    is explicit (``update_schema``), never silent. Inferred numeric ranges are advisory
    (warnings; a passing batch widens them in a new schema version), curated ones block.

    Args:
        statistics: From ``compute-statistics``.
        store: Store URI holding the schemas.
        schema_name: Which schema (the model name).
        report: Self-contained HTML report: anomalies, statistics, histograms.
        summary: Short Markdown summary.
        validation: JSON: the anomalies and verdict (null: nothing was checked).
        update_schema: Re-infer the schema from this data and store it as a new version.
        warn_only: Report anomalies as warnings and pass.
        run_id: The pipeline run, recorded in a schema version that widens inferred
            ranges (a passing batch past them saves one).
        check_only: Store nothing (monitoring): no schema inferred or widened; without
            a stored schema nothing is checked and the data passes.

    Returns:
        passed: whether the data may train a model; reason: each anomaly and its fix.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.model import steps

    log = logging.getLogger("kfp_mlops.components.data.validate_data")
    result = steps.validate_data(
        statistics.path, store, schema_name, report.path, summary.path, validation.path,
        update_schema=update_schema, warn_only=warn_only, run_id=run_id or None,
        check_only=check_only,
    )
    checked = result.validation
    for anomaly in checked.anomalies if checked else []:
        log.info(anomaly)
    log.info(result.reason)
    return namedtuple("ValidationOutputs", ["passed", "reason"])(result.passed, result.reason)
