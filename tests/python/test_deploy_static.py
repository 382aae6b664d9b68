"""The deploy files pass the real tools: helm lint/template, the Kubernetes schemas, the chart's
values schema, hadolint, promtool (rules and their unit tests), and copies kept in sync."""

from __future__ import annotations

import json

import pytest
import yaml

from test_deploy_common import (
    ALERTS,
    CHART,
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    REPO_ROOT,
    VALUES_FILES,
    helm_template,
    run,
    tool,
)

KUBERNETES_VERSION = "1.35.0"
# Custom resources of the Prometheus operator have no schema in kubernetes-validate;
# they are checked on their own below.
CRD_KINDS = {"PrometheusRule", "ServiceMonitor"}


def test_there_are_several_values_files():
    assert {p.name for p in VALUES_FILES} >= {
        "sled-values.yaml",
        "etcd-tls-values.yaml",
        "minimal-values.yaml",
    }


@pytest.mark.parametrize("values", [None, *VALUES_FILES], ids=lambda v: v.name if v else "defaults")
def test_chart_lints_and_renders_valid_kubernetes_objects(values, tmp_path):
    lint = [tool("helm"), "lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    result = run(lint)
    assert result.returncode == 0, result.stdout + result.stderr
    docs = helm_template(values)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ServiceAccount"} <= kinds
    plain = [doc for doc in docs if doc["kind"] not in CRD_KINDS]
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(plain))
    result = run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--no-warn", str(rendered)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(plain), result.stdout
    for doc in docs:
        for container in pod_containers(doc):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"], container["name"]
        if doc["kind"] in ("Deployment", "StatefulSet"):
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def pod_containers(doc: dict) -> list[dict]:
    if doc["kind"] not in ("Deployment", "StatefulSet"):
        return []
    return doc["spec"]["template"]["spec"]["containers"]


def test_sled_mode_is_a_statefulset_with_a_claim_and_etcd_mode_a_deployment():
    sled = {d["kind"]: d for d in helm_template(CHART / "ci/sled-values.yaml") if "registry" in d["metadata"]["name"]}
    assert sled["StatefulSet"]["spec"]["replicas"] == 1
    claim = sled["StatefulSet"]["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    etcd = [d for d in helm_template(CHART / "ci/etcd-tls-values.yaml") if d["kind"] == "Deployment"]
    registry = next(d for d in etcd if d["metadata"]["name"].endswith("-registry"))
    assert registry["spec"]["replicas"] == 3
    container = registry["spec"]["template"]["spec"]["containers"][0]
    assert "--store=etcd" in container["args"]
    assert any(a.startswith("--etcd-endpoints=https://etcd-0.etcd:2379,") for a in container["args"])
    for flag, file in [("--etcd-tls-ca", "ca.crt"), ("--etcd-tls-cert", "tls.crt"), ("--etcd-tls-key", "tls.key")]:
        assert f"{flag}=/etc/switchboard/etcd-tls/{file}" in container["args"]
    volumes = {v["name"]: v for v in registry["spec"]["template"]["spec"]["volumes"]}
    assert volumes["etcd-tls"]["secret"]["secretName"] == "switchboard-etcd-client"


@pytest.mark.parametrize(
    "bad, field",
    [
        (["--set", "registry.store=postgres"], "store"),
        (["--set", "gateway.replicas=0"], "replicas"),
        (["--set", "registry.expiredAfter=soon"], "expiredAfter"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "registry.store=etcd"], "endpoints"),
        (["--set", "gateway.autoscalng.enabled=true"], "autoscalng"),
        (["--set", "registry.etcd.endpoints={etcd-0:2379}"], "endpoints"),
    ],
)
def test_values_that_break_the_schema_are_rejected(bad, field):
    result = run([tool("helm"), "template", "sb", str(CHART), *bad])
    assert result.returncode != 0, f"{bad} rendered"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr


def test_notes_say_how_to_reach_the_gateway():
    result = run([tool("helm"), "install", "sb", str(CHART), "--dry-run=client", "-n", "mesh"])
    assert result.returncode == 0, result.stderr
    assert "kubectl -n mesh port-forward svc/sb-switchboard-gateway 7700:7700" in result.stdout
    assert "http://sb-switchboard-gateway.mesh.svc:7700/mcp" in result.stdout


def test_monitoring_resources_carry_the_alert_rules_and_scrape_jobs(tmp_path):
    docs = helm_template(CHART / "ci/sled-values.yaml")
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = run([tool("promtool"), "check", "rules", str(rules_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith("https://runbooks.example.com/switchboard/docs/runbooks/") for u in urls)
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    jobs = {m["spec"]["endpoints"][0]["relabelings"][0]["replacement"] for m in monitors}
    assert jobs == {"switchboard-registry", "switchboard-gateway"}
    dashboard = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))
    assert json.loads(dashboard["data"]["switchboard.json"])["uid"] == "switchboard"


def test_the_chart_copies_of_alerts_and_dashboard_match_the_originals():
    assert (CHART / "files/alerts.yaml").read_text() == ALERTS.read_text()
    assert (CHART / "files/switchboard.json").read_text() == (DEPLOY / "grafana/switchboard.json").read_text()


def test_alert_rules_check_and_fire_in_their_unit_tests():
    check = run([tool("promtool"), "check", "rules", str(ALERTS)])
    assert check.returncode == 0, check.stdout + check.stderr
    unit = run([tool("promtool"), "test", "rules", str(ALERTS.with_name("alerts_test.yaml"))])
    assert unit.returncode == 0, unit.stdout + unit.stderr
    tested = set(ALERTS.with_name("alerts_test.yaml").read_text().split())
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] in tested, f"{rule['alert']} has no promtool unit test"
            runbook = REPO_ROOT / rule["annotations"]["runbook_url"]
            assert runbook.is_file(), f"{rule['alert']}: missing {runbook}"
            assert "## What to do" in runbook.read_text()


def test_dockerfile_is_hadolint_clean_and_runs_as_non_root():
    result = run([tool("hadolint"), str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    text = DOCKERFILE.read_text()
    assert "cargo build --release --locked" in text
    assert "USER 65532:65532" in text
    assert "org.opencontainers.image.version" in text


def test_compose_file_has_the_services_and_the_observability_profile():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"registry", "gateway", "date-service", "hello"} <= set(services)
    for name in ("otel-collector", "prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for volume in services[name].get("volumes", []):
            source = volume.split(":")[0]
            assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
    prometheus = yaml.safe_load((COMPOSE.parent / "prometheus.yml").read_text())
    sd = [j for j in prometheus["scrape_configs"] if "http_sd_configs" in j]
    assert sd[0]["http_sd_configs"][0]["url"] == "http://registry:7601/sd/prometheus"
    check = run([tool("promtool"), "check", "config", "--syntax-only", str(COMPOSE.parent / "prometheus.yml")])
    assert check.returncode == 0, check.stdout + check.stderr
