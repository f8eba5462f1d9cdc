#!/usr/bin/env python3
"""Deployment files and itsd's service behaviour, against the real tools.

    test_deploy.py manifests  the Kubernetes ConfigMap and the systemd unit's configuration pass
                              `itsd --check-config`; every environment variable the manifest
                              and the unit set is one itsd reads; the unit's contract (notify,
                              ExecStartPre check, exit 2 not restarted) and its
                              `systemd-analyze security --offline=yes` exposure <= 3.0; the
                              sysusers.d entry creates the user (systemd-sysusers --root)
    test_deploy.py notify     sd_notify: READY=1 when serving (and /readyz 200 with no camera
                              delivering), WATCHDOG=1, RELOADING=1/READY=1 on SIGHUP,
                              STOPPING=1 on SIGTERM, exit 0
    test_deploy.py secrets    --print-config never prints a secret in a form that loads back
    test_deploy.py package    cpack builds the .deb; unpacked into a scratch root (dpkg-deb
                              -x), the installed itsd runs --version and --check-config on the
                              installed configuration

A missing tool (systemd-analyze, systemd-sysusers, dpkg-deb) skips (exit 77), or fails with
CI=true. Expected values come from the files' own contracts (systemd's, Debian's, SPEC's), not
from itsd.
"""
import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from testutil import free_port, skip  # noqa: E402

ARGS = None


def need(tool):
    path = shutil.which(tool)
    if not path:
        skip(f"{tool} not installed (scripts/packages.txt)")
    return path


def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: {msg}")


def run(cmd, env=None, timeout=60, **kw):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(cmd, env=full, timeout=timeout, capture_output=True, text=True, **kw)


def http_get(port, path):
    """(status, body) or (None, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def shared_file(name):
    """A file of the shared data by base name (a model under models/*/, or media/)."""
    hits = sorted(glob.glob(os.path.join(ARGS.shared, "models", "*", name)) +
                  glob.glob(os.path.join(ARGS.shared, "media", name)))
    if not hits:
        skip(f"{name} not in the shared data ({ARGS.shared})")
    return hits[0]


def model_env(cfg_text):
    """The configuration names the detector and labels where the deployment keeps them (a
    volume, /var/lib/its/models); these are the same files from the shared data, given as the
    documented environment overrides."""
    cfg = yaml.safe_load(cfg_text)
    env = {}
    for key in ("model", "labels"):
        path = cfg.get("engine", {}).get(key)
        if path:
            env["ITS_ENGINE_" + key.upper()] = shared_file(os.path.basename(path))
    return env


# ---- the systemd unit -----------------------------------------------------------------------


def unit_entries(path):
    """[(section, key, value)] in order (a key may repeat)."""
    out, section = [], None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(entries, key, section="Service"):
    return [v for s, k, v in entries if s == section and k == key]


def config_arg(cmdline):
    argv = cmdline.split()
    for i, a in enumerate(argv):
        if a in ("-c", "--config") and i + 1 < len(argv):
            return argv[i + 1]
    return None


# ---- what itsd reads from the environment ---------------------------------------------------


def itsd_env_names(itsd):
    """ITS_<SECTION>_<KEY> of every option --print-config lists (the options table), plus
    every variable the source reads by name (getenv("...") in src/ and tools/)."""
    r = run([itsd, "--print-config"], env={"ITS_SHARED_DIR": ARGS.shared})
    check(r.returncode == 0, f"itsd --print-config: {r.stderr}")
    names, section = set(), None
    for line in r.stdout.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line.startswith(" ") and section is None:
            continue
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^  (\w+):", line)
        if m and section and section != "cameras":
            names.add(f"ITS_{section}_{m.group(1)}".upper())
    for root in ("src", "tools"):
        for dirpath, _, files in os.walk(os.path.join(ARGS.source, root)):
            for f in files:
                if f.endswith((".c", ".h", ".cu", ".cpp")):
                    text = open(os.path.join(dirpath, f), errors="replace").read()
                    names.update(re.findall(r'getenv\("([A-Z0-9_]+)"\)', text))
    return names


def k8s_docs():
    path = os.path.join(ARGS.source, "deploy/kubernetes/itsd-statefulset.yaml")
    return [d for d in yaml.safe_load_all(open(path)) if d]


def test_manifests(work):
    itsd = ARGS.itsd
    read = itsd_env_names(itsd)
    # the checker itself: a name itsd does not read is refused
    check("ITS_REDIS_PASSWORD" in read and "ITS_API_TOKEN" in read, f"option names: {read}")
    check("REDIS_PASSWORD" not in read, "REDIS_PASSWORD counted as read")

    # Kubernetes: the ConfigMap as the pod sees it, with the pod's environment
    docs = k8s_docs()
    cm = [d for d in docs if d["kind"] == "ConfigMap"]
    sts = [d for d in docs if d["kind"] == "StatefulSet"]
    check(len(cm) == 1 and len(sts) == 1, "one ConfigMap and one StatefulSet")
    pod = sts[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    cm_volume = [n for n, v in volumes.items()
                 if v.get("configMap", {}).get("name") == cm[0]["metadata"]["name"]]
    check(len(cm_volume) == 1, "the ConfigMap is mounted")
    mount = mounts[cm_volume[0]]
    root = os.path.join(work, "k8s")
    for name, text in cm[0]["data"].items():
        dest = os.path.join(root, mount.lstrip("/"), name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        open(dest, "w").write(text)
    cfg_path = config_arg(" ".join(container["args"]))
    check(cfg_path and cfg_path.startswith(mount + "/"), f"--config {cfg_path} is on the mount")
    env = {}
    for e in container.get("env", []):
        check(e["name"] in read, f"Kubernetes sets {e['name']}, which itsd does not read")
        env[e["name"]] = e.get("value", "from-a-secret")
    env.update(model_env(cm[0]["data"][os.path.basename(cfg_path)]))
    r = run([itsd, "--check-config", "--config", os.path.join(root, cfg_path.lstrip("/"))], env)
    check(r.returncode == 0, f"Kubernetes ConfigMap: itsd --check-config: {r.stderr}")
    print(f"ok: Kubernetes ConfigMap passes --check-config ({r.stderr.strip()})")
    # the probes: liveness on /healthz, readiness and startup on /readyz, on the API port
    check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe")
    check(container["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe")
    port = yaml.safe_load(cm[0]["data"][os.path.basename(cfg_path)])["api"]["port"]
    check(container["ports"][0]["containerPort"] == port, "container port = api.port")

    # systemd: the unit's contract
    unit = os.path.join(ARGS.source, "deploy/systemd/itsd.service")
    u = unit_entries(unit)
    check(unit_values(u, "Type") == ["notify"], "Type=notify")
    check("2" in " ".join(unit_values(u, "RestartPreventExitStatus")).split(),
          "RestartPreventExitStatus=2 (bad configuration is not restarted)")
    start = unit_values(u, "ExecStart")
    pre = unit_values(u, "ExecStartPre")
    check(len(start) == 1 and len(pre) == 1, "one ExecStart and one ExecStartPre")
    check("--check-config" in pre[0].split(), "ExecStartPre runs --check-config")
    check(config_arg(pre[0]) == config_arg(start[0]) == "/etc/its/itsd.yaml",
          "ExecStartPre checks the configuration ExecStart runs")
    check(pre[0].split()[0] == start[0].split()[0], "the same itsd")
    check(unit_values(u, "User") == ["its"], "User=its")
    for assign in unit_values(u, "Environment"):
        for kv in assign.split():
            name = kv.strip('"').split("=")[0]
            check(name in read, f"the unit sets {name}, which itsd does not read")
    # its configuration: the file the install rules put at /etc/its/itsd.yaml
    rules = open(os.path.join(ARGS.source, "cmake/package.cmake")).read()
    check("deploy/systemd/itsd.yaml" in rules, "cmake/package.cmake installs deploy/systemd/itsd.yaml")
    text = open(os.path.join(ARGS.source, "deploy/systemd/itsd.yaml")).read()
    r = run([itsd, "--check-config", "--config",
             os.path.join(ARGS.source, "deploy/systemd/itsd.yaml")], model_env(text))
    check(r.returncode == 0, f"systemd configuration: itsd --check-config: {r.stderr}")
    print(f"ok: the systemd unit's configuration passes --check-config ({r.stderr.strip()})")

    # the sysusers.d entry creates the unit's user and group, with the state directory as home
    sysusers = need("systemd-sysusers")
    sroot = os.path.join(work, "sysroot")
    os.makedirs(os.path.join(sroot, "etc"), exist_ok=True)
    os.makedirs(os.path.join(sroot, "usr/lib/sysusers.d"), exist_ok=True)
    shutil.copy(os.path.join(ARGS.source, "deploy/systemd/its-analytics.sysusers"),
                os.path.join(sroot, "usr/lib/sysusers.d/its-analytics.conf"))
    r = run([sysusers, f"--root={sroot}"])  # every sysusers.d file under the root, as installed
    check(r.returncode == 0, f"systemd-sysusers: {r.stderr}")
    passwd = [l.split(":") for l in open(os.path.join(sroot, "etc/passwd")).read().splitlines()]
    its = [p for p in passwd if p[0] == "its"]
    check(len(its) == 1, f"user its in {passwd}")
    check(its[0][5] == "/var/lib/its" and its[0][6].endswith("nologin"),
          f"its: home /var/lib/its, no login shell: {its[0]}")
    check(int(its[0][2]) < 1000, "a system user")
    groups = [l.split(":")[0] for l in open(os.path.join(sroot, "etc/group"))]
    check("its" in groups, "group its")
    print("ok: sysusers.d creates user and group its")

    # hardening, as systemd rates it
    analyze = need("systemd-analyze")
    r = run([analyze, "security", "--offline=yes", unit])
    m = re.search(r"Overall exposure level for itsd\.service: ([0-9.]+)", r.stdout)
    check(m, f"systemd-analyze security: {r.stdout[-500:]} {r.stderr}")
    exposure = float(m.group(1))
    check(exposure <= 3.0, f"exposure {exposure} > 3.0")
    print(f"ok: systemd-analyze security --offline=yes: exposure {exposure} (<= 3.0)")


# ---- sd_notify and readiness ----------------------------------------------------------------


def test_notify(work):
    sock_path = os.path.join(work, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    port = free_port()
    closed = free_port()  # nothing listens here: the camera never delivers
    cfg = os.path.join(work, "notify.yaml")
    open(cfg, "w").write(
        "engine: {backend: noop}\nsink: {type: \"null\"}\nstatus: {interval_s: 0}\n"
        f"api: {{port: {port}}}\n"
        f"cameras:\n  - {{id: down, url: \"rtsp://127.0.0.1:{closed}/none\", kind: rtsp}}\n")
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
    p = subprocess.Popen([ARGS.itsd, "--config", cfg], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, "notify.err"), "w"))
    got = []

    def wait_for(msg, seconds):
        end = time.time() + seconds
        while time.time() < end:
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                check(p.poll() is None, f"itsd exited {p.returncode} waiting for {msg}")
                continue
            got.append(data)
            if msg in data.split("\n"):
                return
        sys.exit(f"FAIL: no {msg} in {seconds} s; got {got}")

    try:
        wait_for("READY=1", 30)
        # ready means serving: 200 with the only camera down (nothing at its address)
        status, body = http_get(port, "/readyz")
        check(status == 200, f"/readyz after READY=1: {status} {body}")
        status, body = http_get(port, "/v1/cameras/down")
        check(status == 200 and '"running"' not in body, f"the camera is not running: {body}")
        n = len(got)
        wait_for("WATCHDOG=1", 2)
        wait_for("WATCHDOG=1", 2)
        check(sum("WATCHDOG=1" in g for g in got[n:]) >= 2, "WATCHDOG=1 repeats")
        p.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1", 10)
        wait_for("READY=1", 10)
        p.send_signal(signal.SIGTERM)
        wait_for("STOPPING=1", 10)
        check(p.wait(timeout=20) == 0, f"exit status {p.returncode}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    print(f"ok: sd_notify {[g.replace(chr(10), ' ') for g in got if 'WATCHDOG' not in g]}")


# ---- secrets in --print-config --------------------------------------------------------------


def test_secrets(work):
    itsd = ARGS.itsd
    secrets = ["s3cret-redis", "s3cret-token", "s3cret-cam", "s3cret-query", "s3cret-file"]
    cfg = os.path.join(work, "secrets.yaml")
    open(cfg, "w").write(
        "engine: {backend: noop}\n"
        "redis: {host: 127.0.0.1, password: s3cret-redis}\n"
        "api: {token: s3cret-token}\n"
        "cameras:\n"
        "  - {id: a, url: \"rtsp://viewer:s3cret-cam@10.0.0.1:554/live\"}\n"
        "  - {id: b, url: \"rtsp://viewer:${CAM_B_PASSWORD}@10.0.0.2/live\"}\n"
        "  - {id: c, url: \"rtsp://10.0.0.3/a:b@c\"}\n"
        "  - {id: d, url: \"http://10.0.0.4/mjpeg?res=hd&token=s3cret-query\"}\n"
        "  - {id: e, url: \"rtsp://${CAM_E_TOKEN}@10.0.0.5/live?key=${CAM_E_KEY}\"}\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ITS_")}
    clean["ITS_SHARED_DIR"] = ARGS.shared
    r = subprocess.run([itsd, "--print-config", "--config", cfg], env=clean, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, f"--print-config: {r.stderr}")
    printed = r.stdout
    for s in secrets:
        check(s not in printed, f"--print-config prints the secret {s}")
    check("${CAM_B_PASSWORD}" in printed, "an environment reference is no secret: kept")
    check("rtsp://10.0.0.3/a:b@c" in printed, "a path with ':' and '@' is no password")
    check("rtsp://${CAM_E_TOKEN}@10.0.0.5/live?key=${CAM_E_KEY}" in printed,
          "credentials that are all environment references are kept")
    check("res=hd&token=<redacted>" in printed, "a secret query parameter is redacted")
    out = os.path.join(work, "printed.yaml")
    open(out, "w").write(printed)
    # loaded back as it is, the placeholders are refused, naming the key
    r = subprocess.run([itsd, "--check-config", "--config", out], env=clean, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 2 and "redis.password" in r.stderr and "ITS_REDIS_PASSWORD" in r.stderr,
          f"printed config with placeholders: {r.returncode} {r.stderr}")
    env = dict(clean, ITS_REDIS_PASSWORD="x", ITS_API_TOKEN="y")
    r = subprocess.run([itsd, "--check-config", "--config", out], env=env, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 2 and "cameras[0].url" in r.stderr,
          f"a camera URL with the placeholder password: {r.returncode} {r.stderr}")
    # secrets from the environment are not printed either
    env = dict(clean, ITS_API_TOKEN="s3cret-env-token")
    r = subprocess.run([itsd, "--print-config"], env=env, capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and "s3cret-env-token" not in r.stdout, "ITS_API_TOKEN printed")
    # with every secret in the environment (the way the manifests give them), the printed
    # configuration loads back and prints the same
    cfg2 = os.path.join(work, "secrets-env.yaml")
    open(cfg2, "w").write(
        "engine: {backend: noop}\nredis: {host: 127.0.0.1}\n"
        "cameras:\n  - {id: b, url: \"rtsp://viewer:${CAM_B_PASSWORD}@10.0.0.2/live\"}\n")
    env = dict(clean, ITS_REDIS_PASSWORD="s3cret-redis", ITS_API_TOKEN="s3cret-token",
               CAM_B_PASSWORD="s3cret-cam")
    first = subprocess.run([itsd, "--print-config", "--config", cfg2], env=env,
                           capture_output=True, text=True, timeout=30)
    check(first.returncode == 0, first.stderr)
    for s in secrets:
        check(s not in first.stdout, f"--print-config prints the secret {s}")
    open(out, "w").write(first.stdout)
    again = subprocess.run([itsd, "--print-config", "--config", out], env=env,
                           capture_output=True, text=True, timeout=30)
    check(again.returncode == 0 and again.stdout == first.stdout,
          f"printed config does not load back the same: {again.stderr}")
    # a secret from a file (redis.password_file): printed as "" beside the file's name, so the
    # printed configuration loads back through the file
    pw = os.path.join(work, "redis-password")
    open(pw, "w").write("s3cret-file\n")
    env = dict(clean, ITS_REDIS_PASSWORD_FILE=pw)
    first = subprocess.run([itsd, "--print-config", "--config", cfg2], env=env,
                           capture_output=True, text=True, timeout=30)
    check(first.returncode == 0 and "s3cret-file" not in first.stdout and pw in first.stdout,
          f"--print-config with a password file: {first.stderr}")
    open(out, "w").write(first.stdout)
    again = subprocess.run([itsd, "--print-config", "--config", out], env=clean,
                           capture_output=True, text=True, timeout=30)
    check(again.returncode == 0 and again.stdout == first.stdout,
          f"printed config with a password file does not load back the same: {again.stderr}")
    print("ok: no secret printed; placeholders refused; secrets from the environment or a file "
          "round-trip")


# ---- the Debian package ---------------------------------------------------------------------


def test_package(work):
    for tool in ("dpkg-deb", "dpkg-shlibdeps"):
        need(tool)
    out = os.path.join(work, "pkg")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    t0 = time.time()
    r = run([ARGS.cpack, "-G", "DEB", "-B", out], timeout=900, cwd=ARGS.build)
    check(r.returncode == 0, f"cpack: {r.stdout[-3000:]} {r.stderr[-3000:]}")
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(len(debs) == 1, f"one .deb: {debs}")
    deb = debs[0]
    print(f"ok: cpack built {os.path.basename(deb)} ({os.path.getsize(deb) >> 10} KiB, "
          f"{time.time() - t0:.0f} s)")
    field = lambda f: run(["dpkg-deb", "-f", deb, f]).stdout.strip()
    check(field("Package") == "its-analytics", "Package: its-analytics")
    depends = field("Depends")
    # shlibdeps: the libraries itsd links come from these Debian packages
    for lib in ("libc6", "libhiredis", "libmicrohttpd", "libcyaml", "libsystemd0"):
        check(lib in depends, f"Depends lacks {lib}: {depends}")
    ctrl = os.path.join(work, "control")
    shutil.rmtree(ctrl, ignore_errors=True)
    check(run(["dpkg-deb", "-e", deb, ctrl]).returncode == 0, "dpkg-deb -e")
    check("/etc/its/itsd.yaml" in open(os.path.join(ctrl, "conffiles")).read().split(),
          "the configuration is a conffile")
    root = os.path.join(work, "root")
    shutil.rmtree(root, ignore_errors=True)
    check(run(["dpkg-deb", "-x", deb, root]).returncode == 0, "dpkg-deb -x")
    for f in ("usr/bin/itsd", "usr/bin/its-infer", "usr/bin/its-bench", "usr/bin/its-replay",
              "usr/lib/systemd/system/itsd.service", "usr/lib/sysusers.d/its-analytics.conf",
              "etc/its/itsd.yaml", "usr/share/doc/its-analytics/operations.md",
              "usr/share/its-analytics/prometheus/alerts.yml",
              "usr/share/its-analytics/grafana/dashboard.json"):
        check(os.path.exists(os.path.join(root, f)), f"{f} not in the package")
    # the installed unit names the installed itsd and the installed configuration
    u = unit_entries(os.path.join(root, "usr/lib/systemd/system/itsd.service"))
    start = unit_values(u, "ExecStart")[0].split()
    check(start[0] == "/usr/bin/itsd", f"ExecStart {start[0]}")
    exe = os.path.join(root, start[0].lstrip("/"))
    cfg = os.path.join(root, config_arg(" ".join(start)).lstrip("/"))
    env = {"LD_LIBRARY_PATH": os.path.join(root, "usr/lib")}
    r = run([exe, "--version"], env)
    check(r.returncode == 0 and field("Version") in r.stdout,
          f"installed itsd --version: {r.stdout} {r.stderr} (package {field('Version')})")
    print(f"ok: installed itsd --version: {r.stdout.strip()}")
    env.update(model_env(open(cfg).read()))
    r = run([exe, "--check-config", "--config", cfg], env)
    check(r.returncode == 0, f"installed itsd --check-config on {cfg}: {r.stderr}")
    print(f"ok: installed itsd --check-config: {r.stderr.strip()}")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["manifests", "notify", "secrets", "package"])
    ap.add_argument("--itsd", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--build")
    ap.add_argument("--cpack")
    ARGS = ap.parse_args()
    for name in ("itsd", "source", "shared", "work", "build"):
        if getattr(ARGS, name):
            setattr(ARGS, name, os.path.abspath(getattr(ARGS, name)))
    os.makedirs(ARGS.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix=ARGS.what + "-", dir=ARGS.work)
    {"manifests": test_manifests, "notify": test_notify, "secrets": test_secrets,
     "package": test_package}[ARGS.what](work)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
