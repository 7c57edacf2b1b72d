"""One module per command group of the ``kfp-mlops`` CLI."""
