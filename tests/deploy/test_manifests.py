"""deploy/k8s: every overlay renders with kustomize and validates against the Kubernetes schemas.

Beyond schema validity, the wiring is checked: Service ports = the controller's fixed ports,
engines get IPP_CONNECTION_INFO from the Secret, pools land on their hardware, probes exist,
and the network policies admit only engines and the notebook to the controller.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
from deploy_helpers import K8S, OVERLAYS, deploy_module, find, render

POOLS = {  # pool -> (extended resource, node label) ; cpu has no extended resource
    "nvidia": ("nvidia.com/gpu", "nvidia.com/gpu.present"),
    "amd": ("amd.com/gpu", "feature.node.kubernetes.io/amd-gpu"),
    "intel": ("gpu.intel.com/i915", "intel.feature.node.kubernetes.io/gpu"),
}
EXPECTED_POOLS = {"cpu": {"cpu"}, "dev": {"cpu"}, "nvidia": {"cpu", "nvidia"},
                  "mixed": {"cpu", "nvidia", "amd", "intel"}}


def _pod(dep: dict) -> dict:
    return dep["spec"]["template"]["spec"]


def _container(dep: dict) -> dict:
    (c,) = _pod(dep)["containers"]
    return c


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_overlays_are_the_documented_ones():
    assert set(OVERLAYS) == set(EXPECTED_POOLS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas(overlay):
    docs = render(str(K8S / "overlays" / overlay))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("NetworkPolicy") == 3 and kinds.count("Service") == 2
    for version in ("1.30", "1.37"):
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)  # raises on any error
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "mao", doc["metadata"]["name"]
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mao-lab"


def test_schema_validation_catches_a_broken_manifest():
    (dep,) = find(render(str(K8S / "base")), "Deployment", "mao-controller")
    broken = {**dep, "spec": {**dep["spec"], "replicas": "one"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_controller_service_and_policy_expose_exactly_the_fixed_ports(overlay):
    conn = deploy_module("connection")
    docs = render(str(K8S / "overlays" / overlay))
    (dep,) = find(docs, "Deployment", "mao-controller")
    c = _container(dep)
    assert c["args"][0] == "controller" and dep["spec"]["replicas"] == 1
    settings = conn.controller_settings(c["args"][1:])
    assert settings["ip"] == "0.0.0.0"
    (svc,) = find(docs, "Service", settings["location"])  # engines dial the Service by name
    wanted = conn.exposed_ports(conn.connection_info("k", settings["location"],
                                                     settings["ports"]))
    assert sorted(p["port"] for p in svc["spec"]["ports"]) == wanted
    assert all(p["targetPort"] == p["port"] for p in svc["spec"]["ports"])
    assert sorted(p["containerPort"] for p in c["ports"]) == wanted
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    ports = conn.parse_ports(settings["ports"])
    (pol,) = find(docs, "NetworkPolicy", "mao-controller-ingress")
    (rule,) = pol["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": ports[0], "endPort": ports[-1]}]
    (peer,) = rule["from"]
    comp = {e["key"]: e for e in peer["podSelector"]["matchExpressions"]}
    assert set(comp["app.kubernetes.io/component"]["values"]) == {"engine", "lab"}
    assert "namespaceSelector" not in peer  # same namespace only


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_engine_pools_use_the_secret_and_their_hardware(overlay):
    docs = render(str(K8S / "overlays" / overlay))
    engines = [d for d in find(docs, "Deployment")
               if d["metadata"]["labels"]["app.kubernetes.io/component"] == "engine"]
    pools = {d["metadata"]["labels"]["mao-lab/pool"]: d for d in engines}
    assert set(pools) == EXPECTED_POOLS[overlay]
    for pool, dep in pools.items():
        c = _container(dep)
        assert c["args"] == ["engine"]
        env = _env(c)
        assert env["IPP_CONNECTION_INFO"] == {"secretKeyRef": {
            "name": "mao-connection", "key": "ipcontroller-engine.json"}}
        assert env["MAO_LAB_POOL"] == pool
        assert c["livenessProbe"]["exec"]["command"][-2:] == ["healthcheck", "engine"]
        assert "ports" not in c  # engines dial out; nothing dials them
        spec = _pod(dep)
        assert spec["nodeSelector"]["kubernetes.io/os"] == "linux"
        res = c["resources"]
        if pool == "cpu":
            assert env["MAO_LAB_DEVICE"] == "auto" and float(res["requests"]["cpu"]) >= 1
            assert not any("/" in k for k in res["requests"])
        else:
            resource, label = POOLS[pool]
            assert res["requests"][resource] == res["limits"][resource] == 1
            assert spec["nodeSelector"][label] == "true"
            assert {"key": resource, "operator": "Exists", "effect": "NoSchedule"} in \
                spec["tolerations"]
            assert env["MAO_LAB_DEVICE"] == "opencl"
            assert c["image"].startswith(f"mao-lab-{pool}:")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_probed_hardened_and_covered_by_default_deny(overlay):
    docs = render(str(K8S / "overlays" / overlay))
    (deny,) = find(docs, "NetworkPolicy", "mao-default-deny-ingress")
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    sel = deny["spec"]["podSelector"]["matchLabels"]
    for dep in find(docs, "Deployment"):
        spec, c = _pod(dep), _container(dep)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert sel.items() <= labels.items(), dep["metadata"]["name"]
        assert "livenessProbe" in c, dep["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/home/mao", "/tmp"} <= mounts  # writable scratch under a read-only root
        assert not c["image"].endswith(":latest")


def test_lab_mounts_only_the_client_file_and_reads_its_token_from_the_secret():
    docs = render(str(K8S / "overlays" / "cpu"))
    (dep,) = find(docs, "Deployment", "mao-lab")
    c = _container(dep)
    env = _env(c)
    assert env["JUPYTER_TOKEN"] == {"secretKeyRef": {"name": "mao-connection",
                                                     "key": "lab-token"}}
    (vol,) = [v for v in _pod(dep)["volumes"] if v["name"] == "connection"]
    assert [i["key"] for i in vol["secret"]["items"]] == ["ipcontroller-client.json"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "connection"]
    assert env["MAO_LAB_CONNECTION_FILE"] == mount["mountPath"] + "/ipcontroller-client.json"
    assert c["livenessProbe"]["httpGet"]["path"] == "/api"
    (pol,) = find(docs, "NetworkPolicy", "mao-lab-ingress")
    assert pol["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8888}]


def test_controller_mounts_the_key_it_checks():
    (dep,) = find(render(str(K8S / "overlays" / "cpu")), "Deployment", "mao-controller")
    c = _container(dep)
    (vol,) = [v for v in _pod(dep)["volumes"] if v["name"] == "connection"]
    assert "key" in [i["key"] for i in vol["secret"]["items"]]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "connection"]
    assert _env(c)["MAO_CONNECTION_DIR"] == mount["mountPath"] and mount["readOnly"]
    assert dep["spec"]["strategy"]["type"] == "Recreate"


def test_dev_overlay_patches_apply():
    docs = render(str(K8S / "overlays" / "dev"))
    for dep in find(docs, "Deployment"):
        assert _container(dep)["imagePullPolicy"] == "Never"
        assert _container(dep)["image"] == "mao-lab:dev"
    (eng,) = find(docs, "Deployment", "mao-engine-cpu")
    assert eng["spec"]["replicas"] == 1
    assert _container(eng)["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
