//! The sandbox of the hostile-input tests: a private TMPDIR, fake programs first on PATH, and a
//! directory for the test's own files; the command run with a clean environment.

#![allow(dead_code)] // each test binary uses a part

use std::{
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Mutex,
};

use tempfile::TempDir;

/// One test that starts processes at a time (the machine's cores are shared).
pub static SERIAL: Mutex<()> = Mutex::new(());

/// A private directory: `tmp/` (TMPDIR), `bin/` (fake programs, first on PATH), `files/`.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["tmp", "bin", "files"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The command with a clean environment: PATH (fakes first), HOME, TMPDIR = `tmp/`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nixos-generate"));
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env_clear()
            .env("PATH", path)
            .env("HOME", self.path("files"))
            .env("TMPDIR", self.path("tmp"))
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&OsStr]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// An executable shell script at `rel` (the test's own text, never user input).
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// A file at `rel` with `bytes`.
    pub fn file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        p
    }

    /// A kexec tarball (tar.xz) of the tree `files/<name>/`, built by `make(root)`.
    pub fn kexec_tarball(&self, name: &str, make: impl Fn(&Path)) -> PathBuf {
        let root = self.path(&format!("files/{name}"));
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::write(
            root.join("kexec_nixos"),
            "kexec -l /boot/kernel --initrd=/boot/initrd --append=\"init=/init\"\n",
        )
        .unwrap();
        make(&root);
        let out = self.path(&format!("files/{name}.tar.xz"));
        let st = Command::new("tar")
            .arg("-cJf")
            .arg(&out)
            .arg("-C")
            .arg(&root)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        out
    }

    /// A gzip file at `rel` of `gib` GiB of zeros: one member of 64 MiB repeated (gzip allows
    /// members back to back), about 64 KiB per 64 MiB, so it is quick to write and slow to
    /// decompress.
    pub fn gzip_zeros(&self, rel: &str, gib: usize) -> PathBuf {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 64 << 20]).unwrap();
        let member = gz.finish().unwrap();
        self.file(rel, &member.repeat(gib * 16))
    }

    /// Nothing left in TMPDIR.
    pub fn assert_tmp_empty(&self) {
        let left: Vec<_> = fs::read_dir(self.path("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}
