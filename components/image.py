"""The one container image every component runs in.

Components are declared with :data:`DEFAULT_IMAGE`; ``kfp-mlops compile --image`` (or
:func:`use_image`) swaps it at compile time, so no developer's registry is hard-wired.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

DEFAULT_IMAGE = "kfp-mlops:0.1.0"


def all_components() -> list:
    """Every component the suite declares."""
    from kfp_mlops.components import data, model, monitoring, serving

    return [*data.COMPONENTS, *model.COMPONENTS, *serving.COMPONENTS, *monitoring.COMPONENTS]


@contextlib.contextmanager
def use_image(image: str) -> Iterator[None]:
    """Within the block, every suite component (and pipelines built then) uses ``image``."""
    specs = [c.component_spec.implementation.container for c in all_components()]
    previous = [s.image for s in specs]
    for spec in specs:
        spec.image = image
    try:
        yield
    finally:
        for spec, old in zip(specs, previous, strict=True):
            spec.image = old
