"""Local runs (``kfp_mlops.app.local``): the same pipelines, run on this machine with ``kfp.local``.

Only the application layer runs pipelines locally, so the runner lives here, not in
``pipelines/`` (wiring only): ``runner`` (run a pipeline, read back its tasks' outputs),
``prefork`` (task processes forked from a warm server) and ``containers``
(``--runner docker``: each task a container of the suite image).
"""
