# Production sandbox image (documented, not built in this repository's CI: no registry here).
# Every lint/test/preview/deploy step of a pull request runs in a fresh container of this image
# as an unprivileged user, with no network unless a server-side allowlist says otherwise.
FROM node:24-bookworm-slim
ARG PULUMI_VERSION=3.200.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git python3 \
 && curl -fsSL https://get.pulumi.com | sh -s -- --version "${PULUMI_VERSION}" \
 && mv /root/.pulumi/bin/* /usr/local/bin/ \
 && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /root/.pulumi \
 && mkdir -p /workspace && chmod 0777 /workspace
ENV HOME=/tmp PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME=/tmp/.pulumi
WORKDIR /workspace
USER 65534:65534
CMD ["/bin/sh"]
