//! A local Azure Resource Manager on a loopback port, plain HTTP, for the Azure tests. It also
//! serves the Microsoft identity token endpoint, so fleetscope authenticates through the real
//! credential chain (an environment service principal whose authority host is this server).
//! Answers are built from the official examples in `tests/fixtures/azure/` with the fields a
//! test sets; lists page with absolute `nextLink`s; faults (429, 500, 403, slow, garbage) are
//! injected per path. Every VM and scale-set member has a network interface with a private
//! address of its own (10.1.0.4, 10.1.0.5, ...) on one subnet with no security group; tests add
//! NICs, public IPs and network security groups (with their subnets) and set power states.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub const TENANT: &str = "test-tenant";
pub const RG: &str = "rg-web";
pub const LOCATION: &str = "westeurope";

/// An official example's answer body, the template every answer of that kind starts from
/// (each file read once: answers at scale are built from them per item).
pub fn fixture(name: &str) -> Value {
    static READ: std::sync::OnceLock<Mutex<HashMap<String, Value>>> = std::sync::OnceLock::new();
    let read = READ.get_or_init(Mutex::default);
    if let Some(body) = read.lock().unwrap().get(name) {
        return body.clone();
    }
    let path = format!("{}/tests/fixtures/azure/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let example: Value = serde_json::from_str(&text).unwrap();
    let body = example["responses"]["200"]["body"].clone();
    read.lock().unwrap().insert(name.to_owned(), body.clone());
    body
}

/// The `value` list of an official example's answer.
pub fn fixture_list(name: &str) -> Vec<Value> {
    fixture(name)["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn subnet_id(subscription: &str, vnet: &str, subnet: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
    )
}

/// An inbound NSG rule for TCP, shaped as the official examples' rules: `ports` and `sources`
/// are a string (`destinationPortRange`, `sourceAddressPrefix`) or a list (`...Ranges`,
/// `...Prefixes`).
pub fn nsg_rule(name: &str, access: &str, priority: u32, ports: Value, sources: Value) -> Value {
    let mut properties = json!({
        "provisioningState": "Succeeded",
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "access": access,
        "priority": priority,
        "direction": "Inbound",
    });
    if ports.is_array() {
        properties["destinationPortRanges"] = ports;
    } else {
        properties["destinationPortRange"] = ports;
    }
    if sources.is_array() {
        properties["sourceAddressPrefixes"] = sources;
    } else {
        properties["sourceAddressPrefix"] = sources;
    }
    json!({"name": name, "properties": properties})
}

/// What a member does when asked to upgrade to the latest model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// Healthy at once.
    Healthy,
    /// Provisioning stays `updating` for this many instance-view reads, then healthy.
    Slow(u32),
    /// Provisioning fails.
    Fails,
    /// Provisioning succeeds; the application health extension says unhealthy.
    Unhealthy,
}

#[derive(Debug, Clone)]
pub enum Fault {
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Slow(Duration),
    Garbage,
    /// This status, with an identity-platform error whose description quotes the request's
    /// body, as some endpoints echo what they were sent.
    Echo(u16),
    /// 403 with ARM's `AuthorizationFailed`, as for a credential without read on the resource.
    Forbidden,
}

#[derive(Debug)]
struct Injected {
    /// Only requests of this method, when set.
    method: Option<String>,
    path_contains: String,
    fault: Fault,
    times: u32,
}

struct Member {
    json: Value,
    provisioning: String,
    health: Option<String>,
    upgrade: Upgrade,
    slow_reads: u32,
}

struct ScaleSetState {
    json: Value,
    members: Vec<String>,
    /// After a model update: reads that still answer `Updating`.
    updating_reads: u32,
    /// How many reads a model update stays `Updating` for, and the state it ends in.
    update_reads: u32,
    update_ends: String,
    /// Another writer's model change, made once the scale set was read this many more times.
    writer: Option<(u32, Value)>,
}

struct ManagementGroup {
    id: String,
    parent: Option<String>,
    subscriptions: Vec<String>,
}

#[derive(Default)]
struct World {
    subscriptions: Vec<String>,
    forbidden: HashSet<String>,
    management_groups: Vec<ManagementGroup>,
    /// Management groups the credential may not read (lowercase ids).
    forbidden_groups: HashSet<String>,
    /// Where the descendants lists' `nextLink`s point instead of this server, when set.
    stray_next_links: Option<String>,
    vms: HashMap<String, Vec<Value>>,
    scale_sets: HashMap<String, Vec<ScaleSetState>>,
    members: HashMap<String, Member>,
    galleries: HashMap<String, Vec<Value>>,
    shared: HashMap<String, Vec<Value>>,
    community: HashMap<String, Vec<Value>>,
    marketplace: HashMap<String, Vec<(String, Option<String>)>>,
    managed: HashMap<String, Value>,
    /// Network interfaces, public IPs and NSGs of each subscription.
    nics: HashMap<String, Vec<Value>>,
    public_ips: HashMap<String, Vec<Value>>,
    nsgs: HashMap<String, Vec<Value>>,
    /// A uniform scale set's members' NICs and public IPs, by lowercase scale-set id.
    set_nics: HashMap<String, Vec<Value>>,
    set_public_ips: HashMap<String, Vec<Value>>,
    /// Power states by lowercase VM or member id; `running` when not set.
    power: HashMap<String, String>,
    /// Private addresses handed out so far.
    addresses: u32,
    page_size: usize,
    faults: Vec<Injected>,
    calls: Vec<String>,
    /// Bodies of the writes to scale sets, as `METHOD path` and the JSON sent.
    writes: Vec<(String, Value)>,
}

pub struct ArmServer {
    port: u16,
    world: Arc<Mutex<World>>,
}

impl ArmServer {
    pub fn start() -> ArmServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let world = Arc::new(Mutex::new(World {
            page_size: 50,
            ..World::default()
        }));
        let shared = world.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let world = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &world, port);
                });
            }
        });
        ArmServer { port, world }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The environment of a service principal whose authority host is this server, and no
    /// proxy (reqwest would send loopback traffic to one).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", "test-client"),
            ("AZURE_CLIENT_SECRET", "test-secret"),
            (
                "AZURE_AUTHORITY_HOST",
                &format!("http://127.0.0.1:{}", self.port),
            ),
            ("NO_PROXY", "*"),
            ("HTTP_PROXY", ""),
            ("HTTPS_PROXY", ""),
            ("http_proxy", ""),
            ("https_proxy", ""),
            ("ALL_PROXY", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world.lock().unwrap())
    }

    pub fn subscription(&self, id: &str) {
        self.with(|w| w.subscriptions.push(id.to_owned()));
    }

    /// A subscription the credential may not read: every call on it answers 403.
    pub fn forbid(&self, id: &str) {
        self.with(|w| {
            w.subscriptions.push(id.to_owned());
            w.forbidden.insert(id.to_owned());
        });
    }

    /// A management group under `parent` (none: below the tenant root), with these
    /// subscriptions directly in it (each served as by `subscription`).
    pub fn management_group(&self, id: &str, parent: Option<&str>, subscriptions: &[&str]) {
        self.with(|w| {
            for subscription in subscriptions {
                if !w.subscriptions.iter().any(|s| s == subscription) {
                    w.subscriptions.push((*subscription).to_owned());
                }
            }
            w.management_groups.push(ManagementGroup {
                id: id.to_owned(),
                parent: parent.map(str::to_owned),
                subscriptions: subscriptions.iter().map(|s| (*s).to_owned()).collect(),
            });
        });
    }

    /// A management group the credential may not read: its descendants list answers 403.
    pub fn forbid_management_group(&self, id: &str) {
        self.management_group(id, None, &[]);
        self.with(|w| w.forbidden_groups.insert(id.to_ascii_lowercase()));
    }

    /// The descendants lists' `nextLink`s point at `base` (another server) instead of here.
    pub fn stray_next_links(&self, base: &str) {
        self.with(|w| w.stray_next_links = Some(base.trim_end_matches('/').to_owned()));
    }

    pub fn page_size(&self, size: usize) {
        self.with(|w| w.page_size = size);
    }

    pub fn fault(&self, path_contains: &str, fault: Fault, times: u32) {
        self.with(|w| {
            w.faults.push(Injected {
                method: None,
                path_contains: path_contains.to_owned(),
                fault,
                times,
            })
        });
    }

    /// A fault on requests of one method only (`PATCH`, say).
    pub fn fault_on(&self, method: &str, path_contains: &str, fault: Fault, times: u32) {
        self.with(|w| {
            w.faults.push(Injected {
                method: Some(method.to_owned()),
                path_contains: path_contains.to_owned(),
                fault,
                times,
            })
        });
    }

    /// Calls made, as `METHOD path` (no query: the status-only VM list is
    /// `METHOD path?statusOnly=true`).
    pub fn calls(&self) -> Vec<String> {
        self.with(|w| w.calls.clone())
    }

    pub fn count(&self, fragment: &str) -> usize {
        self.calls().iter().filter(|c| c.contains(fragment)).count()
    }

    /// The calls on one scale set itself (not its members), as `METHOD`.
    pub fn scale_set_calls(&self, name: &str) -> Vec<String> {
        let tail = format!("/virtualmachinescalesets/{}", name.to_ascii_lowercase());
        self.calls()
            .iter()
            .filter(|c| c.to_ascii_lowercase().ends_with(&tail))
            .filter_map(|c| c.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// The bodies of the PATCHes and PUTs sent to scale sets.
    pub fn writes(&self) -> Vec<(String, Value)> {
        self.with(|w| w.writes.clone())
    }

    /// The next private address: 10.1.0.4, 10.1.0.5, ... (Azure keeps .0 to .3 of a subnet).
    fn next_address(w: &mut World) -> String {
        let n = w.addresses;
        w.addresses += 1;
        format!("10.1.{}.{}", n / 250, n % 250 + 4)
    }

    /// A network interface on `vm` (a VM or a scale-set member id), shaped as the official
    /// `NetworkInterfaceListAll` example's first entry, with one IP configuration.
    fn nic_json(id: &str, vm: &str, address: &str, subnet: &str) -> Value {
        let mut nic = fixture_list("NetworkInterfaceListAll.json")[0].clone();
        nic["id"] = json!(id);
        nic["name"] = json!(id.rsplit('/').next().unwrap_or(id));
        nic["location"] = json!(LOCATION);
        let properties = &mut nic["properties"];
        properties["virtualMachine"]["id"] = json!(vm);
        if let Some(p) = properties.as_object_mut() {
            p.remove("networkSecurityGroup");
        }
        let config = &mut properties["ipConfigurations"][0];
        config["id"] = json!(format!("{id}/ipConfigurations/ipconfig1"));
        config["properties"]["privateIPAddress"] = json!(address);
        config["properties"]["subnet"]["id"] = json!(subnet);
        if let Some(c) = config["properties"].as_object_mut() {
            c.remove("publicIPAddress");
        }
        nic
    }

    /// The subnet every VM is put on, unless a test says otherwise.
    pub fn default_subnet(subscription: &str) -> String {
        subnet_id(subscription, "vnet-web", "default")
    }

    /// Another network interface on a standalone VM; returns its id.
    pub fn add_nic(
        &self,
        subscription: &str,
        vm: &str,
        name: &str,
        address: &str,
        subnet: &str,
    ) -> String {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network/networkInterfaces/{name}"
        );
        let mut nic = Self::nic_json(&id, vm, address, subnet);
        nic["properties"]["primary"] = json!(false);
        self.with(|w| w.nics.entry(subscription.to_owned()).or_default().push(nic));
        id
    }

    /// The NIC `name` wherever it is (a subscription's or a scale set's).
    fn with_nic<R>(&self, name: &str, f: impl FnOnce(&mut Value) -> R) -> R {
        self.with(|w| {
            let nic = w
                .nics
                .values_mut()
                .chain(w.set_nics.values_mut())
                .flatten()
                .find(|n| n["name"] == name)
                .unwrap_or_else(|| panic!("no NIC {name}"));
            f(nic)
        })
    }

    /// A public IP on a NIC (by name), shaped as the official `PublicIpAddressListAll`
    /// example's entry with a DNS label; returns the public IP's id.
    pub fn public_ip(
        &self,
        subscription: &str,
        nic: &str,
        address: &str,
        fqdn: Option<&str>,
    ) -> String {
        let (nic_id, vm) = self.with_nic(nic, |n| {
            (
                n["id"].as_str().unwrap_or("").to_owned(),
                n["properties"]["virtualMachine"]["id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        });
        let member_of = vm
            .to_ascii_lowercase()
            .find("/virtualmachines/")
            .filter(|_| {
                vm.to_ascii_lowercase()
                    .contains("/virtualmachinescalesets/")
            })
            .map(|at| vm[..at].to_ascii_lowercase());
        let id = match &member_of {
            Some(_) => format!("{nic_id}/ipConfigurations/ipconfig1/publicIPAddresses/pip"),
            None => format!(
                "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network/publicIPAddresses/{nic}-ip"
            ),
        };
        let mut ip = fixture_list("PublicIpAddressListAll.json")[1].clone();
        ip["id"] = json!(id);
        ip["name"] = json!(id.rsplit('/').next().unwrap_or(""));
        ip["location"] = json!(LOCATION);
        let properties = &mut ip["properties"];
        properties["ipAddress"] = json!(address);
        properties["ipConfiguration"]["id"] = json!(format!("{nic_id}/ipConfigurations/ipconfig1"));
        match fqdn {
            Some(fqdn) => {
                properties["dnsSettings"] = json!({
                    "domainNameLabel": fqdn.split('.').next().unwrap_or(fqdn),
                    "fqdn": fqdn
                })
            }
            None => {
                if let Some(p) = properties.as_object_mut() {
                    p.remove("dnsSettings");
                }
            }
        }
        self.with_nic(nic, |n| {
            n["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] =
                json!({"id": id})
        });
        self.with(|w| match member_of {
            Some(set) => w.set_public_ips.entry(set).or_default().push(ip),
            None => w
                .public_ips
                .entry(subscription.to_owned())
                .or_default()
                .push(ip),
        });
        id
    }

    /// A network security group with these rules (see `nsg_rule`) on these subnets, shaped as
    /// the official `NetworkSecurityGroupListAll` example's entry (default rules included);
    /// returns its id.
    pub fn nsg(
        &self,
        subscription: &str,
        name: &str,
        rules: Vec<Value>,
        subnets: &[&str],
    ) -> String {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/{name}"
        );
        let mut nsg = fixture_list("NetworkSecurityGroupListAll.json")[0].clone();
        let example_id = nsg["id"].as_str().unwrap_or("").to_owned();
        nsg = serde_json::from_str(&nsg.to_string().replace(&example_id, &id)).unwrap();
        nsg["name"] = json!(name);
        nsg["location"] = json!(LOCATION);
        let rules: Vec<Value> = rules
            .into_iter()
            .map(|mut rule| {
                let rule_name = rule["name"].as_str().unwrap_or("").to_owned();
                rule["id"] = json!(format!("{id}/securityRules/{rule_name}"));
                rule
            })
            .collect();
        nsg["properties"]["securityRules"] = json!(rules);
        nsg["properties"]["subnets"] =
            json!(subnets.iter().map(|s| json!({"id": s})).collect::<Vec<_>>());
        self.with(|w| w.nsgs.entry(subscription.to_owned()).or_default().push(nsg));
        id
    }

    /// Puts an NSG (by id) on a NIC (by name).
    pub fn nic_nsg(&self, nic: &str, nsg: &str) {
        self.with_nic(nic, |n| {
            n["properties"]["networkSecurityGroup"] = json!({"id": nsg})
        });
    }

    /// Moves a NIC (by name) to another subnet.
    pub fn nic_subnet(&self, nic: &str, subnet: &str) {
        self.with_nic(nic, |n| {
            n["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] = json!(subnet)
        });
    }

    /// A VM's or member's power state, as its instance view's `PowerState/...` code has it.
    pub fn power(&self, id: &str, state: &str) {
        self.with(|w| w.power.insert(id.to_ascii_lowercase(), state.to_owned()));
    }

    /// A standalone VM's provisioning state.
    pub fn provisioning(&self, subscription: &str, id: &str, state: &str) {
        self.with(|w| {
            let vm = w
                .vms
                .get_mut(subscription)
                .into_iter()
                .flatten()
                .find(|v| v["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
                .unwrap_or_else(|| panic!("no VM {id}"));
            vm["properties"]["provisioningState"] = json!(state);
        });
    }

    /// A standalone VM; returns its id.
    pub fn vm(&self, subscription: &str, name: &str, image: Value, created: &str) -> String {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}"
        );
        let mut vm = fixture("VirtualMachine_Get.json");
        vm["id"] = json!(id);
        vm["name"] = json!(name);
        vm["location"] = json!(LOCATION);
        vm["tags"] = json!({"app": name});
        let properties = &mut vm["properties"];
        properties["storageProfile"]["imageReference"] = image;
        properties["timeCreated"] = json!(created);
        properties["provisioningState"] = json!("Succeeded");
        let nic_id = format!(
            "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network/networkInterfaces/{name}-nic"
        );
        properties["networkProfile"] = json!({"networkInterfaces": [{"id": nic_id}]});
        let subnet = Self::default_subnet(subscription);
        self.with(|w| {
            let address = Self::next_address(w);
            let nic = Self::nic_json(&nic_id, &id, &address, &subnet);
            w.nics.entry(subscription.to_owned()).or_default().push(nic);
            w.vms.entry(subscription.to_owned()).or_default().push(vm)
        });
        id
    }

    /// A scale set whose model launches `model`, with members on the given images (and
    /// whether each runs the latest model); returns the member ids.
    pub fn scale_set(
        &self,
        subscription: &str,
        name: &str,
        model: Value,
        health_extension: bool,
        members: &[(Value, bool, Upgrade)],
    ) -> Vec<String> {
        let set_id = format!(
            "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
        );
        let mut set = fixture("VirtualMachineScaleSet_Get_WithUserData.json");
        set["id"] = json!(set_id);
        set["name"] = json!(name);
        set["location"] = json!(LOCATION);
        set["sku"]["capacity"] = json!(members.len());
        set["properties"]["upgradePolicy"]["mode"] = json!("Manual");
        set["etag"] = json!("\"1\"");
        let profile = &mut set["properties"]["virtualMachineProfile"];
        profile["storageProfile"]["imageReference"] = model;
        if health_extension {
            profile["extensionProfile"] = json!({"extensions": [{
                "name": "healthRepairExtension",
                "properties": {
                    "publisher": "Microsoft.ManagedServices",
                    "type": "ApplicationHealthLinux",
                    "typeHandlerVersion": "1.0",
                    "settings": {"protocol": "http", "port": 80, "requestPath": "/health"}
                }
            }]});
        }
        let template =
            fixture("VirtualMachineScaleSetVM_List_MinimumSet_Gen.json")["value"][0].clone();
        let mut ids = Vec::new();
        let mut states = Vec::new();
        let mut nics = Vec::new();
        for (i, (image, latest, upgrade)) in members.iter().enumerate() {
            let id = format!("{set_id}/virtualMachines/{i}");
            let mut member = template.clone();
            member["id"] = json!(id);
            member["name"] = json!(format!("{name}_{i}"));
            member["instanceId"] = json!(i.to_string());
            member["location"] = json!(LOCATION);
            member["sku"] = json!({"name": "Standard_D2s_v3", "tier": "Standard"});
            member["properties"] = json!({
                "latestModelApplied": latest,
                "provisioningState": "Succeeded",
                "storageProfile": {"imageReference": image},
                "timeCreated": "2026-10-20T00:00:00Z",
            });
            nics.push((format!("{id}/networkInterfaces/{name}-nic{i}"), id.clone()));
            states.push((
                id.to_ascii_lowercase(),
                Member {
                    json: member,
                    provisioning: "succeeded".into(),
                    health: health_extension.then(|| "healthy".to_owned()),
                    upgrade: *upgrade,
                    slow_reads: 0,
                },
            ));
            ids.push(id);
        }
        self.with(|w| {
            w.scale_sets
                .entry(subscription.to_owned())
                .or_default()
                .push(ScaleSetState {
                    json: set,
                    members: states.iter().map(|(id, _)| id.clone()).collect(),
                    updating_reads: 0,
                    update_reads: 1,
                    update_ends: "Succeeded".into(),
                    writer: None,
                });
            w.members.extend(states);
            let subnet = Self::default_subnet(subscription);
            for (nic, member) in nics {
                let address = Self::next_address(w);
                let nic = Self::nic_json(&nic, &member, &address, &subnet);
                w.set_nics
                    .entry(set_id.to_ascii_lowercase())
                    .or_default()
                    .push(nic);
            }
        });
        ids
    }

    /// The image a member runs now, as its reference.
    pub fn member_image(&self, id: &str) -> Value {
        self.with(|w| {
            w.members[&id.to_ascii_lowercase()].json["properties"]["storageProfile"]["imageReference"]
                .clone()
        })
    }

    fn with_set<R>(
        &self,
        subscription: &str,
        name: &str,
        f: impl FnOnce(&mut ScaleSetState) -> R,
    ) -> R {
        self.with(|w| {
            let set = w
                .scale_sets
                .get_mut(subscription)
                .into_iter()
                .flatten()
                .find(|s| s.json["name"] == name)
                .unwrap_or_else(|| panic!("no scale set {name}"));
            f(set)
        })
    }

    /// Points a scale set's model at another image.
    pub fn set_model(&self, subscription: &str, name: &str, model: Value) {
        self.with_set(subscription, name, |set| {
            set.json["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] =
                model
        });
    }

    /// The scale set as a GET answers it now (without counting as a read).
    pub fn scale_set_json(&self, subscription: &str, name: &str) -> Value {
        self.with_set(subscription, name, |set| set.json.clone())
    }

    pub fn set_upgrade_mode(&self, subscription: &str, name: &str, mode: &str) {
        self.with_set(subscription, name, |set| {
            set.json["properties"]["upgradePolicy"]["mode"] = json!(mode)
        });
    }

    /// A model update stays `Updating` for this many reads, then ends in `ends`.
    pub fn model_update_takes(&self, subscription: &str, name: &str, reads: u32, ends: &str) {
        self.with_set(subscription, name, |set| {
            set.update_reads = reads;
            set.update_ends = ends.to_owned();
        });
    }

    /// Another writer (an earlier update landing late, an operator) points the model at
    /// `model` once the scale set has been read `reads` times.
    pub fn model_changes_after(&self, subscription: &str, name: &str, reads: u32, model: Value) {
        self.with_set(subscription, name, |set| set.writer = Some((reads, model)));
    }

    /// A version of a gallery image definition (`.../galleries/{g}/images/{i}`).
    pub fn gallery_version(
        &self,
        definition: &str,
        version: &str,
        published: &str,
        end_of_life: Option<&str>,
        exclude_from_latest: bool,
        violation: bool,
    ) -> String {
        let id = format!("{definition}/versions/{version}");
        let mut body = fixture("GalleryImageVersion_Get.json");
        body["id"] = json!(id);
        body["name"] = json!(version);
        body["location"] = json!(LOCATION);
        let publishing = &mut body["properties"]["publishingProfile"];
        publishing["publishedDate"] = json!(published);
        publishing["excludeFromLatest"] = json!(exclude_from_latest);
        match end_of_life {
            Some(at) => publishing["endOfLifeDate"] = json!(at),
            None => {
                if let Some(map) = publishing.as_object_mut() {
                    map.remove("endOfLifeDate");
                }
            }
        }
        let safety = &mut body["properties"]["safetyProfile"];
        safety["reportedForPolicyViolation"] = json!(violation);
        if !violation {
            safety["policyViolations"] = json!([]);
        }
        self.with(|w| {
            w.galleries
                .entry(definition.to_ascii_lowercase())
                .or_default()
                .push(body)
        });
        id
    }

    fn pir_version(fixture_name: &str, unique: &str, version: &str, published: &str) -> Value {
        let mut body = fixture(fixture_name);
        body["name"] = json!(version);
        body["location"] = json!(LOCATION);
        body["identifier"]["uniqueId"] = json!(format!("{unique}/Versions/{version}"));
        body["properties"]["publishedDate"] = json!(published);
        body["properties"]["endOfLifeDate"] = json!("2030-01-01T00:00:00Z");
        body
    }

    /// A version of an image shared directly: `/SharedGalleries/{g}/Images/{i}/Versions/{v}`.
    pub fn shared_version(
        &self,
        gallery: &str,
        image: &str,
        version: &str,
        published: &str,
    ) -> String {
        let unique = format!("/SharedGalleries/{gallery}/Images/{image}");
        let body = Self::pir_version(
            "SharedGalleryImageVersion_Get.json",
            &unique,
            version,
            published,
        );
        self.with(|w| {
            w.shared
                .entry(format!("{gallery}/{image}").to_ascii_lowercase())
                .or_default()
                .push(body)
        });
        format!("{unique}/Versions/{version}")
    }

    pub fn community_version(
        &self,
        gallery: &str,
        image: &str,
        version: &str,
        published: &str,
    ) -> String {
        let unique = format!("/CommunityGalleries/{gallery}/Images/{image}");
        let body = Self::pir_version(
            "CommunityGalleryImageVersion_Get.json",
            &unique,
            version,
            published,
        );
        self.with(|w| {
            w.community
                .entry(format!("{gallery}/{image}").to_ascii_lowercase())
                .or_default()
                .push(body)
        });
        format!("{unique}/Versions/{version}")
    }

    /// A marketplace version, with the deprecation state `get` reports for it.
    pub fn marketplace(
        &self,
        publisher: &str,
        offer: &str,
        sku: &str,
        version: &str,
        state: Option<&str>,
    ) {
        self.with(|w| {
            w.marketplace
                .entry(format!("{publisher}:{offer}:{sku}").to_ascii_lowercase())
                .or_default()
                .push((version.to_owned(), state.map(str::to_owned)))
        });
    }

    /// A managed image; returns its id.
    pub fn managed_image(&self, subscription: &str, name: &str) -> String {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/images/{name}"
        );
        let mut body = fixture("Image_Get.json");
        body["id"] = json!(id);
        body["name"] = json!(name);
        body["location"] = json!(LOCATION);
        self.with(|w| w.managed.insert(id.to_ascii_lowercase(), body));
        id
    }

    /// A fleet at scale for the benchmarks: gallery and marketplace images in the first
    /// subscription, and in each `standalone` VMs over them and `scale_sets` scale sets of
    /// `members` (half of them on the latest model), every one with its NIC on a subnet whose
    /// NSG admits HTTPS from the internet and SSH from a private range only.
    pub fn fleet(
        &self,
        subscriptions: &[String],
        standalone: usize,
        scale_sets: usize,
        members: usize,
    ) {
        let mut references = Vec::new();
        for (s, sub) in subscriptions.iter().enumerate() {
            self.subscription(sub);
            self.nsg(
                sub,
                "web-nsg",
                vec![
                    nsg_rule("https", "Allow", 100, json!("443"), json!("Internet")),
                    nsg_rule("ssh-vpn", "Allow", 110, json!("22"), json!("10.0.0.0/8")),
                ],
                &[&Self::default_subnet(sub)],
            );
            if s == 0 {
                let web = format!(
                    "/subscriptions/{sub}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/golden/images/web"
                );
                for (version, published) in [
                    ("1.0.0", "2026-09-01T00:00:00Z"),
                    ("1.1.0", "2026-10-01T00:00:00Z"),
                    ("1.2.0", "2026-10-25T00:00:00Z"),
                ] {
                    let id = self.gallery_version(&web, version, published, None, false, false);
                    references.push(id_ref(&id));
                }
                for version in ["24.04.202609010", "24.04.202610250"] {
                    self.marketplace("Canonical", "ubuntu-24_04-lts", "server", version, None);
                    references.push(marketplace_ref(
                        "Canonical",
                        "ubuntu-24_04-lts",
                        "server",
                        version,
                        None,
                    ));
                }
            }
            for v in 0..standalone {
                let image = references[v % references.len()].clone();
                self.vm(sub, &format!("vm-{s}-{v}"), image, "2026-10-20T00:00:00Z");
            }
            for set in 0..scale_sets {
                let members: Vec<_> = (0..members)
                    .map(|m| {
                        (
                            references[(set + m) % 3].clone(),
                            m % 2 == 0,
                            Upgrade::Healthy,
                        )
                    })
                    .collect();
                self.scale_set(
                    sub,
                    &format!("ss-{s}-{set}"),
                    references[2].clone(),
                    true,
                    &members,
                );
            }
        }
    }
}

pub fn marketplace_ref(
    publisher: &str,
    offer: &str,
    sku: &str,
    version: &str,
    exact: Option<&str>,
) -> Value {
    let mut reference =
        json!({"publisher": publisher, "offer": offer, "sku": sku, "version": version});
    if let Some(exact) = exact {
        reference["exactVersion"] = json!(exact);
    }
    reference
}

pub fn id_ref(id: &str) -> Value {
    json!({"id": id})
}

pub fn shared_ref(id: &str) -> Value {
    json!({"sharedGalleryImageId": id})
}

pub fn community_ref(id: &str) -> Value {
    json!({"communityGalleryImageId": id})
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    /// `If-Match`, the one request header the server heeds.
    if_match: Option<String>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut length = 0;
    let mut if_match = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("if-match")
        {
            if_match = Some(value.trim().to_owned());
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    Some(Request {
        method,
        path: path.to_owned(),
        query,
        if_match,
        body,
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn error(code: &str, message: &str) -> Vec<u8> {
    json!({"error": {"code": code, "message": message}})
        .to_string()
        .into_bytes()
}

fn serve(mut stream: TcpStream, world: &Mutex<World>, port: u16) -> Option<()> {
    let request = read_request(&mut stream)?;
    let fault = {
        let mut w = world.lock().ok()?;
        let status_only = request.query.get("statusOnly").is_some_and(|v| v == "true");
        w.calls.push(format!(
            "{} {}{}",
            request.method,
            request.path,
            if status_only { "?statusOnly=true" } else { "" }
        ));
        let found = w.faults.iter_mut().find(|f| {
            f.times > 0
                && request.path.contains(&f.path_contains)
                && f.method.as_ref().is_none_or(|m| *m == request.method)
        });
        found.map(|f| {
            f.times -= 1;
            f.fault.clone()
        })
    };
    match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let headers: Vec<(&str, String)> = retry_after
                .map(|s| ("Retry-After", s.to_string()))
                .into_iter()
                .collect();
            let code = if status == 429 {
                "TooManyRequests"
            } else {
                "InternalServerError"
            };
            respond(&mut stream, status, &headers, &error(code, "injected"));
            return Some(());
        }
        Some(Fault::Slow(delay)) => std::thread::sleep(delay),
        Some(Fault::Garbage) => {
            respond(&mut stream, 200, &[], b"{\"value\": [ this is not json");
            return Some(());
        }
        Some(Fault::Forbidden) => {
            let body = error(
                "AuthorizationFailed",
                &format!(
                    "The client 'test-client' does not have authorization to perform action 'read' over scope '{}'.",
                    request.path
                ),
            );
            respond(&mut stream, 403, &[], &body);
            return Some(());
        }
        Some(Fault::Echo(status)) => {
            let body = json!({"error": "invalid_request",
                "error_description": format!("AADSTS900144: bad request: {}",
                    String::from_utf8_lossy(&request.body))});
            respond(&mut stream, status, &[], body.to_string().as_bytes());
            return Some(());
        }
        None => {}
    }
    let (status, body) = route(&request, world, port);
    respond(&mut stream, status, &[], &body);
    Some(())
}

/// A read or a model update of the scale set itself. An update answers 200 with the scale set
/// `Updating` (a long-running operation); reads after it see `Succeeded` (or what the test
/// set). PATCH merges its body into the scale set (a `null` removes a field), PUT replaces
/// the scale set; both refuse an `imageReference` that names an image in two ways, and an
/// `If-Match` that is not the current etag.
fn scale_set_call(
    request: &Request,
    set: &mut ScaleSetState,
    members: &mut HashMap<String, Member>,
    writes: &mut Vec<(String, Value)>,
) -> (u16, Vec<u8>) {
    match request.method.as_str() {
        "GET" => {
            match set.writer.take() {
                Some((0, model)) => {
                    set.json["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] =
                        model;
                    bump_etag(&mut set.json);
                    behind_model(set, members);
                }
                Some((reads, model)) => set.writer = Some((reads - 1, model)),
                None => {}
            }
            if set.updating_reads > 0 {
                set.updating_reads -= 1;
                if set.updating_reads == 0 {
                    set.json["properties"]["provisioningState"] = json!(set.update_ends);
                }
            }
            (200, set.json.to_string().into_bytes())
        }
        method @ ("PATCH" | "PUT") => {
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return (
                    400,
                    error("InvalidRequestContent", "The request content was invalid."),
                );
            };
            writes.push((format!("{method} {}", request.path), body.clone()));
            if let Some(expected) = &request.if_match
                && Some(expected.as_str()) != set.json["etag"].as_str()
            {
                return (
                    412,
                    error(
                        "PreconditionFailed",
                        "The operation could not be completed because the specified precondition 'If-Match' failed.",
                    ),
                );
            }
            let mut updated = set.json.clone();
            if method == "PATCH" {
                merge(&mut updated, &body);
            } else {
                // What the caller cannot write stays the service's.
                updated = body;
                for kept in ["id", "name", "type", "etag"] {
                    updated[kept] = set.json[kept].clone();
                }
            }
            let reference =
                &updated["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"];
            let named = [
                reference.get("id").is_some(),
                reference.get("sharedGalleryImageId").is_some(),
                reference.get("communityGalleryImageId").is_some(),
                ["publisher", "offer", "sku"]
                    .iter()
                    .any(|f| reference.get(*f).is_some()),
            ];
            if named.iter().filter(|n| **n).count() != 1 {
                return (
                    400,
                    error(
                        "InvalidParameter",
                        "Exactly one of the properties 'id', 'sharedGalleryImageId', 'communityGalleryImageId' or 'publisher, offer, sku' must be specified in imageReference.",
                    ),
                );
            }
            let model_changed = updated["properties"]["virtualMachineProfile"]
                != set.json["properties"]["virtualMachineProfile"];
            updated["properties"]["provisioningState"] = json!("Updating");
            bump_etag(&mut updated);
            set.json = updated;
            set.updating_reads = set.update_reads;
            if set.updating_reads == 0 {
                set.json["properties"]["provisioningState"] = json!(set.update_ends);
            }
            if model_changed {
                behind_model(set, members);
            }
            (200, set.json.to_string().into_bytes())
        }
        _ => (404, error("NotFound", "no such scale-set call")),
    }
}

/// After a model change no member runs the latest model.
fn behind_model(set: &ScaleSetState, members: &mut HashMap<String, Member>) {
    for id in &set.members {
        if let Some(member) = members.get_mut(id) {
            member.json["properties"]["latestModelApplied"] = json!(false);
        }
    }
}

/// A JSON merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn bump_etag(json: &mut Value) {
    let next = json["etag"]
        .as_str()
        .and_then(|e| e.trim_matches('"').parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    json["etag"] = json!(format!("\"{next}\""));
}

fn page(items: &[Value], request: &Request, size: usize, port: u16) -> Vec<u8> {
    let start: usize = request
        .query
        .get("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + size).min(items.len());
    let mut body = json!({"value": items.get(start..end).unwrap_or(&[])});
    if end < items.len() {
        // As ARM does, the next page's link keeps the list's query (`statusOnly`, `$expand`).
        let mut query: Vec<String> = request
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "$skiptoken")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.sort();
        query.push(format!("$skiptoken={end}"));
        body["nextLink"] = json!(format!(
            "http://127.0.0.1:{port}{}?{}",
            request.path,
            query.join("&")
        ));
    }
    body.to_string().into_bytes()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instance view's status list, shaped as the official `VirtualMachine_Get_InstanceView`
/// example's.
fn statuses(provisioning: &str, power: &str) -> Value {
    static EXAMPLE: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    let mut list = EXAMPLE
        .get_or_init(|| {
            let example = fixture("VirtualMachine_Get_InstanceView.json");
            let mut list = example["statuses"].as_array().cloned().unwrap_or_default();
            list.truncate(2);
            while list.len() < 2 {
                list.push(json!({"level": "Info"}));
            }
            list
        })
        .clone();
    list[0]["code"] = json!(format!(
        "ProvisioningState/{}",
        provisioning.to_ascii_lowercase()
    ));
    list[0]["displayStatus"] = json!(format!(
        "Provisioning {}",
        provisioning.to_ascii_lowercase()
    ));
    list[1]["code"] = json!(format!("PowerState/{power}"));
    list[1]["displayStatus"] = json!(format!("VM {power}"));
    if let Some(status) = list[1].as_object_mut() {
        status.remove("time");
    }
    json!(list)
}

/// A management group's descendants, depth first: each group below it, then that group's
/// subscriptions, shaped as the official example's entries.
fn descendants(w: &World, group: &str) -> Vec<Value> {
    let example = fixture("GetDescendants.json");
    let group_id = |id: &str| format!("/providers/Microsoft.Management/managementGroups/{id}");
    let mut found = Vec::new();
    let mut stack = vec![group.to_ascii_lowercase()];
    while let Some(current) = stack.pop() {
        let Some(node) = w
            .management_groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(&current))
        else {
            continue;
        };
        if !node.id.eq_ignore_ascii_case(group) {
            let mut entry = example["value"][0].clone();
            entry["name"] = json!(node.id);
            entry["id"] = json!(group_id(&node.id));
            entry["properties"]["displayName"] = json!(format!("Group {}", node.id));
            entry["properties"]["parent"]["id"] =
                json!(group_id(node.parent.as_deref().unwrap_or("")));
            found.push(entry);
        }
        for subscription in &node.subscriptions {
            let mut entry = example["value"][1].clone();
            entry["name"] = json!(subscription);
            entry["id"] = json!(format!("/subscriptions/{subscription}"));
            entry["properties"]["displayName"] = json!(format!("Subscription {subscription}"));
            entry["properties"]["parent"]["id"] = json!(group_id(&node.id));
            found.push(entry);
        }
        for child in w.management_groups.iter().rev() {
            if child
                .parent
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&node.id))
            {
                stack.push(child.id.to_ascii_lowercase());
            }
        }
    }
    found
}

fn route(request: &Request, world: &Mutex<World>, port: u16) -> (u16, Vec<u8>) {
    let Ok(mut w) = world.lock() else {
        return (500, error("InternalServerError", "poisoned"));
    };
    let path = request.path.clone();
    let lower = path.to_ascii_lowercase();
    if lower.ends_with("/oauth2/v2.0/token") {
        let body = json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": "test-access-token"
        });
        return (200, body.to_string().into_bytes());
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let seg = |i: usize| segments.get(i).copied().unwrap_or("");
    let low: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let is = |pattern: &[&str]| {
        low.len() == pattern.len() && pattern.iter().zip(&low).all(|(p, s)| *p == "*" || p == s)
    };
    if is(&["subscriptions"]) {
        let items: Vec<Value> = w
            .subscriptions
            .iter()
            .map(|s| json!({"id": format!("/subscriptions/{s}"), "subscriptionId": s, "displayName": s, "state": "Enabled"}))
            .collect();
        return (200, page(&items, request, 1, port));
    }
    if is(&[
        "providers",
        "microsoft.management",
        "managementgroups",
        "*",
        "descendants",
    ]) {
        let group = seg(3);
        if w.forbidden_groups.contains(&group.to_ascii_lowercase()) {
            return (
                403,
                error(
                    "AuthorizationFailed",
                    &format!(
                        "The client 'test-client' does not have authorization to perform action 'Microsoft.Management/managementGroups/descendants/read' over scope '/providers/Microsoft.Management/managementGroups/{group}'."
                    ),
                ),
            );
        }
        if !w
            .management_groups
            .iter()
            .any(|g| g.id.eq_ignore_ascii_case(group))
        {
            return (
                404,
                error(
                    "NotFound",
                    &format!("Management group '{group}' was not found."),
                ),
            );
        }
        let items = descendants(&w, group);
        let mut body = page(&items, request, w.page_size, port);
        if let Some(stray) = &w.stray_next_links {
            let here = format!("http://127.0.0.1:{port}");
            body = String::from_utf8_lossy(&body)
                .replace(&here, stray)
                .into_bytes();
        }
        return (200, body);
    }
    let subscription = seg(1).to_owned();
    if low.first().map(String::as_str) == Some("subscriptions") {
        if w.forbidden.contains(&subscription) {
            return (
                403,
                error(
                    "AuthorizationFailed",
                    &format!(
                        "The client 'test-client' does not have authorization to perform action 'Microsoft.Compute/virtualMachines/read' over scope '/subscriptions/{subscription}'."
                    ),
                ),
            );
        }
        if !w.subscriptions.contains(&subscription) {
            return (
                404,
                error(
                    "SubscriptionNotFound",
                    &format!("The subscription '{subscription}' could not be found."),
                ),
            );
        }
    }
    let size = w.page_size;
    if is(&[
        "subscriptions",
        "*",
        "providers",
        "microsoft.compute",
        "virtualmachines",
    ]) {
        let vms = w.vms.get(&subscription).cloned().unwrap_or_default();
        if request.query.get("statusOnly").is_some_and(|v| v == "true") {
            let statuses: Vec<Value> = vms
                .iter()
                .map(|vm| {
                    let id = vm["id"].as_str().unwrap_or("");
                    json!({
                        "id": id,
                        "name": vm["name"],
                        "location": vm["location"],
                        "properties": {"instanceView": {"statuses": statuses(
                            vm["properties"]["provisioningState"].as_str().unwrap_or("Succeeded"),
                            w.power.get(&id.to_ascii_lowercase()).map_or("running", String::as_str),
                        )}}
                    })
                })
                .collect();
            return (200, page(&statuses, request, size, port));
        }
        return (200, page(&vms, request, size, port));
    }
    for (kind, lists) in [
        ("networkinterfaces", &w.nics),
        ("publicipaddresses", &w.public_ips),
        ("networksecuritygroups", &w.nsgs),
    ] {
        if is(&["subscriptions", "*", "providers", "microsoft.network", kind]) {
            let items = lists.get(&subscription).cloned().unwrap_or_default();
            return (200, page(&items, request, size, port));
        }
    }
    if is(&[
        "subscriptions",
        "*",
        "providers",
        "microsoft.compute",
        "virtualmachinescalesets",
    ]) {
        let sets: Vec<Value> = w
            .scale_sets
            .get(&subscription)
            .into_iter()
            .flatten()
            .map(|s| s.json.clone())
            .collect();
        return (200, page(&sets, request, size, port));
    }
    let set_path = [
        "subscriptions",
        "*",
        "resourcegroups",
        "*",
        "providers",
        "microsoft.compute",
        "virtualmachinescalesets",
        "*",
    ];
    let find_set = |w: &World| -> Option<usize> {
        w.scale_sets.get(&subscription)?.iter().position(|s| {
            s.json["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(seg(7)))
        })
    };
    if low.len() >= 8 && set_path.iter().zip(&low).all(|(p, s)| *p == "*" || p == s) {
        let Some(at) = find_set(&w) else {
            return (404, error("ResourceNotFound", "scale set not found"));
        };
        if low.len() == 8 {
            let World {
                scale_sets,
                members,
                writes,
                ..
            } = &mut *w;
            let Some(set) = scale_sets
                .get_mut(&subscription)
                .and_then(|s| s.get_mut(at))
            else {
                return (404, error("ResourceNotFound", "scale set not found"));
            };
            return scale_set_call(request, set, members, writes);
        }
        let sets = &w.scale_sets[&subscription];
        let set = &sets[at];
        let member_ids = set.members.clone();
        let model =
            set.json["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
                .clone();
        match (request.method.as_str(), &low[8..]) {
            ("GET", [vms]) if vms == "virtualmachines" => {
                let expand = request
                    .query
                    .get("$expand")
                    .is_some_and(|e| e == "instanceView");
                let members: Vec<Value> = member_ids
                    .iter()
                    .filter_map(|id| {
                        let member = w.members.get(id)?;
                        let mut json = member.json.clone();
                        if expand {
                            let power = w.power.get(id).map_or("running", String::as_str);
                            json["properties"]["instanceView"] = json!({
                                "statuses": statuses(&member.provisioning, power)
                            });
                        }
                        Some(json)
                    })
                    .collect();
                return (200, page(&members, request, size, port));
            }
            ("GET", [kind]) if kind == "networkinterfaces" || kind == "publicipaddresses" => {
                let set_id = format!("/{}", low[..8].join("/"));
                let lists = if kind == "networkinterfaces" {
                    &w.set_nics
                } else {
                    &w.set_public_ips
                };
                let items = lists.get(&set_id).cloned().unwrap_or_default();
                return (200, page(&items, request, size, port));
            }
            ("GET", [vms, instance]) if vms == "virtualmachines" => {
                let id = format!("{}/virtualmachines/{instance}", low[..8].join("/"));
                return match w.members.get(&format!("/{id}")) {
                    Some(m) => (200, m.json.to_string().into_bytes()),
                    None => (404, error("NotFound", "member not found")),
                };
            }
            ("GET", [vms, instance, view])
                if vms == "virtualmachines" && view == "instanceview" =>
            {
                let id = format!("/{}/virtualmachines/{instance}", low[..8].join("/"));
                let Some(member) = w.members.get_mut(&id) else {
                    return (404, error("NotFound", "member not found"));
                };
                if member.slow_reads > 0 {
                    member.slow_reads -= 1;
                    if member.slow_reads == 0 {
                        member.provisioning = "succeeded".into();
                    }
                }
                let mut view = fixture("VirtualMachine_Get_InstanceView.json");
                view["statuses"] = json!([
                    {"code": format!("ProvisioningState/{}", member.provisioning), "level": "Info"},
                    {"code": "PowerState/running", "level": "Info"}
                ]);
                if let Some(health) = &member.health {
                    view["vmHealth"] = json!({"status": {"code": format!("HealthState/{health}"), "level": "Info"}});
                }
                return (200, view.to_string().into_bytes());
            }
            ("POST", [action]) if action == "manualupgrade" => {
                let asked: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let instances: Vec<String> = asked["instanceIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                for instance in instances {
                    let id = format!("/{}/virtualmachines/{instance}", low[..8].join("/"));
                    let Some(member) = w.members.get_mut(&id) else {
                        return (404, error("NotFound", "member not found"));
                    };
                    member.json["properties"]["latestModelApplied"] = json!(true);
                    member.json["properties"]["storageProfile"]["imageReference"] = model.clone();
                    match member.upgrade {
                        Upgrade::Healthy => member.provisioning = "succeeded".into(),
                        Upgrade::Slow(reads) => {
                            member.provisioning = "updating".into();
                            member.slow_reads = reads;
                        }
                        Upgrade::Fails => member.provisioning = "failed".into(),
                        Upgrade::Unhealthy => {
                            member.provisioning = "succeeded".into();
                            member.health = Some("unhealthy".into());
                        }
                    }
                }
                return (202, Vec::new());
            }
            _ => return (404, error("NotFound", "no such scale-set call")),
        }
    }
    if is(&[
        "subscriptions",
        "*",
        "resourcegroups",
        "*",
        "providers",
        "microsoft.compute",
        "galleries",
        "*",
        "images",
        "*",
        "versions",
    ]) {
        let definition = format!("/{}", segments[..10].join("/")).to_ascii_lowercase();
        return match w.galleries.get(&definition) {
            Some(versions) => (200, page(versions, request, size, port)),
            None => (
                404,
                error(
                    "ResourceNotFound",
                    "The gallery image definition was not found.",
                ),
            ),
        };
    }
    if is(&[
        "subscriptions",
        "*",
        "providers",
        "microsoft.compute",
        "locations",
        "*",
        "sharedgalleries",
        "*",
        "images",
        "*",
        "versions",
    ]) {
        let key = format!("{}/{}", low[7], low[9]);
        return match w.shared.get(&key) {
            Some(versions) => (200, page(versions, request, size, port)),
            None => (404, error("ResourceNotFound", "shared image not found")),
        };
    }
    if is(&[
        "subscriptions",
        "*",
        "providers",
        "microsoft.compute",
        "locations",
        "*",
        "communitygalleries",
        "*",
        "images",
        "*",
        "versions",
    ]) {
        let key = format!("{}/{}", low[7], low[9]);
        return match w.community.get(&key) {
            Some(versions) => (200, page(versions, request, size, port)),
            None => (404, error("ResourceNotFound", "community image not found")),
        };
    }
    let offer = [
        "subscriptions",
        "*",
        "providers",
        "microsoft.compute",
        "locations",
        "*",
        "publishers",
        "*",
        "artifacttypes",
        "vmimage",
        "offers",
        "*",
        "skus",
        "*",
        "versions",
    ];
    if low.len() >= offer.len() && offer.iter().zip(&low).all(|(p, s)| *p == "*" || p == s) {
        let key = format!("{}:{}:{}", low[7], low[11], low[13]);
        let versions = w.marketplace.get(&key).cloned().unwrap_or_default();
        if low.len() == offer.len() {
            let template = fixture("VirtualMachineImage_List_MinimumSet_Gen.json")[0].clone();
            let items: Vec<Value> = versions
                .iter()
                .map(|(v, _)| {
                    let mut item = template.clone();
                    item["name"] = json!(v);
                    item["location"] = json!(seg(5));
                    item["id"] = json!(format!("/{}/{v}", segments.join("/")));
                    item
                })
                .collect();
            return (200, Value::Array(items).to_string().into_bytes());
        }
        let wanted = seg(15);
        return match versions.iter().find(|(v, _)| v == wanted) {
            Some((v, state)) => {
                let mut body = fixture("VirtualMachineImage_Get_MaximumSet_Gen.json");
                body["name"] = json!(v);
                body["location"] = json!(seg(5));
                body["id"] = json!(path);
                match state {
                    Some(state) => {
                        body["properties"]["imageDeprecationStatus"]["imageState"] = json!(state)
                    }
                    None => {
                        if let Some(p) = body["properties"].as_object_mut() {
                            p.remove("imageDeprecationStatus");
                        }
                    }
                }
                (200, body.to_string().into_bytes())
            }
            None => (404, error("NotFound", "version not found")),
        };
    }
    if is(&[
        "subscriptions",
        "*",
        "resourcegroups",
        "*",
        "providers",
        "microsoft.compute",
        "images",
        "*",
    ]) {
        return match w.managed.get(&lower) {
            Some(image) => (200, image.to_string().into_bytes()),
            None => (
                404,
                error(
                    "NotFound",
                    "The Resource 'Microsoft.Compute/images' was not found.",
                ),
            ),
        };
    }
    (
        404,
        error(
            "NotFound",
            &format!("no route for {} {path}", request.method),
        ),
    )
}
