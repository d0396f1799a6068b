//! The console and install-iso scenarios, and the poweroff scenario's wait for a shell, against a
//! fake serial console: a unix socket that answers like a shell (echoing input, with a kernel
//! message in the middle of output), so the expectrl driving, the markers and the parsing are
//! tested without QEMU.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixListener,
    path::PathBuf,
    thread,
    time::Duration,
};

use regex::Regex;
use scenarios::{console, install_iso, poweroff, serial::Login};

/// How the fake guest behaves.
#[derive(Clone, Copy)]
struct Fake {
    autologin: bool,
    degraded: bool,
}

fn answer(cmd: &str, fake: Fake) -> (String, i32) {
    let tool = Regex::new(r"^command -v (\S+)$").unwrap();
    if let Some(c) = tool.captures(cmd) {
        return (format!("/run/current-system/sw/bin/{}\r\n", &c[1]), 0);
    }
    match cmd {
        "systemctl is-system-running --wait" if fake.degraded => ("degraded\r\n".into(), 1),
        "systemctl is-system-running --wait" => (
            "[   17.123456] random: crng init done\r\nrunning\r\n".into(),
            0,
        ),
        "systemctl --failed --plain --no-legend --no-pager" => (
            "systemd-networkd-wait-online.service loaded failed failed Wait\r\n".into(),
            0,
        ),
        "cat /etc/os-release" => (
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\r\nID=debian\r\nVERSION_ID=\"13\"\r\n"
                .into(),
            0,
        ),
        "cat /proc/cmdline" => (
            "root=UUID=0b1c2d3e-aaaa-bbbb-cccc-0123456789ab console=ttyS0,115200\r\n".into(),
            0,
        ),
        _ => (String::new(), 0),
    }
}

/// Starts the fake on a fresh socket; returns its directory (removed on drop), the socket's
/// path and the serial log's path.
fn start(fake: Fake) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("ng-fake")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("serial.sock");
    let log = dir.path().join("serial.log");
    std::fs::write(
        &log,
        "\x1b[0m[  OK  ] Reached target multi-user.target.\r\n",
    )
    .unwrap();
    let listener = UnixListener::bind(&socket).unwrap();
    let log2 = log.clone();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let prompt = "\x1b[?2004h\x1b[1;31m[root@standin:~]#\x1b[0m ";
        let mut logged_in = fake.autologin;
        let mut echo = true;
        let banner = if fake.autologin {
            format!("\r\nstandin login: root (automatic login)\r\n\r\n{prompt}")
        } else {
            "\r\nstandin login: ".to_string()
        };
        std::fs::write(&log2, &banner).unwrap();
        out.write_all(banner.as_bytes()).unwrap();
        let framed =
            Regex::new(r"^echo __NG_''BEGIN_(\d+)__; (.*); echo __NG_END_(\d+)_\$\?__$").unwrap();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if !logged_in {
                if line == "root" {
                    logged_in = true;
                    out.write_all(format!("\r\n{prompt}").as_bytes()).unwrap();
                } else {
                    out.write_all(b"\r\nstandin login: ").unwrap();
                }
                continue;
            }
            // Echo what was typed, as a terminal would, until `stty -echo`.
            if echo {
                out.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            }
            if line.contains("stty -echo") {
                echo = false;
            }
            if let Some(c) = framed.captures(&line) {
                let (text, code) = answer(&c[2], fake);
                let id = &c[1];
                out.write_all(
                    format!("__NG_BEGIN_{id}__\r\n{text}__NG_END_{id}_{code}__\r\n").as_bytes(),
                )
                .unwrap();
            }
            out.write_all(prompt.as_bytes()).unwrap();
        }
    });
    (dir, socket, log)
}

fn budget() -> console::Budget {
    console::Budget {
        shell: Duration::from_secs(20),
        settle: Duration::from_secs(10),
        command: Duration::from_secs(10),
    }
}

#[test]
fn console_on_an_autologin_guest() {
    let (_dir, socket, _) = start(Fake {
        autologin: true,
        degraded: false,
    });
    let facts = console::run(&socket, budget()).unwrap();
    assert_eq!(facts.login, Login::Autologin);
    assert_eq!(facts.system_state, "running");
    assert_eq!(
        facts.os_release["PRETTY_NAME"],
        "Debian GNU/Linux 13 (trixie)"
    );
    assert_eq!(facts.os_release["VERSION_ID"], "13");
    assert_eq!(facts.cmdline, "root=UUID=<uuid> console=ttyS0,115200");
}

#[test]
fn console_logs_in_as_root_when_asked() {
    let (_dir, socket, _) = start(Fake {
        autologin: false,
        degraded: false,
    });
    let facts = console::run(&socket, budget()).unwrap();
    assert_eq!(facts.login, Login::Root);
    assert_eq!(facts.system_state, "running");
}

#[test]
fn a_degraded_system_fails_naming_its_failed_units() {
    let (_dir, socket, _) = start(Fake {
        autologin: true,
        degraded: true,
    });
    let err = console::run(&socket, budget()).unwrap_err();
    assert!(err.contains("degraded"), "{err}");
    assert!(
        err.contains("systemd-networkd-wait-online.service"),
        "{err}"
    );
}

#[test]
fn install_iso_finds_prompt_and_tools() {
    let (_dir, socket, log) = start(Fake {
        autologin: true,
        degraded: false,
    });
    let facts = install_iso::run(&socket, &log, budget()).unwrap();
    assert_eq!(facts.login_prompt, "standin login: root (automatic login)");
    assert_eq!(
        facts.tools["nixos-install"],
        "/run/current-system/sw/bin/nixos-install"
    );
}

#[test]
fn poweroff_waits_for_a_shell_before_the_button() {
    let (_dir, socket, _) = start(Fake {
        autologin: false,
        degraded: false,
    });
    poweroff::settle(&socket, Duration::from_secs(20)).unwrap();

    // A console that never answers: no button press, a reason instead.
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("serial.sock");
    let listener = UnixListener::bind(&silent).unwrap();
    let keep = thread::spawn(move || listener.accept().map(|(conn, _)| conn));
    let err = poweroff::settle(&silent, Duration::from_secs(6)).unwrap_err();
    assert!(err.starts_with("before the power-off: no shell"), "{err}");
    drop(keep.join());
}
