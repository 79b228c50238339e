//! What a subscription's network says of its VMs: the addresses of their network interfaces,
//! and whether a network security group lets SSH or RDP in from the internet. Serde types with
//! only the fields read, from the Network resource provider's answers (NICs, public IPs,
//! security groups) and the compute provider's status-only VM list; `arm` makes the calls.
//!
//! How exposure is decided, per IP configuration of each NIC (Azure evaluates inbound traffic
//! against the subnet's NSG, then the NIC's, and both must allow it):
//! - an NSG admits a port from the internet when, in priority order (lowest number first), an
//!   inbound **Allow** rule for TCP (or any protocol) covering the port (`destinationPortRange(s)`:
//!   a port, a range, `*`) names `*`, `Internet`, `0.0.0.0/0` or `::/0` among its sources
//!   (`sourceAddressPrefix(es)`), before any inbound **Deny** rule for TCP or any protocol,
//!   covering the port, from any source port and to any destination, has shut those sources
//!   (`*` and `Internet` shut both address families; `0.0.0.0/0` IPv4; `::/0` IPv6);
//! - with an NSG on the subnet and one on the NIC, the port is exposed when both admit it; with
//!   one of them, when that one does;
//! - with neither, a NIC with a public IP is exposed (Azure filters nothing then); one without
//!   is not (an NSG's own default rules deny inbound traffic from the internet).
//!
//! An Allow's destination and source ports are not weighed: an allow from the internet on an
//! NSG a VM sits behind is worth a look. A Deny aimed at some destinations or source ports only
//! is not counted as shutting anything.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

use crate::core::model::{Addresses, Text};

/// Ports whose exposure to the whole internet is a finding.
const ADMIN_PORTS: [(u16, &str); 2] = [(22, "22/tcp"), (3389, "3389/tcp")];

/// Address families, as bits.
const IPV4: u8 = 0b01;
const IPV6: u8 = 0b10;

/// A field ARM may send as `null` reads as its default.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct Reference {
    id: Option<String>,
}

impl Reference {
    fn id(reference: Option<Reference>) -> Option<String> {
        reference
            .and_then(|r| r.id)
            .filter(|id| !id.is_empty())
            .map(|id| id.to_ascii_lowercase())
    }
}

/// The last segment of an ARM id: a resource's name.
fn last_segment(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// A network interface, from `networkInterfaces` `listAll` or a scale set's
/// `networkInterfaces`.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WireNic")]
pub struct Nic {
    pub name: String,
    /// The VM (or scale-set member) it is attached to, lowercase.
    pub vm: Option<String>,
    /// Its own NSG, lowercase.
    nsg: Option<String>,
    primary: bool,
    ip_configs: Vec<IpConfig>,
}

#[derive(Debug, Clone)]
struct IpConfig {
    private_ip: Option<String>,
    /// The public IP resource's id, lowercase.
    public_ip: Option<String>,
    /// The subnet's id, lowercase.
    subnet: Option<String>,
}

impl Nic {
    /// Whether any IP configuration names a public IP.
    pub fn has_public_ip(&self) -> bool {
        self.ip_configs.iter().any(|c| c.public_ip.is_some())
    }
}

#[derive(Deserialize)]
struct WireNic {
    id: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    properties: NicProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NicProperties {
    virtual_machine: Option<Reference>,
    network_security_group: Option<Reference>,
    #[serde(default, deserialize_with = "null_default")]
    ip_configurations: Vec<WireIpConfig>,
    primary: Option<bool>,
}

#[derive(Deserialize)]
struct WireIpConfig {
    #[serde(default, deserialize_with = "null_default")]
    properties: IpConfigProperties,
}

#[derive(Deserialize, Default)]
struct IpConfigProperties {
    #[serde(rename = "privateIPAddress")]
    private_ip_address: Option<String>,
    #[serde(rename = "publicIPAddress")]
    public_ip_address: Option<Reference>,
    subnet: Option<Reference>,
    primary: Option<bool>,
}

impl From<WireNic> for Nic {
    fn from(wire: WireNic) -> Nic {
        let p = wire.properties;
        let mut configs: Vec<(bool, IpConfig)> = p
            .ip_configurations
            .into_iter()
            .map(|c| {
                let c = c.properties;
                (
                    c.primary.unwrap_or(false),
                    IpConfig {
                        private_ip: c.private_ip_address.filter(|a| !a.is_empty()),
                        public_ip: Reference::id(c.public_ip_address),
                        subnet: Reference::id(c.subnet),
                    },
                )
            })
            .collect();
        // The primary configuration's address first, as the portal shows it.
        configs.sort_by_key(|(primary, _)| !primary);
        let name = wire
            .name
            .or_else(|| wire.id.as_deref().map(|id| last_segment(id).to_owned()))
            .unwrap_or_default();
        Nic {
            name,
            vm: Reference::id(p.virtual_machine),
            nsg: Reference::id(p.network_security_group),
            primary: p.primary.unwrap_or(false),
            ip_configs: configs.into_iter().map(|(_, c)| c).collect(),
        }
    }
}

/// A public IP address resource, from `publicIPAddresses` `listAll` or a scale set's
/// `publicipaddresses`.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WirePublicIp")]
pub struct PublicIp {
    /// Lowercase.
    id: String,
    address: Option<String>,
    fqdn: Option<String>,
}

#[derive(Deserialize)]
struct WirePublicIp {
    id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    properties: PublicIpProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PublicIpProperties {
    ip_address: Option<String>,
    dns_settings: Option<DnsSettings>,
}

#[derive(Deserialize)]
struct DnsSettings {
    fqdn: Option<String>,
}

impl From<WirePublicIp> for PublicIp {
    fn from(wire: WirePublicIp) -> PublicIp {
        let p = wire.properties;
        PublicIp {
            id: wire.id.unwrap_or_default().to_ascii_lowercase(),
            address: p.ip_address.filter(|a| !a.is_empty()),
            fqdn: p
                .dns_settings
                .and_then(|d| d.fqdn)
                .filter(|f| !f.is_empty()),
        }
    }
}

/// A network security group, from `networkSecurityGroups` `listAll`: its inbound rules, its
/// own and the default ones, in priority order, and the subnets it is on.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WireGroup")]
pub struct SecurityGroup {
    /// Lowercase.
    id: String,
    name: String,
    rules: Vec<Rule>,
    /// Lowercase subnet ids.
    subnets: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    allow: bool,
    /// TCP or any protocol.
    tcp: bool,
    /// Destination ports, inclusive ranges.
    ports: Vec<(u16, u16)>,
    sources: Vec<String>,
    any_source_port: bool,
    any_destination: bool,
}

#[derive(Deserialize)]
struct WireGroup {
    id: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    properties: GroupProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GroupProperties {
    #[serde(default, deserialize_with = "null_default")]
    security_rules: Vec<WireRule>,
    #[serde(default, deserialize_with = "null_default")]
    default_security_rules: Vec<WireRule>,
    #[serde(default, deserialize_with = "null_default")]
    subnets: Vec<Reference>,
}

#[derive(Deserialize)]
struct WireRule {
    name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    properties: RuleProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RuleProperties {
    protocol: Option<String>,
    source_port_range: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    source_port_ranges: Vec<String>,
    destination_port_range: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    destination_port_ranges: Vec<String>,
    source_address_prefix: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    source_address_prefixes: Vec<String>,
    destination_address_prefix: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    destination_address_prefixes: Vec<String>,
    access: Option<String>,
    priority: Option<i64>,
    direction: Option<String>,
}

/// A rule's one value and its list together, blanks left out.
fn values(one: Option<String>, many: Vec<String>) -> Vec<String> {
    one.into_iter()
        .chain(many)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A port range as NSG rules write it: `22`, `20-25`, `*`.
fn port_range(text: &str) -> Option<(u16, u16)> {
    if text == "*" {
        return Some((0, u16::MAX));
    }
    match text.split_once('-') {
        Some((from, to)) => Some((from.trim().parse().ok()?, to.trim().parse().ok()?)),
        None => {
            let port = text.parse().ok()?;
            Some((port, port))
        }
    }
}

/// The internet address families a source prefix stands for: `*` and the `Internet` tag
/// both, `0.0.0.0/0` IPv4, `::/0` IPv6; anything else none.
fn internet(prefix: &str) -> u8 {
    if prefix == "*" || prefix.eq_ignore_ascii_case("internet") {
        IPV4 | IPV6
    } else if prefix == "0.0.0.0/0" {
        IPV4
    } else if prefix == "::/0" {
        IPV6
    } else {
        0
    }
}

impl Rule {
    fn from_wire(wire: WireRule) -> Option<(i64, Rule)> {
        let p = wire.properties;
        let inbound = p
            .direction
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("inbound"));
        let allow = match p.access.as_deref() {
            Some(a) if a.eq_ignore_ascii_case("allow") => true,
            Some(a) if a.eq_ignore_ascii_case("deny") => false,
            _ => return None,
        };
        if !inbound {
            return None;
        }
        let protocol = p.protocol.as_deref().unwrap_or("");
        let source_ports = values(p.source_port_range, p.source_port_ranges);
        let destinations = values(p.destination_address_prefix, p.destination_address_prefixes);
        Some((
            p.priority?,
            Rule {
                name: wire.name.unwrap_or_default(),
                allow,
                tcp: protocol == "*" || protocol.eq_ignore_ascii_case("tcp"),
                ports: values(p.destination_port_range, p.destination_port_ranges)
                    .iter()
                    .filter_map(|r| port_range(r))
                    .collect(),
                sources: values(p.source_address_prefix, p.source_address_prefixes),
                any_source_port: source_ports.is_empty() || source_ports.iter().any(|r| r == "*"),
                any_destination: destinations.is_empty()
                    || destinations.iter().any(|d| {
                        d == "*"
                            || d == "0.0.0.0/0"
                            || d == "::/0"
                            || d.eq_ignore_ascii_case("virtualnetwork")
                    }),
            },
        ))
    }

    fn covers(&self, port: u16) -> bool {
        self.tcp
            && self
                .ports
                .iter()
                .any(|(from, to)| *from <= port && port <= *to)
    }

    /// The internet families this rule's sources name.
    fn families(&self) -> u8 {
        self.sources.iter().fold(0, |all, s| all | internet(s))
    }
}

impl From<WireGroup> for SecurityGroup {
    fn from(wire: WireGroup) -> SecurityGroup {
        let p = wire.properties;
        let mut rules: Vec<(i64, Rule)> = p
            .security_rules
            .into_iter()
            .chain(p.default_security_rules)
            .filter_map(Rule::from_wire)
            .collect();
        rules.sort_by_key(|(priority, _)| *priority);
        let id = wire.id.unwrap_or_default().to_ascii_lowercase();
        let name = wire.name.unwrap_or_else(|| last_segment(&id).to_owned());
        SecurityGroup {
            name,
            rules: rules.into_iter().map(|(_, r)| r).collect(),
            subnets: p
                .subnets
                .into_iter()
                .filter_map(|s| Reference::id(Some(s)))
                .collect(),
            id,
        }
    }
}

/// What lets a port in through one NSG: the rule, and the source it names.
struct Admission<'a> {
    rule: &'a str,
    source: &'a str,
}

impl SecurityGroup {
    /// The rule that admits `port` from the internet, weighed against the Deny rules before
    /// it; `None` when none does.
    fn admits(&self, port: u16) -> Option<Admission<'_>> {
        let mut open = IPV4 | IPV6;
        for rule in self.rules.iter().filter(|r| r.covers(port)) {
            let families = rule.families();
            if rule.allow {
                let admitted = families & open;
                if admitted != 0 {
                    let source = rule
                        .sources
                        .iter()
                        .find(|s| internet(s) & admitted != 0)
                        .map_or("", String::as_str);
                    return Some(Admission {
                        rule: &rule.name,
                        source,
                    });
                }
            } else if rule.any_source_port && rule.any_destination {
                open &= !families;
                if open == 0 {
                    return None;
                }
            }
        }
        None
    }
}

/// One VM's power state, from the status-only VM list (or a scale-set member's instance view).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WireStatus")]
pub struct PowerState {
    /// Lowercase VM id.
    pub id: String,
    /// `running`, `stopped`, `deallocated`, ... when reported.
    pub power: Option<String>,
}

#[derive(Deserialize)]
struct WireStatus {
    id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    properties: StatusProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StatusProperties {
    instance_view: Option<InstanceView>,
}

#[derive(Deserialize)]
struct InstanceView {
    #[serde(default, deserialize_with = "null_default")]
    statuses: Vec<StatusCode>,
}

#[derive(Deserialize)]
struct StatusCode {
    code: Option<String>,
}

impl From<WireStatus> for PowerState {
    fn from(wire: WireStatus) -> PowerState {
        let codes = wire
            .properties
            .instance_view
            .map(|v| v.statuses)
            .unwrap_or_default();
        PowerState {
            id: wire.id.unwrap_or_default().to_ascii_lowercase(),
            power: power_state(codes.iter().filter_map(|c| c.code.as_deref())),
        }
    }
}

/// The state of the `PowerState/...` code among an instance view's status codes, lowercase.
pub fn power_state<'a>(codes: impl IntoIterator<Item = &'a str>) -> Option<String> {
    codes
        .into_iter()
        .find_map(|c| c.strip_prefix("PowerState/"))
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
}

/// A subscription's network as read: NICs by the VM they are on, public IPs by id, and the
/// NSGs (unknown when they could not be read).
#[derive(Default)]
pub struct Network {
    nics: HashMap<String, Vec<Nic>>,
    public_ips: HashMap<String, PublicIp>,
    groups: Option<Groups>,
}

struct Groups {
    by_id: HashMap<String, SecurityGroup>,
    /// Subnet id -> the id of the NSG on it.
    by_subnet: HashMap<String, String>,
}

impl Network {
    pub fn add_nics(&mut self, nics: Vec<Nic>) {
        for nic in nics {
            let Some(vm) = nic.vm.clone() else {
                continue;
            };
            let on_vm = self.nics.entry(vm).or_default();
            // The primary NIC's addresses first.
            let at = if nic.primary { 0 } else { on_vm.len() };
            on_vm.insert(at, nic);
        }
    }

    pub fn add_public_ips(&mut self, ips: Vec<PublicIp>) {
        self.public_ips
            .extend(ips.into_iter().map(|ip| (ip.id.clone(), ip)));
    }

    /// The subscription's NSGs; until they are given, exposure is unknown and none is found.
    pub fn set_groups(&mut self, groups: Vec<SecurityGroup>) {
        let mut by_subnet = HashMap::new();
        for group in &groups {
            for subnet in &group.subnets {
                by_subnet.insert(subnet.clone(), group.id.clone());
            }
        }
        let by_id = groups.into_iter().map(|g| (g.id.clone(), g)).collect();
        self.groups = Some(Groups { by_id, by_subnet });
    }

    /// The private and public addresses of a VM's NICs, and its public IPs' DNS names.
    pub fn addresses(&self, vm: &str) -> Addresses {
        let mut addresses = Addresses::default();
        let add = |list: &mut Vec<Text>, value: Option<&String>| {
            if let Some(value) = value
                && !list.iter().any(|v| v == value)
            {
                list.push(value.as_str().into());
            }
        };
        for nic in self.nics_of(vm) {
            for config in &nic.ip_configs {
                add(&mut addresses.private_ips, config.private_ip.as_ref());
                let public = config
                    .public_ip
                    .as_ref()
                    .and_then(|id| self.public_ips.get(id));
                add(
                    &mut addresses.public_ips,
                    public.and_then(|p| p.address.as_ref()),
                );
                add(
                    &mut addresses.dns_names,
                    public.and_then(|p| p.fqdn.as_ref()),
                );
            }
        }
        addresses
    }

    fn nics_of(&self, vm: &str) -> &[Nic] {
        self.nics
            .get(&vm.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// Why the VM is open to the internet on SSH or RDP, one finding per way in; none when
    /// the NSGs are unknown.
    pub fn exposure(&self, vm: &str) -> Vec<String> {
        let Some(groups) = &self.groups else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        for nic in self.nics_of(vm) {
            let on_nic = match &nic.nsg {
                Some(id) => match groups.by_id.get(id) {
                    Some(group) => Some(group),
                    // On the NIC but not among those read: nothing can be said of it.
                    None => continue,
                },
                None => None,
            };
            for config in &nic.ip_configs {
                let subnet = config.subnet.as_deref();
                let on_subnet = subnet
                    .and_then(|s| groups.by_subnet.get(s))
                    .and_then(|id| groups.by_id.get(id));
                findings.extend(self.config_exposure(nic, config, on_subnet, on_nic));
            }
        }
        findings.sort();
        findings.dedup();
        findings
    }

    fn config_exposure(
        &self,
        nic: &Nic,
        config: &IpConfig,
        on_subnet: Option<&SecurityGroup>,
        on_nic: Option<&SecurityGroup>,
    ) -> Vec<String> {
        let subnet_name = config
            .subnet
            .as_deref()
            .map_or_else(|| "?".to_owned(), subnet_label);
        let mut findings = Vec::new();
        match (on_subnet, on_nic) {
            (None, None) => {
                if let Some(id) = &config.public_ip {
                    let address = self
                        .public_ips
                        .get(id)
                        .and_then(|p| p.address.clone())
                        .unwrap_or_else(|| last_segment(id).to_owned());
                    findings.push(format!(
                        "nic {} has public IP {address} and no nsg on it or on subnet {subnet_name}: every port is open, 22/tcp and 3389/tcp among them",
                        nic.name
                    ));
                }
            }
            (Some(group), None) | (None, Some(group)) => {
                let place = if on_nic.is_some() {
                    format!("nic {}", nic.name)
                } else {
                    format!("subnet {subnet_name}")
                };
                for (port, label) in ADMIN_PORTS {
                    if let Some(a) = group.admits(port) {
                        findings.push(format!(
                            "nsg {} on {place} rule {} admits {label} from {}",
                            group.name, a.rule, a.source
                        ));
                    }
                }
            }
            (Some(subnet_group), Some(nic_group)) => {
                for (port, label) in ADMIN_PORTS {
                    if let (Some(s), Some(n)) = (subnet_group.admits(port), nic_group.admits(port))
                    {
                        findings.push(format!(
                            "nsg {} on subnet {subnet_name} rule {} (from {}) and nsg {} on nic {} rule {} (from {}) admit {label}",
                            subnet_group.name,
                            s.rule,
                            s.source,
                            nic_group.name,
                            nic.name,
                            n.rule,
                            n.source
                        ));
                    }
                }
            }
        }
        findings
    }
}

/// A subnet as `vnet/subnet`, from its (lowercase) id.
fn subnet_label(id: &str) -> String {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    let after = |kind: &str| parts.windows(2).find(|w| w[0] == kind).map(|w| w[1]);
    match (after("virtualnetworks"), after("subnets")) {
        (Some(vnet), Some(subnet)) => format!("{vnet}/{subnet}"),
        _ => last_segment(id).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn group(rules: Value) -> SecurityGroup {
        serde_json::from_value(json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/web-nsg",
            "name": "web-nsg",
            "properties": {"securityRules": rules, "subnets": []}
        }))
        .unwrap()
    }

    fn rule(name: &str, access: &str, priority: i64, ports: Value, sources: Value) -> Value {
        let mut properties = json!({
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "access": access,
            "priority": priority,
            "direction": "Inbound",
        });
        match ports {
            Value::String(_) => properties["destinationPortRange"] = ports,
            _ => properties["destinationPortRanges"] = ports,
        }
        match sources {
            Value::String(_) => properties["sourceAddressPrefix"] = sources,
            _ => properties["sourceAddressPrefixes"] = sources,
        }
        json!({"name": name, "properties": properties})
    }

    fn admitted(group: &SecurityGroup, port: u16) -> Option<String> {
        group
            .admits(port)
            .map(|a| format!("{} from {}", a.rule, a.source))
    }

    #[test]
    fn an_allow_from_the_internet_admits_the_ports_it_covers() {
        let g = group(json!([rule(
            "ssh",
            "Allow",
            100,
            json!("22"),
            json!("Internet")
        )]));
        assert_eq!(admitted(&g, 22).as_deref(), Some("ssh from Internet"));
        assert_eq!(admitted(&g, 3389), None);
        let g = group(json!([rule(
            "range",
            "Allow",
            100,
            json!("20-25"),
            json!("*")
        )]));
        assert_eq!(admitted(&g, 22).as_deref(), Some("range from *"));
        let g = group(json!([rule(
            "list",
            "Allow",
            100,
            json!(["80", "3000-3999"]),
            json!(["10.0.0.0/8", "0.0.0.0/0"])
        )]));
        assert_eq!(admitted(&g, 3389).as_deref(), Some("list from 0.0.0.0/0"));
        assert_eq!(admitted(&g, 22), None);
        let g = group(json!([rule(
            "all",
            "Allow",
            100,
            json!("*"),
            json!("::/0")
        )]));
        assert_eq!(admitted(&g, 22).as_deref(), Some("all from ::/0"));
    }

    #[test]
    fn private_sources_udp_and_outbound_rules_admit_nothing() {
        let g = group(json!([
            rule("private", "Allow", 100, json!("22"), json!("10.0.0.0/8")),
            rule("vnet", "Allow", 110, json!("22"), json!("VirtualNetwork")),
            rule("lb", "Allow", 120, json!("22"), json!("AzureLoadBalancer")),
        ]));
        assert_eq!(admitted(&g, 22), None);
        let mut udp = rule("udp", "Allow", 100, json!("22"), json!("*"));
        udp["properties"]["protocol"] = json!("Udp");
        let mut outbound = rule("out", "Allow", 110, json!("22"), json!("*"));
        outbound["properties"]["direction"] = json!("Outbound");
        assert_eq!(admitted(&group(json!([udp, outbound])), 22), None);
        let mut any = rule("any", "Allow", 100, json!("22"), json!("*"));
        any["properties"]["protocol"] = json!("*");
        assert!(admitted(&group(json!([any])), 22).is_some());
    }

    #[test]
    fn a_deny_of_higher_priority_shuts_what_it_covers() {
        let allow = rule("ssh", "Allow", 200, json!("22"), json!("*"));
        let deny =
            |priority, ports: Value, sources: Value| rule("deny", "Deny", priority, ports, sources);
        // Before it, and covering it: shut.
        let g = group(json!([allow, deny(100, json!("*"), json!("*"))]));
        assert_eq!(admitted(&g, 22), None);
        let g = group(json!([allow, deny(100, json!("22"), json!("Internet"))]));
        assert_eq!(admitted(&g, 22), None);
        // After it: the allow wins.
        let g = group(json!([allow, deny(300, json!("*"), json!("*"))]));
        assert!(admitted(&g, 22).is_some());
        // Another port, a private source: not shut.
        let g = group(json!([allow, deny(100, json!("3389"), json!("*"))]));
        assert!(admitted(&g, 22).is_some());
        let g = group(json!([allow, deny(100, json!("22"), json!("10.0.0.0/8"))]));
        assert!(admitted(&g, 22).is_some());
        // IPv4 shut, IPv6 still open through the allow's `*`.
        let g = group(json!([allow, deny(100, json!("22"), json!("0.0.0.0/0"))]));
        assert_eq!(admitted(&g, 22).as_deref(), Some("ssh from *"));
        let g = group(json!([
            allow,
            deny(100, json!("22"), json!("0.0.0.0/0")),
            rule("deny6", "Deny", 110, json!("22"), json!("::/0"))
        ]));
        assert_eq!(admitted(&g, 22), None);
        // A deny aimed at one destination does not shut the rest.
        let mut aimed = deny(100, json!("22"), json!("*"));
        aimed["properties"]["destinationAddressPrefix"] = json!("10.0.0.9");
        assert!(admitted(&group(json!([allow, aimed])), 22).is_some());
    }

    #[test]
    fn the_official_examples_read() {
        let body = |name: &str| -> Value {
            let path = format!("{}/tests/fixtures/azure/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["responses"]["200"]["body"]["value"]
                .clone()
        };
        let nics: Vec<Nic> = serde_json::from_value(body("NetworkInterfaceListAll.json")).unwrap();
        assert_eq!(nics.len(), 2);
        assert_eq!(
            nics[0].vm.as_deref(),
            Some(
                "/subscriptions/subid/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1"
            )
        );
        assert!(nics[0].has_public_ip());
        let ips: Vec<PublicIp> =
            serde_json::from_value(body("PublicIpAddressListAll.json")).unwrap();
        assert_eq!(ips[1].address.as_deref(), Some("40.85.154.247"));
        assert_eq!(
            ips[1].fqdn.as_deref(),
            Some("testlbl.westus.cloudapp.azure.com")
        );
        let groups: Vec<SecurityGroup> =
            serde_json::from_value(body("NetworkSecurityGroupListAll.json")).unwrap();
        // Only the default rules: nothing is admitted from the internet.
        assert_eq!(groups[0].rules.len(), 3);
        assert!(groups.iter().all(|g| g.admits(22).is_none()));

        let mut network = Network::default();
        network.add_nics(nics);
        network.add_public_ips(ips);
        let vm1 = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
        assert_eq!(network.addresses(vm1).private_ips, ["172.20.2.4"]);
        // Its NSG is not among those read: unknown, so no finding; with no NSGs read at all,
        // nothing is known either.
        assert!(network.exposure(vm1).is_empty());
        network.set_groups(groups);
        assert!(network.exposure(vm1).is_empty());
    }

    #[test]
    fn the_subnet_and_nic_groups_must_both_admit_and_a_public_ip_without_any_is_open() {
        let base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network";
        let subnet = format!("{base}/virtualNetworks/vnet/subnets/web");
        let nic = |name: &str, vm: &str, nsg: Option<&str>, public: bool| -> Value {
            let mut config = json!({"properties": {
                "privateIPAddress": "10.0.0.4",
                "subnet": {"id": subnet},
            }});
            if public {
                config["properties"]["publicIPAddress"] =
                    json!({"id": format!("{base}/publicIPAddresses/{name}-ip")});
            }
            let mut nic = json!({"name": name, "properties": {
                "virtualMachine": {"id": format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{vm}")},
                "ipConfigurations": [config],
            }});
            if let Some(nsg) = nsg {
                nic["properties"]["networkSecurityGroup"] =
                    json!({"id": format!("{base}/networkSecurityGroups/{nsg}")});
            }
            nic
        };
        let nsg = |name: &str, rules: Value, subnets: Value| -> Value {
            json!({"id": format!("{base}/networkSecurityGroups/{name}"), "name": name,
                "properties": {"securityRules": rules, "subnets": subnets}})
        };
        let ssh = rule("ssh", "Allow", 100, json!("22"), json!("Internet"));
        let deny = rule("no-ssh", "Deny", 100, json!("22"), json!("*"));
        let vm = |name: &str| {
            format!(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"
            )
        };
        let network = |nics: Value, groups: Value| {
            let mut network = Network::default();
            network.add_nics(serde_json::from_value(nics).unwrap());
            network.set_groups(serde_json::from_value(groups).unwrap());
            network
        };

        // Only the subnet's group: it decides.
        let n = network(
            json!([nic("a", "a", None, false)]),
            json!([nsg("subnet-nsg", json!([ssh]), json!([{"id": subnet}]))]),
        );
        assert_eq!(
            n.exposure(&vm("a")),
            ["nsg subnet-nsg on subnet vnet/web rule ssh admits 22/tcp from Internet"]
        );
        // The NIC's group denies what the subnet's admits: not exposed.
        let n = network(
            json!([nic("a", "a", Some("nic-nsg"), false)]),
            json!([
                nsg("subnet-nsg", json!([ssh]), json!([{"id": subnet}])),
                nsg("nic-nsg", json!([deny]), json!([]))
            ]),
        );
        assert!(n.exposure(&vm("a")).is_empty());
        // Both admit it.
        let n = network(
            json!([nic("a", "a", Some("nic-nsg"), false)]),
            json!([
                nsg("subnet-nsg", json!([ssh]), json!([{"id": subnet}])),
                nsg(
                    "nic-nsg",
                    json!([rule("any", "Allow", 300, json!("*"), json!("*"))]),
                    json!([])
                )
            ]),
        );
        assert_eq!(
            n.exposure(&vm("a")),
            [
                "nsg subnet-nsg on subnet vnet/web rule ssh (from Internet) and nsg nic-nsg on nic a rule any (from *) admit 22/tcp"
            ]
        );
        // No group anywhere: a public IP is open on every port, a private NIC is not.
        let n = network(
            json!([nic("a", "a", None, true), nic("b", "b", None, false)]),
            json!([]),
        );
        assert_eq!(
            n.exposure(&vm("a")),
            [
                "nic a has public IP a-ip and no nsg on it or on subnet vnet/web: every port is open, 22/tcp and 3389/tcp among them"
            ]
        );
        assert!(n.exposure(&vm("b")).is_empty());
        // The groups unread: nothing is said.
        let mut unread = Network::default();
        unread.add_nics(serde_json::from_value(json!([nic("a", "a", None, true)])).unwrap());
        assert!(unread.exposure(&vm("a")).is_empty());
    }

    #[test]
    fn power_states_come_from_the_status_codes() {
        let entry: PowerState = serde_json::from_value(json!({
            "id": "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/a",
            "properties": {"instanceView": {"statuses": [
                {"code": "ProvisioningState/succeeded"},
                {"code": "PowerState/deallocated"}
            ]}}
        }))
        .unwrap();
        assert_eq!(entry.power.as_deref(), Some("deallocated"));
        assert_eq!(
            entry.id,
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/a"
        );
        let none: PowerState =
            serde_json::from_value(json!({"id": "x", "properties": null})).unwrap();
        assert_eq!(none.power, None);
    }

    #[test]
    fn subnets_are_named_with_their_network() {
        assert_eq!(
            subnet_label(
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/vnet1/subnets/default"
            ),
            "vnet1/default"
        );
    }
}
