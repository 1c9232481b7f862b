"""Stacks built in memory, without an engine: two apps (beta requires alpha), each with a
public web service, a cache from an external image, a migration job, a secret, a runtime
file and a volume; for the tests of the deploy files (compose and swarm)."""

from __future__ import annotations

import yaml

from smartshare.catalog.imagerefs import MirrorRule
from smartshare.catalog.models import AppManifest
from smartshare.catalog.profile import RegionProfile
from smartshare.deploying.stack import AppInputs, Stack, build_stack
from smartshare.rendering.limits import RenderLimits
from smartshare.rendering.pool import RenderPool

from catalogs import SECRET_VALUE, app_manifest

KEY = b"k" * 32
IMAGE_ID = "sha256:" + "a" * 64

RUNTIME = """\
runtime:
  services:
    - name: web
      image: {name}
      command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
      ports:
        - port: 8080
          public: true
        - port: 9090
      environment:
        GREETING: "{{{{ params.greeting }}}} from {{{{ region.title }}}}"
        PRICE: "costs $5, not ${{HOME}}"
        CACHE: "{{{{ services.cache.host }}}}:{{{{ services.cache.port }}}}"
{env}      secrets:
        - param: api_token
          env: API_TOKEN
      files:
        - dest: runtime.env
          path: /etc/app/runtime.env
      volumes:
        - name: data
          path: /data
      healthcheck:
        http: {{port: 8080, path: /health}}
        interval: 2s
        retries: 5
      depends_on:
        - name: cache
          condition: healthy
        - name: migrate
          condition: completed
      resources: {{memory: 64M, cpus: 0.5}}
    - name: cache
      external: redis:7
      ports:
        - port: 6379
      healthcheck:
        command: ["redis-cli", "ping"]
  jobs:
    - name: migrate
      image: {name}
      command: ["sh", "-c", "echo migrated"]
  outputs:
    internal_url: "http://{{{{ services.web.host }}}}:8080"
    public_url: "{{{{ services.web.public_url }}}}"
"""

REGION = """\
apiVersion: smartshare/v1
kind: Region
name: testland
title: Kabupaten Testland
type: kabupaten
code: "51.03"
province: Bali
timezone: Asia/Makassar
domain: testland.go.id
contact:
  email: it@testland.go.id
deploy:
  project: testland-stack
  bind_address: 127.0.0.1
  ports:
    alpha: 18081
    beta: 18082
  image_mirrors:
    - from: docker.io/library/
      to: mirror.testland.go.id/hub/
"""


def manifest(name: str, *, requires: tuple[str, ...] = (), env: str = "") -> AppManifest:
    text = app_manifest(name, "https://git.example.go.id/x.git", requires=requires)
    text += RUNTIME.format(name=name, env=env)
    return AppManifest.model_validate(yaml.safe_load(text))


def inputs(model: AppManifest, *, token: str = SECRET_VALUE, pushed: bool = False) -> AppInputs:
    registry = "registry.testland.go.id/smartshare"
    return AppInputs(
        manifest=model,
        params={"greeting": "Halo $USER", "api_token": token},
        images={model.name: IMAGE_ID},
        runtime_files={"runtime.env": f"API_TOKEN={token}\n".encode()},
        pushed={model.name: f"{registry}/{model.name}@sha256:{'b' * 64}"} if pushed else {},
    )


def region() -> RegionProfile:
    return RegionProfile.model_validate(yaml.safe_load(REGION))


def stack(
    *,
    token: str = SECRET_VALUE,
    mirrors: tuple[MirrorRule, ...] = (),
    bind_address: str | None = None,
    pushed: bool = False,
) -> Stack:
    profile = region()
    if bind_address is not None:
        deploy = profile.deploy.model_copy(update={"bind_address": bind_address})
        profile = profile.model_copy(update={"deploy": deploy})
    beta_env = '        ALPHA_URL: "{{ requires.alpha.internal_url }}"\n'
    with RenderPool(RenderLimits()) as renderers:
        return build_stack(
            project="testland-stack",
            region=profile,
            apps=[
                inputs(manifest("alpha"), token=token, pushed=pushed),
                inputs(
                    manifest("beta", requires=("alpha",), env=beta_env), token=token, pushed=pushed
                ),
            ],
            catalogue_apps=["alpha", "beta"],
            mirrors=[
                *mirrors,
                *(MirrorRule(m.source, m.target) for m in profile.deploy.image_mirrors),
            ],
            renderers=renderers,
        )
