//! Per-blob progress for transfers that run several blobs at once: one line per blob in flight
//! on stderr, redrawn at most ten times a second, only on a terminal (never with --json or -q).
//! This is how `ct` draws the registry library's `Progress`.

use crate::output::{human_bytes, Output};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Redraw interval.
const FRAME: Duration = Duration::from_millis(100);

struct Bar {
    label: String,
    total: u64,
    done: Arc<AtomicU64>,
    finished: bool,
}

struct State {
    bars: Vec<Bar>,
    /// Lines drawn last time (to move the cursor back over them).
    drawn: usize,
    last: Instant,
}

/// A set of progress lines shared by worker threads.
pub struct MultiProgress {
    enabled: bool,
    state: Mutex<State>,
}

/// One blob's counter; adding to it is lock-free, drawing happens at most once per frame.
pub struct BarHandle<'a> {
    mp: &'a MultiProgress,
    index: usize,
    done: Arc<AtomicU64>,
}

impl MultiProgress {
    pub fn new(out: &Output) -> Self {
        Self {
            enabled: out.progress,
            state: Mutex::new(State {
                bars: vec![],
                drawn: 0,
                last: Instant::now() - FRAME,
            }),
        }
    }

    pub fn bar(&self, label: impl Into<String>, total: u64) -> BarHandle<'_> {
        let done = Arc::new(AtomicU64::new(0));
        let mut st = self.state.lock().expect("progress lock");
        st.bars.push(Bar {
            label: label.into(),
            total,
            done: done.clone(),
            finished: false,
        });
        BarHandle {
            mp: self,
            index: st.bars.len() - 1,
            done,
        }
    }

    fn draw(&self, force: bool) {
        if !self.enabled {
            return;
        }
        let Ok(mut st) = self.state.try_lock() else {
            return; // another thread is drawing
        };
        if !force && st.last.elapsed() < FRAME {
            return;
        }
        st.last = Instant::now();
        let mut text = String::new();
        if st.drawn > 0 {
            text.push_str(&format!("\x1b[{}F", st.drawn));
        }
        let active: Vec<&Bar> = st.bars.iter().filter(|b| !b.finished).collect();
        for b in &active {
            let done = b.done.load(Ordering::Relaxed).min(b.total);
            let pct = done.saturating_mul(100).checked_div(b.total).unwrap_or(100);
            text.push_str(&format!(
                "\x1b[2K{} {} / {} ({pct}%)\n",
                b.label,
                human_bytes(done),
                human_bytes(b.total)
            ));
        }
        let n = active.len();
        // Clear lines left over from bars that finished since the last frame.
        for _ in n..st.drawn {
            text.push_str("\x1b[2K\n");
        }
        if st.drawn > n {
            text.push_str(&format!("\x1b[{}F", st.drawn - n));
        }
        st.drawn = n;
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// Remove every line drawn.
    pub fn clear(&self) {
        if !self.enabled {
            return;
        }
        let mut st = self.state.lock().expect("progress lock");
        for b in &mut st.bars {
            b.finished = true;
        }
        drop(st);
        self.draw(true);
    }
}

impl BarHandle<'_> {
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.mp.draw(false);
    }
    pub fn finish(&self) {
        if let Ok(mut st) = self.mp.state.lock() {
            st.bars[self.index].finished = true;
        }
        self.mp.draw(true);
    }
}

impl cerro_registry::Progress for MultiProgress {
    fn bar(&self, label: String, total: u64) -> Box<dyn cerro_registry::Bar + '_> {
        Box::new(MultiProgress::bar(self, label, total))
    }
    fn clear(&self) {
        MultiProgress::clear(self)
    }
}

impl cerro_registry::Bar for BarHandle<'_> {
    fn add(&self, n: u64) {
        BarHandle::add(self, n)
    }
    fn finish(&self) {
        BarHandle::finish(self)
    }
}

impl Drop for MultiProgress {
    fn drop(&mut self) {
        self.clear();
    }
}
