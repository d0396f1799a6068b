//! The boot entry a disk's own boot loader configuration names, read the way the platform's
//! loader reads it: GRUB 2's `grub.cfg` (Linode's "kernel from disk" boot) and extlinux's
//! `extlinux.conf` (U-Boot's and syslinux's, which nixpkgs' generic-extlinux-compatible loader
//! writes for SD card images). Pure text parsing; the files are read by [`crate::diskboot`].

/// Kernel, initrd(s) and command line of one boot entry; paths as the configuration spells
/// them, made absolute inside the file system that holds the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// The entry's title (`menuentry "..."` or `LABEL`), for messages.
    pub title: String,
    /// The kernel's path.
    pub kernel: String,
    /// The initrds' paths, in order (the kernel unpacks them one after the other).
    pub initrds: Vec<String>,
    /// The kernel command line.
    pub cmdline: String,
}

impl BootEntry {
    /// The entry read from `file`, or [`BootCfgError::NoKernel`] when it named no kernel with
    /// `keyword`.
    fn of(
        title: &str,
        kernel: Option<String>,
        initrds: Vec<String>,
        cmdline: String,
        file: &'static str,
        keyword: &'static str,
    ) -> Result<BootEntry, BootCfgError> {
        let kernel = kernel.ok_or_else(|| BootCfgError::NoKernel {
            file,
            title: title.to_string(),
            keyword,
        })?;
        Ok(BootEntry {
            title: title.to_string(),
            kernel,
            initrds,
            cmdline,
        })
    }
}

/// Why no boot entry could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootCfgError {
    /// The configuration has no entry to boot.
    #[error("{0} has no boot entry")]
    NoEntry(&'static str),
    /// The chosen entry loads no kernel.
    #[error("{file}'s entry {title:?} loads no kernel (no `{keyword}` line)")]
    NoKernel {
        /// The configuration file's kind.
        file: &'static str,
        /// The entry.
        title: String,
        /// The keyword expected.
        keyword: &'static str,
    },
    /// A path leaves the file system or cannot be handed to the reader safely.
    #[error("{file} names a path that cannot be read from the image: {path:?}")]
    BadPath {
        /// The configuration file's kind.
        file: &'static str,
        /// The path.
        path: String,
    },
}

/// Splits a configuration line into words (shell-like quoting, as GRUB and extlinux accept);
/// a line that does not split is split at white space.
fn words(line: &str) -> Vec<String> {
    shell_words::split(line)
        .unwrap_or_else(|_| line.split_whitespace().map(str::to_string).collect())
}

/// `path` made absolute and normal inside a file system: `base` is the directory relative
/// paths start from; `..` never climbs above the root; characters a reader's command line
/// could misread (white space, quotes, control characters) are refused.
pub fn normalize(base: &str, path: &str, file: &'static str) -> Result<String, BootCfgError> {
    let bad = || BootCfgError::BadPath {
        file,
        path: path.to_string(),
    };
    if path.is_empty()
        || path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '\\')
    {
        return Err(bad());
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(bad());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A GRUB path without its device prefix: `($drive1)/nix/store/x` and `(hd0,msdos1)/boot/x`
/// both name a file of the file system GRUB searched for, which on Linode's partitionless
/// disk is the one file system.
fn grub_path(word: &str) -> &str {
    match word
        .strip_prefix('(')
        .and_then(|w| w.find(')').map(|i| &w[i + 1..]))
    {
        Some(rest) => rest,
        None => word,
    }
}

/// The entry GRUB boots by default from `grub.cfg`: the top-level `menuentry` numbered by a
/// numeric `set default=N` (0 when there is none or it is not a number, as NixOS's
/// `set default=0` or a saved entry that a fresh image does not have), with its
/// `linux`/`linux16`/`linuxefi` and `initrd` lines.
pub fn grub_default(text: &str) -> Result<BootEntry, BootCfgError> {
    const FILE: &str = "grub.cfg";
    let mut default = 0usize;
    let mut entries: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<usize> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w = words(line);
        let Some(first) = w.first().map(String::as_str) else {
            continue;
        };
        if depth == 0 {
            if let Some(n) = first
                .strip_prefix("default=")
                .or_else(|| (first == "set").then(|| w.get(1)?.strip_prefix("default="))?)
            {
                default = n.trim_matches('"').parse().unwrap_or(0);
            }
        }
        if (first == "menuentry" || first == "submenu") && line.ends_with('{') {
            if depth == 0 {
                let title = w.get(1).cloned().unwrap_or_default();
                entries.push((title, Vec::new()));
                current = (first == "menuentry").then_some(entries.len() - 1);
            }
            depth += 1;
            continue;
        }
        if line == "}" {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                current = None;
            }
            continue;
        }
        if let (Some(i), 1) = (current, depth) {
            entries[i].1.push(w);
        }
    }
    let (title, lines) = entries
        .get(default)
        .or_else(|| entries.first())
        .ok_or(BootCfgError::NoEntry(FILE))?;
    let mut kernel = None;
    let mut cmdline = String::new();
    let mut initrds = Vec::new();
    for w in lines {
        match w[0].as_str() {
            "linux" | "linux16" | "linuxefi" if w.len() > 1 => {
                kernel = Some(normalize("/", grub_path(&w[1]), FILE)?);
                cmdline = w[2..].join(" ");
            }
            "initrd" | "initrd16" | "initrdefi" => {
                for p in &w[1..] {
                    initrds.push(normalize("/", grub_path(p), FILE)?);
                }
            }
            _ => {}
        }
    }
    BootEntry::of(title, kernel, initrds, cmdline, FILE, "linux")
}

/// The entry extlinux (U-Boot's `pxe`/`sysboot`) boots from `extlinux.conf`: the `LABEL` that
/// `DEFAULT` names, else the first; `KERNEL`/`LINUX`, `INITRD` (comma-separated list) and
/// `APPEND`, keywords in any case. Relative paths start at `dir`, the directory holding the
/// configuration inside its file system (`/boot/extlinux` on NixOS's SD images, whose entries
/// say `../nixos/...`).
pub fn extlinux_default(text: &str, dir: &str) -> Result<BootEntry, BootCfgError> {
    const FILE: &str = "extlinux.conf";
    let mut default = None;
    let mut labels: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k.to_ascii_uppercase(), v.trim().to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        match key.as_str() {
            "DEFAULT" => default = Some(value),
            "LABEL" => labels.push((value, Vec::new())),
            _ => {
                if let Some(last) = labels.last_mut() {
                    last.1.push((key, value));
                }
            }
        }
    }
    let (title, lines) = default
        .as_deref()
        .and_then(|d| labels.iter().find(|(l, _)| l == d))
        .or_else(|| labels.first())
        .ok_or(BootCfgError::NoEntry(FILE))?;
    let mut kernel = None;
    let mut initrds = Vec::new();
    let mut cmdline = String::new();
    for (key, value) in lines {
        match key.as_str() {
            "KERNEL" | "LINUX" => kernel = Some(normalize(dir, value, FILE)?),
            "INITRD" => {
                for p in value.split(',').filter(|p| !p.is_empty()) {
                    initrds.push(normalize(dir, p.trim(), FILE)?);
                }
            }
            "APPEND" => cmdline = value.clone(),
            _ => {}
        }
    }
    BootEntry::of(title, kernel, initrds, cmdline, FILE, "LINUX")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of NixOS's install-grub.pl output for a partitionless disk.
    const NIXOS_GRUB: &str = r#"# Automatically generated.  DO NOT EDIT THIS FILE!
set default=0
set timeout=10
serial --speed=19200 --unit=0 --word=8 --parity=no --stop=1;
terminal_input serial;
terminal_output serial
menuentry "NixOS - Default" --class nixos --unrestricted {
search --set=drive1 --fs-uuid 0b5e8e2a-2f7c-4d1c-9d2e-3c4b5a697887
  linux ($drive1)/nix/store/aaaa-linux-6.6.1/bzImage init=/nix/store/bbbb-nixos-system/init console=ttyS0,19200n8 loglevel=4
  initrd ($drive1)/nix/store/cccc-initrd-linux-6.6.1/initrd
}
submenu "NixOS - All configurations" --class submenu {
menuentry "NixOS - Configuration 1" --class nixos {
  linux ($drive1)/nix/store/old/bzImage init=/old
}
}
"#;

    /// The entry a NixOS boot loader configuration names: one initrd.
    fn entry(title: &str, kernel: &str, initrd: &str, cmdline: &str) -> BootEntry {
        BootEntry {
            title: title.into(),
            kernel: kernel.into(),
            initrds: vec![initrd.into()],
            cmdline: cmdline.into(),
        }
    }

    #[test]
    fn nixos_grub_cfg_gives_its_default_entry() {
        assert_eq!(
            grub_default(NIXOS_GRUB).unwrap(),
            entry(
                "NixOS - Default",
                "/nix/store/aaaa-linux-6.6.1/bzImage",
                "/nix/store/cccc-initrd-linux-6.6.1/initrd",
                "init=/nix/store/bbbb-nixos-system/init console=ttyS0,19200n8 loglevel=4"
            )
        );
    }

    #[test]
    fn grub_default_index_and_missing_kernel() {
        let two = "set default=\"1\"\nmenuentry 'a' {\n linux /a\n}\nmenuentry 'b' {\n linux16 /boot/b x=1\n initrd /i1 /i2\n}\n";
        let e = grub_default(two).unwrap();
        assert_eq!((e.kernel.as_str(), e.cmdline.as_str()), ("/boot/b", "x=1"));
        assert_eq!(e.initrds, ["/i1", "/i2"]);
        assert_eq!(
            grub_default("set timeout=1\n").unwrap_err(),
            BootCfgError::NoEntry("grub.cfg")
        );
        let err = grub_default("menuentry x {\n echo hi\n}\n").unwrap_err();
        assert!(err.to_string().contains("loads no kernel"), "{err}");
    }

    #[test]
    fn paths_stay_inside_and_are_plain() {
        assert_eq!(
            normalize("/boot/extlinux", "../nixos/k", "f").unwrap(),
            "/boot/nixos/k"
        );
        assert_eq!(normalize("/", "/../../etc/x", "f").unwrap(), "/etc/x");
        assert!(normalize("/", "/a b", "f").is_err());
        assert!(normalize("/", "/a\"b", "f").is_err());
        assert!(normalize("/", "/..", "f").is_err());
        let err = grub_default("menuentry x {\n linux (hd0)/boot/k\" rm\n}\n").unwrap_err();
        assert!(matches!(err, BootCfgError::BadPath { .. }), "{err}");
    }

    /// generic-extlinux-compatible's builder output.
    const NIXOS_EXTLINUX: &str = "# Generated file, all changes will be lost on nixos-rebuild!

# Change this to e.g. nixos-42 to temporarily boot to an older configuration.
DEFAULT nixos-default

MENU TITLE ------------------------------------------------------------
TIMEOUT 50

LABEL nixos-default
  MENU LABEL NixOS - Default
  LINUX ../nixos/dddd-linux-6.6.1-bzImage
  INITRD ../nixos/eeee-initrd-linux-6.6.1-initrd
  APPEND init=/nix/store/ffff-nixos-system/init console=ttyS0,115200n8 loglevel=7

LABEL nixos-41
  MENU LABEL NixOS - Configuration 41
  LINUX ../nixos/old-bzImage
";

    #[test]
    fn nixos_extlinux_conf_gives_its_default_label() {
        assert_eq!(
            extlinux_default(NIXOS_EXTLINUX, "/boot/extlinux").unwrap(),
            entry(
                "nixos-default",
                "/boot/nixos/dddd-linux-6.6.1-bzImage",
                "/boot/nixos/eeee-initrd-linux-6.6.1-initrd",
                "init=/nix/store/ffff-nixos-system/init console=ttyS0,115200n8 loglevel=7"
            )
        );
        let first = extlinux_default("label a\n kernel /k\n initrd /i,/j\n", "/").unwrap();
        assert_eq!((first.kernel.as_str(), first.initrds.len()), ("/k", 2));
        assert!(extlinux_default("TIMEOUT 1\n", "/").is_err());
    }
}
