# imagegate's container image: the static (musl) release binary with git, kustomize and helm
# (for --render) and CA certificates, for GitLab CI (.gitlab-ci-template.yml) and anyone who runs containers.
# The release workflow builds it for linux/amd64 and linux/arm64 from the binaries it has
# just built (dist/linux-<arch>/imagegate) and pushes ghcr.io/<owner>/<repository>:<version>.
FROM alpine:3.22
RUN apk add --no-cache git ca-certificates kustomize helm
ARG TARGETARCH
COPY dist/linux-${TARGETARCH}/imagegate /usr/local/bin/imagegate
COPY scripts/gitlab-check.sh /usr/local/bin/imagegate-gitlab
RUN imagegate --version && git --version && kustomize version && helm version
ENTRYPOINT ["imagegate"]
CMD ["--help"]
