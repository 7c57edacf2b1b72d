"""What ``--help`` says: a description and examples for every command, in one place.

Each command module declares its options; this table adds the paragraph and the
examples a newcomer reads first, and :class:`HelpFormatter` shows every option's
default. ``tests/cli/test_help.py`` walks the parser so no command or option is left bare.
"""

from __future__ import annotations

import argparse

GUIDE: dict[str, tuple[str, list[str]]] = {
    "run": ("", [
        "kfp-mlops run                                   # bundled penguins, ./mlops-store",
        "kfp-mlops run --data churn.csv --target churned --quality-threshold 0.8",
        "kfp-mlops run --data wine --n-trials 8 --output json",
    ]),
    "data": ("Dataset versions, schemas and drift in the store. Every ingest stores the data as "
             "a content-addressed version: the same data ingested twice is one version.", [
        "kfp-mlops data list",
        "kfp-mlops data drift --reference penguins --current new.csv --report drift.html",
    ]),
    "data list": ("The dataset versions in the store, newest first: id, source, rows, when.",
                  ["kfp-mlops data list --output json"]),
    "data show": ("One dataset version's metadata: source, rows, columns, content hash.",
                  ["kfp-mlops data show 7f5f879de0ec5a1d"]),
    "data schema": ("", [
        "kfp-mlops data schema penguins > schema.yaml    # print, then edit",
        "kfp-mlops data schema penguins --set schema.yaml",
    ]),
    "data drift": ("Drift between two datasets (dataset versions, files or bundled sets): PSI, "
                   "KS, Wasserstein, chi-square and Jensen-Shannon per column, a table on the "
                   "terminal and an HTML report with plots.", [
        "kfp-mlops data drift --reference batch1.csv --current batch3.csv --report drift.html",
    ]),
    "data profile": ("Statistics of a folder, glob or S3 prefix of Parquet files too large for "
                     "one scan: listed into shards from the footers, scanned by a process pool, "
                     "merged (exact, quantiles from KLL sketches), recorded as a sharded dataset "
                     "version kept in place, with an HTML report.", [
        "kfp-mlops data profile ./events --report events.html",
        "kfp-mlops data profile s3://lake/events/ --shard-rows 2000000 --statistics events.json",
    ]),
    "data generate": ("Batches for the drift loop demo: loan applications from a reference "
                      "world, or a drifted one (other incomes, debt, region and a stronger debt "
                      "effect).", [
        "kfp-mlops data generate --kind reference --seed 1 --out batch1.csv",
        "kfp-mlops data generate --kind drifted --seed 3 --out batch3.csv",
    ]),
    "models": ("The model registry in the store: versions, stages (none, staging, "
               "production, archived), metrics, lineage and history.", [
        "kfp-mlops models list penguins",
        "kfp-mlops models show penguins@production",
    ]),
    "models list": ("Every model, or the versions of one with stage, blessing and metrics.",
                    ["kfp-mlops models list", "kfp-mlops models list penguins --output json"]),
    "models show": ("One version with its metrics, lineage (dataset version, run, code) and "
                    "the model's stage history.",
                    ["kfp-mlops models show penguins@production",
                     "kfp-mlops models show penguins@3"]),
    "models promote": ("Move a version to a stage; the reason goes to the history. A version "
                       "the blessing gate did not bless, or an archived one, needs --force.", [
        "kfp-mlops models promote penguins 3 --stage production --reason 'reviewed card'",
    ]),
    "models rollback": ("Production returns to the version that was in production before "
                        "the current one; the current one is archived.",
                        ["kfp-mlops models rollback penguins --reason 'latency regression'"]),
    "models sync": ("Make the Kubeflow Model Registry show what the store holds for a model "
                    "(versions, artifacts, stages); idempotent. Run it when publish or a "
                    "stage change warned that the Model Registry was unreachable.", [
        "kfp-mlops models sync penguins --model-registry http://localhost:8081",
        "KFP_MLOPS_MODEL_REGISTRY=http://localhost:8081 kfp-mlops models list penguins",
    ]),
    "serve": ("", [
        "kfp-mlops serve penguins@production --port 8080",
        "kfp-mlops serve penguins@production --log-to      # prediction log in the store",
    ]),
    "labels": ("Late ground truth for what production served: store labels keyed by the "
               "logged request id (or a column the requests carried), and publish a window "
               "of the prediction log, labels joined, as a dataset version.", [
        "kfp-mlops labels add --model loans --data labels.csv",
        "kfp-mlops labels join --model loans --window 7d",
    ]),
    "labels add": ("Store a CSV/Parquet of id,label rows (or KEY,label with --key) for a "
                   "model's logged predictions; the latest label of a row wins.", [
        "kfp-mlops labels add --model loans --data labels.csv",
        "kfp-mlops labels add --model churn --data outcomes.csv --key customer_id",
    ]),
    "labels join": ("The rows a model served in a time window with the labels added so far "
                    "(the target column, null where none came yet), published as a "
                    "content-addressed dataset version.", [
        "kfp-mlops labels join --model loans --since 2026-11-01 --until 2026-11-08",
        "kfp-mlops labels join --model loans --window 7d --out labelled.parquet",
    ]),
    "score": ("Batch inference with the kfp.local runner: the batch pipeline reads the "
              "data row group by row group, checks it against the model's schema and writes "
              "predictions as Parquet. A folder or prefix of Parquet files is scored shard by "
              "shard in a process pool: one part file per shard, _SUCCESS written last.", [
        "kfp-mlops score penguins@production --data new.csv --out predictions.parquet",
        "kfp-mlops score penguins@3 --data new.parquet --probabilities --keep-columns id",
        "kfp-mlops score penguins@production data/events/ --out predictions/ "
        "--shard-rows 1000000 --workers 2",
    ]),
    "monitor": ("The monitoring pipeline on one batch: data quality against the stored "
                "schema, drift against the production model's training data, and "
                "performance on the rows that carry a label; an HTML report. A folder, glob "
                "or S3 prefix of Parquet files runs the sharded monitoring pipeline "
                "(docs/sharding.md).", [
        "kfp-mlops monitor --data batch3.csv --model-name loans",
        "kfp-mlops monitor --model loans --window 7d     # what production served",
        "kfp-mlops monitor --model loans --since 2026-11-01 --until 2026-11-08",
        "kfp-mlops monitor --data s3://raw/today.parquet --model-name churn "
        "--pushgateway pushgateway:9091",
        "kfp-mlops monitor --data s3://lake/events/ --model-name churn   # sharded",
    ]),
    "continuous": ("", [
        "kfp-mlops continuous --data batch3.csv --model-name loans --target default",
        "kfp-mlops continuous --model-name loans --window 7d --target default",
    ]),
    "compile": ("", [
        "kfp-mlops compile --output-dir compiled --image registry.example.com/team/kfp-mlops:0.1.0",
        "kfp-mlops compile --pipeline training --train-memory 8Gi --no-caching",
        "kfp-mlops compile --pipeline batch-inference-sharded",
    ]),
    "submit": ("Compile a pipeline, upload it to a KFP API server (a new pipeline the first "
               "time, a new version named after the compiled spec afterwards) and start a "
               "run, optionally waiting for it.", [
        "kfp-mlops submit training --host http://localhost:8080 --param data=s3://raw/x.csv "
        "--param target=label --wait",
        "kfp-mlops submit training --host http://ml-pipeline.kubeflow:8888 --namespace team "
        "--service-account trainer --token-file /var/run/secrets/kubeflow/pipelines/token",
    ]),
    "schedule": ("Upload a pipeline as for submit and create a recurring run on a cron "
                 "schedule (six fields, seconds first, as KFP reads them).", [
        "kfp-mlops schedule continuous-training --host http://localhost:8080 "
        "--cron '0 0 3 * * *' --param data=s3://raw/daily.csv --param model_name=churn",
    ]),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' line breaks; add ``(default: X)`` where a default means something."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        meaningless = default is None or default is False or default == argparse.SUPPRESS
        if meaningless or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def subparsers(parser: argparse.ArgumentParser, path: str = ""):
    """Yield ``(command path, parser)`` for every command below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{path} {name}".strip()
                yield full, sub
                yield from subparsers(sub, full)


def apply_guide(parser: argparse.ArgumentParser) -> None:
    """Give every command its description, examples and the defaults-showing formatter."""
    for path, sub in subparsers(parser):
        description, examples = GUIDE.get(path, ("", []))
        if description:
            sub.description = description
        if examples:
            sub.epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
        sub.formatter_class = HelpFormatter
