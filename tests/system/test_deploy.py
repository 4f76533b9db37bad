"""The deployment files: the Kubernetes manifests are valid for the API server's schema and agree
with each other and with the app (its health check, its port, its settings)."""
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.servers import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31.0"


def documents() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


@pytest.mark.parametrize("path, doc", documents(), ids=lambda value: getattr(value, "name", None) or value["kind"])
def test_every_manifest_is_valid_for_the_api_server(path, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_manifests_hold_together():
    kinds = {doc["kind"] for _, doc in documents()}
    assert {"Deployment", "Service", "Job", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds
    deployments = of_kind("Deployment")
    web = deployments["sidus-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == web["startupProbe"]["httpGet"]["path"] == "/health/"
    assert "--no-proxy-headers" in web["command"]
    web_labels = deployments["sidus-web"]["spec"]["template"]["metadata"]["labels"]
    assert of_kind("Service")["sidus-web"]["spec"]["selector"] == web_labels
    assert of_kind("PodDisruptionBudget")["sidus-web"]["spec"]["selector"]["matchLabels"] == web_labels
    assert of_kind("HorizontalPodAutoscaler")["sidus-web"]["spec"]["scaleTargetRef"]["name"] == "sidus-web"
    images = {c["image"] for _, doc in documents() if doc["kind"] in ("Deployment", "Job")
              for c in doc["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1  # one image: web, worker and the migration of one release
    uid = int(re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))
    for _, doc in documents():
        if doc["kind"] in ("Deployment", "Job"):  # as the image's own user, never root, no escalation
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": uid}
            assert all(c["securityContext"]["allowPrivilegeEscalation"] is False for c in pod["containers"])
    read = (ROOT / "sidus" / "settings.py").read_text()
    unknown = [name for name in of_kind("ConfigMap")["sidus"]["data"]
               if f'"{name}"' not in read and name != "WEB_CONCURRENCY"]  # uvicorn reads that one
    assert unknown == [], f"variables the app does not read: {unknown}"
