"""Automation: submit and schedule the suite's pipelines on a Kubeflow Pipelines cluster.

Import the functions from their modules::

    from kfp_mlops.app.automation.submit import schedule, submit
    from kfp_mlops.app.automation.cron import validate_cron

(``submit`` is not re-exported here, so ``kfp_mlops.app.automation.submit`` always names
the module.) ``submit`` and ``schedule`` talk to the KFP API server with
``kfp.Client``; ``validate_cron`` checks a schedule the way KFP reads it (six fields,
seconds first) and needs no cluster.
"""

from kfp_mlops.app.automation.cron import CronError, validate_cron

__all__ = ["CronError", "validate_cron"]
