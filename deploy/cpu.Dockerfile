# The CPU image: the coordinator (serve, launch, status, list, report, resume, cancel) and the
# onednn workers of the CPU variant. Built from the repository root (compose does it:
# `docker compose build`); the base is a build argument so that a registry mirror, or a locally
# made stand-in, can replace it.
ARG NODE_BASE=node:20.20.2-bookworm-slim

# 1. Production dependencies and the oneDNN addon. The compilers stay in this stage.
FROM ${NODE_BASE} AS build
ARG DNNL_VERSION=2.6.3-1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make python3 "libdnnl-dev=${DNNL_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json binding.gyp ./
COPY scripts/build-native.mjs scripts/
COPY native/ native/
# The optional @tensorflow/tfjs-node(-gpu) packages are left out: this image trains on onednn.
# npm runs the package's install script, which builds build/Release/onednn_backend.node; it only
# warns when that fails, so the next line makes a missing addon fail the build.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund \
 && test -f build/Release/onednn_backend.node \
 && npm cache clean --force

# 2. The runtime: Node, oneDNN's shared library, the Fashion-MNIST files and the sources.
FROM ${NODE_BASE} AS cpu
ARG DNNL_VERSION=2.6.3-1
ARG FASHION_MNIST_VERSION=0.0~git20200523.55506a9-1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "libdnnl2=${DNNL_VERSION}" libgomp1 "dataset-fashion-mnist=${FASHION_MNIST_VERSION}" \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fmnist \
 && useradd --system --uid 10001 --gid fmnist --home-dir /app --shell /usr/sbin/nologin fmnist \
 && mkdir -p /var/lib/fmnist/checkpoints \
 && chown -R fmnist:fmnist /var/lib/fmnist
WORKDIR /app
COPY --from=build /app/node_modules node_modules/
COPY --from=build /app/build/Release/onednn_backend.node build/Release/
COPY package.json tsconfig.json ./
COPY proto/ proto/
COPY shared/ shared/
COPY worker/ worker/
COPY coordinator/ coordinator/
COPY deploy/healthcheck.mjs deploy/
ENV NODE_ENV=production \
    FASHION_MNIST_DIR=/usr/share/datasets/fashion-mnist \
    CHECKPOINT_ROOT=/var/lib/fmnist/checkpoints
USER fmnist
# `docker run IMAGE status <run>`; workers override the entrypoint with worker/main.ts.
ENTRYPOINT ["node", "--import", "tsx", "coordinator/main.ts"]
CMD ["help"]
