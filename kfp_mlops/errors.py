"""Errors users can fix. Kept import-free so light tasks (gates) start fast.

Every such error is a :class:`KfpMlopsError`: ``except KfpMlopsError`` catches what the
suite raises on purpose (the ``kfp-mlops`` command line prints these as one paragraph,
exit status 1) and lets bugs through. Each family is defined beside the code that
raises it and keeps the built-in base its callers already catch (``ValueError``,
``RuntimeError``, ``ImportError``)::

    KfpMlopsError
    ├── DataError (ValueError)                  errors: data or a parameter unusable as given
    ├── SchemaError (ValueError)                data.schema: a malformed schema file
    ├── StatisticsError (ValueError)            data.stats
    ├── DriftError (ValueError)                 data.drift
    ├── PolicyError (ValueError)                model.blessing: a bad blessing policy
    ├── ModelIntegrityError (RuntimeError)      model.package: sha256 or name/version mismatch
    ├── RegistryError (RuntimeError)            model.registry: no such model/version/stage, a rule
    │   └── StageConflictError (also a ConflictError)
    ├── StoreError (RuntimeError)               storage: typed, the same from both backends
    │   ├── NotFoundError
    │   │   ├── SchemaNotFoundError             data.schema
    │   │   └── DatasetVersionNotFoundError     data.versions
    │   ├── BucketNotFoundError
    │   ├── UnreachableError
    │   ├── PermissionDeniedError
    │   └── ConflictError
    │       └── AlreadyExistsError
    ├── GateNotPassedError (RuntimeError)       gates: acting on a model no gate passed
    ├── BatchInputError (ValueError)            serving.batch
    ├── InputSchemaError (KServe InvalidInput)  serving.decoding: a request off the schema (400)
    ├── ServerStartError (RuntimeError)         serving.process
    ├── CloudEventError (ValueError)            serving.prediction_log: not a logger event (400)
    ├── DeployError (RuntimeError)              serving.deploy
    ├── KubeConfigError (RuntimeError)          serving.deploy: no usable kubeconfig
    ├── CronError (ValueError)                  automation.cron
    ├── SubmitError                             automation.submit
    │   └── KfpUnreachableError
    ├── KfpRunError (RuntimeError)              airflow.kfp_runs
    ├── MissingExtraError (ImportError)         extras: an optional dependency is missing
    └── CliError                                commands.common

Internal control flow is not in the tree: ``data.sources.ColumnTypeTooNarrow`` (a CSV
read restarts with a wider type) and ``serving.server._BodyTooLarge`` (answered as 413)
never reach a user.
"""


class KfpMlopsError(Exception):
    """Base of every error a user can fix; the message names the problem and the fix."""


class DataError(KfpMlopsError, ValueError):
    """The data or a parameter cannot be used as given; the message says how to fix it."""
