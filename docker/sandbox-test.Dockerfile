# Test sandbox image for machines that can pull images (GitHub Actions). Same contents as
# scripts/build-sandbox-image.sh makes offline: Debian bookworm, node, the stand-in tools.
FROM node:24-bookworm-slim
COPY test/sandbox-image/rootfs/ /
RUN rm -f /usr/local/bin/.keep && mkdir -p /workspace && chmod 0777 /workspace
ENV HOME=/tmp
WORKDIR /workspace
USER 65534:65534
CMD ["/bin/sh"]
