# The opsbook server as a container: a static binary (CGO_ENABLED=0) on
# distroless/static, running as an unprivileged user. The workspace is
# mounted at /workspace; SQLite and the generated master key live in the
# /data volume (or pass --db postgres://… and OPSBOOK_MASTER_KEY_FILE).
#
#   docker build -t opsbook .
#   docker run -p 8080:8080 -v "$PWD:/workspace:ro" -v opsbook-data:/data opsbook
#
# Runbooks whose steps run locally execute inside this container: give it
# the tools they call (a derived image), or run them over SSH targets.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/opsbook/opsbook/internal/cli.Version=${VERSION}" \
      -o /out/opsbook ./cmd/opsbook

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/opsbook /opsbook
VOLUME ["/data"]
EXPOSE 8080
# /readyz: the process is up and its database answers. No curl in the
# image: the binary asks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/opsbook", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/opsbook"]
CMD ["serve", "--addr", ":8080", "--workspace", "/workspace", "--data", "/data"]
