"""``python -m kfp_mlops.serving --model_dir DIR --model_name NAME --http_port N``.

The argument names follow the KServe runtime convention, so the suite image can be a
ClusterServingRuntime whose container gets ``--model_name={{.Name}}
--model_dir=/mnt/models --http_port=8080``. Unknown arguments KServe may add are ignored.
``--max_body_size`` (or ``KFP_MLOPS_MAX_BODY_SIZE``; default 16 MiB) caps request bodies.
``--ignore_unknown_columns`` (or ``KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS=true``) ignores request
fields that are neither features, the target nor dropped columns instead of refusing them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kfp_mlops.serving.contract import IGNORE_UNKNOWN_ENV
from kfp_mlops.serving.server import DEFAULT_HOST, MAX_BODY_ENV


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the runtime arguments, ignoring ones meant for KServe itself."""
    parser = argparse.ArgumentParser(
        prog="python -m kfp_mlops.serving", description="Serve a kfp-mlops model folder."
    )
    parser.add_argument("--model_dir", required=True, help="model version folder")
    parser.add_argument("--model_name", default="model", help="name in the endpoint path")
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind")
    parser.add_argument(
        "--max_body_size",
        default=None,
        help=f"largest request body accepted, e.g. 16MiB (default: ${MAX_BODY_ENV}, else "
        "16MiB); larger ones get HTTP 413",
    )
    parser.add_argument(
        "--ignore_unknown_columns",
        action="store_true",
        default=None,
        help=f"ignore fields that are neither features, the target nor columns training "
        f"dropped (default: ${IGNORE_UNKNOWN_ENV}, else refuse them by name)",
    )
    parser.add_argument(
        "--log_to", default=None,
        help="store URI to log every answered request and its predictions to "
        "(predictions/<model>/<version>/date=.../), as KServe's logger and the sink would; "
        "or a log sink's http:// URL to send them to as the logger's CloudEvents",
    )
    parser.add_argument("--model_version", default=None,
                        help="registry version the logged rows are filed under")
    args, _unknown = parser.parse_known_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until stopped; exit 2 with the reason if the model folder is broken."""
    from kfp_mlops.model.package import ModelIntegrityError
    from kfp_mlops.serving.server import serve

    args = parse_args(argv)
    try:
        serve(
            args.model_dir, args.model_name, args.http_port, host=args.host,
            max_body=args.max_body_size, ignore_unknown_columns=args.ignore_unknown_columns,
            log_to=args.log_to, model_version=args.model_version,
        )
    except (ModelIntegrityError, FileNotFoundError, ValueError) as exc:
        print(f"kfp-mlops serving: cannot serve {args.model_dir}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
