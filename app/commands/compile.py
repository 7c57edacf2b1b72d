"""``kfp-mlops compile``: every pipeline as KFP IR and as Kubernetes-native YAML."""

from __future__ import annotations

import argparse

from kfp_mlops.app.commands.common import CliError, add_output, emit


def add_task_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--image``, ``--train-memory`` and ``--caching/--no-caching``."""
    from kfp_mlops.components.image import BUILT_IN_IMAGE, IMAGE_ENV

    parser.add_argument("--image", default=None,
                        help=f"the suite image every task runs, a registry path (default "
                        f"${IMAGE_ENV}, else {BUILT_IN_IMAGE}, which no cluster can pull)")
    parser.add_argument("--train-memory", metavar="QUANTITY",
                        help="memory request of train and run-trial, e.g. 8Gi (the limit is "
                        "twice that; default 2Gi, sized for 1M rows x 12 columns)")
    parser.add_argument("--caching", action=argparse.BooleanOptionalAction, default=True,
                        help="--no-caching turns KFP's cache off for every task; the default "
                        "keeps each task's policy (tasks with side effects never cache)")


def task_settings(args: argparse.Namespace):
    """The :class:`TaskSettings` the flags of :func:`add_task_flags` ask for."""
    from kfp_mlops.components.image import default_image
    from kfp_mlops.pipelines.cluster import TaskSettings

    if args.image is None:
        args.image = default_image()
    try:
        return TaskSettings(image=args.image, caching=args.caching,
                            train_memory=args.train_memory)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def compile_command(args: argparse.Namespace) -> int:
    """Compile every pipeline for a cluster."""
    from kfp_mlops.pipelines.cluster import ClusterConfig
    from kfp_mlops.pipelines.compile import compile_pipelines

    if args.kserve_version:
        from kfp_mlops.serving.deploy import parse_kserve_version

        try:
            parse_kserve_version(args.kserve_version)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    cluster = ClusterConfig(s3_secret=args.s3_secret, s3_endpoint=args.s3_endpoint,
                            signing_secret=args.signing_secret, log_url=args.log_url or "",
                            kserve_version=args.kserve_version or "")
    import sys
    import warnings

    from kfp_mlops.components.image import ImagePullWarning

    settings = task_settings(args)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImagePullWarning)
            written = compile_pipelines(
                args.output_dir, settings, cluster=cluster, namespace=args.namespace,
                names=args.pipeline or None,
            )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for message in dict.fromkeys(str(w.message) for w in caught
                                 if issubclass(w.category, ImagePullWarning)):
        print(f"warning: {message}", file=sys.stderr)
    payload = {"image": args.image, "files": [str(p) for p in written]}
    text = "\n".join(
        [f"compiled with image {args.image}:"] + [f"  {p}" for p in written]
        + ["upload the .yaml in the Kubeflow dashboard or `kfp run create -f`; "
           "`kubectl apply -f` the .k8s.yaml"]
    )
    emit(args, payload, text)
    return 0


def register(commands) -> None:
    """Add the ``compile`` command."""
    from kfp_mlops.pipelines.cluster import DEFAULT_ENDPOINT, DEFAULT_SECRET

    comp = commands.add_parser(
        "compile", help="compile pipelines for a cluster",
        description="Compile every pipeline to KFP IR YAML (dashboard, `kfp run create`) and "
        "to Kubernetes-native Pipeline + PipelineVersion YAML (`kubectl apply`).",
    )
    comp.add_argument("--output-dir", default="compiled", help="default ./compiled")
    add_task_flags(comp)
    comp.add_argument("--pipeline", action="append", help="compile only this one (repeatable)")
    comp.add_argument("--namespace", help="namespace of the Kubernetes-native resources")
    comp.add_argument("--s3-secret", default=DEFAULT_SECRET,
                      help=f"Secret with keys accesskey/secretkey (default {DEFAULT_SECRET})")
    comp.add_argument("--signing-secret", metavar="SECRET",
                      help="Secret whose key 'key' signs published models and verifies loaded "
                      "ones (KFP_MLOPS_SIGNING_KEY; docs/security.md); default: no signing")
    comp.add_argument("--log-url", metavar="URL",
                      help="turn on KServe's inference logger of the InferenceServices the "
                      "deploy step creates, sending to URL (the prediction log sink: "
                      "http://kfp-mlops-log-sink.NAMESPACE; docs/live-loop.md); default: none")
    comp.add_argument("--kserve-version", metavar="X.Y.Z",
                      help="the cluster's KServe (0.15.2 on Kubeflow 1.11, 0.16.0 on master): "
                      "the deploy step then also writes fields that version added "
                      "(logger.metadataAnnotations from 0.15.1); default: what 0.15.0, the "
                      "oldest supported, accepts (docs/cluster.md)")
    comp.add_argument("--s3-endpoint", default=DEFAULT_ENDPOINT,
                      help=f"in-cluster S3 endpoint (default {DEFAULT_ENDPOINT})")
    add_output(comp)
    comp.set_defaults(handler=compile_command)
