//! Keystroke to screen in a real terminal: the release binary on the demo fleet of 1,000,000
//! instances in a detached 160x50 tmux session. In the Instances view's filter, free text is
//! typed one character at a time and deleted again; each keystroke is timed from `send-keys` to
//! the first capture of the pane (`capture-pane -p`, polled every millisecond) that differs from
//! the screen before it, and to the last change before the screen stays still. Prints min,
//! median, p90 and max beside the target and exits 1 when the median to the last change misses
//! it. Beside them, per keystroke: the binary's CPU time and its wait for a core (on a busy
//! machine the wait is much of the figure), the tmux server's CPU time, and the same keystrokes
//! replayed in this process once the binary has ended, the filter and the frame timed apart.
//!
//! The keys and captures go through one tmux control-mode client (`tmux -C`), so that a capture
//! costs the server's rendering of the pane, not a process; with `-- fork` each is a `tmux`
//! process of its own, as a shell script would do it (a few ms each, and most of a core on 2).
//! `cargo bench --no-default-features --bench tui_tmux [-- fork]` (tmux from PATH; `.ci/test`
//! installs it).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use fleetscope::views::tui::action::{Action, View};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

// The UI tests' headless runtime; a bench uses part of it.
#[allow(dead_code)]
#[path = "../tests/common/ui.rs"]
mod ui;
use ui::frame;

const SIZE: usize = 1_000_000;
const SEED: u64 = 42;
const NOW: &str = "2026-11-01T00:00:00Z";
const WIDTH: u16 = 160;
const HEIGHT: u16 = 50;
/// Each typed one character at a time, then deleted one Backspace at a time.
const WORDS: [&str; 2] = ["web-prd-01", "api-stg"];
/// A free-text keystroke at 1,000,000 instances settles under this.
const TARGET: Duration = Duration::from_millis(150);
/// From the start of one capture to the start of the next while waiting for a change.
const POLL: Duration = Duration::from_millis(1);
/// A screen unchanged this long after a keystroke has settled.
const STILL: Duration = Duration::from_millis(300);
/// Collecting and evaluating 1,000,000 instances, drawn with the Overview.
const STARTUP: Duration = Duration::from_secs(180);
/// Any one tmux command's answer.
const ANSWER: Duration = Duration::from_secs(10);

/// The control-mode client: commands on its stdin, each answered between `%begin` and `%end`
/// lines on its stdout, read by a thread of its own.
struct Control {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<Result<String, String>>,
}

impl Control {
    fn attach(socket: &Path) -> Control {
        let mut child = Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .args(["-C", "attach-session", "-t", "main"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tmux -C runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, answers) = channel();
        std::thread::spawn(move || {
            let mut answer: Option<String> = None;
            // The first block answers the attach itself, before this client is current.
            let mut attached = false;
            // Lines may hold any byte the pane shows: read them as bytes.
            for line in stdout.split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line);
                // Flag 1: a command of this client's.
                let ours = line.split_whitespace().nth(3) == Some("1");
                match answer.as_mut() {
                    None if line.starts_with("%begin ") && (ours || !attached) => {
                        attached = true;
                        answer = Some(String::new());
                    }
                    // Notifications (%output and the like) between answers.
                    None => {}
                    Some(_) if line.starts_with("%end ") || line.starts_with("%error ") => {
                        let text = answer.take().unwrap();
                        let result = if line.starts_with("%end ") {
                            Ok(text)
                        } else {
                            Err(text)
                        };
                        if send.send(result).is_err() {
                            break;
                        }
                    }
                    Some(text) => {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
            }
        });
        let mut control = Control {
            child,
            stdin,
            answers,
        };
        // Commands sent before the attach is done find no current client.
        match control.answers.recv_timeout(ANSWER) {
            Ok(Ok(_)) => {}
            other => panic!("tmux -C attach-session: {other:?}"),
        }
        // The pane's output is not needed here, only its captures.
        control.command(&["refresh-client", "-f", "no-output"]);
        control
    }

    fn command(&mut self, args: &[&str]) -> String {
        let line: Vec<String> = args
            .iter()
            .map(|a| {
                assert!(!a.contains('\''), "{a}");
                format!("'{a}'")
            })
            .collect();
        writeln!(self.stdin, "{}", line.join(" ")).expect("tmux -C reads its commands");
        self.stdin.flush().unwrap();
        match self.answers.recv_timeout(ANSWER) {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => panic!("tmux {}: {error}", args.join(" ")),
            Err(e) => panic!("tmux {}: no answer ({e})", args.join(" ")),
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmux server of its own, its socket in the bench's temporary directory, killed when dropped
/// (a panic included).
struct Tmux {
    socket: PathBuf,
    control: Option<Control>,
    /// How long each capture took, asked to answered.
    captures: Vec<Duration>,
}

impl Tmux {
    fn new(socket: PathBuf) -> Tmux {
        let available = Command::new("tmux").arg("-V").output();
        assert!(
            available.is_ok_and(|o| o.status.success()),
            "tmux is needed for this bench (.ci/test installs it)"
        );
        Tmux {
            socket,
            control: None,
            captures: Vec::new(),
        }
    }

    /// A `tmux` process of its own for the command.
    fn spawn(&self, args: &[&str]) -> String {
        // No user config: the same server options on every machine.
        let output = Command::new("tmux")
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Through the control-mode client once attached, else a process of its own.
    fn run(&mut self, args: &[&str]) -> String {
        match self.control.as_mut() {
            Some(control) => control.command(args),
            None => self.spawn(args),
        }
    }

    fn start(&self, command: &str) {
        let (width, height) = (WIDTH.to_string(), HEIGHT.to_string());
        self.spawn(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &width,
            "-y",
            &height,
            command,
        ]);
    }

    fn screen(&mut self) -> String {
        let started = Instant::now();
        let screen = self.run(&["capture-pane", "-p", "-t", "main"]);
        self.captures.push(started.elapsed());
        screen
    }

    /// Polls about every `every` until the screen passes `check` and has not changed for
    /// `still`; the screen.
    fn settle(
        &mut self,
        what: &str,
        every: Duration,
        still: Duration,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut screen = self.screen();
        let mut since = Instant::now();
        loop {
            std::thread::sleep(every);
            let now = self.screen();
            if now != screen {
                screen = now;
                since = Instant::now();
            } else if since.elapsed() >= still && check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.control = None;
        kill_server(&self.socket);
    }
}

fn kill_server(socket: &Path) {
    let _ = Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .arg("kill-server")
        .output();
}

/// Ctrl-C ends the bench without unwinding: the tmux server (and the binary holding the fleet,
/// about 1 GB) and the temporary directory go first.
fn clean_up_on_interrupt(dir: &Path, socket: &Path) {
    let (dir, socket) = (dir.to_owned(), socket.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the signal");
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            kill_server(&socket);
            let _ = std::fs::remove_dir_all(&dir);
            std::process::exit(130);
        }
    });
}

/// CPU time and time spent runnable but waiting for a core, summed over the threads of `pid`
/// (Linux's schedstat); `None` where /proc does not say.
fn scheduled(pid: &str) -> Option<(Duration, Duration)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut cpu, mut waited) = (0, 0);
    for task in tasks.flatten() {
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = stat.split_whitespace().map(str::parse::<u64>);
        cpu += fields.next()?.ok()?;
        waited += fields.next()?.ok()?;
    }
    Some((Duration::from_nanos(cpu), Duration::from_nanos(waited)))
}

/// From sending one keystroke until the screen stayed still: the binary's CPU time and wait
/// for a core, and the tmux server's CPU time.
struct Used {
    cpu: Duration,
    waited: Duration,
    tmux_cpu: Duration,
}

/// One keystroke: what was sent, the rows the title counts after it, and its times.
struct Keystroke {
    label: String,
    rows: String,
    first: Duration,
    last: Duration,
    used: Option<Used>,
}

struct Run {
    keystrokes: Vec<Keystroke>,
    /// The `send-keys` commands themselves, inside every figure.
    sends: Vec<Duration>,
    /// Starts of consecutive captures while waiting for a change.
    intervals: Vec<Duration>,
    captures: Vec<Duration>,
    startup: Duration,
}

fn overview_settled(screen: &str) -> bool {
    screen.contains("Fleet by verdict")
        && !screen.contains("collecting")
        && screen.lines().any(|line| {
            let mut words = line.trim_start_matches('│').split_whitespace();
            words.next() == Some("all") && words.next() == Some(SIZE.to_string().as_str())
        })
}

/// The prompt line shows the filter as typed, cursor after it.
fn prompt_shows(screen: &str, text: &str) -> bool {
    let prompt = format!("/{text}█");
    screen.lines().any(|line| line.trim() == prompt)
}

/// The count in the Instances view's title: `Instances (N) /text`.
fn rows_shown(screen: &str) -> String {
    screen
        .split_once("Instances (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or_else(|| "?".to_owned(), |(count, _)| count.to_owned())
}

/// One keystroke in the filter: a character typed, or Backspace (`None`); the filter after it.
struct Step {
    typed: Option<char>,
    text: String,
}

fn steps() -> Vec<Step> {
    let mut steps = Vec::new();
    for word in WORDS {
        let mut text = String::new();
        for c in word.chars() {
            text.push(c);
            steps.push(Step {
                typed: Some(c),
                text: text.clone(),
            });
        }
        while text.pop().is_some() {
            steps.push(Step {
                typed: None,
                text: text.clone(),
            });
        }
    }
    steps
}

/// The same keystrokes in this process, on the app as the binary holds it once collection has
/// finished: each keystroke's update (the filter) and a frame drawn to a buffer of the pane's
/// size, timed apart.
fn in_process() -> Vec<(Duration, Duration)> {
    let now = chrono::DateTime::parse_from_rfc3339(NOW).unwrap().to_utc();
    let mut app = ui::streamed_demo(SEED, SIZE, now);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    app.update(Action::Show(View::Instances));
    app.update(Action::StartFilter);
    frame(&mut app, &mut terminal);
    steps()
        .into_iter()
        .map(|step| {
            let started = Instant::now();
            app.update(step.typed.map_or(Action::DeleteChar, Action::Input));
            let filtered = started.elapsed();
            frame(&mut app, &mut terminal);
            let drawn = started.elapsed() - filtered;
            assert_eq!(app.browse.instances.applied(), step.text);
            (filtered, drawn)
        })
        .collect()
}

fn measure(binary: &Path, control: bool) -> Run {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let socket = dir.path().join("tmux.sock");
    clean_up_on_interrupt(dir.path(), &socket);
    std::fs::write(dir.path().join("config.toml"), "version = 1\n").unwrap();
    // Dropped before `dir`: the binary ends before its data directory goes.
    let mut tmux = Tmux::new(socket);
    let started = Instant::now();
    tmux.start(&format!(
        "env FLEETSCOPE_DATA_DIR={data} FLEETSCOPE_CONFIG={config} TERM=xterm-256color {bin} \
         --demo --demo-size {SIZE} --demo-seed {SEED} --now {NOW}",
        data = dir.path().join("data").display(),
        config = dir.path().join("config.toml").display(),
        bin = binary.display(),
    ));
    if control {
        tmux.control = Some(Control::attach(&tmux.socket));
    }
    let size = tmux.run(&["display-message", "-p", "#{window_width}x#{window_height}"]);
    assert_eq!(size.trim(), format!("{WIDTH}x{HEIGHT}"));
    // `env` runs the binary in its own process: the pane's.
    let pid = tmux.run(&["display-message", "-p", "-t", "main", "#{pane_pid}"]);
    let server = tmux.run(&["display-message", "-p", "#{pid}"]);
    let (pid, server) = (pid.trim(), server.trim());
    tmux.settle(
        "the fleet to be collected",
        Duration::from_millis(100),
        Duration::from_secs(1),
        STARTUP,
        overview_settled,
    );
    let startup = started.elapsed();
    tmux.run(&["send-keys", "-t", "main", "3"]);
    tmux.settle(
        "the Instances view",
        Duration::from_millis(20),
        STILL,
        Duration::from_secs(30),
        |s| s.contains("Instances ("),
    );
    tmux.run(&["send-keys", "-t", "main", "/"]);
    let mut screen = tmux.settle(
        "the filter prompt",
        Duration::from_millis(20),
        STILL,
        Duration::from_secs(30),
        |s| prompt_shows(s, ""),
    );
    // Only the keystrokes' own captures count for the resolution.
    tmux.captures.clear();

    let mut run = Run {
        keystrokes: Vec::new(),
        sends: Vec::new(),
        intervals: Vec::new(),
        captures: Vec::new(),
        startup,
    };
    for Step { typed, text } in steps() {
        let key = typed.map_or_else(|| "BSpace".to_owned(), String::from);
        let before = screen;
        let used_before = scheduled(pid).zip(scheduled(server));
        let sent = Instant::now();
        match typed {
            Some(_) => tmux.run(&["send-keys", "-t", "main", "-l", "--", &key]),
            None => tmux.run(&["send-keys", "-t", "main", &key]),
        };
        run.sends.push(sent.elapsed());

        // To the first capture that differs.
        let deadline = sent + Duration::from_secs(10);
        let mut previous_start: Option<Instant> = None;
        let (first, mut current) = loop {
            let start = Instant::now();
            if let Some(previous) = previous_start {
                run.intervals.push(start - previous);
            }
            previous_start = Some(start);
            let now = tmux.screen();
            if now != before {
                break (sent.elapsed(), now);
            }
            assert!(
                Instant::now() < deadline,
                "no change on screen 10 s after sending {key:?}:\n{now}"
            );
            std::thread::sleep(POLL.saturating_sub(start.elapsed()));
        };
        // Then to the last change before it stays still: a frame written in several pieces
        // would show here.
        let mut last = first;
        let mut still_since = Instant::now();
        while still_since.elapsed() < STILL {
            std::thread::sleep(POLL);
            let now = tmux.screen();
            if now != current {
                last = sent.elapsed();
                still_since = Instant::now();
                current = now;
            }
        }
        assert!(
            prompt_shows(&current, &text),
            "after {key:?} the prompt should read /{text}:\n{current}"
        );
        let used = used_before
            .zip(scheduled(pid).zip(scheduled(server)))
            .map(|(before, after)| Used {
                cpu: after.0.0.saturating_sub(before.0.0),
                waited: after.0.1.saturating_sub(before.0.1),
                tmux_cpu: after.1.0.saturating_sub(before.1.0),
            });
        run.keystrokes.push(Keystroke {
            label: format!("{key} -> /{text}"),
            rows: rows_shown(&current),
            first,
            last,
            used,
        });
        screen = current;
    }
    run.captures = std::mem::take(&mut tmux.captures);
    run
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Min, median, p90 (nearest rank) and max.
fn spread(values: &[Duration]) -> [Duration; 4] {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    [sorted[0], rank(0.5), rank(0.9), sorted[sorted.len() - 1]]
}

fn line(what: &str, values: &[Duration]) -> String {
    let [min, median, p90, max] = spread(values);
    format!(
        "  {what:<32} min {:>6.1} ms  median {:>6.1} ms  p90 {:>6.1} ms  max {:>6.1} ms",
        ms(min),
        ms(median),
        ms(p90),
        ms(max)
    )
}

fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    let fork = std::env::args().skip(1).any(|a| a == "fork");
    // Other work on the machine takes cores from the binary: say how much there was.
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before = load();
    // The binary has ended (its tmux server is gone) before this process holds the fleet.
    let run = measure(binary, !fork);
    let load_after = load();
    let here = in_process();

    println!(
        "free-text filter keystroke to screen, release binary in a {WIDTH}x{HEIGHT} tmux pane, \
         {SIZE} instances (collected and drawn in {:.1} s); load average {} before, {} after:",
        run.startup.as_secs_f64(),
        load_before.trim(),
        load_after.trim()
    );
    for (k, (filtered, drawn)) in run.keystrokes.iter().zip(&here) {
        let used = k.used.as_ref().map_or_else(String::new, |u| {
            format!("  CPU {:>5.1}, waited {:>5.1}", ms(u.cpu), ms(u.waited))
        });
        println!(
            "    {:<22} {:>8} rows  first change {:>5.1} ms, last {:>5.1}{used}  | in process: \
             filter {:>5.1}, frame {:>4.1}",
            k.label,
            k.rows,
            ms(k.first),
            ms(k.last),
            ms(*filtered),
            ms(*drawn)
        );
    }
    let first: Vec<Duration> = run.keystrokes.iter().map(|k| k.first).collect();
    let last: Vec<Duration> = run.keystrokes.iter().map(|k| k.last).collect();
    println!(
        "  {} keystrokes ({} typed and deleted one at a time):",
        first.len(),
        WORDS.map(|w| format!("{w:?}")).join(" and ")
    );
    println!("{}", line("send-keys to first change", &first));
    println!("{}", line("send-keys to last change", &last));
    let used: Vec<&Used> = run
        .keystrokes
        .iter()
        .filter_map(|k| k.used.as_ref())
        .collect();
    if used.len() == run.keystrokes.len() {
        let of = |f: fn(&Used) -> Duration| used.iter().map(|u| f(u)).collect::<Vec<_>>();
        println!("{}", line("the binary's CPU time", &of(|u| u.cpu)));
        println!(
            "{}",
            line("the binary waiting for a core", &of(|u| u.waited))
        );
        println!(
            "{}",
            line("the tmux server's CPU time", &of(|u| u.tmux_cpu))
        );
    }
    let (filtered, drawn): (Vec<_>, Vec<_>) = here.into_iter().unzip();
    println!("{}", line("in process: the filter", &filtered));
    println!("{}", line("in process: the frame", &drawn));
    let [_, capture, _, _] = spread(&run.captures);
    let [_, interval, _, _] = spread(&run.intervals);
    let [_, send, _, _] = spread(&run.sends);
    println!(
        "  resolution ({}): a capture every {:.2} ms (median; capture-pane itself {:.2} ms, poll \
         {} ms); send-keys itself {:.2} ms, inside every figure",
        if fork {
            "a tmux process per command"
        } else {
            "one control-mode client"
        },
        ms(interval),
        ms(capture),
        POLL.as_millis(),
        ms(send)
    );
    // The stricter of the two: the screen as it stays.
    let [_, median, _, _] = spread(&last);
    let met = median <= TARGET;
    println!(
        "  target: a free-text keystroke at {SIZE} instances settles under {} ms; median to the \
         last change {:.1} ms: {}",
        TARGET.as_millis(),
        ms(median),
        if met { "met" } else { "MISSED" }
    );
    if !met {
        std::process::exit(1);
    }
}
