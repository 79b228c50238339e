//! A local Compute Engine server for the tests: plain HTTP on a loopback port, answering the
//! calls fleetscope makes with bodies shaped as in Compute's discovery document and the real
//! payloads in `tests/fixtures/gcp/`, paging tokens included. It is also the OAuth token
//! endpoint named by an `authorized_user` credentials file, so the product authenticates
//! through its real credentials path, and Resource Manager v3 (`/v3/projects`, `/v3/folders`
//! by parent) for the projects under folders and organizations. Faults (status codes, delays,
//! garbage) are injected by path.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const TOKEN: &str = "test-access-token";
const PUBLIC: &str = "https://www.googleapis.com/compute/v1/";

/// A fault: every request whose path contains `path` (and whose method matches, if given)
/// gets it, `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub path: String,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    Status(u16, Value),
    Delay(Duration),
    Garbage,
    /// This status, with the request's own body as the answer, as some endpoints echo what
    /// they were sent.
    Echo(u16),
}

#[derive(Default)]
pub struct World {
    /// Resource path (`projects/p/zones/z/instances/n`) -> resource.
    pub resources: BTreeMap<String, Value>,
    /// Answers recorded from Compute, served as they are for a GET of exactly this path.
    pub recorded: BTreeMap<String, Value>,
    pub faults: Vec<Fault>,
    /// `METHOD path` of every Compute call, in order.
    pub calls: Vec<String>,
    pub token_requests: usize,
    /// Instance path -> when its recreation finishes.
    pub recreating: HashMap<String, Instant>,
    /// How long recreating an instance takes, by instance name.
    pub recreate_delay: HashMap<String, Duration>,
    /// Instances whose recreated self never turns healthy.
    pub unhealthy: HashSet<String>,
    /// Added to every Compute answer, as a distant endpoint would.
    pub latency: Duration,
    next_operation: u64,
    /// Resource Manager: the organizations there are (`organizations/100`).
    pub organizations: BTreeSet<String>,
    /// Resource Manager's folders as it shows them, by name (`folders/200`).
    pub folders: BTreeMap<String, Value>,
    /// Resource Manager's projects as it shows them, by project id.
    pub projects: BTreeMap<String, Value>,
    /// Folders and organizations whose listings the credential may not read.
    pub forbidden: BTreeSet<String>,
    /// The most items Resource Manager puts on one page (500 when unset).
    pub page_max: Option<usize>,
    /// `GET v3/<collection> <query>` of every Resource Manager call, in order.
    pub directory_calls: Vec<String>,
}

pub struct Compute {
    pub world: Arc<Mutex<World>>,
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl Compute {
    pub fn start(world: World) -> Compute {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let world = Arc::new(Mutex::new(world));
        let shared = world.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let world = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, world).await;
                });
            }
        });
        Compute {
            world,
            port,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An `authorized_user` credentials file whose token endpoint is this server.
    pub fn credentials_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("adc.json");
        let body = json!({
            "type": "authorized_user",
            "client_id": "test-client.apps.googleusercontent.com",
            "client_secret": "test-secret",
            "refresh_token": "test-refresh-token",
            "token_uri": format!("{}/token", self.url()),
        });
        std::fs::write(&path, body.to_string()).unwrap();
        path
    }

    /// The environment for the binary: the credentials file, and no proxy for loopback.
    pub fn env(&self, dir: &Path) -> Vec<(String, String)> {
        vec![
            (
                "GOOGLE_APPLICATION_CREDENTIALS".into(),
                self.credentials_file(dir).display().to_string(),
            ),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
            ("no_proxy".into(), "127.0.0.1,localhost".into()),
            ("HTTP_PROXY".into(), String::new()),
            ("HTTPS_PROXY".into(), String::new()),
            ("http_proxy".into(), String::new()),
            ("https_proxy".into(), String::new()),
            (
                "CLOUDSDK_CONFIG".into(),
                dir.join("gcloud").display().to_string(),
            ),
        ]
    }

    pub fn calls(&self) -> Vec<String> {
        self.world.lock().unwrap().calls.clone()
    }

    pub fn resource(&self, path: &str) -> Value {
        self.world.lock().unwrap().resources[path].clone()
    }

    /// Every instance template, global and regional, by path.
    pub fn templates(&self) -> BTreeMap<String, Value> {
        self.world
            .lock()
            .unwrap()
            .resources
            .iter()
            .filter(|(k, _)| k.contains("/instanceTemplates/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The image a member's boot disk was made from, as a path.
    pub fn boot_image(&self, zone: &str, name: &str) -> String {
        let disk = self.resource(&format!("projects/shop/zones/{zone}/disks/{name}"));
        let image = disk["sourceImage"].as_str().unwrap_or("");
        image.strip_prefix(PUBLIC).unwrap_or(image).to_owned()
    }
}

async fn serve(stream: tokio::net::TcpStream, world: Arc<Mutex<World>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let mut length = 0usize;
        let mut authorization = String::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let (status, text) = respond(&world, &method, &target, &authorization, &body).await;
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            if status < 400 { "OK" } else { "Error" },
            text.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(text.as_bytes()).await?;
    }
}

fn error(code: u16, message: &str, reason: &str) -> (u16, String) {
    let body = json!({"error": {"code": code, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}]}});
    (code, body.to_string())
}

/// The first fault for `path` with uses left, used once.
fn take_fault(faults: &mut [Fault], path: &str) -> Option<FaultKind> {
    let found = faults
        .iter_mut()
        .find(|f| f.times > 0 && path.contains(&f.path))?;
    found.times -= 1;
    Some(found.kind.clone())
}

async fn respond(
    world: &Arc<Mutex<World>>,
    method: &str,
    target: &str,
    authorization: &str,
    body: &[u8],
) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    if path == "/token" {
        let fault = {
            let mut world = world.lock().unwrap();
            world.token_requests += 1;
            take_fault(&mut world.faults, path)
        };
        if let Some(FaultKind::Echo(code)) = fault {
            return (code, String::from_utf8_lossy(body).into_owned());
        }
        let body = json!({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/cloud-platform"});
        return (200, body.to_string());
    }
    if let Some(collection) = path.strip_prefix("/v3/") {
        return resource_manager(world, method, collection, &query, authorization).await;
    }
    let Some(path) = path.strip_prefix("/compute/v1/") else {
        return error(404, &format!("no such path {path}"), "notFound");
    };
    let (fault, latency) = {
        let mut world = world.lock().unwrap();
        world.calls.push(format!("{method} {path}"));
        let latency = world.latency;
        (take_fault(&mut world.faults, path), latency)
    };
    tokio::time::sleep(latency).await;
    match fault {
        Some(FaultKind::Status(code, body)) => return (code, body.to_string()),
        Some(FaultKind::Garbage) => return (200, "<html>not json".to_owned()),
        Some(FaultKind::Echo(code)) => return (code, String::from_utf8_lossy(body).into_owned()),
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    if authorization != format!("Bearer {TOKEN}") {
        return error(
            401,
            "Request is missing required authentication credential.",
            "required",
        );
    }
    let mut world = world.lock().unwrap();
    world.settle();
    if method == "GET"
        && let Some(recorded) = world.recorded.get(path)
    {
        return (200, recorded.to_string());
    }
    let segments: Vec<&str> = path.split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["projects", project, "aggregated", kind]) => {
            world.aggregated(project, kind, &query)
        }
        ("GET", ["projects", project, "global", "firewalls"]) => {
            let prefix = format!("projects/{project}/global/firewalls/");
            let items: Vec<Value> = world
                .resources
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| v.clone())
                .collect();
            let body = json!({"kind": "compute#firewallList", "items": items,
                "selfLink": format!("{PUBLIC}projects/{project}/global/firewalls")});
            (200, body.to_string())
        }
        ("GET", ["projects", project, "global", "images", "family", family]) => {
            world.family_image(project, family)
        }
        (
            "GET",
            [
                "projects",
                _,
                scope,
                _,
                "instanceGroupManagers",
                _,
                "listManagedInstances",
            ],
        )
        | (
            "POST",
            [
                "projects",
                _,
                scope,
                _,
                "instanceGroupManagers",
                _,
                "listManagedInstances",
            ],
        ) if matches!(*scope, "zones" | "regions") => {
            let group = segments[..6].join("/");
            world.managed_instances(&group)
        }
        (
            "POST",
            [
                "projects",
                project,
                scope,
                place,
                "instanceGroupManagers",
                _,
                "recreateInstances",
            ],
        ) => {
            let group = segments[..6].join("/");
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            world.recreate(project, scope, place, &group, &body)
        }
        ("POST", ["projects", project, "global", "instanceTemplates"]) => {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            world.insert_template(project, None, body)
        }
        ("POST", ["projects", project, "regions", region, "instanceTemplates"]) => {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            world.insert_template(project, Some(region), body)
        }
        (
            "POST",
            [
                "projects",
                project,
                scope,
                place,
                "instanceGroupManagers",
                _,
                "setInstanceTemplate",
            ],
        ) => {
            let group = segments[..6].join("/");
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            world.set_instance_template(project, scope, place, &group, &body)
        }
        ("GET", _) => match world.resources.get(path) {
            Some(found) => (200, found.to_string()),
            None => error(
                404,
                &format!("The resource '{path}' was not found"),
                "notFound",
            ),
        },
        _ => error(400, &format!("unexpected {method} {path}"), "badRequest"),
    }
}

/// Resource Manager v3's listings by parent: `GET /v3/projects?parent=…` and
/// `GET /v3/folders?parent=…`, paged, in Google's JSON error shape when refused. It lists every
/// project and folder whatever its state, as if asked with `showDeleted`, so that what keeps a
/// DELETE_REQUESTED one out is the client's own check. Faults match `v3/<collection>
/// parent=<parent>`.
async fn resource_manager(
    world: &Arc<Mutex<World>>,
    method: &str,
    collection: &str,
    query: &HashMap<String, String>,
    authorization: &str,
) -> (u16, String) {
    let parent = query.get("parent").cloned().unwrap_or_default();
    let key = format!("v3/{collection} parent={parent}");
    let (fault, latency) = {
        let mut world = world.lock().unwrap();
        let mut asked: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        asked.sort();
        world
            .directory_calls
            .push(format!("{method} v3/{collection} {}", asked.join("&")));
        let latency = world.latency;
        (take_fault(&mut world.faults, &key), latency)
    };
    tokio::time::sleep(latency).await;
    match fault {
        Some(FaultKind::Status(code, body)) => return (code, body.to_string()),
        Some(FaultKind::Garbage) => return (200, "<html>not json".to_owned()),
        Some(FaultKind::Echo(code)) => return (code, String::new()),
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    if authorization != format!("Bearer {TOKEN}") {
        return rpc_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            None,
        );
    }
    let world = world.lock().unwrap();
    let (field, permission) = match (method, collection) {
        ("GET", "projects") => ("projects", "resourcemanager.projects.list"),
        ("GET", "folders") => ("folders", "resourcemanager.folders.list"),
        _ => {
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                &format!("unexpected {method} v3/{collection}"),
                None,
            );
        }
    };
    let exists = world.organizations.contains(&parent) || world.folders.contains_key(&parent);
    if !exists || world.forbidden.contains(&parent) {
        // As Resource Manager answers: the same for a parent that does not exist.
        let message = format!(
            "Permission '{permission}' denied on resource '//cloudresourcemanager.googleapis.com/{parent}' (or it may not exist)."
        );
        let info = json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED", "domain": "cloudresourcemanager.googleapis.com",
            "metadata": {"permission": permission, "resource": parent}});
        return rpc_error(403, "PERMISSION_DENIED", &message, Some(info));
    }
    let items: Vec<Value> = match field {
        "projects" => world.projects.values(),
        _ => world.folders.values(),
    }
    .filter(|item| item["parent"] == parent.as_str())
    .cloned()
    .collect();
    let asked: usize = query
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(500);
    let size = asked.min(world.page_max.unwrap_or(500)).max(1);
    let start: usize = match query.get("pageToken").filter(|t| !t.is_empty()) {
        Some(token) => match token.strip_prefix("page-").and_then(|n| n.parse().ok()) {
            Some(start) if start <= items.len() => start,
            _ => {
                return rpc_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Request contains an invalid argument.",
                    None,
                );
            }
        },
        None => 0,
    };
    let end = (start + size).min(items.len());
    // The client asks for enums as numbers (`$alt=json;enum-encoding=int`), as Google honours.
    let numbers = query
        .get("$alt")
        .is_some_and(|alt| alt.contains("enum-encoding=int"));
    let page: Vec<Value> = items[start..end]
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if numbers {
                item["state"] = match item["state"].as_str() {
                    Some("ACTIVE") => json!(1),
                    Some("DELETE_REQUESTED") => json!(2),
                    _ => json!(0),
                };
            }
            item
        })
        .collect();
    let mut body = json!({ field: page });
    if end < items.len() {
        body["nextPageToken"] = json!(format!("page-{end}"));
    }
    (200, body.to_string())
}

/// An error as Google's newer APIs send it: `code`, `message`, `status`, `details`.
fn rpc_error(code: u16, status: &str, message: &str, detail: Option<Value>) -> (u16, String) {
    let mut body = json!({"error": {"code": code, "message": message, "status": status}});
    if let Some(detail) = detail {
        body["error"]["details"] = json!([detail]);
    }
    (code, body.to_string())
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A payload from `tests/fixtures/gcp/`: the body of a recorded exchange, or the file itself.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gcp")
        .join(name);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    match value.get("body") {
        Some(body) => body.clone(),
        None => value,
    }
}

impl World {
    pub fn insert(&mut self, path: impl Into<String>, resource: Value) {
        self.resources.insert(path.into(), resource);
    }

    /// An organization, `organizations/<id>`.
    pub fn organization(&mut self, id: u64) {
        self.organizations.insert(format!("organizations/{id}"));
    }

    /// A folder `folders/<id>` under `parent`, ACTIVE or DELETE_REQUESTED.
    pub fn folder(&mut self, id: u64, parent: &str, name: &str, state: &str) {
        let folder = json!({
            "name": format!("folders/{id}"),
            "parent": parent,
            "displayName": name,
            "state": state,
            "createTime": "2025-03-01T10:00:00.000Z",
            "updateTime": "2025-03-01T10:00:00.000Z",
            "etag": format!("W/\"f{id}\""),
        });
        self.folders.insert(format!("folders/{id}"), folder);
    }

    /// A project with this id and number under `parent`, ACTIVE or DELETE_REQUESTED.
    pub fn project(&mut self, id: &str, number: u64, parent: &str, state: &str) {
        let mut project = json!({
            "name": format!("projects/{number}"),
            "parent": parent,
            "projectId": id,
            "state": state,
            "displayName": id,
            "createTime": "2025-03-02T10:00:00.000Z",
            "updateTime": "2025-03-02T10:00:00.000Z",
            "etag": format!("W/\"p{number}\""),
            "labels": {"env": "test"},
        });
        if state == "DELETE_REQUESTED" {
            project["deleteTime"] = json!("2026-10-30T10:00:00.000Z");
        }
        self.projects.insert(id.to_owned(), project);
    }

    pub fn fault(&mut self, path: &str, kind: FaultKind, times: usize) {
        self.faults.push(Fault {
            path: path.to_owned(),
            kind,
            times,
        });
    }

    /// Finishes recreations whose time has come.
    fn settle(&mut self) {
        let now = Instant::now();
        self.recreating.retain(|_, until| *until > now);
    }

    fn aggregated(
        &self,
        project: &str,
        kind: &str,
        query: &HashMap<String, String>,
    ) -> (u16, String) {
        let (collection, list_kind) = match kind {
            "instances" => ("instances", "compute#instanceAggregatedList"),
            "disks" => ("disks", "compute#diskAggregatedList"),
            _ => return error(400, &format!("unexpected aggregated {kind}"), "badRequest"),
        };
        let prefix = format!("projects/{project}/zones/");
        let filter = query.get("filter").map(String::as_str).unwrap_or("");
        let matching: Vec<(&String, &Value)> = self
            .resources
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.split('/').nth(4) == Some(collection))
            .filter(|(_, v)| matches_filter(v, filter))
            .collect();
        let max: usize = query
            .get("maxResults")
            .and_then(|m| m.parse().ok())
            .unwrap_or(500);
        let start: usize = query
            .get("pageToken")
            .filter(|t| !t.is_empty())
            .map(|t| t.trim_start_matches("page-").parse().unwrap_or(usize::MAX))
            .unwrap_or(0);
        if start > matching.len() {
            return error(400, "Invalid value for field 'pageToken'", "invalid");
        }
        let end = (start + max).min(matching.len());
        let mut items: BTreeMap<String, Value> = BTreeMap::new();
        for (key, value) in &matching[start..end] {
            let zone = key.split('/').nth(3).unwrap_or("");
            let scoped = items
                .entry(format!("zones/{zone}"))
                .or_insert_with(|| json!({ collection: [] }));
            scoped[collection]
                .as_array_mut()
                .unwrap()
                .push(self.present(key, value));
        }
        // Compute lists every zone, the empty ones with a warning.
        items.entry("zones/asia-east1-a".into()).or_insert_with(|| {
            json!({"warning": {"code": "NO_RESULTS_ON_PAGE",
                "message": "There are no results for scope 'zones/asia-east1-a' on this page.",
                "data": [{"key": "scope", "value": "zones/asia-east1-a"}]}})
        });
        let mut body = json!({
            "kind": list_kind,
            "id": format!("projects/{project}/aggregated/{collection}"),
            "items": items,
            "selfLink": format!("{PUBLIC}projects/{project}/aggregated/{collection}"),
        });
        if end < matching.len() {
            body["nextPageToken"] = json!(format!("page-{end}"));
        }
        (200, body.to_string())
    }

    /// An instance as Compute shows it now: mid-recreation it is STAGING.
    fn present(&self, key: &str, value: &Value) -> Value {
        let mut value = value.clone();
        if self.recreating.contains_key(key) {
            value["status"] = json!("STAGING");
        }
        value
    }

    fn family_image(&self, project: &str, family: &str) -> (u16, String) {
        match self.newest_in_family(project, family) {
            Some(image) => (200, image.to_string()),
            None => error(
                404,
                &format!(
                    "The resource 'projects/{project}/global/images/family/{family}' was not found"
                ),
                "notFound",
            ),
        }
    }

    /// The image Compute picks for a family: the newest not deprecated.
    fn newest_in_family(&self, project: &str, family: &str) -> Option<&Value> {
        let prefix = format!("projects/{project}/global/images/");
        self.resources
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .filter(|v| v["family"] == family)
            .filter(|v| {
                !matches!(
                    v["deprecated"]["state"].as_str(),
                    Some("DEPRECATED" | "OBSOLETE" | "DELETED")
                )
            })
            .max_by_key(|v| v["creationTimestamp"].as_str().unwrap_or("").to_owned())
    }

    /// The image a template's boot disk is made from, as a path: links in any of the forms
    /// Compute takes (full, `projects/...`, `global/images/...`), a family resolved.
    fn template_image(&self, template: &str) -> Option<String> {
        let template = self.resources.get(template)?;
        let project = template["selfLink"]
            .as_str()?
            .strip_prefix(PUBLIC)?
            .split('/')
            .nth(1)?
            .to_owned();
        let disks = template["properties"]["disks"].as_array()?;
        let boot = disks.iter().find(|d| d["boot"] == true).or(disks.first())?;
        let link = boot["initializeParams"]["sourceImage"].as_str()?;
        let link = link.strip_prefix(PUBLIC).unwrap_or(link);
        let path = match link.strip_prefix("global/") {
            Some(rest) => format!("projects/{project}/global/{rest}"),
            None => link.to_owned(),
        };
        match path.split_once("/global/images/family/") {
            Some((owner, family)) => {
                let owner = owner.strip_prefix("projects/")?;
                let image = self.newest_in_family(owner, family)?;
                Some(image["selfLink"].as_str()?.strip_prefix(PUBLIC)?.to_owned())
            }
            None => Some(path),
        }
    }

    /// A template path from a link in any form, relative ones in `project`.
    fn template_path(project: &str, link: &str) -> String {
        let link = link.strip_prefix(PUBLIC).unwrap_or(link);
        match link.starts_with("projects/") {
            true => link.to_owned(),
            false => format!("projects/{project}/{link}"),
        }
    }

    /// An operation as Compute answers a call that changes something: RUNNING, and DONE when
    /// polled. `scope` is `zones/z`, `regions/r` or `global`.
    fn operation(&mut self, project: &str, scope: &str, kind: &str, target: &str) -> Value {
        self.next_operation += 1;
        let name = format!(
            "operation-{}-{}",
            self.next_operation,
            kind.rsplit('.').next().unwrap_or(kind)
        );
        let operations = format!("projects/{project}/{scope}/operations/{name}");
        let mut operation = json!({
            "kind": "compute#operation",
            "id": format!("{}", 7_000_000 + self.next_operation),
            "name": name,
            "operationType": kind,
            "targetLink": format!("{PUBLIC}{target}"),
            "status": "RUNNING",
            "progress": 0,
            "insertTime": "2026-11-01T00:00:00.000-07:00",
            "startTime": "2026-11-01T00:00:00.000-07:00",
            "selfLink": format!("{PUBLIC}{operations}"),
        });
        if let Some((kind, _)) = scope.split_once('/') {
            let field = if kind == "zones" { "zone" } else { "region" };
            operation[field] = json!(format!("{PUBLIC}projects/{project}/{scope}"));
        }
        let mut done = operation.clone();
        done["status"] = json!("DONE");
        done["progress"] = json!(100);
        done["endTime"] = json!("2026-11-01T00:00:01.000-07:00");
        self.resources.insert(operations, done);
        operation
    }

    /// `instanceTemplates.insert` / `regionInstanceTemplates.insert`: the body as sent, its
    /// output-only fields set by the server; a name taken is 409, as on Compute.
    fn insert_template(
        &mut self,
        project: &str,
        region: Option<&str>,
        body: Value,
    ) -> (u16, String) {
        let name = body["name"].as_str().unwrap_or("").to_owned();
        let valid = (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return error(
                400,
                &format!(
                    "Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
                ),
                "invalid",
            );
        }
        if !body["properties"].is_object() {
            return error(
                400,
                "Required field 'resource.properties' not specified",
                "required",
            );
        }
        let scope = match region {
            Some(region) => format!("regions/{region}"),
            None => "global".to_owned(),
        };
        let path = format!("projects/{project}/{scope}/instanceTemplates/{name}");
        if self.resources.contains_key(&path) {
            return error(
                409,
                &format!("The resource '{path}' already exists"),
                "alreadyExists",
            );
        }
        let mut template = body;
        template["kind"] = json!("compute#instanceTemplate");
        template["id"] = json!(format!("{}", 8_200_000_000u64 + self.next_operation));
        template["creationTimestamp"] = json!("2026-11-01T00:00:00.000-07:00");
        template["selfLink"] = json!(format!("{PUBLIC}{path}"));
        if let Some(region) = region {
            template["region"] = json!(region);
        }
        self.resources.insert(path.clone(), template);
        // Compute names a plain insert's operation type "insert".
        let operation = self.operation(project, &scope, "insert", &path);
        (200, operation.to_string())
    }

    /// `setInstanceTemplate`: new and recreated members come from this template; the group's
    /// one version names it too.
    fn set_instance_template(
        &mut self,
        project: &str,
        scope: &str,
        place: &str,
        group: &str,
        body: &Value,
    ) -> (u16, String) {
        if !self.resources.contains_key(group) {
            return error(
                404,
                &format!("The resource '{group}' was not found"),
                "notFound",
            );
        }
        let Some(link) = body["instanceTemplate"].as_str() else {
            return error(
                400,
                "Required field 'instanceTemplate' not specified",
                "required",
            );
        };
        let template = World::template_path(project, link);
        if !self.resources.contains_key(&template) {
            return error(
                404,
                &format!("The resource '{template}' was not found"),
                "notFound",
            );
        }
        let region = match scope {
            "zones" => place.rsplit_once('-').map_or(place, |(r, _)| r),
            _ => place,
        };
        if template.contains("/regions/") && !template.contains(&format!("/regions/{region}/")) {
            return error(
                400,
                &format!(
                    "Invalid value for field 'resource.instanceTemplate': '{link}'. A regional instance template must be in the group's region."
                ),
                "invalid",
            );
        }
        let manager = self.resources.get_mut(group).unwrap();
        let link = format!("{PUBLIC}{template}");
        manager["instanceTemplate"] = json!(link);
        let mut version = json!({"instanceTemplate": link,
            "targetSize": {"calculated": manager["targetSize"]}});
        if let Some(name) = manager["versions"][0]["name"].as_str() {
            version["name"] = json!(name);
        }
        manager["versions"] = json!([version]);
        let kind = "compute.instanceGroupManagers.setInstanceTemplate";
        let operation = self.operation(project, &format!("{scope}/{place}"), kind, group);
        (200, operation.to_string())
    }

    /// Members of a group: the instances whose `created-by` names it.
    fn members(&self, group: &str) -> Vec<(String, Value)> {
        let (scope, place, name) = {
            let parts: Vec<&str> = group.split('/').collect();
            (
                parts[2].to_owned(),
                parts[3].to_owned(),
                parts[5].to_owned(),
            )
        };
        let suffix = format!("/{scope}/{place}/instanceGroupManagers/{name}");
        self.resources
            .iter()
            .filter(|(k, _)| k.contains("/instances/"))
            .filter(|(_, v)| {
                v["metadata"]["items"].as_array().is_some_and(|items| {
                    items.iter().any(|i| {
                        i["key"] == "created-by"
                            && i["value"].as_str().is_some_and(|by| by.ends_with(&suffix))
                    })
                })
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn managed_instances(&self, group: &str) -> (u16, String) {
        let Some(manager) = self.resources.get(group) else {
            return error(
                404,
                &format!("The resource '{group}' was not found"),
                "notFound",
            );
        };
        let autohealing = manager["autoHealingPolicies"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        let managed: Vec<Value> = self
            .members(group)
            .into_iter()
            .map(|(key, instance)| {
                let name = instance["name"].as_str().unwrap_or("").to_owned();
                let busy = self.recreating.contains_key(&key);
                let mut managed = json!({
                    "instance": format!("{PUBLIC}{key}"),
                    "id": instance["id"],
                    "instanceStatus": if busy { "STAGING" } else { "RUNNING" },
                    "currentAction": if busy { "RECREATING" } else { "NONE" },
                    "version": {"instanceTemplate": manager["instanceTemplate"]},
                });
                if autohealing {
                    let state = if busy || self.unhealthy.contains(&name) {
                        "UNHEALTHY"
                    } else {
                        "HEALTHY"
                    };
                    managed["instanceHealth"] = json!([{
                        "healthCheck": manager["autoHealingPolicies"][0]["healthCheck"],
                        "detailedHealthState": state,
                    }]);
                }
                managed
            })
            .collect();
        (200, json!({ "managedInstances": managed }).to_string())
    }

    fn recreate(
        &mut self,
        project: &str,
        scope: &str,
        place: &str,
        group: &str,
        body: &Value,
    ) -> (u16, String) {
        if !self.resources.contains_key(group) {
            return error(
                404,
                &format!("The resource '{group}' was not found"),
                "notFound",
            );
        }
        let members: HashSet<String> = self.members(group).into_iter().map(|(k, _)| k).collect();
        let mut targets = Vec::new();
        for link in body["instances"].as_array().into_iter().flatten() {
            let link = link.as_str().unwrap_or("");
            let tail = link
                .rfind("zones/")
                .map_or("", |at| &link[at + "zones/".len()..]);
            let key = format!("projects/{project}/zones/{tail}");
            if !members.contains(&key) {
                return error(
                    400,
                    &format!("Instance '{link}' is not a member of the group"),
                    "invalid",
                );
            }
            targets.push(key);
        }
        let manager = &self.resources[group];
        let template = manager["instanceTemplate"]
            .as_str()
            .map(|link| World::template_path(project, link));
        let image = template.and_then(|t| self.template_image(&t));
        let image_id = image
            .as_ref()
            .and_then(|i| self.resources.get(i))
            .map(|i| i["id"].clone());
        for key in &targets {
            let instance = self.resources.get_mut(key).unwrap();
            let name = instance["name"].as_str().unwrap_or("").to_owned();
            // A recreated instance keeps its name and gets a new id and a boot disk made from
            // the image its group's template boots now.
            let new_id = instance["id"]
                .as_str()
                .and_then(|i| i.parse::<u64>().ok())
                .unwrap_or(0)
                + 1_000_000;
            instance["id"] = json!(new_id.to_string());
            let disk = instance["disks"][0]["source"]
                .as_str()
                .and_then(|d| d.strip_prefix(PUBLIC))
                .map(str::to_owned);
            if let (Some(disk), Some(image)) = (disk, &image)
                && let Some(disk) = self.resources.get_mut(&disk)
            {
                disk["sourceImage"] = json!(format!("{PUBLIC}{image}"));
                if let Some(id) = &image_id {
                    disk["sourceImageId"] = id.clone();
                }
            }
            let delay = self
                .recreate_delay
                .get(&name)
                .copied()
                .unwrap_or(Duration::from_millis(300));
            self.recreating.insert(key.clone(), Instant::now() + delay);
        }
        let kind = "compute.instanceGroupManagers.recreateInstances";
        let operation = self.operation(project, &format!("{scope}/{place}"), kind, group);
        (200, operation.to_string())
    }
}

/// The filters fleetscope sends: `id = N` and `name = "x"`.
fn matches_filter(resource: &Value, filter: &str) -> bool {
    let filter = filter.trim();
    if filter.is_empty() {
        return true;
    }
    let Some((field, value)) = filter.split_once('=') else {
        return false;
    };
    let value = value.trim().trim_matches('"');
    match field.trim() {
        "id" => resource["id"].as_str() == Some(value),
        "name" => resource["name"].as_str() == Some(value),
        _ => false,
    }
}

/// Builders for resources shaped like the real payloads.
const FLEET_REGIONS: [&str; 5] = [
    "us-central1",
    "europe-west4",
    "asia-east1",
    "us-east1",
    "australia-southeast1",
];

/// A fleet at scale for the benchmarks: projects `shop-0`, `shop-1`, ... each with
/// `per_project` instances over 4 zones of its region (debian-cloud's family and one of the
/// project's own), the first `group_size` in a zonal managed group with autohealing and the next
/// `group_size` in a regional one, and a firewall opening SSH to the world for a tag every
/// hundredth instance carries.
pub fn fleet(projects: usize, per_project: usize, group_size: usize) -> World {
    let mut world = World::default();
    for (name, created) in [
        (
            "debian-12-bookworm-v20260901",
            "2026-09-01T10:00:00.000-07:00",
        ),
        (
            "debian-12-bookworm-v20261020",
            "2026-10-20T10:00:00.000-07:00",
        ),
    ] {
        let (path, image) = make::image("debian-cloud", name, "debian-12", created);
        world.insert(path, image);
    }
    let mut id = 1_000_000u64;
    for p in 0..projects {
        let project = format!("shop-{p}");
        let region = FLEET_REGIONS[p % FLEET_REGIONS.len()];
        let mut resources = Vec::new();
        for (name, created) in [
            ("app-v1", "2026-08-01T00:00:00.000-07:00"),
            ("app-v2", "2026-10-01T00:00:00.000-07:00"),
            ("app-v3", "2026-10-25T00:00:00.000-07:00"),
        ] {
            resources.push(make::image(&project, name, "app", created));
        }
        let zones: Vec<String> = ["a", "b", "c", "f"]
            .iter()
            .map(|l| format!("{region}-{l}"))
            .collect();
        let images = [
            "projects/debian-cloud/global/images/debian-12-bookworm-v20260901".to_owned(),
            "projects/debian-cloud/global/images/debian-12-bookworm-v20261020".to_owned(),
            format!("projects/{project}/global/images/app-v1"),
            format!("projects/{project}/global/images/app-v2"),
            format!("projects/{project}/global/images/app-v3"),
        ];
        let zonal = format!("zones/{}/instanceGroupManagers/web", zones[0]);
        let regional = format!("regions/{region}/instanceGroupManagers/api");
        resources.push(make::group(
            &project,
            &format!("zones/{}", zones[0]),
            "web",
            &format!("projects/{project}/global/instanceTemplates/web-3"),
            group_size as u32,
            true,
        ));
        resources.push(make::template(
            &project,
            "global",
            "web-3",
            &make::link(&images[4]),
        ));
        resources.push(make::group(
            &project,
            &format!("regions/{region}"),
            "api",
            &format!("projects/{project}/regions/{region}/instanceTemplates/api-2"),
            group_size as u32,
            false,
        ));
        resources.push(make::template(
            &project,
            &format!("regions/{region}"),
            "api-2",
            "projects/debian-cloud/global/images/family/debian-12",
        ));
        resources.push(make::firewall(
            &project,
            "allow-ssh",
            &["22"],
            "0.0.0.0/0",
            &["bastion"],
        ));
        for i in 0..per_project {
            id += 1;
            let name = format!("vm-{i:05}");
            let group = match i {
                i if i < group_size => Some(zonal.as_str()),
                i if i < 2 * group_size => Some(regional.as_str()),
                _ => None,
            };
            // The zonal group's members live in its zone.
            let zone = if i < group_size {
                &zones[0]
            } else {
                &zones[i % zones.len()]
            };
            let vm = make::Vm {
                project: &project,
                zone,
                name: &name,
                id,
                image: &images[i % images.len()],
                created: "2026-10-26T09:00:00.000-07:00",
                group,
                tags: if i % 100 == 0 { &["bastion"] } else { &[] },
                nat_ip: None,
            };
            resources.extend(vm.resources());
        }
        for (path, resource) in resources {
            world.insert(path, resource);
        }
    }
    world
}

pub mod make {
    use super::*;

    pub fn link(path: &str) -> String {
        format!("{PUBLIC}{path}")
    }

    pub fn image(project: &str, name: &str, family: &str, created: &str) -> (String, Value) {
        let path = format!("projects/{project}/global/images/{name}");
        let mut image = json!({
            "kind": "compute#image",
            "id": format!("{}", 1000 + name.len() as u64 * 7919 + created.len() as u64),
            "creationTimestamp": created,
            "name": name,
            "sourceType": "RAW",
            "status": "READY",
            "archiveSizeBytes": "3100000000",
            "diskSizeGb": "10",
            "selfLink": link(&path),
            "labelFingerprint": "42WmSpB8rSM=",
            "architecture": "X86_64",
        });
        if !family.is_empty() {
            image["family"] = json!(family);
        }
        (path, image)
    }

    /// `state` DEPRECATED / OBSOLETE / DELETED, with the replacement Compute suggests.
    pub fn deprecated(
        mut image: (String, Value),
        state: &str,
        replacement: &str,
    ) -> (String, Value) {
        image.1["deprecated"] = json!({"state": state, "replacement": link(replacement)});
        image
    }

    pub struct Vm<'a> {
        pub project: &'a str,
        pub zone: &'a str,
        pub name: &'a str,
        pub id: u64,
        pub image: &'a str,
        pub created: &'a str,
        pub group: Option<&'a str>,
        pub tags: &'a [&'a str],
        pub nat_ip: Option<&'a str>,
    }

    impl Vm<'_> {
        /// The instance and its boot disk.
        pub fn resources(&self) -> Vec<(String, Value)> {
            let Vm {
                project,
                zone,
                name,
                id,
                ..
            } = *self;
            let disk = format!("projects/{project}/zones/{zone}/disks/{name}");
            let mut access = json!([]);
            if let Some(ip) = self.nat_ip {
                access = json!([{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT",
                    "name": "External NAT", "natIP": ip, "networkTier": "PREMIUM"}]);
            }
            let mut metadata = json!({"kind": "compute#metadata", "fingerprint": "b5_sNtXJEts="});
            if let Some(group) = self.group {
                metadata["items"] = json!([
                    {"key": "instance-template", "value": "projects/123456789/global/instanceTemplates/t"},
                    {"key": "created-by", "value": format!("projects/123456789/{group}")},
                ]);
            }
            let region = zone.rsplit_once('-').map_or(zone, |(r, _)| r);
            let instance = json!({
                "kind": "compute#instance",
                "id": id.to_string(),
                "creationTimestamp": self.created,
                "name": name,
                "tags": {"items": self.tags, "fingerprint": "OcWEGzD6ieA="},
                "machineType": link(&format!("projects/{project}/zones/{zone}/machineTypes/e2-medium")),
                "status": "RUNNING",
                "zone": link(&format!("projects/{project}/zones/{zone}")),
                "networkInterfaces": [{
                    "kind": "compute#networkInterface",
                    "network": link(&format!("projects/{project}/global/networks/default")),
                    "subnetwork": link(&format!("projects/{project}/regions/{region}/subnetworks/default")),
                    "networkIP": format!("10.128.{}.{}", id % 250, id % 200 + 2),
                    "name": "nic0",
                    "accessConfigs": access,
                    "fingerprint": "O_a09qdAaTE=",
                    "stackType": "IPV4_ONLY",
                }],
                "disks": [{
                    "kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                    "source": link(&disk), "deviceName": "persistent-disk-0", "index": 0,
                    "boot": true, "autoDelete": true, "interface": "SCSI", "diskSizeGb": "10",
                    "architecture": "X86_64",
                }],
                "metadata": metadata,
                "serviceAccounts": [{"email": format!("{id}-compute@developer.gserviceaccount.com"),
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
                "selfLink": link(&format!("projects/{project}/zones/{zone}/instances/{name}")),
                "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": true, "preemptible": false},
                "cpuPlatform": "Intel Broadwell",
                "labels": {"app": name.split('-').next().unwrap_or(name)},
                "labelFingerprint": "cLOO6l7pJAo=",
                "startRestricted": false,
                "deletionProtection": false,
                "fingerprint": "W9T2Bn2xXbE=",
                "lastStartTimestamp": self.created,
            });
            let mut disk_body = json!({
                "kind": "compute#disk",
                "id": (id + 500_000).to_string(),
                "creationTimestamp": self.created,
                "name": name,
                "sizeGb": "10",
                "zone": link(&format!("projects/{project}/zones/{zone}")),
                "status": "READY",
                "selfLink": link(&disk),
                "type": link(&format!("projects/{project}/zones/{zone}/diskTypes/pd-balanced")),
                "users": [link(&format!("projects/{project}/zones/{zone}/instances/{name}"))],
                "physicalBlockSizeBytes": "4096",
                "architecture": "X86_64",
            });
            if !self.image.is_empty() {
                disk_body["sourceImage"] = json!(link(self.image));
                disk_body["sourceImageId"] = json!("4366937654321");
            }
            vec![
                (
                    format!("projects/{project}/zones/{zone}/instances/{name}"),
                    instance,
                ),
                (disk, disk_body),
            ]
        }
    }

    /// A group at `projects/p/zones/z/instanceGroupManagers/n` (or `regions/r/...`).
    pub fn group(
        project: &str,
        location: &str,
        name: &str,
        template: &str,
        size: u32,
        autohealing: bool,
    ) -> (String, Value) {
        let path = format!("projects/{project}/{location}/instanceGroupManagers/{name}");
        let scope_field = if location.starts_with("zones/") {
            "zone"
        } else {
            "region"
        };
        let mut group = json!({
            "kind": "compute#instanceGroupManager",
            "id": "5912345678901234567",
            "creationTimestamp": "2026-01-10T08:00:00.000-08:00",
            "name": name,
            "instanceTemplate": link(template),
            "versions": [{"instanceTemplate": link(template)}],
            "instanceGroup": link(&format!("projects/{project}/{location}/instanceGroups/{name}")),
            "baseInstanceName": name,
            "fingerprint": "Ie8MB0QZ0Wc=",
            "currentActions": {"none": size, "creating": 0, "recreating": 0, "deleting": 0,
                "abandoning": 0, "restarting": 0, "refreshing": 0, "verifying": 0},
            "status": {"isStable": true, "versionTarget": {"isReached": true}},
            "targetSize": size,
            "selfLink": link(&path),
            "updatePolicy": {"type": "OPPORTUNISTIC", "minimalAction": "REPLACE",
                "maxSurge": {"fixed": 1, "calculated": 1}, "maxUnavailable": {"fixed": 1, "calculated": 1},
                "replacementMethod": "SUBSTITUTE"},
        });
        group[scope_field] = json!(link(&format!("projects/{project}/{location}")));
        if autohealing {
            group["autoHealingPolicies"] = json!([{
                "healthCheck": link(&format!("projects/{project}/global/healthChecks/http")),
                "initialDelaySec": 300}]);
        }
        (path, group)
    }

    /// A template at `projects/p/global/instanceTemplates/n` (or `regions/r/...`).
    pub fn template(project: &str, scope: &str, name: &str, source_image: &str) -> (String, Value) {
        let path = format!("projects/{project}/{scope}/instanceTemplates/{name}");
        let mut template = json!({
            "kind": "compute#instanceTemplate",
            "id": "8123456789012345678",
            "creationTimestamp": "2026-01-10T07:55:00.000-08:00",
            "name": name,
            "properties": {
                "machineType": "e2-medium",
                "networkInterfaces": [{"network": link(&format!("projects/{project}/global/networks/default"))}],
                "disks": [{"type": "PERSISTENT", "mode": "READ_WRITE", "deviceName": "boot",
                    "boot": true, "autoDelete": true,
                    "initializeParams": {"sourceImage": source_image, "diskSizeGb": "10"}}],
                "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": true},
            },
            "selfLink": link(&path),
        });
        if let Some(region) = scope.strip_prefix("regions/") {
            template["region"] = json!(region);
        }
        (path, template)
    }

    pub fn firewall(
        project: &str,
        name: &str,
        ports: &[&str],
        range: &str,
        target_tags: &[&str],
    ) -> (String, Value) {
        let path = format!("projects/{project}/global/firewalls/{name}");
        let rule = json!({
            "kind": "compute#firewall",
            "id": "3456789012345678901",
            "creationTimestamp": "2026-01-10T07:00:00.000-08:00",
            "name": name,
            "network": link(&format!("projects/{project}/global/networks/default")),
            "priority": 1000,
            "sourceRanges": [range],
            "targetTags": target_tags,
            "allowed": [{"IPProtocol": "tcp", "ports": ports}],
            "direction": "INGRESS",
            "logConfig": {"enable": false},
            "disabled": false,
            "selfLink": link(&path),
        });
        (path, rule)
    }
}
