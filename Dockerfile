# One image, both binaries; the container's command picks the role:
#   docker run ... jobcluster reverse_proxy 8080
#   docker run ... jobcluster cluster_node reverse-proxy 8080
# State lives under /data (mount a volume there, one per process).
# The runtime image ships the toolchains of C, C++, Python 3 and Java from
# Debian's packages: the languages a node offers (judge0's ids 50, 54, 71,
# 62) are those it finds at start. Add packages here (api/languages.json
# names them) to offer more.

FROM debian:bookworm AS build
# The build's packages come from the one list the project keeps
# (scripts/install-deps), so the image never misses one a build needs.
COPY scripts/install-deps /tmp/install-deps
RUN /tmp/install-deps && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target reverse_proxy cluster_node \
 && docker/runtime-packages /build/bin/reverse_proxy /build/bin/cluster_node > /build/runtime-packages

FROM debian:bookworm-slim
# The libraries are the packages that hold what the binaries load, found in
# the build stage (docker/runtime-packages), so none is ever left out.
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(cat /tmp/runtime-packages) netcat-openbsd \
      gcc g++ libc6-dev python3 openjdk-17-jdk-headless \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && mkdir -p /data
COPY --from=build /build/bin/reverse_proxy /build/bin/cluster_node /usr/local/bin/
COPY docker/entrypoint.sh /usr/local/bin/entrypoint.sh
ENV DATA_DIR=/data
VOLUME /data
EXPOSE 8080 9000 2358
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["reverse_proxy", "8080"]
