# Sprocket's container image: sprocketd, and the sprocket command also under
# the names gearman and gearadmin, on Debian bookworm; the server runs as a
# non-root user and keeps its durable queue in a volume. See
# docs/packaging.md ("Container image").
#
#   docker build -t sprocket .
#   docker run -d --name sprocket -p 4730:4730 -v sprocket-data:/var/lib/sprocket sprocket
#
# Arguments after the image name replace the default flags (CMD), e.g.
#   docker run -d -p 4730:4730 sprocket --queue-type=MySQL --mysql-host=db --mysql-user=drupal ...

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Symbol names stay (for backtraces), the rest of the debug information goes.
RUN CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked -p sprocket-server -p sprocket-cli

# The binaries need only libc, libgcc_s and zlib, which the slim image has.
FROM debian:bookworm-slim
# A fixed uid and gid (4730, the Gearman port) so that a host directory
# mounted as the data volume can be given to this user beforehand.
RUN groupadd --system --gid 4730 sprocket \
 && useradd --system --uid 4730 --gid sprocket --home-dir /var/lib/sprocket \
        --no-create-home --shell /usr/sbin/nologin sprocket \
 && install -d -o sprocket -g sprocket -m 0750 /var/lib/sprocket
COPY --from=build /src/target/release/sprocketd /usr/sbin/sprocketd
COPY --from=build /src/target/release/sprocket /usr/bin/sprocket
RUN ln -s sprocket /usr/bin/gearman && ln -s sprocket /usr/bin/gearadmin

USER sprocket
WORKDIR /var/lib/sprocket
VOLUME ["/var/lib/sprocket"]
# sprocketd listens on this port when no -p/--port flag is given; the health
# check asks the same port. Change the port with -e GEARMAND_PORT=….
ENV GEARMAND_PORT=4730
EXPOSE 4730
# The admin `version` command, sent by gearadmin (the sprocket binary):
# exit status 0 when the server answers, 1 when it cannot be reached.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD gearadmin -h 127.0.0.1 -p "$GEARMAND_PORT" --server-version || exit 1
# Logs go to standard error (docker logs). SIGTERM (docker stop) writes
# what the store still holds and exits.
ENTRYPOINT ["/usr/sbin/sprocketd", "--data-dir=/var/lib/sprocket"]
CMD ["--verbose=INFO"]
