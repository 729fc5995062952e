# A stand-in for node:20-bookworm-slim where no registry can be reached: Debian bookworm from
# debootstrap plus this machine's Node 20 (binary, npm, headers), laid out as the official image
# has them (/usr/local), and this machine's CA bundle, so that npm inside a build trusts what npm
# here trusts (a TLS-inspecting proxy, for one). The context is prepared by local-images.sh.
ARG DEBIAN_BASE
FROM ${DEBIAN_BASE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY include-node /usr/local/include/node
COPY host-ca.crt /usr/local/share/fmnist-test/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/fmnist-test/host-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
CMD ["node"]
