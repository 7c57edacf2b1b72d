from kfp import dsl

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def skip_step(step: str, reason: str) -> str:
    """Record that ``step`` did not run and why (the ``dsl.Else`` side of every gate).

    Args:
        step: The step a gate stopped (e.g. ``publish``).
        reason: The gate's reason.

    Returns:
        One sentence for the run summary.
    """
    import logging

    log = logging.getLogger("kfp_mlops.components.model.skip_step")
    message = f"{step} skipped: {reason}"
    log.info(message)
    return message
