# syntax=docker/dockerfile:1.7
# mugpos on a GPU: `mugpos serve` over streamable HTTP by default (a timed pod); the RunPod serverless
# worker with `python -m mugpos.deploy.runpod_worker` as the start command. See docs/deploy.md.
#
#   docker build -t mugpos:0.1.0 .
#   docker build --build-arg DETECTOR_WEIGHTS=models/my-yolo.pt --build-arg DETECTOR_FILE=my-yolo.pt .
#   docker run --gpus all -p 8765:8765 -e MUGPOS_AUTH_TOKEN=... mugpos:0.1.0
#   docker run --gpus all mugpos:0.1.0 python -m mugpos.deploy.runpod_worker --test_input '{"input": ...}'

# uv supplies a standalone CPython 3.11 (Ubuntu 22.04 ships 3.10) and fast, reproducible installs.
FROM ghcr.io/astral-sh/uv:0.8.22 AS uv

# The "base" CUDA image carries the driver hooks (NVIDIA_* variables, compat libraries); torch's
# wheels bring their own CUDA runtime, cuDNN and cuBLAS, so the cudnn-runtime image would only
# duplicate about 3 GB of libraries.
FROM nvidia/cuda:12.8.1-base-ubuntu22.04

ARG DEBIAN_FRONTEND=noninteractive
# libgl/libglib: OpenCV (pulled in by Ultralytics) needs them even headless.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=20* libgl1=1.4.* libglib2.0-0=2.72.* \
 && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN uv python install 3.11 && uv venv --python 3.11 /opt/venv

# Dependencies first (they change rarely, so this layer stays cached), then the package itself.
WORKDIR /src
COPY pyproject.toml README.md ./
RUN uv pip install -r pyproject.toml
COPY mugpos ./mugpos
RUN uv pip install --no-deps .

# A non-root user owns the data folder and the model caches.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mugpos \
 && mkdir -p /opt/mugpos/models /opt/mugpos/cache /data \
 && chown -R mugpos:mugpos /opt/mugpos /data

# Detector weights are baked in: a URL or a path inside the build context. DETECTOR_FILE names the
# file in the image (keep its extension: .pt, .onnx or a TensorRT .engine built for the target GPU).
ARG DETECTOR_WEIGHTS=https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt
ARG DETECTOR_FILE=yolov8n.pt
# ADD on purpose: DETECTOR_WEIGHTS may be a URL, which COPY cannot fetch.
# hadolint ignore=DL3020
ADD --chown=mugpos:mugpos ${DETECTOR_WEIGHTS} /opt/mugpos/models/${DETECTOR_FILE}

USER 10001:10001
WORKDIR /home/mugpos
ENV MUGPOS_DETECTOR_WEIGHTS=/opt/mugpos/models/${DETECTOR_FILE} \
    MUGPOS_DATA_DIR=/data \
    MUGPOS_ALLOWED_DIRS=/data/inbox \
    HF_HOME=/opt/mugpos/cache/huggingface \
    TORCH_HOME=/opt/mugpos/cache/torch \
    YOLO_CONFIG_DIR=/opt/mugpos/cache/ultralytics \
    PYTHONUNBUFFERED=1

# Warm-up: load the detector and CLIP once on the build machine's CPU, so the CLIP weights land in
# the image's Hugging Face cache and no container ever downloads at start.
RUN MUGPOS_DEVICE=cpu python -m mugpos.deploy.warmup

# From here on, nothing reaches for the network for models.
ENV HF_HUB_OFFLINE=1 \
    YOLO_OFFLINE=1

EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-m", "mugpos.deploy.health", "8765"]
CMD ["mugpos", "serve", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "8765"]
