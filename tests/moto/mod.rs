//! moto's EC2 server on a free loopback port, seeded through the AWS SDK (and, for the APIs
//! fleetscope has no SDK crate for, plain signed-looking HTTP as moto accepts it).
#![allow(dead_code)] // Each test file uses its own part of this helper.

pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{
    IpPermission, IpRange, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use serde_json::{Value, json};

pub const PROD: &str = "prod";
pub const STAGING: &str = "staging";
/// moto's default account answers the prod keys; staging's keys are made in this account.
pub const PROD_ACCOUNT: &str = "123456789012";
pub const STAGING_ACCOUNT: &str = "222233334444";
const PROD_KEY: (&str, &str) = ("AKIAPRODEXAMPLE00001", "prod-secret");

pub struct Moto {
    child: Child,
    port: u16,
    staging_key: (String, String),
    _dir: tempfile::TempDir,
}

/// An AMI as moto's `MOTO_AMIS_PATH` file describes one (unknown keys break moto).
pub fn ami(id: &str, name: &str, created: &str, owner: &str, tags: &[(&str, &str)]) -> Value {
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    json!({
        "ami_id": id,
        "name": name,
        "description": name,
        "creation_date": created,
        "owner_id": owner,
        "state": "available",
        "public": true,
        "architecture": "x86_64",
        "virtualization_type": "hvm",
        "root_device_type": "ebs",
        "root_device_name": "/dev/xvda",
        "image_type": "machine",
        "hypervisor": "xen",
        "tags": tags,
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Moto {
    pub fn start(amis: &[Value]) -> Moto {
        // .ci/test names it; else the virtualenv .ci/test makes.
        let server = std::env::var("MOTO_SERVER_BIN").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/moto_server").to_owned()
        });
        let dir = tempfile::tempdir().unwrap();
        let amis_path = dir.path().join("amis.json");
        std::fs::write(&amis_path, serde_json::to_vec(amis).unwrap()).unwrap();
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_AMIS_PATH", &amis_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{server}: {e} (.ci/test installs moto's server)"));
        let mut moto = Moto {
            child,
            port,
            staging_key: (String::new(), String::new()),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.http("GET", "/moto-api/", &[], "").is_none() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto.staging_key = moto.access_key_in(STAGING_ACCOUNT);
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A loopback URL nothing listens on.
    pub fn unused_url() -> String {
        format!("http://127.0.0.1:{}", free_port())
    }

    fn key(&self, profile: &str) -> (String, String) {
        if profile == STAGING {
            self.staging_key.clone()
        } else {
            (PROD_KEY.0.to_owned(), PROD_KEY.1.to_owned())
        }
    }

    /// Shared config and credentials files naming both profiles, as a user has them.
    pub fn profile_env(&self, dir: &Path) -> Vec<(String, String)> {
        profile_files(dir, &[(PROD, self.key(PROD)), (STAGING, self.key(STAGING))])
    }

    pub async fn client(&self, profile: &str, region: &str) -> Client {
        let (key, secret) = self.key(profile);
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(key, secret, None, None, "moto"))
            .endpoint_url(self.url())
            .build();
        Client::from_conf(config)
    }

    /// An access key of another account: moto answers requests signed with it from that
    /// account's own state.
    fn access_key_in(&self, account: &str) -> (String, String) {
        let header = [("x-moto-account-id", account)];
        let user = "Action=CreateUser&UserName=fleetscope&Version=2010-05-08";
        self.post("iam", PROD_KEY.0, "us-east-1", &header, user)
            .expect("CreateUser");
        let key = "Action=CreateAccessKey&UserName=fleetscope&Version=2010-05-08";
        let answer = self
            .post("iam", PROD_KEY.0, "us-east-1", &header, key)
            .expect("CreateAccessKey");
        let field = |name: &str| {
            let start = answer.find(&format!("<{name}>")).expect(name) + name.len() + 2;
            let end = answer[start..].find('<').expect(name) + start;
            answer[start..end].to_owned()
        };
        (field("AccessKeyId"), field("SecretAccessKey"))
    }

    /// An Auto Scaling group launching `count` members from the template's default version.
    pub async fn create_asg(
        &self,
        profile: &str,
        region: &str,
        name: &str,
        template: &str,
        count: u32,
    ) {
        self.create_asg_at(profile, region, name, (template, "%24Default"), count)
            .await;
    }

    /// An Auto Scaling group launching `count` members from this template version
    /// (URL-encoded: `%24Latest`, `2`).
    pub async fn create_asg_at(
        &self,
        profile: &str,
        region: &str,
        name: &str,
        (template, version): (&str, &str),
        count: u32,
    ) {
        let ec2 = self.client(profile, region).await;
        let subnets = ec2.describe_subnets().send().await.unwrap();
        let subnet = subnets.subnets()[0].subnet_id().unwrap().to_owned();
        let body = format!(
            "Action=CreateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName={name}\
             &LaunchTemplate.LaunchTemplateId={template}&LaunchTemplate.Version={version}\
             &MinSize={count}&MaxSize={count}&DesiredCapacity={count}&VPCZoneIdentifier={subnet}"
        );
        let answer = self
            .post("autoscaling", &self.key(profile).0, region, &[], &body)
            .expect("CreateAutoScalingGroup");
        assert!(!answer.contains("<Error>"), "{answer}");
    }

    /// A query-protocol call as an SDK would sign it: moto reads the service, region and key from
    /// the credential scope and checks no signature.
    fn post(
        &self,
        service: &str,
        key: &str,
        region: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<String> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={key}/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.http("POST", "/", &all, body)
    }

    /// One request, raw; `None` unless it is answered 200 (or the server is not up yet).
    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.starts_with("HTTP/1.1 200").then_some(answer)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Config and credentials files for the given profiles; the variables that point the SDK at
/// them, and that keep it off the instance metadata service.
fn profile_files(dir: &Path, profiles: &[(&str, (String, String))]) -> Vec<(String, String)> {
    let mut config = String::new();
    let mut credentials = String::new();
    for (name, (key, secret)) in profiles {
        config.push_str(&format!("[profile {name}]\nregion = us-east-1\n"));
        credentials.push_str(&format!(
            "[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        ));
    }
    let config_path = dir.join("aws-config");
    let credentials_path = dir.join("aws-credentials");
    std::fs::write(&config_path, config).unwrap();
    std::fs::write(&credentials_path, credentials).unwrap();
    vec![
        ("AWS_CONFIG_FILE".into(), config_path.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            credentials_path.display().to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ]
}

/// A `prod` profile with keys no server checks.
pub fn static_profile_env(dir: &Path) -> Vec<(String, String)> {
    profile_files(dir, &[(PROD, (PROD_KEY.0.into(), PROD_KEY.1.into()))])
}

pub async fn run(ec2: &Client, image: &str, name: &str, security_group: Option<&str>) -> String {
    let answer = ec2
        .run_instances()
        .image_id(image)
        .instance_type("t3.micro".into())
        .min_count(1)
        .max_count(1)
        .set_security_group_ids(security_group.map(|g| vec![g.to_owned()]))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value(name).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    answer.instances()[0].instance_id().unwrap().to_owned()
}

pub async fn security_group_open_to_world(ec2: &Client, port: i32) -> String {
    let group = ec2
        .create_security_group()
        .group_name(format!("open-{port}"))
        .description("open to the world")
        .send()
        .await
        .unwrap();
    let id = group.group_id().unwrap().to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    id
}

pub async fn launch_template(ec2: &Client, name: &str, image: &str) -> String {
    let template = ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(image)
                .instance_type("t3.micro".into())
                .build(),
        )
        .send()
        .await
        .unwrap();
    template
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .unwrap()
        .to_owned()
}

impl Moto {
    /// Organizations as the management account (moto's default account) calls it.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let (key, secret) = self.key(PROD);
        let config = aws_sdk_organizations::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(key, secret, None, None, "moto"))
            .endpoint_url(self.url())
            .build();
        aws_sdk_organizations::Client::from_conf(config)
    }

    /// EC2 in another account, through a role assumed in it as an operator would: moto answers
    /// the assumed role's keys from that account's own state.
    pub async fn client_in(&self, account: &str, region: &str) -> Client {
        let (key, secret) = self.key(PROD);
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(key, secret, None, None, "moto"))
            .endpoint_url(self.url())
            .load()
            .await;
        let role = aws_config::sts::AssumeRoleProvider::builder(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        ))
        .session_name("seed")
        .configure(&base)
        .build()
        .await;
        let config = aws_sdk_ec2::config::Builder::from(&base)
            .credentials_provider(role)
            .build();
        Client::from_conf(config)
    }

    pub async fn elb(&self, profile: &str, region: &str) -> aws_sdk_elasticloadbalancingv2::Client {
        let (key, secret) = self.key(profile);
        let config = aws_sdk_elasticloadbalancingv2::Config::builder()
            .behavior_version(aws_sdk_elasticloadbalancingv2::config::BehaviorVersion::latest())
            .region(aws_sdk_elasticloadbalancingv2::config::Region::new(
                region.to_owned(),
            ))
            .credentials_provider(aws_sdk_elasticloadbalancingv2::config::Credentials::new(
                key, secret, None, None, "moto",
            ))
            .endpoint_url(self.url())
            .build();
        aws_sdk_elasticloadbalancingv2::Client::from_conf(config)
    }

    pub async fn autoscaling(&self, profile: &str, region: &str) -> aws_sdk_autoscaling::Client {
        let (key, secret) = self.key(profile);
        let config = aws_sdk_autoscaling::Config::builder()
            .behavior_version(aws_sdk_autoscaling::config::BehaviorVersion::latest())
            .region(aws_sdk_autoscaling::config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
                key, secret, None, None, "moto",
            ))
            .endpoint_url(self.url())
            .build();
        aws_sdk_autoscaling::Client::from_conf(config)
    }

    /// An instance target group in the default VPC with this deregistration delay, and
    /// `instance` registered in it on `port`; its ARN.
    pub async fn target_group(
        &self,
        name: &str,
        delay_secs: u32,
        instance: &str,
        port: i32,
    ) -> String {
        let ec2 = self.client(PROD, "us-east-1").await;
        let elb = self.elb(PROD, "us-east-1").await;
        let vpcs = ec2.describe_vpcs().send().await.unwrap();
        let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_owned();
        let group = elb
            .create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap();
        let arn = group.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_owned();
        elb.modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(
                aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(delay_secs.to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        elb.register_targets()
            .target_group_arn(&arn)
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(instance)
                    .port(port)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        arn
    }

    /// Targets of the group with their port and state.
    pub async fn targets(&self, arn: &str) -> Vec<(String, i32, String)> {
        let elb = self.elb(PROD, "us-east-1").await;
        let health = elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .unwrap();
        health
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let target = d.target().unwrap();
                (
                    target.id().unwrap().to_owned(),
                    target.port().unwrap_or(0),
                    d.target_health()
                        .and_then(|h| h.state())
                        .map_or("", |s| s.as_str())
                        .to_owned(),
                )
            })
            .collect()
    }
}
