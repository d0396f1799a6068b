//! The command as a user runs it: exit codes, stdout contract, argv handed to Nix, --dry-run
//! snapshots per format. A fake `nix` on PATH records its argv and plays a build.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tempfile::TempDir;

/// A sandbox: a private cache dir, a PATH with only a fake `nix` (optional), a working dir.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["bin", "cache", "work"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Installs a fake `nix` that records its argv (one argument per NUL-terminated record) and
    /// then runs `behaviour` (a shell snippet; the script's own text, never user input).
    fn fake_nix(&self, behaviour: &str) {
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > '{}'\n{behaviour}\n",
            self.path("argv").display()
        );
        let nix = self.path("bin/nix");
        fs::write(&nix, script).unwrap();
        fs::set_permissions(&nix, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn recorded_argv(&self) -> Vec<String> {
        let raw = fs::read(self.path("argv")).unwrap();
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nixos-generate"))
            .args(args)
            .current_dir(self.path("work"))
            .env_clear()
            .env("PATH", self.path("bin"))
            .env("HOME", self.path("work"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("TMPDIR", self.path("work"))
            .output()
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A build result directory holding `rel`, and the JSON `nix build --json` prints for it.
fn fake_result(root: &Path, name: &str, rel: &str) -> String {
    let out = root.join(name);
    let file = out.join(rel);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, vec![0u8; 1234]).unwrap();
    format!(
        r#"{{"drvPath":"/nix/store/x.drv","outputs":{{"out":"{}"}}}}"#,
        out.display()
    )
}

#[test]
fn prints_one_image_path_per_format_in_order() {
    let sb = Sandbox::new();
    let iso = fake_result(&sb.path("store"), "iso", "iso/nixos.iso");
    let qcow = fake_result(&sb.path("store"), "qcow", "nixos.qcow2");
    sb.fake_nix(&format!("echo 'building...' >&2\necho '[{iso},{qcow}]'"));
    let out = sb.run(&["-f", "iso", "-f", "qcow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = format!(
        "{}\n{}\n",
        sb.path("store/iso/iso/nixos.iso").display(),
        sb.path("store/qcow/nixos.qcow2").display()
    );
    assert_eq!(stdout(&out), expected);
    assert!(
        stderr(&out).contains("building..."),
        "Nix's stderr stays visible"
    );
    let argv = sb.recorded_argv();
    assert_eq!(
        argv.iter().filter(|a| *a == "build").count(),
        1,
        "one nix build: {argv:?}"
    );
    assert_eq!(&argv[argv.len() - 3..], ["--", "iso", "qcow"]);
}

#[test]
fn json_output_has_format_path_and_size() {
    let sb = Sandbox::new();
    let raw = fake_result(&sb.path("store"), "raw", "nixos.img");
    sb.fake_nix(&format!("echo '[{raw}]'"));
    let out = sb.run(&["-f", "raw", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["format"], "raw");
    assert_eq!(v[0]["size_bytes"], 1234);
    assert_eq!(
        v[0]["path"],
        sb.path("store/raw/nixos.img").to_str().unwrap()
    );
}

#[test]
fn no_matching_file_is_an_error_not_silence() {
    let sb = Sandbox::new();
    let other = fake_result(&sb.path("store"), "iso", "nix-support/hydra-build-products");
    sb.fake_nix(&format!("echo '[{other}]'"));
    let out = sb.run(&["-f", "iso"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("no file matching \"iso/*.iso\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_build_passes_on_nix_exit_code_and_stderr() {
    let sb = Sandbox::new();
    sb.fake_nix("echo 'error: builder for foo failed' >&2\nexit 100");
    let out = sb.run(&["-f", "iso"]);
    assert_eq!(out.status.code(), Some(100));
    assert!(stderr(&out).contains("error: builder for foo failed"));
}

#[test]
fn missing_nix_exits_127_with_a_hint() {
    let sb = Sandbox::new();
    let out = sb.run(&["-f", "iso"]);
    assert_eq!(out.status.code(), Some(127));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`nix` is not on PATH"), "{err}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let sb = Sandbox::new();
    sb.fake_nix("exit 0");
    for (args, needle) in [
        (
            vec!["-f", "isoo"],
            "unknown format \"isoo\": did you mean iso",
        ),
        (vec!["-f", "iso", "-c", "missing.nix"], "missing.nix"),
        (vec!["--format-path", "nope.nix"], "nope.nix"),
        (vec!["-f", "raw", "--disk-size", "8G"], "--disk-size"),
        (vec!["--flake", "./nowhere#x", "-f", "iso"], "nowhere"),
        (
            vec!["-f", "iso", "--image", "x.iso"],
            "--image is for --run or --check",
        ),
        (
            vec!["-f", "iso", "--check", "--image", "nope.iso"],
            "nope.iso: no such file",
        ),
        (
            vec!["-f", "iso", "-f", "vm", "--check", "--image", "a"],
            "1 --image for 2 -f",
        ),
        (
            vec!["-f", "lxc-metadata", "--run"],
            "lxc-metadata is checked with its lxc pair: --run -f lxc boots",
        ),
        (
            vec!["-f", "iso", "-f", "vm", "--run"],
            "--run boots one format",
        ),
        (
            vec!["-f", "lxc-metadata", "--run"],
            "--run -f lxc boots the root file system",
        ),
    ] {
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!sb.path("argv").exists(), "bad input never reaches nix");
}

#[test]
fn a_flag_missing_its_value_is_a_usage_error() {
    let sb = Sandbox::new();
    for args in [
        vec!["-f"],
        vec!["-f", "iso", "--option", "x"],
        vec!["-f", "iso", "--special-arg"],
    ] {
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// Paths with shell and Nix metacharacters reach Nix as one `--argstr` value each, unchanged.
#[test]
fn hostile_paths_reach_nix_as_data() {
    let sb = Sandbox::new();
    let raw = fake_result(&sb.path("store"), "raw", "nixos.img");
    sb.fake_nix(&format!("echo '[{raw},{raw}]'"));
    let nasty_dir = sb.path("work").join("a b'\"${x}\\\nz");
    fs::create_dir_all(&nasty_dir).unwrap();
    let config = nasty_dir.join("conf $(touch pwned).nix");
    fs::write(&config, "{ }").unwrap();
    let format = nasty_dir.join("fmt`id`.nix");
    fs::write(&format, "{ }").unwrap();
    let out = sb.run(&[
        "-f",
        "raw",
        "-c",
        config.to_str().unwrap(),
        "--format-path",
        format.to_str().unwrap(),
        "--special-arg",
        "k",
        "\"; builtins.abort \"x",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let argv = sb.recorded_argv();
    let value_of = |name: &str| {
        let i = argv
            .windows(2)
            .position(|w| w[0] == "--argstr" && w[1] == name)
            .unwrap();
        argv[i + 2].clone()
    };
    assert_eq!(value_of("configuration"), config.to_str().unwrap());
    assert_eq!(value_of("formatPath"), format.to_str().unwrap());
    let special: serde_json::Value = serde_json::from_str(&value_of("specialArgs")).unwrap();
    assert_eq!(special["k"], "\"; builtins.abort \"x");
    assert!(!sb.path("work/pwned").exists());
    // The custom format is labelled by its file name.
    let out = sb.run(&[
        "--json",
        "-f",
        "raw",
        "--format-path",
        format.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[1]["format"], "fmt`id`");
}

/// One snapshot per format of the exact Nix command, with the sandbox's paths redacted.
#[test]
fn dry_run_snapshots_per_format() {
    let sb = Sandbox::new();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(&regex_escape(sb.path("cache").to_str().unwrap()), "[CACHE]");
    settings.add_filter(r"nix-[0-9a-f]{16}", "nix-[HASH]");
    let _guard = settings.bind_to_scope();
    for f in formats::registry().formats() {
        let out = sb.run(&["-f", &f.name, "--dry-run"]);
        assert!(out.status.success(), "{}: {}", f.name, stderr(&out));
        insta::assert_snapshot!(format!("dry-run@{}", f.name), stdout(&out));
    }
    assert!(!sb.path("argv").exists(), "--dry-run runs nothing");
}

#[test]
fn dry_run_shows_every_passed_option() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "-f",
        "raw-efi",
        "-f",
        "vm",
        "--system",
        "aarch64-linux",
        "--disk-size",
        "auto",
        "--cores",
        "2",
        "--option",
        "builders",
        "",
        "-I",
        "nixpkgs=/src/nixpkgs",
        "--show-trace",
        "-o",
        "out",
        "--dry-run",
        "--special-arg",
        "role",
        "web",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    for piece in [
        "--argstr system aarch64-linux",
        "--argstr diskSize auto",
        "--cores 2",
        "--option builders ''",
        "-I 'nixpkgs=/src/nixpkgs'",
        "--show-trace",
        "--argstr specialArgs '{\"role\":\"web\"}'",
        "-- raw-efi vm",
    ] {
        assert!(line.contains(piece), "missing {piece:?} in {line}");
    }
    assert!(
        line.contains(&format!("--out-link {}", sb.path("work/out").display())),
        "{line}"
    );
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}
