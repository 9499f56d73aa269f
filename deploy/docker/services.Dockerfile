# The three Turnout services in one small runtime image; compose picks the binary.
#   docker build -f deploy/docker/services.Dockerfile -t turnout .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
ENV CARGO_BUILD_JOBS=2
RUN cargo build --release --locked -p turnout-auth -p turnout-otp -p turnout-ballot \
      --features turnout-auth/mongodb,turnout-otp/mongodb,turnout-ballot/mongodb \
 && mkdir /out \
 && cp target/release/turnout-auth target/release/turnout-otp target/release/turnout-ballot /out/

FROM debian:bookworm-slim
# curl: the compose healthcheck calls /health/ready; sqlite3: online backups of the store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl sqlite3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/turnout turnout \
 && mkdir -p /var/lib/turnout \
 && chown turnout /var/lib/turnout
COPY --from=build /out/ /usr/local/bin/
USER turnout
WORKDIR /var/lib/turnout
ENV TURNOUT_HOST=0.0.0.0
CMD ["turnout-ballot"]
