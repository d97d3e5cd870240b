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
  amqps the test stack's private CA is trusted through AMQP_TLS_CA_FILE.
"""
import os
import pathlib
import re
import shutil
import subprocess
import urllib.parse

import pytest
import requests
import yaml

from conftest import PRIVATE_PORT_BASE, ROOT, RUN_DIR, wait_until
import dockerignore
from nativesvc import NativeService

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


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


def mapped(env, svc, ports, stack, run_dir, db_label):
    """The environment with addresses, ports and secrets moved to the test (module docstring).
    Fails on a secret it does not know how to replace."""
    out = dict(env)
    for k, v in env.items():
        if k == "SERVER_PORT":
            out[k] = str(ports[svc])
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
            target = k.removesuffix("_SERVICE_URL").lower()
            out[k] = with_netloc(v, f"127.0.0.1:{ports[target]}")
        elif k.endswith("_UPSTREAM"):
            out[k] = f"127.0.0.1:{ports[k.removesuffix('_UPSTREAM').lower()]}"
        elif k == "GATEWAY_LISTEN":
            out[k] = f"127.0.0.1:{ports['gateway']}"
        elif k == "GATEWAY_RUN_DIR":
            out[k] = str(run_dir)
        elif v == "CHANGE_ME" or "PASSWORD" in k or "SECRET" in k:
            raise AssertionError(f"{svc}: no test value for the secret {k}")
    return out


def start_all(envs, ports, label, tmp_path):
    """Starts the four services (in their start order) and the gateway's entry point with
    the given environments; returns them once every one is healthy."""
    started = []
    try:
        for svc in SERVICES:
            s = NativeService(svc, envs[svc], ports[svc], label=label).start()
            started.append(s)
            s.wait_healthy(timeout=60)
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
            r = requests.get(url + "/storages", timeout=10)
            assert r.status_code == 200, r.text
            return {s.name: s for s in started}, r.json()
        finally:
            gw.terminate()
            gw.wait(timeout=20)
    finally:
        for s in reversed(started):
            assert s.stop() == 0, s.log()[-3000:]


def test_k8s_deployments_start_healthy_with_their_environment(k8s, tmp_path):
    stack, secret = StackInfo(), secret_example()
    ports = dict(zip(("resource", "song", "storage", "processor", "gateway"), range(PRIVATE_PORT_BASE + 861, PRIVATE_PORT_BASE + 866)))
    label = fresh_databases("k8s")
    envs = {}
    for name in (*SERVICES, "gateway"):
        dep = k8s["Deployment"][name]
        envs[name] = mapped(env_of(dep, k8s, secret), name, ports, stack, RUN_DIR / "gateway-k8s", label)
    assert envs["resource"]["AMQP_URL"].startswith("amqps://") and "sslmode=require" in envs["song"]["SONG_DB_URL"]
    _, storages = start_all(envs, ports, "k8s", tmp_path)
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
                  RABBITMQ_USER=stack.amqp_user, RABBITMQ_PASSWORD=stack.amqp_password)
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


def compose_mapped(env, svc, ports, stack, run_dir, db_label):
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
    return mapped(env, svc, ports, stack, run_dir, db_label)


def test_compose_services_start_healthy_with_their_environment(tmp_path):
    stack = StackInfo()
    ports = dict(zip(("resource", "song", "storage", "processor", "gateway"), range(PRIVATE_PORT_BASE + 871, PRIVATE_PORT_BASE + 876)))
    label = fresh_databases("compose")
    envs = {n: compose_mapped(e, n, ports, stack, RUN_DIR / "gateway-compose", label)
            for n, e in compose_envs(stack).items()}
    _, storages = start_all(envs, ports, "compose", tmp_path)
    values = env_file(ROOT / "deploy" / ".env.example")
    assert {s["storageType"]: s["bucket"] for s in storages} == {
        "STAGING": values["STORAGE_STAGING_BUCKET"], "PERMANENT": values["STORAGE_PERMANENT_BUCKET"]}


def test_compose_refuses_to_start_without_passwords():
    values = env_file(ROOT / "deploy" / ".env.example")
    with pytest.raises(AssertionError, match=r"compose refuses: \w*PASSWORD: set \w+ in deploy/\.env"):
        interpolate(COMPOSE.read_text(), values)
