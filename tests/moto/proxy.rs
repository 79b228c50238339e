//! A fault-injecting HTTP proxy in front of moto, on loopback: per region (read from the
//! request's credential scope, as AWS routes it), it throttles, fails, answers garbage, stalls
//! or cuts the connection, or rewrites what moto says of a rollout (a replacement that takes a
//! while to come into service, a target that never turns healthy), holds one call unanswered
//! (before or after moto got it) so a test can kill the client mid-call, and records the
//! requests it saw: counts by region and by API action, and the order of calls.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// From the region's `n`th request on (counting from 1), the connection is closed without
    /// an answer: an endpoint that died partway through a collection.
    CutFrom(usize),
    /// Every request is passed on after this long: a distant region's network latency.
    Latency(Duration),
    /// Replacements take this long to come into service, as on AWS (moto brings them at
    /// once): Auto Scaling group members that were not there when the first member was
    /// terminated are reported `Pending`, and an instance's status checks `initializing`, for
    /// this long after they first appear.
    NewMembersPending(Duration),
    /// Targets registered through this proxy are reported `unhealthy`: a failed health check.
    RegisteredTargetsUnhealthy,
    /// Every request for `action` (an Auto Scaling API call) is refused with this error code and
    /// message, as AWS refuses what an account may not do; other calls pass.
    Refuse {
        action: &'static str,
        code: &'static str,
        message: &'static str,
    },
}

/// One request seen, in order.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub at: Instant,
    /// For DescribeAutoScalingGroups: the members reported in service, as the client saw it.
    pub in_service: Option<usize>,
}

pub struct Proxy {
    pub port: u16,
    seen: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    by_region: HashMap<String, usize>,
    by_action: BTreeMap<String, usize>,
    log: Vec<Call>,
    /// A member was terminated through Auto Scaling: members first seen after are new.
    terminating: bool,
    first_seen: HashMap<String, Instant>,
    originals: HashSet<String>,
    registered: HashSet<String>,
    /// The action to hold, and whether moto gets it first (the call went through, its
    /// answer never comes back) or not (it never left).
    hold: Option<(String, bool)>,
    /// A request is being held: the client waits for an answer that never comes.
    holding: bool,
    /// Requests read and not yet answered, and the most there ever were.
    in_flight: usize,
    peak_in_flight: usize,
    /// Requests for an action whose body holds a text, refused with a code and message.
    refusals: Vec<(String, String, String, String)>,
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

    /// Every request so far, in the order seen.
    pub fn log(&self) -> Vec<Call> {
        self.seen.lock().unwrap().log.clone()
    }

    /// The most requests that were in flight (read, not yet answered) at once.
    pub fn peak_in_flight(&self) -> usize {
        self.seen.lock().unwrap().peak_in_flight
    }

    /// From now on every `action` whose (form-encoded) body contains `body_contains` is refused
    /// with `code` and `message`, HTTP 403, as AWS refuses a role that may not be assumed.
    pub fn refuse(&self, action: &str, body_contains: &str, code: &str, message: &str) {
        self.seen.lock().unwrap().refusals.push((
            action.to_owned(),
            body_contains.to_owned(),
            code.to_owned(),
            message.to_owned(),
        ));
    }

    pub fn reset(&self) {
        *self.seen.lock().unwrap() = Counts::default();
    }

    /// From now on the next `action` is held without an answer, forwarded to moto first when
    /// `reached`: what a client killed mid-call leaves behind.
    pub fn hold(&self, action: &str, reached: bool) {
        let mut seen = self.seen.lock().unwrap();
        seen.hold = Some((action.to_owned(), reached));
        seen.holding = false;
    }

    /// Whether a request is being held now.
    pub fn holding(&self) -> bool {
        self.seen.lock().unwrap().holding
    }

    /// Stops holding: later requests pass (the held one stays unanswered).
    pub fn release(&self) {
        self.seen.lock().unwrap().hold = None;
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

/// The API action: `Action=` in a query-protocol body, else the JSON protocol's target header
/// (`X-Amz-Target: AWSOrganizationsV20161128.ListAccounts`).
fn action_of(head: &str, body: &[u8]) -> String {
    let from_body = String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned);
    from_body
        .or_else(|| {
            head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-amz-target")
                    .then(|| value.trim().rsplit('.').next().map(str::to_owned))?
            })
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Counts a request in flight while it lives.
struct InFlight<'a>(&'a Mutex<Counts>);

impl<'a> InFlight<'a> {
    fn new(seen: &'a Mutex<Counts>) -> InFlight<'a> {
        let mut counts = seen.lock().unwrap();
        counts.in_flight += 1;
        counts.peak_in_flight = counts.peak_in_flight.max(counts.in_flight);
        InFlight(seen)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
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
        let in_flight = InFlight::new(seen);
        let region = region_of(&head);
        let action = action_of(&head, &body);
        let count = {
            let mut seen = seen.lock().unwrap();
            *seen.by_action.entry(action.clone()).or_default() += 1;
            match action.as_str() {
                "TerminateInstanceInAutoScalingGroup" => seen.terminating = true,
                "RegisterTargets" => {
                    let ids = String::from_utf8_lossy(&body)
                        .split('&')
                        .filter(|p| p.contains(".Id="))
                        .filter_map(|p| p.split_once('=').map(|(_, v)| v.to_owned()))
                        .collect::<Vec<_>>();
                    seen.registered.extend(ids);
                }
                _ => {}
            }
            let count = seen.by_region.entry(region.clone()).or_default();
            *count += 1;
            *count
        };
        let hold = seen
            .lock()
            .unwrap()
            .hold
            .clone()
            .filter(|(held, _)| *held == action);
        if let Some((_, reached)) = hold {
            if reached {
                forward(upstream, &head, &body).await?;
            }
            seen.lock().unwrap().holding = true;
            return std::future::pending().await;
        }
        let canned = |status: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let refused = seen
            .lock()
            .unwrap()
            .refusals
            .iter()
            .find(|(refused, text, _, _)| {
                *refused == action && String::from_utf8_lossy(&body).contains(text.as_str())
            })
            .cloned();
        if let Some((_, _, code, message)) = refused {
            record(seen, &action, None);
            let body = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
            );
            let answer = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            drop(in_flight);
            client.write_all(answer.as_bytes()).await?;
            continue;
        }
        if matches!(faults.get(&region), Some(Fault::CutFrom(n)) if count >= *n) {
            record(seen, &action, None);
            return Ok(());
        }
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
            Some(Fault::NewMembersPending(delay)) if action == "DescribeAutoScalingGroups" => {
                let answer = forward(upstream, &head, &body).await?;
                let (answer, in_service) = pending_new_members(answer, *delay, seen);
                record(seen, &action, Some(in_service));
                answer
            }
            Some(Fault::NewMembersPending(delay)) if action == "DescribeInstanceStatus" => {
                let answer = forward(upstream, &head, &body).await?;
                initializing_new_instances(answer, *delay, seen)
            }
            Some(Fault::Refuse {
                action: refused,
                code,
                message,
            }) if action == *refused => canned(
                "400 Bad Request",
                &format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
                ),
            ),
            Some(Fault::RegisteredTargetsUnhealthy) if action == "DescribeTargetHealth" => {
                let answer = forward(upstream, &head, &body).await?;
                unhealthy_registered(answer, seen)
            }
            _ => forward(upstream, &head, &body).await?,
        };
        if action != "DescribeAutoScalingGroups"
            || !matches!(faults.get(&region), Some(Fault::NewMembersPending(_)))
        {
            record(seen, &action, None);
        }
        drop(in_flight);
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

fn record(seen: &Mutex<Counts>, action: &str, in_service: Option<usize>) {
    seen.lock().unwrap().log.push(Call {
        action: action.to_owned(),
        at: Instant::now(),
        in_service,
    });
}

/// The text between `<tag>` and `</tag>` from `from` on, with where it ends.
fn element<'a>(text: &'a str, tag: &str, from: usize) -> Option<(&'a str, usize, usize)> {
    let open = format!("<{tag}>");
    let start = text[from..].find(&open)? + from + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some((&text[start..end], start, end))
}

/// Rewrites a DescribeAutoScalingGroups answer so that members new since the first termination
/// are `Pending` until `delay` after they first appeared; also counts those in service.
fn pending_new_members(answer: String, delay: Duration, seen: &Mutex<Counts>) -> (String, usize) {
    let mut seen = seen.lock().unwrap();
    let mut out = answer.clone();
    let mut in_service = 0;
    let mut at = 0;
    while let Some((id, _, end)) = element(&answer, "InstanceId", at) {
        at = end;
        let id = id.to_owned();
        let now = Instant::now();
        let first = *seen.first_seen.entry(id.clone()).or_insert(now);
        if !seen.terminating {
            seen.originals.insert(id.clone());
        }
        // The member's own state: the next LifecycleState before its element closes.
        let member_end = answer[at..]
            .find("</member>")
            .map_or(answer.len(), |e| e + at);
        let Some((state, start, state_end)) =
            element(&answer, "LifecycleState", at).filter(|(_, _, e)| *e < member_end)
        else {
            continue;
        };
        let young = !seen.originals.contains(&id) && now.duration_since(first) < delay;
        if state == "InService" {
            if young {
                // Same length as "InService", so the offsets stay valid.
                out.replace_range(start..state_end, "Pending  ");
            } else {
                in_service += 1;
            }
        }
    }
    let out = out.replace("Pending  <", "Pending<");
    (reframe(&out), in_service)
}

/// Rewrites a DescribeInstanceStatus answer: an instance first asked about less than `delay`
/// ago is still initializing.
fn initializing_new_instances(answer: String, delay: Duration, seen: &Mutex<Counts>) -> String {
    let mut seen = seen.lock().unwrap();
    let Some((id, _, _)) = element(&answer, "instanceId", 0) else {
        return answer;
    };
    let first = *seen
        .first_seen
        .entry(id.to_owned())
        .or_insert_with(Instant::now);
    if first.elapsed() >= delay {
        return answer;
    }
    reframe(&answer.replace("<status>ok</status>", "<status>initializing</status>"))
}

/// Rewrites a DescribeTargetHealth answer: targets registered through the proxy are unhealthy.
fn unhealthy_registered(answer: String, seen: &Mutex<Counts>) -> String {
    let seen = seen.lock().unwrap();
    let mut out = String::new();
    let mut rest = answer.as_str();
    while let Some(at) = rest.find("<member>") {
        let end = rest[at..].find("</member>").map_or(rest.len(), |e| e + at);
        let member = &rest[at..end];
        let ours = seen
            .registered
            .iter()
            .any(|id| member.contains(&format!("<Id>{id}</Id>")));
        out.push_str(&rest[..at]);
        if ours {
            out.push_str(&member.replace("<State>healthy</State>", "<State>unhealthy</State>"));
        } else {
            out.push_str(member);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    reframe(&out)
}

/// Sets the Content-Length of a rewritten answer.
fn reframe(answer: &str) -> String {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{body}",
        head.join("\r\n"),
        body.len()
    )
}
