# cpbot container image: a static Go binary on an empty base with CA
# certificates, run as uid 10001, its state in the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t cpbot .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# timetzdata embeds the time zone database: the digest's cron schedule
# honours TZ without /usr/share/zoneinfo in the image.
RUN CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/cpbot ./cmd/bot \
 && mkdir -p /out/root/etc /out/root/tmp /out/owned/data \
 && chmod 1777 /out/root/tmp && chmod 0700 /out/owned/data \
 && echo 'cpbot:x:10001:10001:cpbot:/data:/sbin/nologin' > /out/root/etc/passwd \
 && echo 'cpbot:x:10001:' > /out/root/etc/group

FROM scratch
# The bot speaks SSH itself (golang.org/x/crypto/ssh): no OpenSSH client.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Copying a folder's contents keeps their modes: /tmp 1777, /data 0700.
COPY --from=build /out/root/ /
COPY --from=build --chown=10001:10001 /out/owned/ /
COPY --from=build /out/cpbot /usr/local/bin/cpbot
USER 10001:10001
ENV CPBOT_DATA_DIR=/data CPBOT_HTTP_ADDR=0.0.0.0:9090
VOLUME /data
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/cpbot"]
