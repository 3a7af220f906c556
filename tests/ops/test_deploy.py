"""Deployment files: the Helm chart rendered, Dockerfile/compose/Procfile/app.yml checked.

No `helm` binary can be installed from Debian, PyPI or npm, so the chart is rendered by
tests/ops/helmrender: Go's text/template (Helm's engine) with the Helm functions the chart
uses, built offline from Debian's golang-go. When a real `helm` is on PATH, `helm lint` and
`helm template` run too.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings
from bot.state import queue_key

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "selfheal"
QUEUE_LIST = queue_key()  # Dramatiq's Redis list for the job queue


@pytest.fixture(scope="session")
def helmrender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the chart test needs Go to build its renderer: apt-get install golang-go")
    out = tmp_path_factory.mktemp("helmrender") / "helmrender"
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOCACHE": str(out.parent / "gocache"),
    }
    source = ROOT / "tests" / "ops" / "helmrender" / "main.go"
    subprocess.run([go, "build", "-o", str(out), str(source)], check=True, env=env, timeout=300)
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def render(
    helmrender: Path, tmp_path: Path, values: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    context = {
        "Values": merge(defaults, values),
        "Chart": {
            "Name": chart["name"],
            "Version": chart["version"],
            "AppVersion": chart["appVersion"],
        },
        "Release": {"Name": "prod", "Namespace": "selfheal", "Service": "Helm"},
    }
    path = tmp_path / "context.json"
    path.write_text(json.dumps(context))
    return subprocess.run(
        [str(helmrender), str(CHART), str(path)], capture_output=True, text=True, timeout=60
    )


def manifests(helmrender: Path, tmp_path: Path, values: dict[str, Any]) -> dict[str, Any]:
    result = render(helmrender, tmp_path, values)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


SECRETS = {"secrets": {"values": {"REDIS_URL": "redis://redis.internal:6379/0", "X": "y"}}}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_chart_renders_web_worker_and_secrets(helmrender: Path, tmp_path: Path) -> None:
    docs = manifests(helmrender, tmp_path, SECRETS)
    assert set(docs) == {
        "Secret/prod-selfheal",
        "Deployment/prod-selfheal-web",
        "Service/prod-selfheal-web",
        "Ingress/prod-selfheal",
        "Deployment/prod-selfheal-worker",
    }
    assert docs["Secret/prod-selfheal"]["stringData"] == {
        "REDIS_URL": "redis://redis.internal:6379/0",
        "X": "y",
    }
    web = docs["Deployment/prod-selfheal-web"]
    assert web["spec"]["replicas"] == 2
    web_c = container(web)
    assert web_c["image"] == "ghcr.io/example/selfheal:0.1.0"
    assert web_c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web_c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web_c["envFrom"] == [{"secretRef": {"name": "prod-selfheal"}}]
    assert web["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert web_c["securityContext"]["readOnlyRootFilesystem"] is True
    service = docs["Service/prod-selfheal-web"]
    assert service["spec"]["selector"] == {
        **web["spec"]["selector"]["matchLabels"],
    }
    backend = docs["Ingress/prod-selfheal"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "prod-selfheal-web"
    worker = docs["Deployment/prod-selfheal-worker"]
    assert worker["spec"]["replicas"] == 1
    assert container(worker)["command"][:2] == ["selfheal", "worker"]
    pod = worker["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert {"name": "SELFHEAL_LOG_FORMAT", "value": "json"} in container(worker)["env"]
    assert_worker_metrics_reachable(container(worker)["command"])


def test_chart_requires_an_external_redis(helmrender: Path, tmp_path: Path) -> None:
    result = render(helmrender, tmp_path, {})
    assert result.returncode != 0
    assert "secrets.values.REDIS_URL is required" in result.stderr


def test_existing_secret_is_used_as_is(helmrender: Path, tmp_path: Path) -> None:
    docs = manifests(helmrender, tmp_path, {"secrets": {"existingSecret": "selfheal-sealed"}})
    assert not any(key.startswith("Secret/") for key in docs)
    worker = docs["Deployment/prod-selfheal-worker"]
    assert container(worker)["envFrom"] == [{"secretRef": {"name": "selfheal-sealed"}}]


def test_example_values_scale_workers_on_queue_depth(helmrender: Path, tmp_path: Path) -> None:
    example = yaml.safe_load((CHART / "values.example.yaml").read_text())
    docs = manifests(helmrender, tmp_path, example)
    scaled = docs["ScaledObject/prod-selfheal-worker"]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == QUEUE_LIST
    assert trigger["metadata"]["address"] == "redis-master.redis.svc:6379"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "prod-selfheal-worker"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 8)
    auth = docs["TriggerAuthentication/prod-selfheal-redis"]
    assert auth["spec"]["secretTargetRef"][0]["key"] == "REDIS_PASSWORD"
    # KEDA owns the replica count.
    assert "replicas" not in docs["Deployment/prod-selfheal-worker"]["spec"]
    ingress = docs["Ingress/prod-selfheal"]
    assert ingress["spec"]["tls"][0]["hosts"] == ["selfheal.acme.com"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    env = container(docs["Deployment/prod-selfheal-web"])["env"]
    assert {"name": "SELFHEAL_PUBLIC_URL", "value": "https://selfheal.acme.com"} in env
    assert {"name": "PAGERDUTY_SERVICE_REPOS", "value": "PABC123=acme/billing"} in env


def test_hpa_on_an_external_metric(helmrender: Path, tmp_path: Path) -> None:
    values = merge(SECRETS, {"worker": {"autoscaling": {"hpa": {"enabled": True}}}})
    docs = manifests(helmrender, tmp_path, values)
    hpa = docs["HorizontalPodAutoscaler/prod-selfheal-worker"]
    assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] == "selfheal_queue_depth"
    keda = merge(SECRETS, {"worker": {"autoscaling": {"keda": {"enabled": True}}}})
    result = render(helmrender, tmp_path, keda)
    assert result.returncode != 0 and "keda.address" in result.stderr


def test_with_real_helm_when_present(tmp_path: Path) -> None:
    helm = shutil.which("helm")
    if helm is None:
        # documented: no helm package on Debian, PyPI or npm; the Go renderer covers it
        pytest.skip("helm is not on PATH; the chart is rendered by the Go template renderer")
    values = tmp_path / "v.yaml"
    values.write_text(yaml.safe_dump(SECRETS))
    subprocess.run([helm, "lint", str(CHART), "-f", str(values)], check=True)
    out = subprocess.run(
        [helm, "template", "prod", str(CHART), "-f", str(values)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(out) if d}
    assert {"Deployment", "Service", "Ingress", "Secret"} <= kinds


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def test_dockerfile_runs_as_non_root_with_sandbox_tools_and_healthcheck() -> None:
    instructions = dockerfile_instructions()
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (word, _) in enumerate(instructions) if word == "USER")
    assert all(word != "RUN" for word, _ in instructions[last_user:])
    installs = " ".join(rest for word, rest in instructions if word == "RUN")
    packages = re.search(r"apt-get install ([^&]+)", installs)
    assert packages is not None
    for package in ("bubblewrap", "git", "ripgrep"):
        assert package in packages[1].split()
    health = [rest for word, rest in instructions if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0]
    assert any(word == "COPY" and "app.yml" in rest for word, rest in instructions)
    assert instructions[0][0] == "FROM" and "python:3.11" in instructions[0][1]


def assert_worker_metrics_reachable(command: list[str]) -> None:
    """The worker serves metrics on every address of its container, with flags the CLI has."""
    from typer.main import get_command

    from bot.cli import app

    flags = dict(zip(command[2::2], command[3::2], strict=False))
    assert flags["--metrics-host"] == "0.0.0.0" and int(flags["--metrics-port"]) > 0
    worker = get_command(app).commands["worker"]  # type: ignore[attr-defined]
    known = {opt for param in worker.params for opt in param.opts}
    assert set(flags) <= known


def test_compose_has_web_worker_and_persistent_redis() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "redis"}
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert services["worker"]["command"][:2] == ["selfheal", "worker"]
    assert_worker_metrics_reachable(services["worker"]["command"])
    assert services["web"]["ports"] == ["${SELFHEAL_PORT:-8000}:8000"]
    for name in ("web", "worker"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "state:/var/lib/selfheal" in services[name]["volumes"]
    assert "seccomp=unconfined" in services["worker"]["security_opt"]
    assert set(compose["volumes"]) == {"state", "cache", "redis-data"}


def test_procfile_runs_uvicorn_and_the_worker() -> None:
    entries = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert entries["web"].split()[:3] == ["uvicorn", "--factory", "bot.web:create_app"]
    assert entries["worker"].split()[:2] == ["selfheal", "worker"]


def test_app_manifest_is_least_privilege() -> None:
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["default_permissions"] == {
        "metadata": "read",
        "contents": "write",
        "pull_requests": "write",
        "issues": "write",
        "checks": "write",
        "actions": "read",
    }
    assert manifest["default_events"] == [
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "check_run",
        "check_suite",
        "workflow_run",
    ]
    assert "workflows" not in manifest["default_permissions"]
    assert manifest["public"] is False
    assert manifest["hook_attributes"]["url"].endswith("/webhooks/github")


def test_example_env_lists_every_setting_with_a_comment(tmp_path: Path) -> None:
    lines = (ROOT / "deploy" / "example.env").read_text().splitlines()
    listed: dict[str, int] = {}
    for i, line in enumerate(lines):
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line)
        if match:
            listed[match[1]] = i
    for name in Settings.model_fields:
        variable = name.upper()
        assert variable in listed, f"{variable} missing from deploy/example.env"
        above = lines[listed[variable] - 1]
        assert above.startswith("# ") and not re.match(r"^# [A-Z_]+=", above), variable
    # The uncommented example values are valid settings.
    copy_ = tmp_path / "example.env"
    copy_.write_text("\n".join(lines))
    Settings(_env_file=str(copy_))  # type: ignore[call-arg]
