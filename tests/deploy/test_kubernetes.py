"""deploy/ renders with `kubectl kustomize`, validates against the Kubernetes API schema, and
keeps the promises docs/deploy.md makes about it.

Needs `kubectl` (`make test` installs Debian's when none is on PATH) and kubernetes-validate
from the dev requirements, which bundles the API schemas: no cluster, no network.
"""

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "deploy.md"
KUSTOMIZATIONS = ("base", "overlays/aks", "overlays/aks-keyvault")
# AKS's supported versions move on; the manifests use only APIs that are GA in this one.
KUBERNETES_VERSION = "1.31.0"
# The label every pod of the portal carries (the NetworkPolicies select on it).
PORTAL_PODS = {"app.kubernetes.io/part-of": "mlops-portal"}
QUEUES = ("deliveries", "syncs", "maintenance")
SECRET_NAME = "portal-secrets"
# Kinds of custom resources (no schema in kubernetes-validate): checked by hand below.
CUSTOM_KINDS = {"SecretProviderClass": "secrets-store.csi.x-k8s.io/v1"}
# A variable whose name says it holds a credential never gets a literal value.
SECRET_NAME_PATTERN = re.compile(
    r"SECRET|PASSWORD|TOKEN|_PAT$|_KEY$|DATABASE_URL|REDIS_URL|EMAIL_URL"
)
INSTALL_HINT = (
    "`kubectl` is needed to render deploy/: run `make test` (it installs Debian's "
    "kubernetes-client when no kubectl is on PATH) or `sudo apt-get install kubernetes-client`."
)


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("no kubectl and no apt to install it with")
    pytest.fail(INSTALL_HINT)


@cache
def _render(kustomization: str) -> tuple[dict, ...]:
    done = subprocess.run(
        [_kubectl(), "kustomize", str(DEPLOY / kustomization)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def objects(kustomization: str, kind: str | None = None) -> list[dict]:
    return [o for o in _render(kustomization) if kind is None or o["kind"] == kind]


def one(kustomization: str, kind: str, name: str) -> dict:
    found = [o for o in objects(kustomization, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kustomization}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_templates(kustomization: str) -> list[tuple[str, dict]]:
    """(kind/name, pod spec) of every object that makes pods."""
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in _render(kustomization)
        if o["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    ]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def env_names(kustomization: str) -> set[str]:
    """Every variable the manifests give a container: env entries and ConfigMap keys."""
    config_maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects(kustomization, "ConfigMap")
    }
    names = set()
    for _, spec in pod_templates(kustomization):
        for c in containers(spec):
            names |= {e["name"] for e in c.get("env", [])}
            for source in c.get("envFrom", []):
                names |= set(config_maps[source["configMapRef"]["name"]])
    return names


def config(kustomization: str) -> dict[str, str]:
    (config_map,) = objects(kustomization, "ConfigMap")
    return config_map["data"]


def secret_refs(kustomization: str) -> dict[str, bool]:
    """key of portal-secrets -> whether some container needs it (not optional)."""
    refs: dict[str, bool] = {}
    for _, spec in pod_templates(kustomization):
        for c in containers(spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME, f"{e['name']} reads Secret {ref['name']}"
                    assert ref["key"] == e["name"], f"{e['name']} reads key {ref['key']}"
                    refs[ref["key"]] = refs.get(ref["key"], False) or not ref.get("optional")
    return refs


def variables_read() -> set[str]:
    """Names portal/settings reads with env(...), and the few gunicorn.conf.py and the entry
    points read from os.environ."""
    names = set()
    for path in sorted((ROOT / "portal" / "settings").glob("*.py")):
        names |= set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z0-9_]+)\"", path.read_text()))
    for path in (
        ROOT / "gunicorn.conf.py",
        ROOT / "portal" / "wsgi.py",
        ROOT / "portal" / "celery.py",
    ):
        names |= set(
            re.findall(
                r"os\.environ(?:\.get|\.setdefault)?[\(\[]\s*\"([A-Z0-9_]+)\"", path.read_text()
            )
        )
    return names


# -- rendering and the schema -----------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_validates_against_the_kubernetes_schema(kustomization):
    rendered = objects(kustomization)
    assert rendered, f"{kustomization} renders nothing"
    for obj in rendered:
        if obj["kind"] in CUSTOM_KINDS:
            assert obj["apiVersion"] == CUSTOM_KINDS[obj["kind"]], obj["apiVersion"]
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_what_kubernetes_would():
    """Not a validator that lets everything through: a typo'd field and a wrong type fail."""
    deployment = one("base", "Deployment", "portal-web")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_overlays_put_everything_in_the_portal_namespace():
    for kustomization in KUSTOMIZATIONS[1:]:
        for obj in objects(kustomization):
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == "mlops-portal", obj["metadata"]["name"]
        (namespace,) = objects(kustomization, "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- the workloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_beat_is_exactly_one_replica_replaced_not_rolled(kustomization):
    beat = one(kustomization, "Deployment", "portal-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = beat["spec"]["template"]["spec"]["containers"]
    assert container["command"][:4] == ["celery", "-A", "portal", "beat"]
    targets = [
        h["spec"]["scaleTargetRef"]["name"]
        for h in objects(kustomization, "HorizontalPodAutoscaler")
    ]
    assert "portal-beat" not in targets


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_one_worker_deployment_per_queue_group(kustomization):
    consumed = {}
    for obj in objects(kustomization, "Deployment"):
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        if command[:4] == ["celery", "-A", "portal", "worker"]:
            queues = command[command.index("-Q") + 1].split(",")
            for queue in queues:
                consumed[queue] = obj["metadata"]["name"]
            assert container["livenessProbe"]["exec"]["command"] == [
                "python",
                "-m",
                "portal.worker_liveness",
            ]
            assert "--concurrency" in command, "celery's default is the node's CPU count"
    assert sorted(consumed) == sorted(QUEUES)
    assert len(set(consumed.values())) == len(QUEUES), "one Deployment per queue group"
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    # The test settings prefix each queue with the session's own (portal.queues.prefixed_routes);
    # the manifests name them as production does.
    queues = [r["queue"] for r in routes.values() if isinstance(r, dict) and "queue" in r]
    routed = {queue.rsplit(".", 1)[-1] for queue in queues}
    assert routed == set(QUEUES)
    assert routed <= set(consumed), f"queues no worker consumes: {routed - set(consumed)}"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_web_runs_the_images_gunicorn_with_probes_on_its_port(kustomization):
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    web = one(kustomization, "Deployment", "portal-web")
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["command"] == yaml.safe_load(cmd)
    bind = re.search(r'bind = \["0\.0\.0\.0:(\d+)"\]', (ROOT / "gunicorn.conf.py").read_text())
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": int(bind.group(1))}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert "httpHeaders" not in container[probe]["httpGet"], "the probes answer any Host"
    assert container["resources"]["requests"] and container["resources"]["limits"]


@pytest.mark.django_db
def test_the_probe_paths_answer_without_an_allowed_host_or_https(client):
    """What the kubelet sends: plain HTTP to the pod's IP, a Host that ALLOWED_HOSTS lacks."""
    assert client.get("/healthz", HTTP_HOST="10.244.3.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.244.3.7:8000").status_code in (200, 503)
    assert client.get("/", HTTP_HOST="10.244.3.7:8000").status_code == 400


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_web_has_a_disruption_budget_an_autoscaler_a_service_and_an_ingress(kustomization):
    web = one(kustomization, "Deployment", "portal-web")
    pod_labels = web["spec"]["template"]["metadata"]["labels"]

    def selects(selector):
        return all(pod_labels.get(k) == v for k, v in selector.items())

    pdb = one(kustomization, "PodDisruptionBudget", "portal-web")
    assert selects(pdb["spec"]["selector"]["matchLabels"]) and pdb["spec"]["minAvailable"] >= 1
    hpa = one(kustomization, "HorizontalPodAutoscaler", "portal-web")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "portal-web",
    }
    assert hpa["spec"]["minReplicas"] >= 2 > pdb["spec"]["minAvailable"]
    service = one(kustomization, "Service", "portal-web")
    assert selects(service["spec"]["selector"])
    ingress = one(kustomization, "Ingress", "portal")
    (rule,) = ingress["spec"]["rules"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "portal-web"
    (tls,) = ingress["spec"]["tls"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    assert ingress["spec"]["ingressClassName"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_job_migrates_then_bootstraps_and_the_rest_wait_for_it(kustomization):
    job = one(kustomization, "Job", "portal-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "sh",
        "-c",
        "python manage.py migrate --noinput && python manage.py bootstrap_from_env",
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for name, spec in pod_templates(kustomization):
        if name.startswith("Deployment/"):
            (init,) = spec["initContainers"]
            assert "manage.py migrate --check" in init["command"][-1], name


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_container_is_non_root_on_a_read_only_root_filesystem(kustomization):
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"--uid (\d+)", dockerfile).group(1))
    assert re.search(r"^USER portal:portal$", dockerfile, re.M), "the image itself is non-root"
    metrics_dir = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", dockerfile).group(1)
    assert config(kustomization)["PROMETHEUS_MULTIPROC_DIR"] == metrics_dir
    for name, spec in pod_templates(kustomization):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in containers(spec):
            where = f"{name} {c['name']}"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], where
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            # The only places the app writes: /tmp (the worker heartbeat), $HOME (gunicorn's
            # control socket), the metrics files of web and workers.
            assert "emptyDir" in volumes[mounts["/tmp"]], where  # noqa: S108
            assert "emptyDir" in volumes[mounts["/home/portal"]], where
            command = " ".join(c["command"])
            if "gunicorn" in command or " worker " in command:
                assert "emptyDir" in volumes[mounts[metrics_dir]], where


# -- configuration and secrets ---------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_variable_the_manifests_set_is_one_the_portal_reads(kustomization):
    unread = env_names(kustomization) - variables_read()
    assert not unread, f"variables nothing reads: {sorted(unread)}"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_production_settings_get_what_they_require(kustomization):
    data = config(kustomization)
    refs = secret_refs(kustomization)
    assert data["DJANGO_SETTINGS_MODULE"] == "portal.settings.production"
    production = (ROOT / "portal" / "settings" / "production.py").read_text()
    # env("NAME") / env.list("NAME") without a default: production refuses to start without it.
    required = {
        name
        for name, rest in re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z0-9_]+)\"([^)]*)\)", production)
        if "default" not in rest
    }
    required |= {
        "DATABASE_URL",
        "REDIS_URL",
        "ENTRA_TENANT_ID",
        "ENTRA_CLIENT_ID",
        "ENTRA_CLIENT_SECRET",
    }
    for name in required:
        assert data.get(name) or refs.get(name), f"{name} is required in production"
    host = one(kustomization, "Ingress", "portal")["spec"]["rules"][0]["host"]
    assert host in data["DJANGO_ALLOWED_HOSTS"].split(",")
    assert data["PORTAL_BASE_URL"] == f"https://{host}"
    assert data["ENTRA_REDIRECT_URI"] == f"https://{host}/auth/callback/"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_secret_value_is_in_the_manifests(kustomization):
    assert not objects(kustomization, "Secret"), "the operator (or Key Vault) makes the Secret"
    for key, value in config(kustomization).items():
        assert not SECRET_NAME_PATTERN.search(key), f"{key} belongs in {SECRET_NAME}"
        assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{key} holds credentials"
    for name, spec in pod_templates(kustomization):
        for c in containers(spec):
            for e in c.get("env", []):
                assert "value" not in e or not SECRET_NAME_PATTERN.search(e["name"]), (name, e)
    # Every credential the settings read comes from the Secret.
    credentials = {
        n for n in variables_read() & env_names(kustomization) if SECRET_NAME_PATTERN.search(n)
    }
    missing = credentials - set(secret_refs(kustomization))
    assert not missing, f"credentials not read from {SECRET_NAME}: {sorted(missing)}"


def test_every_secret_key_is_documented():
    text = DOCS.read_text()
    refs = secret_refs("overlays/aks")
    for key, required in refs.items():
        row = re.search(rf"^\| `{key}` \|([^|]*)\|", text, re.M)
        assert row, f"docs/deploy.md has no row for the Secret key {key}"
        assert ("required" in row.group(1)) == required, f"{key}: required={required}"


def test_key_vault_syncs_every_key_the_pods_need_into_the_secret():
    refs = secret_refs("overlays/aks-keyvault")
    (spc,) = objects("overlays/aks-keyvault", "SecretProviderClass")
    assert spc["spec"]["provider"] == "azure"
    (synced,) = spc["spec"]["secretObjects"]
    assert synced["secretName"] == SECRET_NAME
    keys = {d["key"]: d["objectName"] for d in synced["data"]}
    assert {k for k, required in refs.items() if required} <= set(keys)
    assert set(keys) <= set(refs)
    listed = {
        yaml.safe_load(o)["objectName"]
        for o in yaml.safe_load(spc["spec"]["parameters"]["objects"])["array"]
    }
    assert set(keys.values()) == listed
    for object_name in listed:
        assert re.fullmatch(r"[0-9a-zA-Z-]+", object_name), "Key Vault names: letters, digits, -"
    for name, spec in pod_templates("overlays/aks-keyvault"):
        csi = [v for v in spec["volumes"] if "csi" in v]
        assert [v["csi"]["volumeAttributes"]["secretProviderClass"] for v in csi] == [
            spc["metadata"]["name"]
        ], name


# -- the network -----------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_only_web_accepts_connections_and_only_from_the_ingress_controller(kustomization):
    policies = objects(kustomization, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"]["matchLabels"] == PORTAL_PODS
        and "Ingress" in p["spec"]["policyTypes"]
    ]
    assert deny and not deny[0]["spec"].get("ingress"), "a default deny for every portal pod"
    for obj in objects(kustomization):
        if obj["kind"] in ("Deployment", "Job"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "mlops-portal", obj["metadata"]["name"]
    allowing = [p for p in policies if p["spec"].get("ingress")]
    (web_policy,) = allowing
    assert web_policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    (rule,) = web_policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    (source,) = rule["from"]
    assert set(source) == {"namespaceSelector"}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_egress_reaches_dns_postgres_redis_and_https(kustomization):
    (egress,) = [
        p for p in objects(kustomization, "NetworkPolicy") if "Egress" in p["spec"]["policyTypes"]
    ]
    assert egress["spec"]["podSelector"]["matchLabels"] == PORTAL_PODS
    ports = {(p["protocol"], p["port"]) for rule in egress["spec"]["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6380), ("TCP", 443)} <= ports


def test_the_docs_walk_through_and_the_readme_points_there():
    text = DOCS.read_text()
    for step in (
        "az aks create",
        "az acr",
        "az postgres flexible-server",
        "az redis",
        "app registration",
        "kubectl apply -k deploy/overlays/aks",
        "portal-migrate",
        "ScaledObject",
    ):
        assert step in text, f"docs/deploy.md does not cover {step!r}"
    for queue in QUEUES:
        assert f"`{queue}`" in text
    assert "docs/deploy.md" in (ROOT / "README.md").read_text()
    # Every command the docs show for kustomize names a directory that exists.
    for path in re.findall(r"kubectl (?:apply|kustomize|delete) -k (\S+)", text):
        assert (ROOT / path).is_dir(), path
