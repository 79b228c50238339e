//! One queue entry's AWS clients and where they point, shared by the replacement and the
//! template step: calls name the place they went in their errors.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use super::{self as source, Clients};
use crate::queue::QueueEntry;

/// One entry's clients and where they point, for messages.
pub(super) struct Target<'a> {
    pub(super) clients: Clients,
    /// "aws:prod us-east-1"
    pub(super) place: String,
    pub(super) entry: &'a QueueEntry,
}

impl Target<'_> {
    /// Maps an SDK error to one line naming the call and where it went.
    pub(super) fn failed<E, R>(
        &self,
        action: &'static str,
    ) -> impl Fn(SdkError<E, R>) -> String + use<'_, E, R>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        move |e| format!("{action} ({}): {}", self.place, source::describe(&e))
    }

    pub(super) fn located(&self, error: String) -> String {
        format!("{} ({})", error, self.place)
    }
}

/// A dry run's answer: EC2 says "DryRunOperation" when the real call would have been allowed.
pub(super) fn dry_run_outcome<E: ProvideErrorMetadata + std::error::Error + 'static, T>(
    target: &Target<'_>,
    what: &'static str,
    answer: Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
) -> Result<(), String> {
    match answer {
        Err(e) if e.code() == Some("DryRunOperation") => Ok(()),
        Err(e) => Err(format!("{what} (dry run): {}", (target.failed(what))(e))),
        Ok(_) => Err(format!("{what} (dry run): EC2 ran it for real")),
    }
}

pub(super) fn group_key(entry: &QueueEntry, group: &str) -> String {
    format!("{}/{}/{group}", entry.source, entry.region)
}
