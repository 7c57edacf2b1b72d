# The one kfp-mlops image: every pipeline component runs in it (base_image, with
# install_kfp_package=False) and it is the KServe serving runtime, so training and
# serving unpickle with the same scikit-learn.
#   docker build -t REGISTRY/kfp-mlops:0.1.0 .
#   podman build -t REGISTRY/kfp-mlops:0.1.0 .
#   kfp-mlops compile --image REGISTRY/kfp-mlops:0.1.0
# Every Python package is installed at the exact version in docker/constraints.txt
# (the environment the tests passed in; docker/freeze_constraints.py writes it), and the
# build fails if anything of kfp-mlops[serving]'s closure is missing from it or at another
# version, so a rebuild cannot change scikit-learn under models that earlier builds
# trained: the loader refuses a model pickled by another scikit-learn.
#
# Build arguments:
#   BASE_IMAGE  the Python it runs on: by default the official slim image of the Python
#               the constraints were frozen with (docker/constraints.txt says which).
#               Any Debian-like image with `python` and `pip` first on PATH will do;
#               docker/image-test.sh builds one from the Debian mirror with mmdebstrap.
#   VERSION, REVISION, SOURCE  the OCI labels (the release workflow sets them).
#   EXTRAS      the suite's extras to install, default `serving`; add the estimator
#               libraries your models use: `serving,xgboost`, `serving,lightgbm` (their
#               versions are pinned too). LightGBM needs the system's OpenMP runtime:
#               on a Debian base the build installs libgomp1 when EXTRAS names lightgbm.
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret (BuildKit, the
# default builder since Docker 23, or podman/buildah); pip uses it, no layer keeps it:
#   docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt .
ARG BASE_IMAGE=python:3.11.7-slim
FROM ${BASE_IMAGE}

ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="kfp-mlops" \
      org.opencontainers.image.description="Kubeflow Pipelines components and KServe runtime for scikit-learn models" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/kfp-mlops
# The dependencies first, exactly the pinned versions (a layer rebuilt only when the
# pins change), then the suite itself without dependencies and without the network; the
# check then fails the build if the suite's requirements need anything the pins lack.
COPY docker/constraints.txt docker/freeze_constraints.py ./docker/
ARG EXTRAS=serving
RUN case ",${EXTRAS}," in *,lightgbm,*) \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/*;; esac
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    python docker/freeze_constraints.py --pins "${EXTRAS}" > /tmp/pins.txt \
    && pip install --no-deps -r /tmp/pins.txt && rm /tmp/pins.txt
COPY pyproject.toml README.md ./
COPY kfp_mlops ./kfp_mlops
COPY components ./components
COPY pipelines ./pipelines
COPY app ./app
RUN pip install --no-deps --no-build-isolation -c docker/constraints.txt ".[${EXTRAS}]" \
    && rm -rf /opt/kfp-mlops/build && python docker/freeze_constraints.py --check "${EXTRAS}"

# Non-root, with a writable home for caches; KFP and KServe mount their own volumes.
# The serving container runs with a read-only root filesystem: the server writes no
# files (models are read from /mnt/models, logs go to stdout/stderr).
RUN useradd --create-home --uid 1000 --user-group kfp
USER 1000:1000
WORKDIR /home/kfp

# KServe's runtime passes --model_name, --model_dir and --http_port; KFP sets its own
# command for components, so this default only matters for serving (which is why a
# local `kfp-mlops run --runner docker` starts its tasks with the entrypoint reset).
ENTRYPOINT ["python", "-m", "kfp_mlops.serving"]
