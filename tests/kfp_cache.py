"""KFP's cache rule, ported, and two runs of a compiled pipeline simulated with it.

Provenance (kubeflow/pipelines, Apache-2.0):

- ``backend/src/v2/cacheutils/cache.go``, ``GenerateCacheKey`` and ``GenerateFingerPrint``
  at 2.5.0 (d07cf1c7f9bd163091986de9bb723c4078c498b1) and 2.15.0
  (8fe8d7bdd88f027bde080f619762a0b3294796db; 2.16.0 identical): the key is the task's
  input artifact *names*, its resolved input parameter values, its output artifact specs
  (name, type, metadata; URI wiped) and output parameter types, and its image, command
  and args (2.15.0 adds the PVC names); the fingerprint is the sha256 of its JSON.
- The input artifact's name is the MLMD artifact id: ``backend/src/v2/metadata/
  converter.go``, ``toRuntimeArtifact`` (``Name: strconv.FormatInt(artifact.GetId(), 10)``).
  A task that runs makes new artifacts (new ids); a task that hits the cache hands on the
  cached execution's artifacts (``backend/src/v2/driver/driver.go``, ``reuseCachedOutputs``).
- Placeholders given whole as a parameter are resolved by the driver before the key is
  made (``driver.go``, ``resolveInputParameter``: ``{{$.pipeline_job_uuid}}`` is the run
  id, ``{{$.pipeline_job_name}}`` the run's display name, ...).
- A task is looked up only when its ``cachingOptions.enableCache`` is on
  (``getFingerPrintsAndID``), and the entry is scoped to the pipeline name and namespace.

What this module simulates: every task of the compiled IR run twice on the same data
(both branches of each condition, one iteration of each loop), a task's output a pure
function of its inputs' contents; it answers which tasks the second run takes from the
cache. It reproduces the rule, not the bytes of a real fingerprint.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDERS = ("{{$.pipeline_job_uuid}}", "{{$.pipeline_job_name}}",
                "{{$.pipeline_job_resource_name}}", "{{$.pipeline_task_uuid}}")


def generate_cache_key(input_artifacts: dict[str, list[str]], input_parameters: dict[str, Any],
                       output_artifacts: dict[str, dict], output_parameter_types: dict[str, str],
                       cmd_args: list[str], image: str, pvc_names: list[str] | None = None) -> dict:
    """``cacheutils.GenerateCacheKey``: the CacheKey message as protojson would write it."""
    container: dict[str, Any] = {"image": image, "cmdArgs": cmd_args}
    if pvc_names:  # 2.15.0 on; empty is omitted by protojson
        container["pvcNames"] = pvc_names
    return {
        "inputArtifactNames": {k: {"artifactNames": v} for k, v in input_artifacts.items()},
        "inputParameterValues": input_parameters,
        "outputArtifactsSpec": output_artifacts,
        "outputParametersSpec": output_parameter_types,
        "containerSpec": container,
    }


def fingerprint(cache_key: dict) -> str:
    """``GenerateFingerPrint``: sha256 of the key's JSON (Go's encoding/json: sorted keys)."""
    text = json.dumps(cache_key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Artifact:
    content: str  # what the bytes are (same data: same content)
    mlmd_id: str  # the MLMD artifact id: the cache key's "name"


@dataclass
class Run:
    """One run of the pipeline against a cache shared with earlier runs."""

    run_id: str
    display_name: str
    cache: dict[str, dict]
    ids: itertools.count
    # Each container task (by its place in the DAGs): (component name, taken from cache).
    tasks: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def hits(self) -> set[str]:
        """Components every task of which this run took from the cache."""
        names = {name for name, _ in self.tasks.values()}
        return {n for n in names if all(hit for name, hit in self.tasks.values() if name == n)}


def simulate(ir: dict, runs: int = 2) -> list[Run]:
    """Run the pipeline ``runs`` times on the same data; each run's hits and misses."""
    cache: dict[str, dict] = {}
    ids = itertools.count(1)
    done = []
    for n in range(1, runs + 1):
        run = Run(f"uuid-{n}", f"run {n}", cache, ids)
        root_inputs = {name: spec.get("defaultValue", f"argument:{name}") for name, spec in
                       ir["root"].get("inputDefinitions", {}).get("parameters", {}).items()}
        _dag(ir, ir["root"], root_inputs, {}, run, "")
        done.append(run)
    return done


def _component_name(ref: str) -> str:
    import re

    return re.sub(r"-\d+$", "", ref.removeprefix("comp-"))


def _order(tasks: dict) -> list[str]:
    """Tasks in an order that puts producers first."""
    def deps(spec):
        found = set(spec.get("dependentTasks", []))
        for kind in ("parameters", "artifacts"):
            for source in spec.get("inputs", {}).get(kind, {}).values():
                for key in ("taskOutputParameter", "taskOutputArtifact"):
                    if key in source:
                        found.add(source[key]["producerTask"])
        return found & set(tasks)

    ordered: list[str] = []
    while len(ordered) < len(tasks):
        ready = [t for t in sorted(tasks) if t not in ordered
                 and deps(tasks[t]) <= set(ordered)]
        assert ready, f"a cycle among {sorted(set(tasks) - set(ordered))}"
        ordered += ready
    return ordered


def _dag(ir, component, params, artifacts, run: Run, path: str) -> dict[str, dict]:
    """Run a DAG component; return each task's outputs {"parameters":..., "artifacts":...}."""
    outputs: dict[str, dict] = {}
    tasks = component["dag"]["tasks"]
    for name in _order(tasks):
        spec = tasks[name]
        in_params, in_artifacts = {}, {}
        for arg, source in spec.get("inputs", {}).get("parameters", {}).items():
            in_params[arg] = _parameter(source, params, outputs, run, name)
        for arg, source in spec.get("inputs", {}).get("artifacts", {}).items():
            if "componentInputArtifact" in source:
                in_artifacts[arg] = artifacts[source["componentInputArtifact"]]
            else:
                out = source["taskOutputArtifact"]
                in_artifacts[arg] = outputs[out["producerTask"]]["artifacts"][out["outputArtifactKey"]]
        iterator = spec.get("parameterIterator")
        if iterator:  # one iteration stands for all: its item is the list's first
            items = iterator["items"]
            source = items.get("inputParameter")
            listed = in_params.get(source) if source else json.dumps(items.get("raw"))
            in_params[iterator["itemInput"]] = f"{listed}[0]"
        child = ir["components"][spec["componentRef"]["name"]]
        where = f"{path}/{name}"
        if "dag" in child:
            inner = _dag(ir, child, in_params, in_artifacts, run, where)
            outputs[name] = _dag_outputs(child, inner)
        else:
            outputs[name] = _container(ir, child, spec, in_params, in_artifacts, run, where)
    return outputs


def _parameter(source, params, outputs, run: Run, task: str):
    if "componentInputParameter" in source:
        return params[source["componentInputParameter"]]
    if "taskOutputParameter" in source:
        out = source["taskOutputParameter"]
        return outputs[out["producerTask"]]["parameters"].get(out["outputParameterKey"])
    if "runtimeValue" in source:
        value = source["runtimeValue"].get("constant")
        return {"{{$.pipeline_job_uuid}}": run.run_id,
                "{{$.pipeline_job_name}}": run.display_name,
                "{{$.pipeline_job_resource_name}}": f"k8s-{run.run_id}",
                "{{$.pipeline_task_name}}": task,
                "{{$.pipeline_task_uuid}}": f"{run.run_id}-{task}"}.get(value, value) \
            if isinstance(value, str) else value
    return json.dumps(source, sort_keys=True)  # a status or expression: a constant here


def _dag_outputs(component, inner: dict[str, dict]) -> dict:
    found: dict[str, dict] = {"parameters": {}, "artifacts": {}}
    spec = component["dag"].get("outputs", {})
    for key, out in spec.get("parameters", {}).items():
        selectors = (out.get("valueFromOneof", {}).get("parameterSelectors")
                     or [out.get("valueFromParameter", {})])
        for sel in selectors:
            if sel.get("producerSubtask") in inner:
                found["parameters"][key] = inner[sel["producerSubtask"]]["parameters"].get(
                    sel["outputParameterKey"])
                break
    for key, out in spec.get("artifacts", {}).items():
        for sel in out.get("artifactSelectors", []):
            if sel.get("producerSubtask") in inner:
                found["artifacts"][key] = inner[sel["producerSubtask"]]["artifacts"][
                    sel["outputArtifactKey"]]
                break
    return found


def _container(ir, component, spec, in_params, in_artifacts, run: Run, where: str) -> dict:
    executor = ir["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    outs = component.get("outputDefinitions", {})
    out_artifacts = {k: {"name": "", "type": v.get("artifactType", {})}
                     for k, v in outs.get("artifacts", {}).items()}
    out_types = {k: v.get("parameterType", "") for k, v in outs.get("parameters", {}).items()}
    key = fingerprint(generate_cache_key(
        {k: [a.mlmd_id] for k, a in in_artifacts.items()}, in_params, out_artifacts, out_types,
        executor.get("command", []) + executor.get("args", []), executor["image"]))
    name = _component_name(spec["componentRef"]["name"])
    cached = spec.get("cachingOptions", {}).get("enableCache", False)
    if cached and key in run.cache:
        run.tasks[where] = (name, True)
        return run.cache[key]
    run.tasks[where] = (name, False)
    contents = _digest(name, in_params, {k: a.content for k, a in in_artifacts.items()})
    result = {
        "parameters": {k: f"{name}.{k}:{contents}" for k in out_types},
        "artifacts": {k: Artifact(f"{name}.{k}:{contents}", str(next(run.ids)))
                      for k in out_artifacts},
    }
    if cached:
        run.cache[key] = result
    return result
