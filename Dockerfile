# mediagate: a static-ish release binary on a minimal, non-root runtime image with no shell.
#
#   docker build -t mediagate .
#
# The runtime image has no shell and no package manager: the binary, CA certificates (for
# rediss://) and glibc, running as the distroless "nonroot" user (65532).

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that source changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY nginx ./nginx
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/mediagate /usr/local/bin/mediagate
USER 65532:65532
EXPOSE 9090 9091
ENTRYPOINT ["/usr/local/bin/mediagate"]
CMD ["serve"]
