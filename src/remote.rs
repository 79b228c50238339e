//! Snapshots read over HTTP(S): what `--snapshot URL` and `diff URL` fetch from a
//! `fleetscope serve` (or any server that hands out a snapshot file). Every download is
//! bounded in size (`limits.snapshot_max_mb`, also after gzip is undone) and in time
//! (`limits.fetch_timeout_secs`), and a URL is only ever shown without its user and password.

use std::io::Read;
use std::time::Duration;

use reqwest::header;

/// How a snapshot is fetched.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The most bytes taken, on the wire and once decompressed.
    pub cap: u64,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// For the whole exchange, from connecting to the last byte.
    pub timeout: Duration,
}

/// Why a download gave no snapshot bytes.
#[derive(Debug)]
pub enum FetchError {
    /// More than the cap, on the wire or once decompressed.
    TooBig {
        cap: u64,
    },
    Other(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::TooBig { cap } => write!(f, "larger than {}", crate::files::size(*cap)),
            FetchError::Other(text) => f.write_str(text),
        }
    }
}

/// The bearer token in `path`: its first line, trimmed. The file is small and private; the
/// token is never shown.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    let name = path.display();
    let bytes = crate::files::read_capped(path, 4096)
        .map_err(|e| format!("{name}: cannot read the token file: {e}"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{name}: the token file is not text"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("{name}: the token file is empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{name}: the token holds a space or a control character"
        ));
    }
    Ok(token.to_owned())
}

/// Whether `text` names an HTTP(S) resource rather than a file.
pub fn is_url(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The URL as it may be shown: no user or password, and anything in it that looks like a
/// secret (`?token=...`) scrubbed.
pub fn display(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            crate::log::scrub(parsed.as_str())
        }
        // Not a URL the client would take; it is shown without anything before an `@`.
        Err(_) => crate::log::scrub(match url.rsplit_once('@') {
            Some((_, host)) => host,
            None => url,
        }),
    }
}

/// The body of `url`, decompressed when the server gzipped it.
pub async fn get(url: &str, fetch: &Fetch) -> Result<Vec<u8>, FetchError> {
    let client = reqwest::Client::builder()
        .timeout(fetch.timeout)
        .connect_timeout(fetch.timeout.min(Duration::from_secs(15)))
        // A redirect to another host drops the Authorization header (reqwest's own rule).
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("fleetscope/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Other(format!("cannot start an HTTP client: {}", why(&e))))?;
    let mut request = client
        .get(url)
        .header(header::ACCEPT, "application/json")
        .header(header::ACCEPT_ENCODING, "gzip");
    if let Some(token) = &fetch.token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| FetchError::Other(why(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let mut hint = match status.as_u16() {
            401 if fetch.token.is_some() => ": the token was refused (--token-file)".to_owned(),
            401 => ": the server wants a token (--token-file)".to_owned(),
            503 => ": the server has no snapshot yet (its first collection is running)".to_owned(),
            _ => String::new(),
        };
        if hint.is_empty() {
            // The first line of what the server said, kept short; escaped where it is shown.
            let mut said = Vec::new();
            while said.len() < 200 {
                match response.chunk().await {
                    Ok(Some(chunk)) => said.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let said = String::from_utf8_lossy(&said);
            let line: String = said
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            if !line.trim().is_empty() {
                hint = format!(": {}", line.trim());
            }
        }
        return Err(FetchError::Other(format!("HTTP {status}{hint}")));
    }
    if response.content_length().is_some_and(|len| len > fetch.cap) {
        return Err(FetchError::TooBig { cap: fetch.cap });
    }
    let gzipped = match response
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
    {
        None => false,
        Some(encoding) if encoding.is_empty() || encoding == "identity" => false,
        Some(encoding) if encoding == "gzip" || encoding == "x-gzip" => true,
        Some(encoding) => {
            return Err(FetchError::Other(format!(
                "the server sent a {encoding:?} encoding, which fleetscope does not read"
            )));
        }
    };
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Other(why(&e)))?
    {
        if body.len() as u64 + chunk.len() as u64 > fetch.cap {
            return Err(FetchError::TooBig { cap: fetch.cap });
        }
        body.extend_from_slice(&chunk);
    }
    if gzipped {
        return gunzip(&body, fetch.cap);
    }
    Ok(body)
}

/// `bytes` decompressed, refused past `cap` bytes (a small gzip can hold a huge file).
pub fn gunzip(bytes: &[u8], cap: u64) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| FetchError::Other(format!("the gzip answer does not decompress: {e}")))?;
    if out.len() as u64 > cap {
        return Err(FetchError::TooBig { cap });
    }
    Ok(out)
}

/// What went wrong, without the URL (the caller names it, shown safely) and with its causes.
fn why(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out (limits.fetch_timeout_secs)"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_redirect() {
        "too many redirects"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    // reqwest's own text repeats the URL; its causes say what happened underneath.
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    crate::log::scrub(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_files_and_shown_without_credentials() {
        assert!(is_url("http://host:9464/snapshot"));
        assert!(is_url("HTTPS://host/snapshot"));
        assert!(!is_url("snapshot.json"));
        assert!(!is_url("./http://x"));
        assert_eq!(
            display("https://me:secret@host:9464/snapshot"),
            "https://host:9464/snapshot"
        );
        assert_eq!(
            display("http://host/snapshot?token=abc"),
            "http://host/snapshot?token=[redacted]"
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_cap() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![b' '; 1 << 20]).unwrap();
        let small = encoder.finish().unwrap();
        assert!(small.len() < 10_000);
        assert!(matches!(
            gunzip(&small, 1 << 19),
            Err(FetchError::TooBig { cap }) if cap == 1 << 19
        ));
        assert_eq!(gunzip(&small, 1 << 20).unwrap().len(), 1 << 20);
    }
}
