"""The one container image every component runs in.

Components are declared with :data:`DEFAULT_IMAGE`; pipelines set the image each task
runs with KFP's ``PipelineTask.set_container_image`` (``kfp-mlops compile --image``,
``TaskSettings.image``), so no developer's registry is hard-wired and nothing global
changes when one pipeline is compiled with another image.
"""

from __future__ import annotations

DEFAULT_IMAGE = "kfp-mlops:0.1.0"


def all_components() -> list:
    """Every component the suite declares."""
    from kfp_mlops.components import data, model, monitoring, serving

    return [*data.COMPONENTS, *model.COMPONENTS, *serving.COMPONENTS, *monitoring.COMPONENTS]
