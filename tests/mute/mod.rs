//! A hung service on loopback: it accepts every connection and never answers, so only a
//! client's own timeouts and deadlines end the wait.

use std::net::TcpListener;

/// Starts one; its URL. The connections are held open until the test process ends.
pub fn endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://127.0.0.1:{port}")
}
