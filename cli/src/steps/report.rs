//! A `ct` started in the background (the mount daemon, a detached `ct run`) tells its starter
//! how it went in one line of JSON on stdout; this waits for that line, bounded in size and time.

use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::time::Duration;

/// Largest report read: a name, a pid, a path or an error message.
const MAX_REPORT_BYTES: u64 = 64 << 10;

/// What the starter heard.
pub enum Heard<R> {
    /// A report it understood.
    Report(R),
    /// The child closed stdout (usually: it exited) without a report it understood.
    Nothing,
    /// No line within the time allowed; the child still runs.
    TimedOut,
}

/// Wait up to `timeout` for `child`'s one-line report on its piped stdout (which this takes).
pub fn await_report<R: DeserializeOwned>(child: &mut Child, timeout: Duration) -> Heard<R> {
    let Some(out) = child.stdout.take() else {
        return Heard::Nothing;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out.take(MAX_REPORT_BYTES)).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => serde_json::from_str(line.trim()).map_or(Heard::Nothing, Heard::Report),
        Err(_) => Heard::TimedOut,
    }
}
