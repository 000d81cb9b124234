//! The operator files in `deploy/` stay true to the code: the admin API's
//! OpenAPI document is OpenAPI 3.1 with exactly the admin routes; every
//! Kubernetes manifest parses (PyYAML, an independent parser) and names its
//! object; the example TOML files load as origin configurations; every
//! `LIVESTACK_*` variable the files set is one the binary reads; and every
//! metric the Grafana dashboard queries is one that a running origin or edge
//! exposes at `/metrics`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use livestack_origin::config::OriginConfig;
use livestack_test_harness::{hls::HttpClient, require, start_edge, start_origin};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Files under `dir` (recursively) whose name ends with one of `suffixes`.
fn files(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if suffixes.iter().any(|s| path.to_string_lossy().ends_with(s)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The admin routes: path → methods, exactly as the origin routes them.
const ADMIN_ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/v1/openapi.json", &["get"]),
    ("/v1/nodes", &["get"]),
    ("/v1/nodes/{id}/drain", &["post", "delete"]),
    ("/v1/streams", &["get"]),
    ("/v1/streams/{name}/kick", &["post"]),
    ("/v1/sessions", &["get"]),
    ("/v1/keys", &["get", "post"]),
    ("/v1/keys/{id}", &["delete"]),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Checks that every local `$ref` of `v` points into `root`.
fn check_refs(root: &Value, v: &Value, at: &str) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "$ref" {
                    let r = x.as_str().expect("$ref is a string");
                    let pointer = r
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("{at}: only local $refs, got {r}"));
                    assert!(
                        root.pointer(pointer).is_some(),
                        "{at}: $ref {r} points nowhere"
                    );
                } else {
                    check_refs(root, x, &format!("{at}/{k}"));
                }
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_refs(root, x, &format!("{at}/{i}"));
            }
        }
        _ => {}
    }
}

#[test]
fn openapi_document_is_3_1_with_exactly_the_admin_routes() {
    let doc = read_json(&deploy().join("openapi.json"));
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "OpenAPI 3.1, got {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let paths = doc["paths"].as_object().expect("paths");
    let expected: BTreeMap<&str, BTreeSet<&str>> = ADMIN_ROUTES
        .iter()
        .map(|(p, m)| (*p, m.iter().copied().collect()))
        .collect();
    let listed: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        expected.keys().copied().collect(),
        "the document's paths must be exactly the admin routes"
    );
    for (path, methods) in &expected {
        let item = paths[*path].as_object().expect("path item");
        let have: BTreeSet<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| HTTP_METHODS.contains(k))
            .collect();
        assert_eq!(&have, methods, "methods of {path}");
        for m in methods {
            let op = &item[*m];
            let responses = op["responses"].as_object().expect("responses");
            let open = *path == "/healthz" || *path == "/v1/openapi.json";
            if open {
                assert_eq!(
                    op["security"],
                    Value::Array(vec![]),
                    "{m} {path} needs no token"
                );
            } else {
                for code in ["401", "503"] {
                    assert!(responses.contains_key(code), "{m} {path} documents {code}");
                }
            }
            assert!(
                responses.keys().any(|c| c.starts_with('2')),
                "{m} {path} documents its success"
            );
            // Path templates and declared path parameters agree.
            let params: BTreeSet<String> = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().expect("name").to_owned())
                .collect();
            let templated: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            assert_eq!(params, templated, "path parameters of {path}");
        }
    }

    // Bearer authentication everywhere by default.
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"][0]["bearerAuth"], Value::Array(vec![]));
    // The error body, and the bodies of every call.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Error",
        "NodeInfo",
        "NodeLoad",
        "DrainState",
        "Stream",
        "KickResult",
        "Session",
        "StreamKey",
        "StreamKeyCreate",
        "StreamKeyCreated",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    let error_required = &schemas["Error"]["required"];
    assert_eq!(
        error_required,
        &serde_json::json!(["error", "reason"]),
        "errors are {{error, reason}}"
    );
    let unauthorized = &doc["components"]["responses"]["Unauthorized"];
    assert!(
        unauthorized["headers"]["WWW-Authenticate"].is_object(),
        "401 carries WWW-Authenticate"
    );
    check_refs(&doc, &doc, "");
}

/// Parses every YAML file under `dir` with PyYAML's `safe_load_all` and
/// returns (file, documents) as JSON.
fn load_yaml_with_python(dir: &Path) -> Vec<(String, Vec<Value>)> {
    require("python3");
    const SCRIPT: &str = r#"
import json, pathlib, sys
try:
    import yaml
except ImportError:
    sys.exit("PyYAML is missing: run tests/run.sh (it installs tests/requirements.txt into target/pyenv and puts it first on PATH)")
out = []
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*")):
    if path.suffix in (".yaml", ".yml"):
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        out.append([str(path), docs])
json.dump(out, sys.stdout)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "parsing the YAML of {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

#[test]
fn kubernetes_manifests_parse_and_name_their_objects() {
    let dir = deploy().join("kubernetes");
    let loaded = load_yaml_with_python(&dir);
    assert!(
        loaded.len() >= 5,
        "expected the Kubernetes manifests, found {}",
        loaded.len()
    );
    let mut kinds = BTreeSet::new();
    let mut secret_keys = BTreeSet::new();
    for (file, docs) in &loaded {
        assert!(!docs.is_empty(), "{file} has no document");
        for doc in docs {
            for field in ["apiVersion", "kind"] {
                assert!(
                    doc[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{file}: a document without {field}: {doc}"
                );
            }
            assert!(
                doc["metadata"]["name"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{file}: a {} without metadata.name",
                doc["kind"]
            );
            kinds.insert(doc["kind"].as_str().expect("kind").to_owned());
            collect_secret_keys(doc, &mut secret_keys);
        }
    }
    for kind in [
        "Namespace",
        "StatefulSet",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Kustomization",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }

    // Every resource the kustomization lists exists, and so does every file
    // its generators read (secrets.env is the operator's copy of the
    // example).
    let kustomization = loaded
        .iter()
        .flat_map(|(_, docs)| docs)
        .find(|d| d["kind"] == "Kustomization")
        .expect("kustomization.yaml");
    for r in kustomization["resources"].as_array().expect("resources") {
        let r = r.as_str().expect("resource path");
        assert!(dir.join(r).is_file(), "kustomization lists missing {r}");
    }
    for f in kustomization["configMapGenerator"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["files"].as_array().into_iter().flatten())
    {
        let f = f.as_str().expect("file");
        assert!(
            dir.join(f).is_file(),
            "configMapGenerator reads missing {f}"
        );
    }
    // The secret keys the workloads read are all in the example.
    let example = read(&dir.join("secrets.env.example"));
    let defined: BTreeSet<&str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    for key in &secret_keys {
        assert!(
            defined.contains(key.as_str()),
            "secrets.env.example lacks {key}"
        );
    }
}

/// Keys of `secretKeyRef`s anywhere in `v`.
fn collect_secret_keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(r) = map.get("secretKeyRef") {
                out.insert(r["key"].as_str().expect("secret key").to_owned());
            }
            map.values().for_each(|x| collect_secret_keys(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| collect_secret_keys(x, out)),
        _ => {}
    }
}

#[test]
fn example_origin_toml_files_load() {
    for path in files(&deploy(), &["origin.toml"]) {
        let config = OriginConfig::from_toml(&read(&path))
            .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{} is invalid: {e}", path.display()));
    }
}

/// Every `"LIVESTACK_..."` string literal in the sources that read settings.
fn env_vars_in_code() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let root = repo();
    for dir in [
        "origin/livestack/src",
        "origin/server/src",
        "edge-modules/server/src",
    ] {
        for file in files(&root.join(dir), &[".rs"]) {
            let text = read(&file);
            for (i, _) in text.match_indices("\"LIVESTACK_") {
                let name: String = text[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
    }
    names
}

/// `LIVESTACK_*` names set in `text` (`NAME=value` lines of env files,
/// `- name: NAME` of Kubernetes env lists, `ENV`/`Environment=` lines).
fn env_vars_set_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        for (i, _) in line.match_indices("LIVESTACK_") {
            // Skip references such as $(LIVESTACK_REGION): only the name
            // being set counts.
            let before = &line[..i];
            if before.ends_with("$(") || before.ends_with("${") || before.ends_with('$') {
                continue;
            }
            let name: String = line[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let after = &line[i + name.len()..];
            if after.starts_with('=') || (before.trim_end().ends_with("name:") && after.is_empty())
            {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn deploy_files_set_only_variables_the_binary_reads() {
    let known = env_vars_in_code();
    assert!(
        known.contains("LIVESTACK_HTTP") && known.contains("LIVESTACK_TOKEN_KEYS"),
        "the scan of the sources found the flags' variables: {known:?}"
    );
    let mut checked = 0;
    for path in files(
        &deploy(),
        &[".env", ".env.example", ".service", ".yaml", "Containerfile"],
    ) {
        for name in env_vars_set_in(&read(&path)) {
            checked += 1;
            assert!(
                known.contains(&name),
                "{} sets {name}, which livestack does not read",
                path.display()
            );
        }
    }
    assert!(
        checked > 20,
        "only {checked} variables found: the scan is broken"
    );

    let unit = read(&deploy().join("systemd/livestack-origin.service"));
    assert!(unit.contains("ExecStart=/usr/local/bin/livestack origin"));
    assert!(unit.contains("EnvironmentFile=/etc/livestack/origin.env"));
    let unit = read(&deploy().join("systemd/livestack-edge.service"));
    assert!(unit.contains("ExecStart=/usr/local/bin/livestack edge"));
    assert!(unit.contains("EnvironmentFile=/etc/livestack/edge.env"));
    let containerfile = read(&deploy().join("container/Containerfile"));
    assert!(containerfile.contains("cargo build -p livestack --release --locked"));
    assert!(containerfile.contains("rustup target add wasm32-wasip2"));
}

/// (families, sample names) of a Prometheus/OpenMetrics text exposition.
/// Families come from the `# TYPE` lines, so metrics without samples yet
/// (label families never incremented) count too.
fn exposed(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                continue;
            };
            families.insert(name.to_owned());
            match kind {
                "counter" => {
                    let total = if name.ends_with("_total") {
                        name.to_owned()
                    } else {
                        format!("{name}_total")
                    };
                    samples.insert(total);
                }
                "histogram" | "gaugehistogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        samples.insert(format!("{name}{suffix}"));
                    }
                }
                "summary" => {
                    for suffix in ["", "_sum", "_count"] {
                        samples.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    samples.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            samples.insert(name);
        }
    }
    (families, samples)
}

/// Every `livestack_*` metric name in the PromQL strings of the dashboard
/// (`expr` of targets, `query`/`definition` of template variables).
fn dashboard_metrics(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if let ("expr" | "query" | "definition", Value::String(s)) = (k.as_str(), x) {
                    for (i, _) in s.match_indices("livestack_") {
                        let prev = s[..i].chars().last();
                        if prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                            continue;
                        }
                        let name: String = s[i..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                            .collect();
                        out.insert(name);
                    }
                } else {
                    dashboard_metrics(x, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| dashboard_metrics(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_queries_only_exposed_metrics() {
    let dashboard = read_json(&deploy().join("grafana/livestack.json"));
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "a recent schemaVersion"
    );
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );

    let mut used = BTreeSet::new();
    dashboard_metrics(&dashboard, &mut used);
    assert!(used.len() >= 15, "the dashboard queries {used:?}");

    let origin = start_origin(|_| {}).await;
    let edge = start_edge(origin.http_addr).await;
    let client = HttpClient::new();
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for addr in [origin.http_addr, edge.http_addr] {
        let r = client.get(&format!("http://{addr}/metrics")).await;
        assert_eq!(r.status, 200, "/metrics of {addr}");
        let (f, s) = exposed(&String::from_utf8_lossy(&r.body));
        families.extend(f);
        samples.extend(s);
    }
    assert!(
        samples.contains("livestack_origin_parts_total")
            && samples.contains("livestack_edge_component_seconds_bucket"),
        "the exposition parses: {samples:?}"
    );

    for name in &used {
        if samples.contains(name) {
            continue;
        }
        // A family declared (`# TYPE`) but without samples yet: a label
        // family nothing has incremented, e.g. control-plane errors.
        let family = ["_total", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            families.contains(family),
            "the dashboard queries {name}, which neither the origin nor the edge exposes; \
             exposed: {samples:?}"
        );
    }
}
