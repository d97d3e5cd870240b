"""The deployment files against the real programs, without containers or a cluster (part of
`make test`; `make containers` runs the images themselves). Each check is there because the
files once shipped the defect it names (issue 18).

- The image's build tree: exactly the files deploy/docker/Dockerfile.dockerignore lets into
  the build context configure with the Dockerfile's cmake command (it once failed with "No
  SOURCES given to target: s3_driver": drivers under tests/ were referenced).
- Kubernetes, rendered by the pinned kustomize (scripts/deps.sh): the example Secret is in
  the namespace the pods run in; Deployments under an HPA leave the replica count to it;
  DB_POOL_SIZE x the most pods fits PostgreSQL's max_connections; images come from a
  registry, under a tag that does not move; every key the Deployments read exists.
- The config smoke test: every service binary, and the gateway's entry point, started
  natively with exactly the environment its Kubernetes Deployment gives it (from the
  ConfigMap and the example Secret) and, separately, its Compose environment block (plus
  the image's ENV), must start and turn healthy. What is changed, and only that: addresses
  of the infrastructure and of the other services become the test stack's and this test's
  (each run gets databases of its own, created empty as a new deployment's are: <name>_k8s,
  <name>_compose; scheme, user, vhost and options such as sslmode=require and amqps are kept:
  the test stack speaks TLS too; the store's region goes with its address), SERVER_PORT /
  GATEWAY_LISTEN become free ports, the gateway's run directory one in the test data, and secrets (CHANGE_ME, .env passwords) the test stack's; with
  amqps the test stack's private CA is trusted through AMQP_TLS_CA_FILE. Authentication
  is required by both (issue 19): the issuer is kept, the JWK Set URI becomes this test's
  (a key made here, served on loopback), and the gateway is asked with a token of that
  issuer; the internal ports (FERMATA_INTERNAL_PORT) move like SERVER_PORT, and the
  services call each other there.
- Kubernetes' NetworkPolicies let each Deployment's pods reach exactly the ports its
  *_SERVICE_URLs name, the public ports only from the gateway; egress lets each pod reach
  what its environment names, and the gateway nothing but the services' public ports.
"""
import functools
import http.server
import os
import pathlib
import re
import shutil
import subprocess
import threading
import urllib.parse

import pytest
import requests
import yaml

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, wait_until
import dockerignore
from nativesvc import NativeService

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ISSUER_VAR = "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_ISSUER_URI"
JWKS_VAR = "SPRING_SECURITY_OAUTH2_RESOURCESERVER_JWT_JWK_SET_URI"
JWT_TOOL = pathlib.Path(os.environ.get("FERMATA_BUILD_DIR") or ROOT / "build" / "debug") / "tests" / "tools" / "jwt_tool"
JWKS_PORT = PRIVATE_PORT_BASE + 879


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    """A key pair of this test's own, its JWK Set served on loopback (what the identity
    provider is to a deployment): yields (pem path, kid, JWK Set URL)."""
    d = tmp_path_factory.mktemp("issuer")
    subprocess.run([str(JWT_TOOL), "keygen", "--alg", "RS256", "--kid", "deploy-test", "--key", str(d / "key.pem"),
                    "--jwks", str(d / "jwks.json")], check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(d))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", JWKS_PORT), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield d / "key.pem", "deploy-test", f"http://127.0.0.1:{JWKS_PORT}/jwks.json"
    srv.shutdown()
    srv.server_close()


def mint(key, iss, scope="fermata.read fermata.write fermata.admin"):
    pem, kid, _ = key
    return subprocess.run([str(JWT_TOOL), "mint", "--key", str(pem), "--kid", kid, "--iss", iss, "--aud", "fermata",
                           "--scope", scope, "--ttl", "600"], check=True, capture_output=True, text=True).stdout.strip()


def tracked_files():
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [f.decode() for f in out.split(b"\0") if f and (ROOT / f.decode()).is_file()]


def dockerfile_cmake_configure():
    """The `cmake -S ... -B ...` configure command of the Dockerfile's build stage, as argv."""
    for line in DOCKERFILE.read_text().splitlines():
        line = line.strip()
        if line.startswith("RUN cmake -S"):
            return [a for a in line.removeprefix("RUN ").split("&&")[0].split() if a != "\\"]
    raise AssertionError("no `RUN cmake -S` line in the Dockerfile")


def test_image_build_context_configures(tmp_path):
    ctx = tmp_path / "src"
    files = dockerignore.context_files(tracked_files(), ROOT / "deploy" / "docker" / "Dockerfile.dockerignore")
    assert "CMakeLists.txt" in files and any(f.startswith("services/resource/") for f in files)
    for f in files:
        (ctx / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, ctx / f)
    argv = dockerfile_cmake_configure()
    assert "-DFERMATA_BUILD_TESTS=OFF" in argv
    r = subprocess.run(argv, cwd=ctx, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(argv)} in the image's build context failed:\n{r.stdout}\n{r.stderr}"


# ---------------------------------------------------------------- Kubernetes, rendered

K8S = ROOT / "deploy" / "k8s"
# PostgreSQL's default max_connections (100) less superuser_reserved_connections (3):
# config.yaml's DB_POOL_SIZE comment states the same budget.
PG_CONNECTION_BUDGET = 97


def kustomize_bin():
    out = subprocess.run(["bash", "-c", 'ROOT="$1"; . "$1/scripts/lib/common.sh"; fm_kustomize_bin', "_", str(ROOT)],
                         check=True, capture_output=True, text=True).stdout.strip()
    assert os.access(out, os.X_OK), f"kustomize not installed at {out}: run scripts/deps.sh"
    return out


@pytest.fixture(scope="module")
def k8s():
    r = subprocess.run([kustomize_bin(), "build", str(K8S)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"kustomize build deploy/k8s failed:\n{r.stderr}"
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return by_kind


def secret_example():
    return yaml.safe_load((K8S / "secret.example.yaml").read_text())


def test_k8s_secret_example_lands_in_the_pods_namespace(k8s):
    ns = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert secret_example()["metadata"].get("namespace") == ns, \
        "secret.example.yaml has no namespace: applied before the rest it lands in `default`, out of the pods' reach"
    assert ns in k8s["Namespace"]
    for kind, objs in k8s.items():
        for name, o in objs.items():
            if kind != "Namespace":
                assert o["metadata"].get("namespace") == ns, f"{kind}/{name} outside {ns}"


def test_k8s_deployments_under_an_hpa_leave_the_replica_count_to_it(k8s):
    hpas = k8s.get("HorizontalPodAutoscaler", {})
    assert hpas
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        dep = k8s["Deployment"][target]
        replicas = dep["spec"].get("replicas")
        assert replicas is None, (f"Deployment {target} sets replicas: {replicas} while HPA {name} has "
                                  f"minReplicas {hpa['spec']['minReplicas']}: every apply scales it back")


def test_k8s_every_workload_survives_a_node_loss_and_a_drain(k8s):
    """#14: at least two replicas (HPA minimum or the gateway's count) spread over nodes, a
    PDB keeping one through voluntary disruptions, readiness on the lifecycle probe, and a
    preStop pause so a terminating pod leaves the endpoints before it stops."""
    hpa_min = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["minReplicas"]
               for h in k8s.get("HorizontalPodAutoscaler", {}).values()}
    pdbs = k8s.get("PodDisruptionBudget", {}).values()
    for name, dep in k8s["Deployment"].items():
        spec = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        n = hpa_min.get(name, dep["spec"].get("replicas", 1))
        assert n >= 2, f"{name}: {n} replica(s)"
        terms = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                   and t["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items() for t in terms), name
        covering = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert covering and all(p["spec"].get("minAvailable", 0) < n for p in covering), \
            f"{name}: no PDB, or one that blocks every drain"
        c = container(dep)
        want = "/gateway/health" if name == "gateway" else "/actuator/health/readiness"
        assert c["readinessProbe"]["httpGet"]["path"] == want, name
        pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 0 < pause < spec["terminationGracePeriodSeconds"], name


def allowed(policies, target_labels, source_labels, port):
    """Whether the namespace's ingress NetworkPolicies let a pod with source_labels (in the
    same namespace) connect to target_labels' port (policies select by matchLabels only)."""
    selecting = [p for p in policies if p["spec"]["podSelector"].get("matchLabels", {}).items() <= target_labels.items()]
    assert selecting, f"no NetworkPolicy selects {target_labels}"
    for p in selecting:
        for rule in p["spec"].get("ingress", []):
            ports = [x["port"] for x in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            froms = rule.get("from")
            if froms is None:
                return True
            for f in froms:
                if "podSelector" in f and "namespaceSelector" not in f and \
                        f["podSelector"].get("matchLabels", {}).items() <= source_labels.items():
                    return True
    return False


def egress_allowed(policies, source_labels, port, target_labels=None):
    """Whether a pod with source_labels may open a TCP connection to port on a pod with
    target_labels (None: an address outside the cluster)."""
    selecting = [p for p in policies if "Egress" in p["spec"].get("policyTypes", [])
                 and p["spec"]["podSelector"].get("matchLabels", {}).items() <= source_labels.items()]
    if not selecting:
        return True
    for p in selecting:
        for rule in p["spec"].get("egress", []):
            ports = [x["port"] for x in rule.get("ports", []) if x.get("protocol", "TCP") == "TCP"]
            if rule.get("ports") and port not in ports:
                continue
            tos = rule.get("to")
            if tos is None:
                return True
            if target_labels is not None and any(
                    "podSelector" in t and t["podSelector"].get("matchLabels", {}).items() <= target_labels.items()
                    for t in tos):
                return True
    return False


def default_port(url):
    u = parse(url)
    return u.port or {"https": 443, "http": 80, "amqps": 5671, "amqp": 5672, "postgresql": 5432}[u.scheme]


def test_k8s_egress_lets_each_pod_reach_what_it_is_configured_for_and_the_gateway_nothing_else(k8s):
    """#19: every address a Deployment's environment names is reachable from its pods; the
    gateway reaches the services' public ports only, never a database, broker or store."""
    policies = list(k8s["NetworkPolicy"].values())
    secret = secret_example()
    deps = k8s["Deployment"]
    labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deps.items()}
    for name, dep in deps.items():
        assert any("Egress" in p["spec"].get("policyTypes", []) and
                   p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels[name].items() for p in policies), \
            f"{name}: egress not restricted"
        for k, v in env_of(dep, k8s, secret).items():
            if k.endswith("_DB_URL") or k in ("AMQP_URL", "S3_ENDPOINT", JWKS_VAR):
                assert egress_allowed(policies, labels[name], default_port(v)), f"{name} cannot reach {k}={v}"
            elif k.endswith("_SERVICE_URL") or k.endswith("_UPSTREAM"):
                host, _, port = (parse(v).netloc if "://" in v else v).partition(":")
                assert egress_allowed(policies, labels[name], int(port), labels[host]), f"{name} cannot reach {k}={v}"
    for port in (5432, 5671, 5672, 443, 80):
        assert not egress_allowed(policies, labels["gateway"], port), f"the gateway may reach port {port} outside"
    for dst in ("resource", "song", "storage"):
        internal = int(env_of(deps[dst], k8s, secret)["FERMATA_INTERNAL_PORT"])
        assert not egress_allowed(policies, labels["gateway"], internal, labels[dst]), f"gateway -> {dst} internal"
    assert not egress_allowed(policies, labels["processor"], 5432), "the processor has no database"


def test_k8s_network_policies_allow_what_the_services_call_and_nothing_else(k8s):
    """#19: each *_SERVICE_URL a Deployment is given is a port its pods may reach; the
    public (token) ports only from the gateway; the internal (token-free) ports only from
    the services that call them; the gateway from anywhere."""
    policies = list(k8s["NetworkPolicy"].values())
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
    assert deny and "Ingress" in deny[0]["spec"]["policyTypes"], "no default deny of ingress"
    cm = k8s["ConfigMap"]["fermata-config"]["data"]
    secret = secret_example()
    deps = k8s["Deployment"]
    labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deps.items()}
    services = {n: d for n, d in k8s["Service"].items()}
    calls = {}
    for name, dep in deps.items():
        for k, v in env_of(dep, k8s, secret).items():
            if k.endswith("_SERVICE_URL"):
                u = parse(v)
                target = u.hostname
                svc_port = next(p for p in services[target]["spec"]["ports"] if p["port"] == u.port)
                cports = {p["name"]: p["containerPort"] for p in container(deps[target])["ports"]}
                calls[(name, target)] = cports[svc_port["targetPort"]]
    assert calls, "no service-to-service URLs found"
    assert cm["STORAGE_SERVICE_URL"].endswith(":9083")
    for (src, dst), port in calls.items():
        assert allowed(policies, labels[dst], labels[src], port), f"{src} cannot reach {dst}:{port}"
        assert port != int(env_of(deps[dst], k8s, secret)["SERVER_PORT"]), \
            f"{src} calls {dst}'s token port: service calls carry no token"
    for dst in ("resource", "song", "storage"):
        env = env_of(deps[dst], k8s, secret)
        public, internal = int(env["SERVER_PORT"]), int(env["FERMATA_INTERNAL_PORT"])
        assert env.get(ISSUER_VAR) and env.get(JWKS_VAR), f"{dst}: authentication not required"
        for src in deps:
            if src == dst:
                continue
            assert allowed(policies, labels[dst], labels[src], public) == (src == "gateway"), (src, dst, public)
            assert allowed(policies, labels[dst], labels[src], internal) == ((src, dst) in calls), (src, dst, internal)
    assert allowed(policies, labels["gateway"], {"any": "client"}, 8080)


def container(dep):
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def env_of(dep, k8s, secret):
    """The environment the Deployment's container gets, its references resolved."""
    cm = k8s["ConfigMap"]["fermata-config"]["data"]
    out = {}
    for e in container(dep).get("env", []):
        if "value" in e:
            out[e["name"]] = str(e["value"])
            continue
        ref = e["valueFrom"]
        if "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]["key"]
            assert ref["configMapKeyRef"]["name"] == "fermata-config"
            assert key in cm, f"{dep['metadata']['name']}: {e['name']} reads ConfigMap key {key}, which is not there"
            out[e["name"]] = str(cm[key])
        else:
            key = ref["secretKeyRef"]["key"]
            assert ref["secretKeyRef"]["name"] == secret["metadata"]["name"]
            assert key in secret["stringData"], \
                f"{dep['metadata']['name']}: {e['name']} reads Secret key {key}, which secret.example.yaml lacks"
            out[e["name"]] = str(secret["stringData"][key])
    return out


def test_k8s_db_pools_fit_max_connections(k8s):
    secret = secret_example()
    total, parts = 0, []
    for name, hpa in k8s["HorizontalPodAutoscaler"].items():
        dep = k8s["Deployment"][hpa["spec"]["scaleTargetRef"]["name"]]
        env = env_of(dep, k8s, secret)
        if not any(k.endswith("_DB_URL") for k in env):
            continue
        assert "DB_POOL_SIZE" in env, f"{name} uses PostgreSQL with the default pool (16) per pod"
        surge = int(dep["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1))
        pods = hpa["spec"]["maxReplicas"] + surge
        total += pods * int(env["DB_POOL_SIZE"])
        parts.append(f"{name} {pods} pods x {env['DB_POOL_SIZE']}")
    assert parts
    assert total <= PG_CONNECTION_BUDGET, f"{total} connections at most ({', '.join(parts)}) > {PG_CONNECTION_BUDGET}"


def test_k8s_images_come_from_a_registry_under_a_tag_that_does_not_move(k8s):
    for name, dep in k8s["Deployment"].items():
        c = container(dep)
        image = c["image"]
        repo, _, tag = image.rpartition(":")
        host = repo.split("/")[0]
        assert "." in host or ":" in host, f"{name}: {image} names no registry (Docker Hub has no such image)"
        assert tag and tag not in ("dev", "latest"), \
            f"{name}: {image}: a moving tag, which imagePullPolicy {c.get('imagePullPolicy')} never fetches again"


# ---------------------------------------------------------------- the config smoke test

def parse(url):
    return urllib.parse.urlsplit(url)


def with_netloc(url, netloc, scheme=None):
    u = parse(url)
    user = u.username
    if user is not None:
        netloc = f"{urllib.parse.quote(urllib.parse.unquote(user), safe='')}@{netloc}"
    return urllib.parse.urlunsplit((scheme or u.scheme, netloc, u.path, u.query, u.fragment))


class StackInfo:
    """What the shared test stack offers (scripts/stack.sh env, PG_TLS=1 and RABBITMQ_TLS=1
    set by scripts/test-system.sh)."""

    def __init__(self):
        need = ("SONG_DB_URL", "AMQP_URL", "AMQPS_URL", "AMQPS_CA_FILE", "S3_ENDPOINT")
        missing = [v for v in need if not os.environ.get(v)]
        if missing:
            pytest.fail(f"{missing} not set: run through scripts/test-system.sh (the stack with TLS on)")
        pg = parse(os.environ["SONG_DB_URL"])
        self.pg = f"{pg.hostname}:{pg.port}"
        self.db_password = {v: parse(os.environ[f"{v}_DB_URL"]).password for v in ("SONG", "STORAGE", "RESOURCE")}
        amqp, amqps = parse(os.environ["AMQP_URL"]), parse(os.environ["AMQPS_URL"])
        self.amqp, self.amqps = f"{amqp.hostname}:{amqp.port}", f"{amqps.hostname}:{amqps.port}"
        self.amqp_user, self.amqp_password = amqp.username, amqp.password
        self.ca = os.environ["AMQPS_CA_FILE"]
        self.s3 = os.environ["S3_ENDPOINT"]
        self.s3_region = os.environ.get("S3_REGION", "us-east-1")


SERVICES = ("storage", "song", "resource", "processor")


def fresh_databases(label):
    """songs_<label>, storages_<label>, resources_<label>, empty, each owned by its
    service's role (as deploy/postgres/init.sh makes them), on the test stack's server
    (superuser over its socket: the local stack trusts local connections)."""
    pg = parse(os.environ["SONG_DB_URL"])
    sock = pathlib.Path(os.environ.get("FERMATA_DATA_DIR") or RUN_DIR) / "postgres"
    for role, db in (("song", "songs"), ("storage", "storages"), ("resource", "resources")):
        for sql in (f'DROP DATABASE IF EXISTS "{db}_{label}" WITH (FORCE)', f'CREATE DATABASE "{db}_{label}" OWNER "{role}"'):
            subprocess.run(["psql", "-h", str(sock), "-p", str(pg.port), "-U", "postgres", "-d", "postgres",
                            "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True, timeout=60)
    return label


def mapped(env, svc, ports, stack, run_dir, db_label, envs_of_all):
    """The environment with addresses, ports and secrets moved to the test (module docstring).
    Fails on a secret it does not know how to replace."""
    out = dict(env)
    for k, v in env.items():
        if k == "SERVER_PORT":
            out[k] = str(ports[svc])
        elif k == "FERMATA_INTERNAL_PORT":
            out[k] = str(ports[f"{svc}-internal"])
        elif k == JWKS_VAR:
            out[k] = ports["jwks"]
        elif k.endswith("_DB_URL"):
            u = parse(with_netloc(v, stack.pg))
            out[k] = urllib.parse.urlunsplit(u._replace(path=f"{u.path}_{db_label}"))
        elif k == "PGPASSWORD":
            db = [x for x in env if x.endswith("_DB_URL")]
            assert len(db) == 1, db
            out[k] = stack.db_password[db[0].removesuffix("_DB_URL")]
        elif k == "AMQP_URL":
            tls = parse(v).scheme == "amqps"
            out[k] = with_netloc(v, stack.amqps if tls else stack.amqp)
            assert parse(v).username == stack.amqp_user, f"{svc}: AMQP user {parse(v).username}"
            if tls:
                out["AMQP_TLS_CA_FILE"] = stack.ca
        elif k == "AMQP_PASSWORD":
            out[k] = stack.amqp_password
        elif k == "S3_ENDPOINT":
            out[k] = stack.s3
        elif k == "S3_REGION":
            out[k] = stack.s3_region  # part of the store's address: its signatures name it
        elif k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            out[k] = "test"
        elif k.endswith("_SERVICE_URL"):
            # the port the URL names, on the target's side: its public or its internal one
            target = k.removesuffix("_SERVICE_URL").lower()
            tenv = envs_of_all[target]
            which = {tenv.get("SERVER_PORT"): target, tenv.get("FERMATA_INTERNAL_PORT"): f"{target}-internal"}
            port = str(parse(v).port)
            assert port in which, f"{svc}: {k}={v} names neither port {target} listens on ({which})"
            out[k] = with_netloc(v, f"127.0.0.1:{ports[which[port]]}")
        elif k.endswith("_UPSTREAM"):
            out[k] = f"127.0.0.1:{ports[k.removesuffix('_UPSTREAM').lower()]}"
        elif k == "GATEWAY_LISTEN":
            out[k] = f"127.0.0.1:{ports['gateway']}"
        elif k == "GATEWAY_RUN_DIR":
            out[k] = str(run_dir)
        elif v == "CHANGE_ME" or "PASSWORD" in k or "SECRET" in k:
            raise AssertionError(f"{svc}: no test value for the secret {k}")
    return out


def start_all(envs, ports, label, tmp_path, key, probes=None):
    """Starts the four services (in their start order) and the gateway's entry point with
    the given environments; returns them once every one is healthy (and answers 200 on its
    readiness probe's path, probes: service -> path)."""
    started = []
    try:
        for svc in SERVICES:
            s = NativeService(svc, envs[svc], ports[svc], label=label).start()
            started.append(s)
            s.wait_healthy(timeout=60)
            if probes:
                r = requests.get(f"http://127.0.0.1:{ports[svc]}{probes[svc]}", timeout=5)
                assert r.status_code == 200 and r.json()["status"] == "UP", f"{svc} {probes[svc]}: {r.status_code} {r.text}"
        gw_env = dict(envs["gateway"], PATH="/usr/sbin:/usr/bin:/bin",
                      GATEWAY_TEMPLATE=str(ROOT / "deploy" / "nginx" / "fermata.conf.template"))
        log = open(tmp_path / f"gateway-{label}.log", "wb")
        gw = subprocess.Popen([str(ROOT / "deploy" / "nginx" / "gateway-entrypoint.sh")], env=gw_env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        url = f"http://127.0.0.1:{ports['gateway']}"
        try:
            wait_until(lambda: gw.poll() is None and requests.get(url + "/gateway/health", timeout=2).status_code == 200,
                       timeout=30, message=f"gateway healthy; log:\n{(tmp_path / f'gateway-{label}.log').read_text()}")
            issuers = {envs[svc].get(ISSUER_VAR) for svc in ("resource", "song", "storage")}
            assert len(issuers) == 1 and None not in issuers, f"authentication not required everywhere: {issuers}"
            assert requests.get(url + "/storages", timeout=10).status_code == 401, "no token, yet served"
            r = requests.get(url + "/storages", headers={"Authorization": f"Bearer {mint(key, issuers.pop())}"},
                             timeout=10)
            assert r.status_code == 200, r.text
            return {s.name: s for s in started}, r.json()
        finally:
            gw.terminate()
            gw.wait(timeout=20)
    finally:
        for s in reversed(started):
            assert s.stop() == 0, s.log()[-3000:]


def test_k8s_deployments_start_healthy_with_their_environment(k8s, tmp_path, signing_key):
    stack, secret = StackInfo(), secret_example()
    ports = dict(zip(("resource", "song", "storage", "processor", "gateway", "resource-internal", "song-internal",
                      "storage-internal"), range(PRIVATE_PORT_BASE + 861, PRIVATE_PORT_BASE + 869)), jwks=signing_key[2])
    label = fresh_databases("k8s")
    raw = {name: env_of(k8s["Deployment"][name], k8s, secret) for name in (*SERVICES, "gateway")}
    envs = {name: mapped(raw[name], name, ports, stack, RUN_DIR / "gateway-k8s", label, raw) for name in raw}
    assert envs["resource"]["AMQP_URL"].startswith("amqps://") and "sslmode=require" in envs["song"]["SONG_DB_URL"]
    probes = {name: container(k8s["Deployment"][name])["readinessProbe"]["httpGet"]["path"] for name in SERVICES}
    _, storages = start_all(envs, ports, "k8s", tmp_path, signing_key, probes=probes)
    cm = k8s["ConfigMap"]["fermata-config"]["data"]
    buckets = {s["storageType"]: s["bucket"] for s in storages}
    assert buckets == {"STAGING": cm["STORAGE_STAGING_BUCKET"], "PERMANENT": cm["STORAGE_PERMANENT_BUCKET"]}, storages


# ---- Compose

COMPOSE = ROOT / "deploy" / "compose.yaml"
_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$\$")


def interpolate(text, env):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, $$ rules."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        val = env.get(name)
        if op in (":-", "-"):
            return val if (val if op == ":-" else val is not None) else interpolate(arg, env)
        if op in (":?", "?"):
            if not val:
                raise AssertionError(f"compose refuses: {name}: {arg}")
            return val
        return val or ""
    return _VAR.sub(sub, text)


def env_file(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


def image_env(dockerfile, args):
    """The ENV of a Dockerfile's last stage, ARGs substituted."""
    text = dockerfile.read_text().replace("\\\n", " ")
    last = text.split("\nFROM ")[-1]
    out = {}
    for line in last.splitlines():
        if line.startswith("ENV "):
            for k, v in re.findall(r'([A-Z_]+)=("[^"]*"|\S+)', line[4:]):
                v = v.strip('"')
                out[k] = re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: args.get(m.group(1), ""), v)
    return out


def compose_envs(stack):
    values = env_file(ROOT / "deploy" / ".env.example")
    values.update(SONG_DB_PASSWORD=stack.db_password["SONG"], STORAGE_DB_PASSWORD=stack.db_password["STORAGE"],
                  RESOURCE_DB_PASSWORD=stack.db_password["RESOURCE"], POSTGRES_PASSWORD="unused",
                  RABBITMQ_USER=stack.amqp_user, RABBITMQ_PASSWORD=stack.amqp_password,
                  # Keycloak's own (not started here: this test's key stands in for it)
                  KEYCLOAK_ADMIN_PASSWORD="unused", FERMATA_READER_SECRET="unused",
                  FERMATA_WRITER_SECRET="unused", FERMATA_ADMIN_SECRET="unused",
                  # Grafana's (not started here either)
                  GRAFANA_ADMIN_PASSWORD="unused")
    doc = yaml.safe_load(interpolate(COMPOSE.read_text(), values))
    envs = {}
    for name in (*SERVICES, "gateway"):
        svc = doc["services"][name]
        build = svc["build"]
        dockerfile = (COMPOSE.parent / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
        env = image_env(dockerfile, {k: str(v) for k, v in (build.get("args") or {}).items()})
        env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
        envs[name] = env
    return envs


def compose_mapped(env, svc, ports, stack, run_dir, db_label, envs_of_all):
    """Compose's service names and ports are its network's: the same moves as for k8s, with
    the infrastructure's names (postgres, rabbitmq, localstack) taken for the test stack's."""
    env = dict(env)
    if "S3_ENDPOINT" in env:
        assert parse(env["S3_ENDPOINT"]).hostname == "localstack", env["S3_ENDPOINT"]
    for k in [k for k in env if k.endswith("_DB_URL")]:
        assert parse(env[k]).hostname == "postgres" and parse(env[k]).password is None, \
            f"{svc}: {k} {env[k]}: the password belongs in PGPASSWORD, unencoded"
    if "AMQP_URL" in env:
        assert parse(env["AMQP_URL"]).hostname == "rabbitmq" and parse(env["AMQP_URL"]).password is None, \
            f"{svc}: AMQP_URL: the password belongs in AMQP_PASSWORD, unencoded"
    return mapped(env, svc, ports, stack, run_dir, db_label, envs_of_all)


def test_compose_services_start_healthy_with_their_environment(tmp_path, signing_key):
    stack = StackInfo()
    ports = dict(zip(("resource", "song", "storage", "processor", "gateway", "resource-internal", "song-internal",
                      "storage-internal"), range(PRIVATE_PORT_BASE + 871, PRIVATE_PORT_BASE + 879)), jwks=signing_key[2])
    label = fresh_databases("compose")
    raw = compose_envs(stack)
    envs = {n: compose_mapped(e, n, ports, stack, RUN_DIR / "gateway-compose", label, raw) for n, e in raw.items()}
    _, storages = start_all(envs, ports, "compose", tmp_path, signing_key)
    values = env_file(ROOT / "deploy" / ".env.example")
    assert {s["storageType"]: s["bucket"] for s in storages} == {
        "STAGING": values["STORAGE_STAGING_BUCKET"], "PERMANENT": values["STORAGE_PERMANENT_BUCKET"]}


def test_compose_refuses_to_start_without_passwords():
    values = env_file(ROOT / "deploy" / ".env.example")
    with pytest.raises(AssertionError, match=r"compose refuses: \w*PASSWORD: set \w+ in deploy/\.env"):
        interpolate(COMPOSE.read_text(), values)
