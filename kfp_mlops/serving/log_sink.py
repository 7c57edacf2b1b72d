"""``python -m kfp_mlops.serving.log_sink``: the sink's old module path, kept for manifests.

The log sink moved to :mod:`kfp_mlops.live.log_sink` (the live loop's package);
manifests applied before the move still start it by this name.
"""

import sys

from kfp_mlops.live.log_sink import main

if __name__ == "__main__":
    sys.exit(main())
