# The one kfp-mlops image: every pipeline component runs in it (base_image, with
# install_kfp_package=False) and it is the KServe serving runtime, so training and
# serving unpickle with the same scikit-learn.
#   docker build -t REGISTRY/kfp-mlops:0.1.0 .
#   kfp-mlops compile --image REGISTRY/kfp-mlops:0.1.0
# Every Python package is installed at the exact version in docker/constraints.txt
# (the environment the tests passed in; docker/freeze_constraints.py writes it), so a
# rebuild cannot change scikit-learn under models that earlier builds trained: the
# loader refuses a model pickled by another scikit-learn.
FROM python:3.11.7-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/kfp-mlops
COPY pyproject.toml README.md ./
COPY docker/constraints.txt ./docker/constraints.txt
COPY kfp_mlops ./kfp_mlops
COPY components ./components
COPY pipelines ./pipelines
COPY app ./app
ARG EXTRAS=serving
RUN pip install -c docker/constraints.txt ".[${EXTRAS}]" && rm -rf /opt/kfp-mlops/build

# Non-root, with a writable home for caches; KFP and KServe mount their own volumes.
# The serving container runs with a read-only root filesystem: the server writes no
# files (models are read from /mnt/models, logs go to stdout/stderr).
RUN useradd --create-home --uid 1000 --user-group kfp
USER 1000:1000
WORKDIR /home/kfp

# KServe's runtime passes --model_name, --model_dir and --http_port; KFP sets its own
# command for components, so this default only matters for serving.
ENTRYPOINT ["python", "-m", "kfp_mlops.serving"]
