# No `# syntax=` line: Docker's built-in Dockerfile frontend is enough, and
# the directive would make every build fetch the frontend from a registry.

# The runtime stage's base, and the stage its binary comes from: `builder`
# below by default. scripts/check-image (CI) sets both, to a Debian base made
# without a registry and to an image holding a binary built on the host at
# the path `builder` leaves it; the runtime stage is the same either way.
ARG RUNTIME_BASE=debian:bookworm-slim
ARG BINARY_FROM=builder

# Dependencies are compiled in their own layer (cargo-chef), so a source
# change rebuilds only the crate itself.
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
# Cargo's settings hold for the dependencies too (Swagger UI's unused files
# are left out of the binary when utoipa-swagger-ui is built).
COPY .cargo .cargo
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin user-api
COPY . .
# Symbols are stripped in the image only (4 MB of 21); a local
# target/release/user-api keeps them for profiling.
RUN cargo build --release --locked --bin user-api \
    && strip target/release/user-api

FROM ${BINARY_FROM} AS binary

# The binary needs nothing from the system at run time: migrations and the
# /docs assets are compiled in, TLS for SMTP uses rustls with built-in roots.
FROM ${RUNTIME_BASE} AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/data \
    && chown app:app /app/data
WORKDIR /app
COPY --from=binary /build/target/release/user-api /usr/local/bin/user-api
COPY config ./config
ENV APP_ENVIRONMENT=production \
    APP__SERVER__PORT=8000 \
    APP__DATABASE__URL=sqlite:///app/data/user-api.db
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["user-api", "healthcheck"]
ENTRYPOINT ["user-api"]
CMD ["serve"]
