//! [`RunDir`]: the private, short-path directory of one run (sockets, logs, overlay, vars), and
//! [`RunFiles`]: the one place that names the files in it, with [`EVIDENCE`], what a kept run
//! directory holds for a reader of a failed check.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::HarnessError;

/// Unix socket paths must stay under 108 bytes; a base longer than this falls back to /tmp.
const MAX_BASE_LEN: usize = 48;

/// A 0700 directory like `/tmp/ng-XXXXXX`, removed on drop unless kept.
#[derive(Debug)]
pub struct RunDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

/// Where run directories go, for a `TMPDIR` value: `/tmp` when it is unset or empty; an error
/// when it is relative (the run directory must not depend on the working directory); `/tmp`
/// when QEMU and the run scripts could not take it as it is: longer than `MAX_BASE_LEN`
/// (socket paths), not UTF-8 (QEMU's options are text), or holding a comma (QEMU's option
/// separator), white space, a control character or a shell quote (the run scripts are shell);
/// else the directory itself.
pub fn base_dir(tmpdir: Option<&OsStr>) -> Result<PathBuf, HarnessError> {
    let fallback = PathBuf::from("/tmp");
    let Some(tmp) = tmpdir.filter(|t| !t.is_empty()) else {
        return Ok(fallback);
    };
    let path = Path::new(tmp);
    if !path.is_absolute() {
        return Err(HarnessError::BadEnvironment(format!(
            "TMPDIR={} is a relative path: set TMPDIR to an absolute directory, or unset it",
            path.display()
        )));
    }
    let usable = tmp.to_str().is_some_and(|t| {
        t.len() <= MAX_BASE_LEN
            && !t
                .chars()
                .any(|c| c == ',' || c.is_whitespace() || c.is_control() || "'\"\\$`".contains(c))
    });
    Ok(if usable { path.to_path_buf() } else { fallback })
}

impl RunDir {
    /// Creates a fresh run directory under [`base_dir`] of `$TMPDIR`.
    pub fn create() -> Result<RunDir, HarnessError> {
        let base = base_dir(std::env::var_os("TMPDIR").as_deref())?;
        let dir = tempfile::Builder::new()
            .prefix("ng-")
            .tempdir_in(&base)
            .map_err(|e| {
                HarnessError::BadEnvironment(format!(
                    "cannot create a run directory in {} ({e}): set TMPDIR to a writable directory",
                    base.display()
                ))
            })?;
        // tempfile creates directories 0700 on unix; say so explicitly.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| HarnessError::io("chmod 0700 the run directory", e))?;
        let path = dir.path().to_path_buf();
        Ok(RunDir {
            dir: Some(dir),
            path,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Keeps the directory on disk and returns its path.
    pub fn keep(mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.path.clone()
    }

    /// Removes the directory now (also done on drop), trying again for a few seconds while a
    /// process of the run that was just killed still writes into it.
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            remove_all(&dir.keep());
        }
    }
}

/// How long `remove_all` keeps trying.
const REMOVE_FOR: std::time::Duration = std::time::Duration::from_secs(3);

/// Removes `path` and everything in it, trying again for up to `REMOVE_FOR` while something
/// still writes into it: a process of the run killed a moment ago (a container's own
/// processes die after systemd-nspawn, which was waited for) can add a file between the
/// removal of the last entry and that of the directory, which then fails as not empty.
fn remove_all(path: &Path) {
    let until = std::time::Instant::now() + REMOVE_FOR;
    loop {
        match std::fs::remove_dir_all(path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(_) => return,
        }
    }
}

/// The files of a run directory, each by a named accessor (the only place their names are
/// spelt).
#[derive(Debug, Clone, Copy)]
pub struct RunFiles<'a>(&'a Path);

macro_rules! run_files {
    ($($(#[$doc:meta])* $name:ident => $file:expr,)*) => {
        impl RunFiles<'_> {
            $($(#[$doc])* pub fn $name(self) -> PathBuf {
                self.0.join($file)
            })*
        }
    };
}

run_files! {
    /// The serial console, recorded by QEMU from its first byte.
    serial_log => "serial.log",
    /// The serial console's socket (the console scenario and `--run` connect here).
    serial_sock => "serial.sock",
    /// QEMU's standard error.
    qemu_stderr => "qemu.stderr",
    /// QEMU's standard output (a run script's `-serial mon:stdio` console lands here).
    qemu_stdout => "qemu.stdout",
    /// QMP's socket.
    qmp_sock => "qmp.sock",
    /// Every QMP command and event, timestamped.
    qmp_log => "qmp.log",
    /// SeaBIOS's debug console.
    firmware_log => "firmware.log",
    /// Every connection of the guest's systemd on the notify channel, timestamped.
    notify_log => crate::notify::LOG_NAME,
    /// The run's private copy of the OVMF variables.
    vars_fd => "vars.fd",
    /// A screendump taken when the boot failed.
    screenshot => "screenshot.png",
    /// QEMU's standard error of the attempt under KVM, when the guest was started again under TCG.
    kvm_stderr => "kvm.stderr",
    /// The QMP log of that attempt.
    kvm_qmp_log => "kvm-qmp.log",
    /// The serial console of an attempt under TCG with two vCPUs whose kernel oopsed on a stale
    /// `int3`, when the guest was started again with one.
    smp_serial_log => "smp-serial.log",
    /// The serial console of an attempt whose UEFI firmware stalled after its banner, when the
    /// guest was started again.
    stalled_serial_log => "stalled-serial.log",
    /// vhost-device-vsock's vhost-user socket (QEMU connects to it).
    vhost_sock => "vhost.sock",
    /// vhost-device-vsock's unix socket prefix (guest port P arrives at `vsock_P`).
    vsock_uds => "vsock",
    /// vhost-device-vsock's log.
    helper_log => "vhost-device-vsock.log",
}

impl<'a> RunFiles<'a> {
    /// The files of the run directory `dir`.
    pub fn of(dir: &'a Path) -> RunFiles<'a> {
        RunFiles(dir)
    }

    /// The evidence these files are: the logs, the notify log where it exists; no screenshot
    /// (one is taken only when a boot fails: the machine adds it).
    pub fn evidence(self) -> crate::Evidence {
        crate::Evidence {
            serial_log: self.serial_log(),
            qemu_stderr: self.qemu_stderr(),
            qmp_log: self.qmp_log(),
            notify_log: Some(self.notify_log()).filter(|p| p.exists()),
            screenshot: None,
        }
    }
}

/// What a kept run directory holds as evidence of a failed check, in the order a failure
/// report names it: the file name, and how the report names it.
pub const EVIDENCE: [(&str, &str); 5] = [
    ("serial.log", "serial.log"),
    ("qemu.stderr", "qemu.stderr"),
    ("qmp.log", "qmp.log"),
    ("notify.log", "notify.log"),
    ("screenshot.png", "screenshot if any"),
];

/// [`EVIDENCE`] as a failure report lists it: `serial.log, qemu.stderr, ..., screenshot if any`.
pub fn evidence_list() -> String {
    EVIDENCE.map(|(_, shown)| shown).join(", ")
}

impl RunDir {
    /// Its files.
    pub fn files(&self) -> RunFiles<'_> {
        RunFiles(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_run_dir_still_written_into_is_removed_once_the_writer_stops() {
        let dir = RunDir::create().unwrap();
        let path = dir.path().to_path_buf();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                // As a container's dying processes write deep in its root file system.
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Level by level (create_dir_all would make the run directory again).
                    let deep = path.join(format!("var/log/d{}", n % 4));
                    for dir in [path.join("var"), path.join("var/log"), deep.clone()] {
                        let _ = std::fs::create_dir(dir);
                    }
                    let _ = std::fs::write(deep.join(format!("f{n}")), b"x");
                    n += 1;
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            })
        };
        dir.remove();
        stopper.join().unwrap();
        writer.join().unwrap();
        assert!(!path.exists(), "{} left behind", path.display());
    }

    #[test]
    fn private_short_and_removed_unless_kept() {
        let a = RunDir::create().unwrap();
        let b = RunDir::create().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(a.files().serial_sock().as_os_str().len() < 100);
        let pa = a.path().to_path_buf();
        drop(a);
        assert!(!pa.exists());
        let kept = b.keep();
        assert!(kept.is_dir());
        std::fs::remove_dir_all(kept).unwrap();
    }

    #[test]
    fn tmpdir_values_qemu_cannot_take_fall_back_to_tmp() {
        use std::os::unix::ffi::OsStrExt;
        let base = |v: &[u8]| base_dir(Some(OsStr::from_bytes(v)));
        assert_eq!(base_dir(None).unwrap(), Path::new("/tmp"));
        assert_eq!(base(b"").unwrap(), Path::new("/tmp"));
        assert_eq!(base(b"/var/tmp").unwrap(), Path::new("/var/tmp"));
        for odd in [
            &b"/tmp/a,b"[..],
            b"/tmp/with space",
            b"/tmp/quote'd",
            b"/tmp/\xff\xfe",
            b"/tmp/a-very-long-temporary-directory-name-of-more-than-sixty-bytes",
        ] {
            assert_eq!(base(odd).unwrap(), Path::new("/tmp"), "{odd:?}");
        }
        let err = base(b"relative/tmp").unwrap_err();
        assert!(err.is_bad_input());
        assert!(
            err.to_string()
                .contains("TMPDIR=relative/tmp is a relative path"),
            "{err}"
        );
    }

    #[test]
    fn evidence_names_the_files_the_accessors_name() {
        let files = RunFiles::of(Path::new("/r"));
        let names: Vec<PathBuf> = EVIDENCE
            .iter()
            .map(|(f, _)| Path::new("/r").join(f))
            .collect();
        assert_eq!(
            names,
            [
                files.serial_log(),
                files.qemu_stderr(),
                files.qmp_log(),
                files.notify_log(),
                files.screenshot()
            ]
        );
        assert_eq!(
            evidence_list(),
            "serial.log, qemu.stderr, qmp.log, notify.log, screenshot if any"
        );
    }
}
