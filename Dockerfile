# Samsa in a container: a static binary on a small base image, run as a non-root user.
#
#   docker build -t samsa .
#   docker run -p 9092:9092 samsa            # a single node; clients on localhost:9092
#   docker compose up                         # three nodes, see compose.yaml
#
# Untested here (no docker on the machine this was written on); the settings are those of
# config/server.properties and config/cluster/node*.properties, which the tests run.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party ./third_party
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/samsa ./cmd/samsa \
 && /out/samsa --help > /dev/null

# A shell stays in the image (alpine) so compose.yaml can format the storage before the first
# start; the binary itself is static and needs nothing from the base image.
FROM alpine:3.20
RUN addgroup -S -g 10001 samsa && adduser -S -u 10001 -G samsa -h /var/lib/samsa samsa \
 && mkdir -p /var/lib/samsa /etc/samsa && chown samsa:samsa /var/lib/samsa
COPY --from=build /out/samsa /usr/local/bin/samsa
COPY config/server.properties /etc/samsa/server.properties
COPY config/cluster /etc/samsa/cluster
USER samsa
WORKDIR /var/lib/samsa
VOLUME /var/lib/samsa
# 9092 clients and 9093 the controller of a single node; 19092-39093 the three nodes of
# compose.yaml (each container uses its own pair).
EXPOSE 9092 9093 19092 19093 29092 29093 39092 39093
ENTRYPOINT ["samsa"]
CMD ["server", "--config", "/etc/samsa/server.properties", \
     "--override", "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093", \
     "--override", "advertised.listeners=PLAINTEXT://localhost:9092", \
     "--override", "log.dirs=/var/lib/samsa/data"]
