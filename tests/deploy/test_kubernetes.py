#!/usr/bin/env python3
"""The Kubernetes manifests of deploy/kubernetes/ checked offline: the fields the API server
would refuse or that tie the manifests together, and every embedded configuration run
through the program that reads it.

    test_kubernetes.py --itsd PATH --source DIR --work DIR

- every object has apiVersion, kind and metadata.name, of a kind and version the API serves
  (apps/v1 StatefulSet, v1 Service and ConfigMap, policy/v1 PodDisruptionBudget,
  autoscaling/v2 HorizontalPodAutoscaler); the required fields of each kind are there with
  the types the schema gives (a StatefulSet's selector matches its template's labels, its
  serviceName is a headless Service selecting the same pods, every volume mount names a
  volume or claim template, every ConfigMap a pod mounts exists, container ports are
  integers, resources are quantities);
- itsd: the ConfigMap passes `itsd --check-config` (with the pod's environment), cluster
  mode is on, ITS_REPLICA_NAME comes from the pod's name, one GPU is requested and limited,
  readiness is /readyz, the termination grace period covers shutdown.drain_s and the
  handover, the capacity fits ingest.max_cameras, a PodDisruptionBudget selects the pods;
- Redis: redis.sentinels names the Sentinel port of every Redis pod, redis.master_name is the
  name the Sentinels monitor, wait_replicas leaves a replica to spare; redis.conf and
  sentinel.conf start a real redis-server and redis-sentinel (hosts mapped to loopback), the
  start scripts pass `sh -n`;
- the HPA scales the itsd StatefulSet on a metric a prometheus-adapter rule exposes, built
  from its_scaling_recommendation, a series itsd exports.
Exit status 0 pass, 1 fail, 77 skipped (python3-yaml or redis missing, outside CI).
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from testutil import free_port, skip  # noqa: E402

try:
    import yaml
except ImportError:
    yaml = None

KINDS = {("v1", "Service"), ("v1", "ConfigMap"), ("apps/v1", "StatefulSet"),
         ("policy/v1", "PodDisruptionBudget"), ("autoscaling/v2", "HorizontalPodAutoscaler")}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
failures = []


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg, flush=True)
        failures.append(msg)
    return cond


def load(source):
    objs = []
    for path in sorted(glob.glob(os.path.join(source, "deploy/kubernetes/*.yaml"))):
        for d in yaml.safe_load_all(open(path)):
            if d and "apiVersion" in d:  # Helm values files are not manifests
                objs.append((os.path.basename(path), d))
    return objs


def check_object(f, d):
    where = "%s: %s %s" % (f, d.get("kind"), d.get("metadata", {}).get("name"))
    check((d.get("apiVersion"), d.get("kind")) in KINDS, where + ": unknown apiVersion/kind")
    name = d.get("metadata", {}).get("name", "")
    check(bool(NAME.match(name)) and len(name) <= 63, where + ": metadata.name")
    spec = d.get("spec")
    kind = d.get("kind")
    if kind == "ConfigMap":
        check(all(isinstance(v, str) for v in d.get("data", {}).values()), where + ": data")
        return
    check(isinstance(spec, dict), where + ": spec")
    if kind == "Service":
        for p in spec.get("ports", []):
            check(isinstance(p.get("port"), int), where + ": port is an integer")
    if kind == "StatefulSet":
        for k in ("serviceName", "selector", "template"):
            check(k in spec, where + ": spec." + k)
        labels = spec["template"]["metadata"]["labels"]
        sel = spec["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()), where + ": selector vs labels")
        pod = spec["template"]["spec"]
        vols = {v["name"] for v in pod.get("volumes", [])}
        vols |= {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
        for c in pod["containers"]:
            check(isinstance(c.get("image"), str) and c["image"], where + ": image")
            for p in c.get("ports", []):
                check(isinstance(p.get("containerPort"), int), where + ": containerPort")
            for m in c.get("volumeMounts", []):
                check(m["name"] in vols, where + ": mount %s has no volume" % m["name"])
            for part in ("requests", "limits"):
                for k, v in c.get("resources", {}).get(part, {}).items():
                    check(isinstance(v, int) or bool(QUANTITY.match(str(v))),
                          where + ": %s.%s=%r is not a quantity" % (part, k, v))
    if kind == "PodDisruptionBudget":
        check(("maxUnavailable" in spec) != ("minAvailable" in spec),
              where + ": one of maxUnavailable, minAvailable")
    if kind == "HorizontalPodAutoscaler":
        check(spec["minReplicas"] <= spec["maxReplicas"], where + ": min <= max replicas")


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "source", "work"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    if yaml is None:
        skip("python3-yaml is not installed")
    server, sentinel = shutil.which("redis-server"), shutil.which("redis-sentinel")
    if not server or not sentinel:
        skip("redis-server or redis-sentinel is not installed")
    shutil.rmtree(o.work, ignore_errors=True)
    os.makedirs(o.work)
    objs = load(o.source)
    for f, d in objs:
        check_object(f, d)
    by = {}
    for f, d in objs:
        by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    sts, svc, cms = by["StatefulSet"], by["Service"], by["ConfigMap"]

    # every StatefulSet: a headless Service of the same pods, its ConfigMaps present, a PDB
    for name, s in sts.items():
        sv = svc.get(s["spec"]["serviceName"])
        if check(sv is not None, "%s: serviceName names no Service" % name):
            check(sv["spec"].get("clusterIP") == "None", "%s: the Service is headless" % name)
            check(sv["spec"]["selector"] == s["spec"]["selector"]["matchLabels"],
                  "%s: the Service selects the StatefulSet's pods" % name)
        for v in s["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in v:
                check(v["configMap"]["name"] in cms, "%s: ConfigMap %s" % (name, v["configMap"]))
        pdbs = [p for p in by.get("PodDisruptionBudget", {}).values()
                if p["spec"]["selector"]["matchLabels"] == s["spec"]["selector"]["matchLabels"]]
        check(len(pdbs) == 1, "%s: one PodDisruptionBudget selects its pods" % name)

    # ---- itsd --------------------------------------------------------------------------------
    itsd = sts["itsd"]
    pod = itsd["spec"]["template"]["spec"]
    c = pod["containers"][0]
    cfg_text = cms["itsd-config"]["data"]["itsd.yaml"]
    cfg = yaml.safe_load(cfg_text)
    path = os.path.join(o.work, "itsd.yaml")
    open(path, "w").write(cfg_text)
    env = dict(os.environ)
    env.update({e["name"]: e.get("value", "from-the-pod") for e in c.get("env", [])})
    r = subprocess.run([o.itsd, "--check-config", "-c", path], env=env, capture_output=True,
                       text=True, timeout=60)
    # the model is on the pod's volume: a missing model file is the only error allowed here
    check(r.returncode == 0 or "engine.model: cannot read" in r.stderr,
          "itsd --check-config: %s" % r.stderr.strip())
    cl = cfg.get("cluster", {})
    check(cl.get("enabled") is True, "itsd: cluster.enabled")
    check(cl.get("capacity", 0) <= cfg.get("ingest", {}).get("max_cameras", 256),
          "itsd: cluster.capacity above ingest.max_cameras")
    names = {e["name"]: e for e in c.get("env", [])}
    check(names.get("ITS_REPLICA_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
          .get("fieldPath") == "metadata.name", "itsd: ITS_REPLICA_NAME from the pod's name")
    res = c["resources"]
    check(res["requests"].get("nvidia.com/gpu") == 1 and res["limits"].get("nvidia.com/gpu") == 1,
          "itsd: one GPU requested and limited")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "itsd: readiness on /readyz")
    drain = cfg.get("shutdown", {}).get("drain_s", 2)
    check(pod["terminationGracePeriodSeconds"] >= drain + 10,
          "itsd: terminationGracePeriodSeconds %s < drain_s %s + 10 s for the handover" %
          (pod["terminationGracePeriodSeconds"], drain))
    print("ok: itsd StatefulSet, ConfigMap (--check-config: %s)" % r.stderr.strip())

    # ---- Redis with Sentinel -----------------------------------------------------------------
    redis = sts["redis"]
    rcm = cms["redis-config"]["data"]
    rsvc = redis["spec"]["serviceName"]
    n = redis["spec"]["replicas"]
    m = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", rcm["sentinel.conf"], re.M)
    check(m is not None, "sentinel.conf monitors a master")
    if m:
        check(m.group(1) == cfg["redis"]["master_name"], "redis.master_name = the monitored name")
        check(int(m.group(4)) == n // 2 + 1, "Sentinel quorum is a majority of %d" % n)
    sentinels = cfg["redis"]["sentinels"].split(",")
    sport = [p["port"] for p in svc[rsvc]["spec"]["ports"] if p["name"] == "sentinel"][0]
    check(sorted(sentinels) == ["%s-%d.%s.its.svc:%d" % ("redis", i, rsvc, sport)
                                for i in range(n)],
          "redis.sentinels %s: every Redis pod's Sentinel" % sentinels)
    check(1 <= cfg["redis"].get("wait_replicas", 0) <= n - 2,
          "redis.wait_replicas leaves one replica to spare")
    # the configuration files start the real servers (hosts mapped to loopback)
    procs = []
    try:
        port = free_port()
        conf = os.path.join(o.work, "redis.conf")
        # the pod's data directory is its volume; here the work directory
        open(conf, "w").write(re.sub(r"^dir .*$", "dir " + o.work, rcm["redis.conf"], flags=re.M))
        procs.append(subprocess.Popen([server, conf, "--port", str(port), "--bind", "127.0.0.1",
                                       "--dir", o.work], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
        sport = free_port()
        sconf = os.path.join(o.work, "sentinel.conf")
        text = re.sub(r"^sentinel monitor (\S+) \S+ \d+", r"sentinel monitor \1 127.0.0.1 %d" %
                      port, rcm["sentinel.conf"], flags=re.M)
        text = re.sub(r"^port \d+", "port %d" % sport, text, flags=re.M)
        open(sconf, "w").write(text + "bind 127.0.0.1\n")
        procs.append(subprocess.Popen([sentinel, sconf], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
        time.sleep(1.5)
        ok = True
        for p, what in zip(procs, ("redis-server redis.conf", "redis-sentinel sentinel.conf")):
            alive = p.poll() is None
            out = "" if alive else p.stdout.read().decode(errors="replace")[-400:]
            ok &= check(alive, "%s did not start: %s" % (what, out))
        if ok:
            print("ok: redis.conf and sentinel.conf start redis-server and redis-sentinel")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    for script in ("start-redis.sh", "start-sentinel.sh"):
        sh = os.path.join(o.work, script)
        open(sh, "w").write(rcm[script])
        r = subprocess.run(["sh", "-n", sh], capture_output=True, text=True)
        check(r.returncode == 0, "%s: sh -n: %s" % (script, r.stderr))

    # ---- the HPA and its metric --------------------------------------------------------------
    hpa = by["HorizontalPodAutoscaler"]["itsd"]["spec"]
    check(hpa["scaleTargetRef"]["kind"] == "StatefulSet" and
          hpa["scaleTargetRef"]["name"] == "itsd", "HPA targets the itsd StatefulSet")
    adapter = yaml.safe_load(open(os.path.join(o.source,
                                               "deploy/kubernetes/prometheus-adapter-values.yaml")))
    rules = {r["name"]["as"]: r for r in adapter["rules"]["custom"]}
    for mt in hpa["metrics"]:
        name = mt["pods"]["metric"]["name"]
        rule = rules.get(name)
        if check(rule is not None, "HPA metric %s has no prometheus-adapter rule" % name):
            check("its_scaling_recommendation" in rule["metricsQuery"],
                  "the HPA's metric comes from its_scaling_recommendation")
    exported = open(os.path.join(o.source, "include/its/metric_names.h")).read()
    check('"its_scaling_recommendation"' in exported, "itsd exports its_scaling_recommendation")
    check(hpa["minReplicas"] >= 1 + redis["spec"]["replicas"] // 3,
          "the HPA keeps enough replicas to take a lost one's cameras")

    if failures:
        print("FAILED: %d check(s)" % len(failures))
        sys.exit(1)
    print("kubernetes: %d objects checked" % len(objs))


if __name__ == "__main__":
    main()
