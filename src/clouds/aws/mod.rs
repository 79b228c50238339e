//! The AWS room: settings and client setup shared by the collector (`collect`) and the
//! executor (`replace`, its template steps in `template`). The only place that imports the
//! AWS SDK.

mod collect;
mod org;
mod replace;
mod target;
mod template;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::clouds::Deadline;
use crate::config::{Config, MAX_DEADLINE_SECS};

pub use collect::collect;
pub use org::OrgSettings;
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
    /// How long one profile's collection may take in all.
    pub deadline: Deadline,
    pub lineage_tag: Option<String>,
    /// Every account of the organization, when organization mode is on.
    pub organization: Option<OrgSettings>,
    /// Organization accounts collected together (`collect.max_in_flight`): each source's
    /// deadline runs from when it begins, not while it waits its turn.
    pub accounts_at_once: usize,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let aws = &config.aws;
        Settings {
            profiles: aws.profiles.clone(),
            regions: aws.regions.clone(),
            endpoint_url: Some(aws.endpoint_url.clone()).filter(|u| !u.is_empty()),
            concurrency: aws.concurrency.max(1) as usize,
            // Bounded whatever the config says, so no arithmetic on it can overflow.
            timeout: Duration::from_secs(aws.timeout_secs.clamp(1, MAX_DEADLINE_SECS)),
            deadline: Deadline {
                after: Duration::from_secs(aws.deadline_secs.clamp(1, MAX_DEADLINE_SECS)),
                key: "aws.deadline_secs",
            },
            lineage_tag: Some(config.lineage.tag.clone()).filter(|t| !t.is_empty()),
            organization: OrgSettings::from_config(&aws.organization),
            accounts_at_once: config.collect.max_in_flight.max(1) as usize,
        }
    }
}

pub fn source_name(profile: &str) -> String {
    format!("aws:{profile}")
}

/// The standard credential chain for the profile (env, shared files, SSO, instance role; an
/// empty profile: the default one), with bounded retries and timeouts of our choosing: the
/// defaults can wait forever on a dead link.
pub(crate) async fn sdk_config(settings: &Settings, profile: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if !profile.is_empty() {
        loader = loader.profile_name(profile);
    }
    let mut loader = loader
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(timeouts(settings.timeout));
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

/// Each attempt of a call within `timeout`, all of them within four times that.
fn timeouts(timeout: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout.saturating_mul(4))
        .build()
}

/// The clients of one profile in one region, all from the same SDK config (credentials,
/// retries, timeouts, endpoint).
#[derive(Clone)]
pub(crate) struct Clients {
    pub ec2: Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

pub(crate) fn regional_clients(sdk: &aws_config::SdkConfig, region: &str) -> Clients {
    let region = aws_config::Region::new(region.to_owned());
    Clients {
        ec2: Client::from_conf(
            aws_sdk_ec2::config::Builder::from(sdk)
                .region(region.clone())
                .build(),
        ),
        autoscaling: aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(sdk)
                .region(region.clone())
                .build(),
        ),
        elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
                .region(region)
                .build(),
        ),
    }
}

/// The longest reason `describe` gives, leaving room for the action and source around it.
const REASON_MAX: usize = 100;

/// One short sentence about a failed AWS call, in an operator's words: missing credentials, an
/// unknown profile, a denied permission (named when AWS names it), throttling, a timeout, an
/// unreachable endpoint, an answer that could not be read. Never the SDK's debug dump: that
/// runs to kilobytes.
pub(crate) fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let reason = match error {
        // An answer with no error code AWS would send: garbage, an HTML page, an empty body.
        SdkError::ServiceError(_) | SdkError::ResponseError(_) if error.code().is_none() => {
            let answer = error.raw_response().map(|r| r as &dyn std::any::Any);
            unreadable(answer.and_then(|r| r.downcast_ref::<HttpResponse>()))
        }
        SdkError::ServiceError(_) => service_reason(
            error.code().unwrap_or("error"),
            error.message().unwrap_or("no message"),
        ),
        SdkError::TimeoutError(_) => "timed out (aws.timeout_secs)".to_owned(),
        other => {
            // The chain's text, outermost first; its last part is the root cause.
            let chain = DisplayErrorContext(other).to_string().replace('\n', " ");
            dispatch_reason(&chain, root_cause(other))
        }
    };
    let short = shorten(&reason, REASON_MAX);
    crate::log::error(&short, &DisplayErrorContext(error).to_string());
    short
}

fn unreadable(answer: Option<&HttpResponse>) -> String {
    match answer {
        Some(answer) => format!(
            "the answer could not be read (HTTP {}, not the XML AWS sends)",
            answer.status().as_u16()
        ),
        None => "the answer could not be read".to_owned(),
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn service_reason(code: &str, message: &str) -> String {
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            // AWS names the missing action as "... is not authorized to perform: ec2:RunInstances".
            match message
                .split_once("perform: ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
            {
                Some(action) => format!("access denied: the credentials lack {action}"),
                None => "access denied: the credentials lack a permission this needs".to_owned(),
            }
        }
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException" => {
            "throttled by AWS after retries: try again later or lower aws.concurrency".to_owned()
        }
        "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "UnrecognizedClientException" => {
            format!("the credentials were rejected ({code}): renew or fix them")
        }
        _ => format!("{code}: {message}"),
    }
}

/// A failure before AWS answered, classified from the SDK's chain of errors.
fn dispatch_reason(chain: &str, root: String) -> String {
    let lower = chain.to_ascii_lowercase();
    if let Some(profile) = missing_profile(chain) {
        format!("profile `{profile}` not found in ~/.aws/config or ~/.aws/credentials")
    } else if lower.contains("no profiles were defined") {
        "no profiles in ~/.aws/config or ~/.aws/credentials".to_owned()
    } else if lower.contains("no credentials found in chain") {
        "no AWS credentials for this profile (tried the environment, ~/.aws files, SSO, instance role)".to_owned()
    } else if lower.contains("credential") && !lower.contains("connection refused") {
        format!("cannot load AWS credentials: {root}")
    } else if lower.contains("timeout") || lower.contains("timed out") {
        "timed out reaching AWS (aws.timeout_secs)".to_owned()
    } else if lower.contains("dispatch failure") || lower.contains("io error") {
        format!("endpoint unreachable: {root}")
    } else {
        root
    }
}

/// The profile a "profile `x` was not defined" chain names.
fn missing_profile(chain: &str) -> Option<&str> {
    let at = chain.find("was not defined")?;
    let before = &chain[..at];
    let end = before.rfind('`')?;
    let start = before[..end].rfind('`')? + 1;
    Some(&before[start..end])
}

/// One line of at most `max` characters.
fn shorten(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absurd_timeout_cannot_overflow() {
        let config = timeouts(Duration::MAX);
        assert_eq!(config.operation_timeout(), Some(Duration::MAX));
        let mut absurd = Config::default();
        absurd.aws.timeout_secs = u64::MAX;
        absurd.aws.deadline_secs = u64::MAX;
        let settings = Settings::from_config(&absurd);
        assert_eq!(settings.timeout, Duration::from_secs(MAX_DEADLINE_SECS));
        assert_eq!(
            settings.deadline.after,
            Duration::from_secs(MAX_DEADLINE_SECS)
        );
    }

    #[test]
    fn reasons_name_the_missing_permission_and_stay_short() {
        assert_eq!(
            service_reason(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation. User: arn:aws:iam::1:user/x is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:1:instance/*"
            ),
            "access denied: the credentials lack ec2:RunInstances"
        );
        assert!(service_reason("RequestLimitExceeded", "slow down").starts_with("throttled"));
        assert_eq!(
            missing_profile("failed to load: profile `nope` was not defined: x"),
            Some("nope")
        );
        let long = "x".repeat(500);
        assert_eq!(shorten(&long, REASON_MAX).chars().count(), REASON_MAX);
        assert!(
            dispatch_reason(
                "dispatch failure: io error: connection refused",
                "connection refused".into()
            )
            .starts_with("endpoint unreachable")
        );
    }
}
