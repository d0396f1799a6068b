//! Shared helpers of the boot tests: finding the stand-ins, one guest at a time, process and
//! file checks.

#![allow(dead_code)] // each test binary uses a part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One guest at a time in a test binary (the machine has 2 shared cores).
pub static GUEST_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub use test_support::Standin;

/// The stand-ins directory: `$NIXGEN_STANDINS`, else what `ci/standins/build` prints.
/// Neither working is a test failure with the reason, never a silent pass.
pub fn standins_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    test_support::standins_dir(&workspace).unwrap_or_else(|e| panic!("{e}"))
}

/// The manifest's entries (a failure, never empty).
pub fn manifest(dir: &Path) -> Vec<Standin> {
    let all = test_support::read_manifest(dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!all.is_empty(), "empty manifest in {}", dir.display());
    all
}

/// Pids of live (non-zombie) processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    proc_entries()
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .filter(|(_, stat)| !is_zombie(stat))
        .map(|(pid, _)| pid)
        .collect()
}

/// Pids of live (non-zombie) processes in process group `pgid`.
pub fn processes_in_group(pgid: i32) -> Vec<u32> {
    proc_entries()
        .filter(|(_, stat)| stat_field(stat, 5).and_then(|f| f.parse::<i32>().ok()) == Some(pgid))
        .filter(|(_, stat)| !is_zombie(stat))
        .map(|(pid, _)| pid)
        .collect()
}

/// The process group of `pid`.
pub fn pgid_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_field(&stat, 5)?.parse().ok()
}

fn proc_entries() -> impl Iterator<Item = (u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            Some((
                pid,
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
            ))
        })
}

/// Field `n` (1-based, as in proc(5)) of a stat line.
/// Field `n` of `/proc/PID/stat`, numbered from 1 as in proc(5): 3 state, 4 ppid, 5 pgrp.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(n - 3)
}

fn is_zombie(stat: &str) -> bool {
    stat_field(stat, 3) == Some("Z")
}

/// SHA-256 of a file (through `sha256sum`; follows sparse files fine).
pub fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Watches log files from the outside, recording when each line first appeared.
pub struct LineClock {
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LineClock {
    /// Starts polling every 10 ms the files named `names` in the directory that `dir` will
    /// hold once known.
    pub fn start(dir: Arc<Mutex<Option<PathBuf>>>, names: &'static [&'static str]) -> LineClock {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut offsets: HashMap<&str, usize> = HashMap::new();
            let mut partial: HashMap<&str, String> = HashMap::new();
            while !st2.load(std::sync::atomic::Ordering::Relaxed) {
                let d = dir.lock().unwrap().clone();
                if let Some(d) = d {
                    for name in names {
                        let Ok(bytes) = std::fs::read(d.join(name)) else {
                            continue;
                        };
                        let off = offsets.entry(name).or_insert(0);
                        if bytes.len() > *off {
                            let text = String::from_utf8_lossy(&bytes[*off..]).into_owned();
                            *off = bytes.len();
                            let buf = partial.entry(name).or_default();
                            buf.push_str(&text);
                            let now = Instant::now();
                            // Record every line and the unterminated rest (prompts).
                            let mut s = s2.lock().unwrap();
                            for line in buf.split(['\n', '\r']) {
                                s.push((harness::detect::strip_ansi(line), now));
                            }
                            if let Some(i) = buf.rfind(['\n', '\r']) {
                                buf.drain(..=i);
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        LineClock {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// When text containing `needle` first appeared.
    pub fn first(&self, needle: &str) -> Option<Instant> {
        let s = self.seen.lock().unwrap();
        s.iter().find(|(l, _)| l.contains(needle)).map(|(_, t)| *t)
    }
}

impl Drop for LineClock {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
