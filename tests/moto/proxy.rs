//! A fault-injecting HTTP proxy in front of moto, on loopback: per region (read from the
//! request's credential scope, as AWS routes it), it throttles, fails, answers garbage or
//! stalls, and counts the requests it saw, by region and by API action.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The first `n` requests are throttled (HTTP 429, RequestLimitExceeded), then all pass.
    ThrottleFirst(usize),
    /// Every request answers HTTP 503.
    Unavailable,
    /// Every request answers 200 with a body that is not EC2's XML.
    Garbage,
    /// Every request waits this long before an answer.
    Stall(Duration),
    /// Every request is passed on after this long: a distant region's network latency.
    Latency(Duration),
}

pub struct Proxy {
    pub port: u16,
    seen: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    by_region: HashMap<String, usize>,
    by_action: BTreeMap<String, usize>,
}

impl Proxy {
    pub async fn start(upstream: u16, faults: HashMap<String, Fault>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Counts::default()));
        let faults = Arc::new(faults);
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (faults, counter) = (faults.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = serve(client, upstream, &faults, &counter).await;
                });
            }
        });
        Proxy { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests seen for a region.
    pub fn seen(&self, region: &str) -> usize {
        let counts = self.seen.lock().unwrap();
        counts.by_region.get(region).copied().unwrap_or(0)
    }

    /// Requests seen per API action, e.g. `DescribeInstances`.
    pub fn calls(&self) -> BTreeMap<String, usize> {
        self.seen.lock().unwrap().by_action.clone()
    }

    pub fn reset(&self) {
        *self.seen.lock().unwrap() = Counts::default();
    }
}

/// Reads one request: head and `Content-Length` body; `None` at end of stream.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(Some((head, body)))
}

fn region_of(head: &str) -> String {
    head.split("Credential=")
        .nth(1)
        .and_then(|scope| scope.split('/').nth(2))
        .unwrap_or("")
        .to_owned()
}

async fn serve(
    mut client: TcpStream,
    upstream: u16,
    faults: &HashMap<String, Fault>,
    seen: &Mutex<Counts>,
) -> std::io::Result<()> {
    while let Some((head, body)) = read_request(&mut client).await? {
        let region = region_of(&head);
        let action = String::from_utf8_lossy(&body)
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or("?")
            .to_owned();
        let count = {
            let mut seen = seen.lock().unwrap();
            *seen.by_action.entry(action).or_default() += 1;
            let count = seen.by_region.entry(region.clone()).or_default();
            *count += 1;
            *count
        };
        let canned = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let answer = match faults.get(&region) {
            Some(Fault::ThrottleFirst(n)) if count <= *n => canned(
                "429 Too Many Requests",
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>proxy</RequestID></Response>",
            ),
            Some(Fault::Unavailable) => canned("503 Service Unavailable", ""),
            Some(Fault::Garbage) => canned("200 OK", "this is not the XML you are looking for"),
            Some(Fault::Stall(delay)) => {
                tokio::time::sleep(*delay).await;
                canned("503 Service Unavailable", "")
            }
            Some(Fault::Latency(delay)) => {
                tokio::time::sleep(*delay).await;
                forward(upstream, &head, &body).await?
            }
            _ => forward(upstream, &head, &body).await?,
        };
        client.write_all(answer.as_bytes()).await?;
    }
    Ok(())
}

/// One request to moto on a fresh connection, its whole answer back, framed by length so the
/// client's connection can be kept alive.
async fn forward(upstream: u16, head: &str, body: &[u8]) -> std::io::Result<String> {
    let mut server = TcpStream::connect(("127.0.0.1", upstream)).await?;
    let head: String = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    server
        .write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .await?;
    server.write_all(body).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (response_head, response_body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = response_head
        .lines()
        .next()
        .unwrap_or("HTTP/1.1 502 Bad Gateway");
    let content_type = response_head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .unwrap_or("Content-Type: text/xml");
    Ok(format!(
        "{status}\r\n{content_type}\r\nContent-Length: {}\r\n\r\n{response_body}",
        response_body.len()
    ))
}
