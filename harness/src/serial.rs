//! Following the serial console: QEMU writes every byte to `serial.log` (chardev `logfile=`)
//! whether or not a client is attached to `serial.sock`, so detection tails that file and an
//! interactive client (expectrl, `--run`) can own the socket at the same time.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use crate::detect::{strip_ansi, KERNEL_TIMESTAMP};

/// Reads a growing log file and cuts it into console lines (`\r\n`, `\n` or `\r` ends a
/// line). The kernel writes its messages to the serial port without regard for what the tty
/// is printing, so a message can land in the middle of another line; such a message becomes a
/// line of its own and the interrupted line is put back together.
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    file: Option<File>,
    pending: Vec<u8>,
    /// The start of a line that a kernel message interrupted.
    interrupted: Option<String>,
    total: u64,
}

/// Where a kernel message (`[   28.288083] text`) starts inside `line`, when something other
/// than blanks precedes it: the line was interrupted by the kernel.
fn kernel_message_inside(line: &str) -> Option<usize> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(KERNEL_TIMESTAMP).expect("static regex"));
    re.find_iter(line)
        .map(|m| m.start())
        .find(|&at| !line[..at].trim().is_empty())
}

impl LogTail {
    /// Tails `path` (which may not exist yet).
    pub fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_path_buf(),
            file: None,
            pending: Vec::new(),
            interrupted: None,
            total: 0,
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.total
    }

    /// Reads everything new; returns the completed lines, ANSI escapes removed, empty ones
    /// skipped.
    pub fn read_lines(&mut self) -> Vec<String> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return Vec::new();
        };
        let mut buf = [0u8; 16384];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.total += n as u64;
                    self.pending.extend_from_slice(&buf[..n]);
                }
            }
        }
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
            // "\r\n" is one line end, so a '\r' that is the last byte read waits for the next.
            let cut = match (self.pending[end], self.pending.get(end + 1)) {
                (b'\r', Some(b'\n')) => end + 2,
                (b'\r', None) => break,
                _ => end + 1,
            };
            let raw: Vec<u8> = self.pending.drain(..cut).collect();
            let text = strip_ansi(&String::from_utf8_lossy(&raw[..end]));
            self.complete(text, &mut lines);
        }
        lines
    }

    /// Adds one completed line: a kernel message inside it becomes a line of its own and the
    /// text before it waits for the rest of its line (what follows the message's line end).
    fn complete(&mut self, text: String, lines: &mut Vec<String>) {
        let line = match self.interrupted.take() {
            Some(head) => head + &text,
            None => text,
        };
        if let Some(at) = kernel_message_inside(&line) {
            lines.push(line[at..].to_owned());
            self.interrupted = Some(line[..at].to_owned());
        } else if !line.trim().is_empty() {
            lines.push(line);
        }
    }

    /// The unterminated rest (a prompt, typically), ANSI escapes removed.
    pub fn partial(&self) -> String {
        let rest = strip_ansi(&String::from_utf8_lossy(&self.pending));
        match &self.interrupted {
            Some(head) => format!("{head}{rest}"),
            None => rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_a_growing_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("serial.log");
        let mut t = LogTail::new(&p);
        assert!(t.read_lines().is_empty());
        let mut f = File::create(&p).unwrap();
        f.write_all(b"\x1b[2JBdsDxe: loading\r\nLinux ver").unwrap();
        assert_eq!(t.read_lines(), ["BdsDxe: loading"]);
        assert_eq!(t.partial(), "Linux ver");
        f.write_all(b"sion 6.1\ngrub> ").unwrap();
        assert_eq!(t.read_lines(), ["Linux version 6.1"]);
        assert_eq!(t.partial(), "grub> ");
        assert_eq!(t.bytes(), 45);
    }

    #[test]
    fn a_kernel_message_inside_a_line_is_cut_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("serial.log");
        let mut t = LogTail::new(&p);
        let mut f = File::create(&p).unwrap();
        f.write_all(b"[  OK  ] Reached target [   28.288083] cdrom: Uniform CD-ROM driver\r\nMulti-User System.\r\n")
            .unwrap();
        assert_eq!(
            t.read_lines(),
            [
                "[   28.288083] cdrom: Uniform CD-ROM driver",
                "[  OK  ] Reached target Multi-User System."
            ]
        );
        // The message just before the interrupted line's own end; then a '\r' that waits.
        f.write_all(b"panic=30[    1.000000] x: y\r\n\r\n[    2.000000] z\r")
            .unwrap();
        assert_eq!(t.read_lines(), ["[    1.000000] x: y", "panic=30"]);
        f.write_all(b"\n").unwrap();
        assert_eq!(t.read_lines(), ["[    2.000000] z"]);
    }
}
