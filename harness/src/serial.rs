//! Following the serial console: QEMU writes every byte to `serial.log` (chardev `logfile=`)
//! whether or not a client is attached to `serial.sock`, so detection tails that file and an
//! interactive client (expectrl, `--run`) can own the socket at the same time.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::detect::strip_ansi;

/// Reads a growing log file and cuts it into console lines (`\n` or `\r` ends a line).
#[derive(Debug)]
pub struct LogTail {
    path: PathBuf,
    file: Option<File>,
    pending: Vec<u8>,
    total: u64,
}

impl LogTail {
    /// Tails `path` (which may not exist yet).
    pub fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_path_buf(),
            file: None,
            pending: Vec::new(),
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
            let raw: Vec<u8> = self.pending.drain(..=end).collect();
            let line = strip_ansi(&String::from_utf8_lossy(&raw[..raw.len() - 1]));
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
        lines
    }

    /// The unterminated rest (a prompt, typically), ANSI escapes removed.
    pub fn partial(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.pending))
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
}
