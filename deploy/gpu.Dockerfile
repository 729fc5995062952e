# The GPU worker image: @tensorflow/tfjs-node-gpu 4.22 loads libtensorflow 2.9.1, which needs the
# CUDA 11.2 / cuDNN 8.1 runtime of its base image; Node 20 comes from the official Node image.
# Built from the repository root (compose does it for the gpu-* profiles). Both bases are build
# arguments.
ARG NODE_BASE=node:20.20.2-bookworm-slim
ARG CUDA_BASE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

FROM ${NODE_BASE} AS node

# 1. Production dependencies: npm downloads libtensorflow (GPU) for tfjs-node-gpu and builds its
# binding when no prebuilt one fits, hence the compilers, which stay in this stage.
FROM ${CUDA_BASE} AS build
COPY --from=node /usr/local/bin/node /usr/local/bin/
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=node /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json binding.gyp ./
COPY scripts/build-native.mjs scripts/
# Optional dependencies included: they are the TensorFlow backends. The CPU-only tfjs-node is
# dropped again (the GPU worker never loads it). No oneDNN headers here, so the onednn addon is
# skipped.
RUN npm ci --omit=dev --no-audit --no-fund \
 && test -d node_modules/@tensorflow/tfjs-node-gpu/deps/lib \
 && rm -rf node_modules/@tensorflow/tfjs-node \
 && npm cache clean --force

# 2. The runtime: CUDA 11.2 and cuDNN 8.1 from the base, Node, the dependencies and the sources.
FROM ${CUDA_BASE} AS gpu
COPY --from=node /usr/local/bin/node /usr/local/bin/
RUN groupadd --system --gid 10001 fmnist \
 && useradd --system --uid 10001 --gid fmnist --home-dir /app --shell /usr/sbin/nologin fmnist \
 && mkdir -p /var/lib/fmnist/checkpoints \
 && chown -R fmnist:fmnist /var/lib/fmnist
WORKDIR /app
COPY --from=build /app/node_modules node_modules/
COPY package.json tsconfig.json ./
COPY proto/ proto/
COPY shared/ shared/
COPY worker/ worker/
COPY coordinator/ coordinator/
COPY deploy/healthcheck.mjs deploy/
ENV NODE_ENV=production \
    CHECKPOINT_ROOT=/var/lib/fmnist/checkpoints
USER fmnist
ENTRYPOINT ["node", "--initial-old-space-size=512", "--import", "tsx", "worker/main.ts"]
