"""Offline checks of the example GitOps repository (examples/gitops), run by
tests/tests/examples.rs with a Python that has kubernetes-validate, jsonschema and lupa.

Subcommands:

  split --crds DIR --builtin OUT FILE
      Reads the multi-document YAML FILE (a `kubectl kustomize` output). Custom resources of
      the chart's CRDs are validated against the served version's openAPIV3Schema, strictly
      (unknown fields are errors, as the API server's strict field validation makes them,
      except under x-kubernetes-preserve-unknown-fields); Argo CD and Flux objects are
      checked for the fields their controllers require; built-in kinds are written to OUT
      for `python -m kubernetes_validate --strict`. Prints one JSON object per document
      ({"kind", "apiVersion", "name", "namespace", "check"}) as a JSON list; exits 1 with
      the errors on standard error when any document fails.

  health SCRIPT
      Runs the Argo CD health check SCRIPT (Lua 5.1, as Argo CD's gopher-lua) once per
      object of the JSON list on standard input, as `obj`; prints the list of results
      ({"status", "message"}).

  configmap FILE
      Prints the `data` of the ConfigMap in the YAML FILE as JSON.

  tojson FILE
      Prints the documents of the YAML FILE as a JSON list.
"""

import argparse
import copy
import json
import os
import sys

import jsonschema
import yaml

# API groups of built-in kinds: no dot, or a Kubernetes-owned domain.
def is_builtin(api_version):
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def strict_schema(schema):
    """A copy of an openAPIV3Schema in which objects with `properties` admit no other
    fields, unless marked x-kubernetes-preserve-unknown-fields or given
    additionalProperties."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def load_crds(directory):
    """{(group, version, kind): strict schema} for every served version of the CRDs."""
    schemas = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(directory, name)) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if not version.get("served"):
                        continue
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    schema = version["schema"]["openAPIV3Schema"]
                    schemas[key] = strict_schema(schema)
    return schemas


def require(doc, paths, errors, where):
    for path in paths:
        node = doc
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node or node[part] in (None, "", [], {}):
                errors.append(f"{where}: missing required field {path}")
                break
            node = node[part]


def check_application_spec(spec, errors, where):
    require(spec, ["project", "destination"], errors, where)
    if "source" not in spec and "sources" not in spec:
        errors.append(f"{where}: spec.source or spec.sources is required")
    for source in spec.get("sources") or [spec.get("source") or {}]:
        require(source, ["repoURL"], errors, where + " source")
        if "path" not in source and "chart" not in source:
            errors.append(f"{where}: a source needs a path or a chart")
    destination = spec.get("destination") or {}
    if "server" not in destination and "name" not in destination:
        errors.append(f"{where}: destination needs server or name")


def check_gitops(doc, errors, where):
    """The fields Argo CD's and Flux's controllers refuse an object without."""
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    spec = doc.get("spec") or {}
    if (kind, api_version) == ("Application", "argoproj.io/v1alpha1"):
        check_application_spec(spec, errors, where)
    elif (kind, api_version) == ("ApplicationSet", "argoproj.io/v1alpha1"):
        require(spec, ["generators", "template.metadata.name", "template.spec"], errors, where)
        if isinstance(spec.get("template"), dict):
            check_application_spec(spec["template"].get("spec") or {}, errors, where + " template")
    elif (kind, api_version) == ("GitRepository", "source.toolkit.fluxcd.io/v1"):
        require(spec, ["url", "interval"], errors, where)
    elif (kind, api_version) == ("Kustomization", "kustomize.toolkit.fluxcd.io/v1"):
        require(spec, ["interval", "prune", "sourceRef.kind", "sourceRef.name"], errors, where)
        if not isinstance(spec.get("prune"), bool):
            errors.append(f"{where}: spec.prune must be a boolean")
        for dependency in spec.get("dependsOn") or []:
            require(dependency, ["name"], errors, where + " dependsOn")
    elif (kind, api_version) == ("HelmRelease", "helm.toolkit.fluxcd.io/v2"):
        require(spec, ["interval", "chart.spec.chart", "chart.spec.sourceRef.kind",
                       "chart.spec.sourceRef.name"], errors, where)
    else:
        return False
    return True


def split(args):
    schemas = load_crds(args.crds)
    with open(args.file) as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc]
    report, builtin, errors = [], [], []
    for doc in docs:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        metadata = doc.get("metadata") or {}
        where = f"{kind}/{metadata.get('name')}"
        if not metadata.get("name"):
            errors.append(f"{where}: metadata.name is required")
        group, _, version = api_version.rpartition("/")
        if is_builtin(api_version):
            check = "kubernetes"
            builtin.append(doc)
        elif (group, version, kind) in schemas:
            check = "crd"
            validator = jsonschema.Draft7Validator(schemas[(group, version, kind)])
            for error in validator.iter_errors(doc):
                path = ".".join(str(p) for p in error.absolute_path)
                errors.append(f"{where}: {path}: {error.message}")
        elif check_gitops(doc, errors, where):
            check = "fields"
        else:
            check = "none"
            errors.append(f"{where}: no schema for {api_version} {kind}")
        report.append({
            "kind": kind,
            "apiVersion": api_version,
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "check": check,
        })
    with open(args.builtin, "w") as f:
        yaml.safe_dump_all(builtin, f, sort_keys=False)
    json.dump(report, sys.stdout)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)


def health(args):
    from lupa import lua51

    with open(args.script) as f:
        script = f.read()
    objects = json.load(sys.stdin)
    results = []
    for obj in objects:
        lua = lua51.LuaRuntime(unpack_returned_tuples=True)
        lua.globals().obj = to_lua(lua, obj)
        hs = lua.execute(script)
        results.append({"status": hs["status"], "message": hs["message"]})
    json.dump(results, sys.stdout)


def to_lua(lua, value):
    """JSON values as Argo CD hands them to Lua: objects and arrays as tables (arrays
    1-based), numbers as Lua numbers."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def configmap(args):
    with open(args.file) as f:
        doc = yaml.safe_load(f)
    assert doc["kind"] == "ConfigMap", doc["kind"]
    json.dump(doc.get("data") or {}, sys.stdout)


def tojson(args):
    with open(args.file) as f:
        json.dump([doc for doc in yaml.safe_load_all(f) if doc], sys.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("split")
    p.add_argument("--crds", required=True)
    p.add_argument("--builtin", required=True)
    p.add_argument("file")
    p.set_defaults(run=split)
    p = commands.add_parser("health")
    p.add_argument("script")
    p.set_defaults(run=health)
    p = commands.add_parser("configmap")
    p.add_argument("file")
    p.set_defaults(run=configmap)
    p = commands.add_parser("tojson")
    p.add_argument("file")
    p.set_defaults(run=tojson)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
