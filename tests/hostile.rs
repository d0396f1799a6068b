//! Hostile images and environments, through the command as a user runs it (issue 11): each is
//! refused with exit 2 and a reason, or checked as usual, and nothing is left behind. Most
//! cases need no guest (they are refused before QEMU starts, or use a fake run script); one
//! boots the kexec stand-in.

mod sandbox;

use std::{
    ffi::OsStr,
    fs,
    os::unix::{ffi::OsStrExt, fs::symlink},
    path::{Path, PathBuf},
    process::Output,
    time::{Duration, Instant},
};

use sandbox::{os, text, Sandbox, SERIAL};

/// A qcow2 header naming `/etc/shadow` as its backing file (offset 104, 11 bytes).
fn backed_qcow2() -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[8..16].copy_from_slice(&104u64.to_be_bytes());
    h[16..20].copy_from_slice(&11u32.to_be_bytes());
    h[104..115].copy_from_slice(b"/etc/shadow");
    h
}

/// A kernel image header of an arm64 `Image` (magic `ARM\x64` at 0x38).
fn arm64_kernel() -> Vec<u8> {
    let mut k = vec![0u8; 4096];
    k[0x38..0x3c].copy_from_slice(b"ARM\x64");
    k
}

/// A gzip'd ext4 file system (a linode image) made by `mke2fs -d` from a tree `make` fills.
fn linode_image(sb: &Sandbox, name: &str, make: impl Fn(&Path)) -> PathBuf {
    let tree = sb.path(&format!("files/{name}-tree"));
    fs::create_dir_all(tree.join("boot/grub")).unwrap();
    make(&tree);
    let img = sb.path(&format!("files/{name}.img"));
    let made = std::process::Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("8M")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "mke2fs");
    let zipped = std::process::Command::new("gzip")
        .arg(&img)
        .status()
        .unwrap();
    assert!(zipped.success(), "gzip");
    fs::remove_dir_all(&tree).unwrap();
    img.with_extension("img.gz")
}

fn assert_bad_input(out: &Output, what: &str, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.contains(needle), "{what}: wanted {needle:?} in {err}");
}

#[test]
fn hostile_images_and_values_exit_2_and_leave_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let empty = sb.file("files/empty.img", b"");
    let fifo = sb.path("files/fifo.img");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    fs::create_dir(sb.path("files/nothing")).unwrap();
    let backed = sb.file("files/backed.qcow2", &backed_qcow2());
    let escaping = sb.kexec_tarball("escaping", |root| {
        symlink("/etc/passwd", root.join("boot/kernel")).unwrap();
        symlink("../../../../../../../etc/shadow", root.join("boot/initrd")).unwrap();
    });
    let chain = sb.kexec_tarball("chain", |root| {
        fs::write(root.join("boot/initrd"), b"initrd").unwrap();
        symlink("/etc/passwd", root.join("boot/l45")).unwrap();
        for i in 0..45 {
            symlink(format!("l{}", i + 1), root.join(format!("boot/l{i}"))).unwrap();
        }
        symlink("l0", root.join("boot/kernel")).unwrap();
    });
    let arm = sb.kexec_tarball("arm", |root| {
        fs::write(root.join("boot/kernel"), arm64_kernel()).unwrap();
        fs::write(root.join("boot/initrd"), b"initrd").unwrap();
    });
    let arm_vm = sb.script(
        "files/arm-vm/bin/run-arm-vm",
        "exec /nix/store/x-qemu/bin/qemu-system-aarch64 -machine virt \"$@\"",
    );
    let good_disk = sb.file("files/disk.img", &[0u8; 4096]);
    // A VMDK descriptor whose extent is a host file, and an OVA holding only its descriptor.
    let descriptor = sb.file(
        "files/vmware/nixos.vmdk",
        b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 16 FLAT \"/etc/shadow\" 0\n",
    );
    let mut differencing = vec![0u8; 1024];
    differencing[..8].copy_from_slice(b"conectix");
    differencing[60..64].copy_from_slice(&4u32.to_be_bytes());
    let differencing = sb.file("files/amazon/nixos.vhd", &differencing);
    let grub = |kernel: &str| format!("menuentry x {{\n linux {kernel} root=/dev/sda\n}}\n");
    let linode_arm = linode_image(&sb, "linode-arm", |t| {
        fs::write(t.join("boot/Image"), arm64_kernel()).unwrap();
        fs::write(t.join("boot/grub/grub.cfg"), grub("($drive1)/boot/Image")).unwrap();
    });
    let linode_link = linode_image(&sb, "linode-link", |t| {
        symlink("/etc/passwd", t.join("boot/bzImage")).unwrap();
        fs::write(t.join("boot/grub/grub.cfg"), grub("/boot/bzImage")).unwrap();
    });
    let linode_quote = linode_image(&sb, "linode-quote", |t| {
        fs::write(
            t.join("boot/grub/grub.cfg"),
            grub("'/boot/a\" /etc/shadow'"),
        )
        .unwrap();
    });
    let linode_nocfg = linode_image(&sb, "linode-nocfg", |_| {});
    let sd_blank = sb.file("files/sd-image/nixos.img", &[0u8; 8192]);
    let p = |p: &Path| p.as_os_str().to_owned();
    let check = |f: &str, image: &Path| {
        vec![
            os("--check").to_owned(),
            os("--accel").to_owned(),
            os("tcg").to_owned(),
            os("-f").to_owned(),
            os(f).to_owned(),
            os("--image").to_owned(),
            p(image),
        ]
    };
    let with = |mut a: Vec<std::ffi::OsString>, more: &[&str]| {
        a.extend(more.iter().map(|m| os(m).to_owned()));
        a
    };
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (check("raw", Path::new("/dev/zero")), "not a regular file"),
        (check("raw", &empty), "the file is empty"),
        (check("raw", &fifo), "not a regular file"),
        (
            check("raw", &sb.path("files/nothing")),
            "holds no raw image",
        ),
        (check("qcow", &backed), "backing file"),
        (
            check("vmware", &descriptor),
            "descriptor file names other files",
        ),
        (check("amazon", &differencing), "differencing VHD"),
        (
            check("kexec", &escaping),
            "does not exist inside the unpacked tree",
        ),
        (check("kexec", &chain), "too many symlinks"),
        (check("kexec", &arm), "its kernel is for aarch64"),
        (check("vm", &arm_vm), "qemu-system-aarch64"),
        (check("linode", &linode_arm), "its kernel is for aarch64"),
        (
            check("linode", &linode_link),
            "names /boot/bzImage, which is not a file in the image",
        ),
        (
            check("linode", &linode_quote),
            "names a path that cannot be read from the image",
        ),
        (check("linode", &linode_nocfg), "no /boot/grub/grub.cfg"),
        (check("linode", &good_disk), "gzip: invalid gzip header"),
        (check("sd-x86_64", &sd_blank), "no bootable ext4 partition"),
        (
            with(check("raw", &good_disk), &["--system", "riscv64-linux"]),
            "x86_64-linux and aarch64-linux images only",
        ),
        (
            with(
                check("raw", &good_disk),
                &["--timeout", "18446744073709551615"],
            ),
            "--timeout",
        ),
        (
            with(check("raw", &good_disk), &["--timeout", "0"]),
            "--timeout",
        ),
        (
            with(check("raw", &good_disk), &["--memory", "0"]),
            "--memory",
        ),
        (with(check("raw", &good_disk), &["--cpus", "0"]), "--cpus"),
    ];
    for (args, needle) in cases {
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let started = Instant::now();
        let out = sb.run(&args);
        assert_bad_input(&out, &format!("{args:?}"), needle);
        assert!(started.elapsed() < Duration::from_secs(20), "{args:?} hung");
        sb.assert_tmp_empty();
    }
}

/// `--json` with an image path that is not UTF-8: valid JSON on stdout (the path lossily),
/// never a panic.
#[test]
fn json_with_a_non_utf8_image_path_is_valid_json() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let mut name = sb.path("files").into_os_string();
    name.push(OsStr::from_bytes(b"/bad-\xff\xfe.qcow2"));
    fs::write(&name, backed_qcow2()).unwrap();
    let out = sb.run(&[
        os("--check"),
        os("--json"),
        os("--accel"),
        os("tcg"),
        os("-f"),
        os("qcow"),
        os("--image"),
        &name,
    ]);
    assert_bad_input(&out, "non-UTF-8 --json", "backing file");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["image"].as_str().unwrap().contains("bad-\u{fffd}"));
    assert_eq!(rows[0]["reason"], "could-not-start");
    sb.assert_tmp_empty();
}

/// A fake VM run script that records its environment into `files/env-<tag>` and fails (QEMU
/// "did not start"): what a run script sees, without booting anything.
fn recording_runner(sb: &Sandbox, tag: &str) -> PathBuf {
    let record = sb.path(&format!("files/env-{tag}"));
    sb.script(
        &format!("files/vm-{tag}/bin/run-fake-vm"),
        &format!("env > '{}'\nexit 1", record.display()),
    )
}

fn recorded_env(sb: &Sandbox, tag: &str) -> Vec<(String, String)> {
    let raw = fs::read_to_string(sb.path(&format!("files/env-{tag}"))).unwrap();
    raw.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The caller's QEMU_NET_OPTS, NIX_EFI_VARS, NIX_DISK_IMAGE, QEMU_OPTS and the like never reach
/// a run script: it gets the run directory's paths, and the user's files stay untouched.
#[test]
fn run_scripts_get_a_clean_environment() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let runner = recording_runner(&sb, "clean");
    let vars = sb.file("files/my-efi-vars.fd", b"the user's own variables");
    let out = sb
        .command()
        .args(["--check", "--accel", "tcg", "-f", "vm", "--image"])
        .arg(&runner)
        .env("QEMU_NET_OPTS", "hostfwd=tcp::2222-:22")
        .env("NIX_EFI_VARS", &vars)
        .env("NIX_DISK_IMAGE", sb.path("files/my-disk.qcow2"))
        .env("QEMU_OPTS", "-bogus")
        .env("SHARED_DIR", sb.path("files"))
        .env("USE_TMPDIR", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let env = recorded_env(&sb, "clean");
    assert_eq!(get(&env, "QEMU_NET_OPTS"), None, "{env:?}");
    let run_dir = PathBuf::from(get(&env, "TMPDIR").unwrap());
    assert!(run_dir.starts_with(sb.path("tmp")), "{run_dir:?}");
    for key in ["NIX_EFI_VARS", "NIX_DISK_IMAGE", "SHARED_DIR"] {
        let v = get(&env, key).unwrap_or_else(|| panic!("{key} unset: {env:?}"));
        assert!(Path::new(v).starts_with(&run_dir), "{key}={v}");
    }
    assert_eq!(get(&env, "QEMU_OPTS"), Some("-machine accel=tcg"));
    assert_eq!(get(&env, "USE_TMPDIR"), Some("1"));
    assert_eq!(fs::read(&vars).unwrap(), b"the user's own variables");
    assert!(!sb.path("files/my-disk.qcow2").exists());
    // QEMU did not start: the run directory is kept for the evidence, and named.
    assert!(text(&out.stderr).contains(&*run_dir.to_string_lossy()));
    fs::remove_dir_all(&run_dir).unwrap();
    sb.assert_tmp_empty();
}

/// TMPDIR values QEMU or a run script could not take put the run directory under /tmp; a
/// relative TMPDIR is refused; HOME and XDG_CACHE_HOME unset never put the Nix files in a
/// temporary directory.
#[test]
fn odd_tmpdirs_are_refused_or_avoided() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let runner = recording_runner(&sb, "tmpdir");
    let long = sb.path("files/a-temporary-directory-name-well-over-sixty-bytes-long");
    let comma = sb.path("files/a,b");
    let mut non_utf8 = sb.path("files").into_os_string();
    non_utf8.push(OsStr::from_bytes(b"/\xff"));
    for d in [&long, &comma, Path::new(&non_utf8)] {
        fs::create_dir(d).unwrap();
    }
    let values: [(&str, &OsStr); 4] = [
        ("empty", os("")),
        ("long", long.as_os_str()),
        ("comma", comma.as_os_str()),
        ("non-UTF-8", &non_utf8),
    ];
    for (what, value) in values {
        let _ = fs::remove_file(sb.path("files/env-tmpdir"));
        let out = sb
            .command()
            .args(["--check", "--accel", "tcg", "-f", "vm", "--image"])
            .arg(&runner)
            .env("TMPDIR", value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{what}: {}", text(&out.stderr));
        let env = recorded_env(&sb, "tmpdir");
        let run_dir = PathBuf::from(get(&env, "TMPDIR").unwrap());
        assert!(
            run_dir.parent() == Some(Path::new("/tmp"))
                && run_dir.to_string_lossy().starts_with("/tmp/ng-"),
            "{what}: {run_dir:?}"
        );
        fs::remove_dir_all(&run_dir).unwrap();
    }
    for d in [&long, &comma, Path::new(&non_utf8)] {
        assert_eq!(fs::read_dir(d).unwrap().count(), 0, "{d:?} was used");
    }
    let out = sb
        .command()
        .args(["--check", "--accel", "tcg", "-f", "vm", "--image"])
        .arg(&runner)
        .env("TMPDIR", "relative/tmp")
        .output()
        .unwrap();
    assert_bad_input(
        &out,
        "relative TMPDIR",
        "TMPDIR=relative/tmp is a relative path",
    );
    let out = sb
        .command()
        .args(["--check", "--accel", "tcg", "-f", "vm", "--image"])
        .arg(&runner)
        .env("TMPDIR", sb.path("files/missing"))
        .output()
        .unwrap();
    assert_bad_input(&out, "missing TMPDIR", "set TMPDIR to a writable directory");

    // No HOME, no XDG_CACHE_HOME (and a relative one, which the XDG rules ignore).
    for xdg in [None, Some("relative-cache")] {
        let mut c = sb.command();
        c.env_remove("HOME").args(["-f", "iso", "--dry-run"]);
        if let Some(x) = xdg {
            c.env("XDG_CACHE_HOME", x);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let line = text(&out.stdout);
        let entry = line
            .split_whitespace()
            .find(|w| w.ends_with("/nix/entry.nix"))
            .unwrap_or_else(|| panic!("no entry.nix in {line}"));
        assert!(entry.contains("/.cache/nixos-generate/nix-"), "{entry}");
        assert!(
            !entry.starts_with("/tmp") && !entry.contains("relative-cache"),
            "{entry}"
        );
    }
    sb.assert_tmp_empty();
}

/// A planted `entry.nix` in the cache (with the old `.complete` marker) is replaced before Nix
/// sees it.
#[test]
fn a_planted_entry_nix_is_never_used() {
    let sb = Sandbox::new();
    let dry = |sb: &Sandbox| {
        let out = sb
            .command()
            .env("XDG_CACHE_HOME", sb.path("files/cache"))
            .args(["-f", "iso", "--dry-run"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let line = text(&out.stdout);
        PathBuf::from(
            line.split_whitespace()
                .find(|w| w.ends_with("/nix/entry.nix"))
                .unwrap(),
        )
    };
    let entry = dry(&sb);
    let good = fs::read(&entry).unwrap();
    fs::write(&entry, "builtins.abort \"planted\"").unwrap();
    fs::write(
        entry.parent().unwrap().parent().unwrap().join(".complete"),
        "",
    )
    .unwrap();
    assert_eq!(dry(&sb), entry);
    assert_eq!(fs::read(&entry).unwrap(), good);
}

/// A TMPDIR with a comma (QEMU's option separator) and a space: the check still passes (its
/// run directory goes under /tmp instead) and leaves nothing behind. Boots the kexec
/// stand-in under TCG.
#[test]
fn a_check_passes_with_a_tmpdir_qemu_cannot_take() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let standins = test_support::standins_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("this test boots a stand-in: {e}"));
    let sb = Sandbox::new();
    let odd = sb.path("tmp/with,comma and space");
    fs::create_dir(&odd).unwrap();
    let out = sb
        .command()
        .env("TMPDIR", &odd)
        .args([
            "--check", "--json", "--keep", "--accel", "tcg", "-f", "kexec", "--image",
        ])
        .arg(standins.join("kexec"))
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stderr)));
    let run_dir = rows[0]["run_dir"].as_str().map(PathBuf::from);
    if let Some(d) = &run_dir {
        let _ = fs::remove_dir_all(d);
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(rows[0]["verdict"], "multi-user");
    let run_dir = run_dir.expect("--keep names the run directory");
    assert_eq!(run_dir.parent(), Some(Path::new("/tmp")), "{run_dir:?}");
    assert_eq!(fs::read_dir(&odd).unwrap().count(), 0);
}

/// An aarch64 image where its machine cannot be built: no aarch64 QEMU, no U-Boot (exit 4, one
/// line naming the package), or `--accel kvm` (exit 2): nothing started, nothing left behind.
#[test]
fn aarch64_without_its_machine_is_one_line_naming_the_package() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let sd = sb.file("files/sd-image/nixos.img", &[0u8; 65536]);
    let check = |env: (&str, &str), extra: &[&str]| {
        let out = sb
            .command()
            .args(["--check", "-f", "sd-aarch64"])
            .args(extra)
            .arg("--image")
            .arg(&sd)
            .env(env.0, env.1)
            .output()
            .unwrap();
        sb.assert_tmp_empty();
        out
    };
    let cases = [
        (
            ("NIXGEN_QEMU_AARCH64", "/nonexistent/qemu-system-aarch64"),
            &[][..],
            4,
            "install qemu-system-arm",
        ),
        (
            ("NIXGEN_UBOOT", "/nonexistent/u-boot.bin"),
            &[][..],
            4,
            "install the `u-boot-qemu` package",
        ),
        (
            ("NIXGEN_UNUSED", ""),
            &["--accel", "kvm"][..],
            2,
            "--accel kvm cannot run",
        ),
    ];
    for (env, extra, code, needle) in cases {
        let out = check(env, extra);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{env:?}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{env:?}: no line with {needle:?} in {err}"));
        assert!(line.starts_with("nixos-generate: "), "{line}");
    }
}
