//! The AWS room: settings and client setup shared by the collector (`collect`) and the
//! executor (`replace`). The only place that imports the AWS SDK.

mod collect;
mod replace;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::config::Config;

pub use collect::collect;
pub use replace::{AwsExecutor, REPLACES_TAG};

/// What the AWS sources need from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profiles: Vec<String>,
    /// Empty: every region enabled for the account.
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub lineage_tag: Option<String>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let aws = &config.aws;
        Settings {
            profiles: aws.profiles.clone(),
            regions: aws.regions.clone(),
            endpoint_url: Some(aws.endpoint_url.clone()).filter(|u| !u.is_empty()),
            concurrency: aws.concurrency.max(1) as usize,
            timeout: Duration::from_secs(aws.timeout_secs.max(1)),
            lineage_tag: Some(config.lineage.tag.clone()).filter(|t| !t.is_empty()),
        }
    }
}

pub fn source_name(profile: &str) -> String {
    format!("aws:{profile}")
}

/// The standard credential chain for the profile (env, shared files, SSO, instance role), with
/// bounded retries and timeouts of our choosing: the defaults can wait forever on a dead link.
pub(crate) async fn sdk_config(settings: &Settings, profile: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .profile_name(profile)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(settings.timeout)
                .operation_timeout(settings.timeout * 4)
                .build(),
        );
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // DescribeRegions needs some region; the profile's own, else the oldest one.
    let sdk = loader.load().await;
    if sdk.region().is_some() {
        sdk
    } else {
        let mut builder = sdk.into_builder();
        builder.set_region(Some(aws_config::Region::from_static("us-east-1")));
        builder.build()
    }
}

pub(crate) fn regional_client(sdk: &aws_config::SdkConfig, region: &str) -> Client {
    let config = aws_sdk_ec2::config::Builder::from(sdk)
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    Client::from_conf(config)
}

/// One line about an SDK error: the service's code and message, or what failed on the way.
pub(crate) fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, aws_sdk_ec2::config::http::HttpResponse>,
) -> String {
    match error {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            error.code().unwrap_or("error"),
            error.message().unwrap_or("no message")
        ),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        other => DisplayErrorContext(other).to_string().replace('\n', " "),
    }
}
