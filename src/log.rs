//! The whole text of errors that screens, reports and the journal show as one short sentence:
//! appended, one line each, to `fleetscope.log` in the data directory, so the full chain is
//! there for a bug report without ever reaching an operator's screen. Anything that looks like
//! a secret is scrubbed from it first: error chains can quote requests and answers.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, OnceLock};

use regex::Regex;

static LOG: OnceLock<Option<Mutex<File>>> = OnceLock::new();

pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("fleetscope.log")
}

/// Opens the log once per process; without a writable data directory nothing is logged, which
/// never stops the program.
pub fn open(data_dir: &Path) {
    LOG.get_or_init(|| {
        crate::files::create_private_dir(data_dir).ok()?;
        crate::files::private_file()
            .create(true)
            .append(true)
            .open(path_in(data_dir))
            .ok()
            .map(Mutex::new)
    });
}

/// Records the full text behind a shortened error.
pub fn error(short: &str, full: &str) {
    let Some(Some(file)) = LOG.get() else {
        return;
    };
    if let Ok(mut file) = file.lock() {
        let full = full.replace('\n', " ");
        let _ = writeln!(
            file,
            "{} error: {} | {}",
            chrono::Utc::now().to_rfc3339(),
            scrub(short),
            scrub(&full)
        );
    }
}

/// What stands in for a scrubbed secret.
const REDACTED: &str = "[redacted]";

/// A key that names a secret: client_secret, refresh_token, access_token, id_token, password,
/// assertion, private_key, SharedAccessSignature, X-Amz-Signature, aws_secret_access_key,
/// AccountKey, api_key, authorization, and a bare `sig` (a SAS signature).
const SECRET_KEY: &str = r"(?:[a-z0-9_.\-]*(?:secret|token|passw(?:or)?d|assertion|private_?key|signature|api_?key|account_?key|authorization|credentials?)[a-z0-9_.\-]*|\bsig)";

/// Patterns whose `value` group is a secret, tried in order.
static SECRETS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    // A quoted value, its quotes possibly escaped (JSON inside a debug string).
    let quoted = r#"\\*"(?:[^"\\]|\\[^"])*\\*"|'[^']*'"#;
    [
        // "key": value (JSON).
        format!(r#"(?i)\\*"{SECRET_KEY}\\*"\s*:\s*(?P<value>{quoted}|[^\s,}}\]]+)"#),
        // key: "value" (debug output); unquoted, `key: value` is as likely prose.
        format!(r#"(?i)\b{SECRET_KEY}:\s*(?P<value>{quoted})"#),
        // key=value (forms, query strings, headers, connection strings).
        format!(r#"(?i)\b{SECRET_KEY}\s*=\s*(?P<value>{quoted}|[^\s&,;"'<>)\]}}]+)"#),
        // Authorization credentials.
        r"(?i)\b(?:bearer|basic)\s+(?P<value>[a-z0-9\-._~+/]+=*)".to_owned(),
        // JSON web tokens, Google access and refresh tokens.
        r"(?P<value>\beyJ[a-zA-Z0-9_\-]{8,}\.[a-zA-Z0-9_\-]{8,}\.[a-zA-Z0-9_\-]*|\bya29\.[a-zA-Z0-9_\-]+|\b1//[a-zA-Z0-9_\-]{20,})".to_owned(),
    ]
    .iter()
    .filter_map(|pattern| Regex::new(pattern).ok())
    .collect()
});

/// PEM private keys, whole.
static PRIVATE_KEY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----").ok()
});

/// The text with every value that looks like a secret replaced by `[redacted]`: key=value and
/// "key": "value" pairs whose key names a secret, bearer and basic credentials, tokens by
/// their shape, and private keys.
pub fn scrub(text: &str) -> String {
    let mut text = match PRIVATE_KEY.as_ref() {
        Some(pem) => pem.replace_all(text, "[redacted private key]").into_owned(),
        None => text.to_owned(),
    };
    for pattern in SECRETS.iter() {
        if let Cow::Owned(scrubbed) = replace_values(pattern, &text) {
            text = scrubbed;
        }
    }
    text
}

/// The text with each match's `value` group replaced.
fn replace_values<'a>(pattern: &Regex, text: &'a str) -> Cow<'a, str> {
    let mut out = String::new();
    let mut copied = 0;
    for found in pattern.captures_iter(text) {
        let Some(value) = found.name("value") else {
            continue;
        };
        if value.as_str() == REDACTED {
            continue;
        }
        out.push_str(&text[copied..value.start()]);
        out.push_str(REDACTED);
        copied = value.end();
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// An error and every cause under it, outermost first, on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn secrets_in_json_forms_and_headers_are_scrubbed() {
        let cases = [
            (
                r#"body=<{"client_id":"app.apps.googleusercontent.com","client_secret":"s3cr3t","grant_type":"refresh_token","refresh_token":"1//0gRefresh"}>"#,
                r#"body=<{"client_id":"app.apps.googleusercontent.com","client_secret":[redacted],"grant_type":"refresh_token","refresh_token":[redacted]}>"#,
            ),
            (
                "grant_type=client_credentials&client_id=app&client_secret=s3cr3t&scope=x",
                "grant_type=client_credentials&client_id=app&client_secret=[redacted]&scope=x",
            ),
            (
                r#"Response { body: "{\"access_token\":\"ya29.a0Token\",\"id_token\": \"abc\"}" }"#,
                r#"Response { body: "{\"access_token\":[redacted],\"id_token\": [redacted]}" }"#,
            ),
            (
                r#"Credentials { password: "hunter2", user: "me" }"#,
                r#"Credentials { password: [redacted], user: "me" }"#,
            ),
            (
                "headers: authorization: Bearer eyJhbGciOi.eyJzdWIiOi.sig and Basic dXNlcjpwYXNz",
                "headers: authorization: Bearer [redacted] and Basic [redacted]",
            ),
            (
                "https://acct.blob.core.windows.net/c?sv=2024&sig=AbC%2Fd&se=1",
                "https://acct.blob.core.windows.net/c?sv=2024&sig=[redacted]&se=1",
            ),
            (
                "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessSignature=SharedAccessSignature sr=x",
                "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessSignature=[redacted] sr=x",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG X-Amz-Security-Token=FwoGZX",
                "aws_secret_access_key = [redacted] X-Amz-Security-Token=[redacted]",
            ),
            (
                r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}"#,
                r#"{"private_key": [redacted]}"#,
            ),
            (
                "a token ya29.a0AfB_byC in text",
                "a token [redacted] in text",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(scrub(text), want, "{text}");
        }
    }

    #[test]
    fn ordinary_errors_pass_unchanged() {
        for text in [
            "listing VMs: HTTP 403, access denied: AuthorizationFailed: the client 'app' lacks read",
            "could not get an access token: HTTP status client error (400 Bad Request) for url (http://127.0.0.1:9/token)",
            "us-east-1: DescribeInstances: timed out (aws.timeout_secs)",
            "disks.aggregatedList: permission denied (403): Required 'compute.disks.list' permission",
        ] {
            assert_eq!(scrub(text), text);
        }
        let pem = "key -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- end";
        assert_eq!(scrub(pem), "key [redacted private key] end");
    }
}
