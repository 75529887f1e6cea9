//! Output conventions: human text or `--json` (from the same `Serialize` structs), colour per
//! `--color` and `NO_COLOR`, progress on a terminal only, and errors on stderr.

use crate::exit::Failure;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    pub color: bool,
    pub quiet: bool,
    /// Progress is drawn only on a terminal and never with --json or --quiet.
    pub progress: bool,
}

impl Output {
    pub fn new(json: bool, color: ColorChoice, quiet: bool) -> Self {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        let progress = !json && !quiet && std::io::stderr().is_terminal();
        Self {
            json,
            color,
            quiet,
            progress,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn good(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn bad(&self, s: &str) -> String {
        self.paint("31;1", s)
    }
    pub fn warn(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    /// Print a human line on stdout (not in JSON mode, not when quiet).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.json && !self.quiet {
            // A closed pipe (`ct … | head`) is not an error: ignore write failures.
            let _ = writeln!(std::io::stdout().lock(), "{}", s.as_ref());
        }
    }

    /// Print the JSON document for a command's result.
    pub fn json_doc<T: Serialize>(&self, v: &T) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, v);
            let _ = writeln!(out);
        }
    }

    /// Report a failure: JSON on stdout with --json, and always a readable message on stderr.
    pub fn failure(&self, f: &Failure) {
        if self.json {
            self.json_doc(&serde_json::json!({
                "ok": false,
                "exit_code": f.code,
                "error": { "message": f.message, "hint": f.hint },
            }));
        }
        // Messages quote names, media types and registry text from outside: whatever was not
        // escaped where it was quoted is escaped here, before it reaches the terminal.
        eprintln!("{} {}", self.bad("error:"), safe(&f.message));
        if let Some(h) = &f.hint {
            eprintln!("  {} {}", self.dim("hint:"), safe(h));
        }
    }
}

/// Text for the terminal with control characters (but newline and tab) escaped; see
/// `cerro_core::text`.
pub fn safe(s: &str) -> String {
    cerro_core::text::terminal_safe(s)
}

/// A byte-count progress line on stderr, redrawn at most ten times a second.
pub struct Progress {
    enabled: bool,
    label: String,
    total: u64,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub fn new(out: &Output, label: impl Into<String>, total: u64) -> Self {
        Self {
            enabled: out.progress,
            label: label.into(),
            total,
            last: Instant::now() - Duration::from_secs(1),
            drawn: false,
        }
    }
    pub fn update(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        self.drawn = true;
        let pct = done
            .saturating_mul(100)
            .checked_div(self.total)
            .unwrap_or(100);
        eprint!(
            "\r\x1b[2K{} {} / {} ({pct}%)",
            self.label,
            human_bytes(done),
            human_bytes(self.total)
        );
    }
    pub fn finish(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
