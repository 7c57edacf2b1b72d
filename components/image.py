"""The one container image every component runs in, and where its name comes from.

``KFP_MLOPS_IMAGE`` (a registry path such as ``ghcr.io/your-org/kfp-mlops:0.1.0``) names
it for everything that compiles the components: the components' own ``base_image``
(read once, when ``kfp_mlops.components`` is first imported, so a user's pipeline that
imports them gets it too), ``kfp dsl compile --py pipelines/training.py`` and
``kfp-mlops compile``, whose ``--image`` still wins. Without it the name is
:data:`BUILT_IN_IMAGE`, which no cluster can pull: compiling for a cluster with an image
whose name has no registry host warns (:func:`pull_warning`).

Pipelines set the image of each task with KFP's ``PipelineTask.set_container_image``
(``TaskSettings.image``), so nothing global changes when one pipeline is compiled with
another image.
"""

from __future__ import annotations

import os

IMAGE_ENV = "KFP_MLOPS_IMAGE"
BUILT_IN_IMAGE = "kfp-mlops:0.1.0"


class ImagePullWarning(UserWarning):
    """The image a cluster is asked to run names no registry, so it is unlikely to pull."""


def default_image() -> str:
    """``$KFP_MLOPS_IMAGE`` when set and not blank, else :data:`BUILT_IN_IMAGE`."""
    return os.environ.get(IMAGE_ENV, "").strip() or BUILT_IN_IMAGE


# The components' base image, read at import (KFP fixes it when a component is declared).
DEFAULT_IMAGE = default_image()


def registry_host(image: str) -> str | None:
    """The registry host an image reference names, or None (then Docker Hub is meant).

    The container runtimes' rule (distribution/reference): the first path component is
    a host when it holds a ``.`` or a ``:`` or is ``localhost``.
    """
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def pull_warning(image: str) -> str | None:
    """Why a cluster may fail to pull ``image``; None when it names a registry host."""
    if registry_host(image):
        return None
    return (f"the image {image!r} names no registry host, so a cluster pulls it from Docker "
            f"Hub (docker.io), where the suite's image is not: push the image built from the "
            f"Dockerfile to your registry and set {IMAGE_ENV} (or kfp-mlops compile --image), "
            "e.g. ghcr.io/your-org/kfp-mlops:0.1.0; ignore this only if the image is "
            "preloaded on every node (kind load, k3s import)")


def all_components() -> list:
    """Every component the suite declares."""
    from kfp_mlops.components import data, model, monitoring, serving

    return [*data.COMPONENTS, *model.COMPONENTS, *serving.COMPONENTS, *monitoring.COMPONENTS]
