//! The format registry: one record per format, parsed from `registry.toml`.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use serde::Deserialize;

/// How a format's image boots, which decides how the harness starts it.
///
/// Its one spelling, kebab-case, is serde's (the registry) and strum's (`Display`, `name()`),
/// derived from the same rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, strum::Display, strum::IntoStaticStr,
)]
#[cfg_attr(test, derive(strum::EnumIter))]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Profile {
    /// A NixOS VM run script (`bin/run-*-vm`) that boots the kernel directly.
    DirectKernel,
    /// A NixOS VM run script that boots through a boot loader from a disk image.
    VmBootloader,
    /// A disk with an MBR boot loader, started by BIOS firmware.
    BiosDisk,
    /// A GPT disk with an EFI system partition, started by UEFI firmware (OVMF).
    EfiDisk,
    /// A hybrid CD-ROM image: UEFI by default, BIOS on request.
    Iso,
    /// A kernel, initrd and command line, booted directly as kexec would.
    Kexec,
    /// A container root file system tarball with the system's init at `/sbin/init`, booted
    /// with systemd-nspawn.
    Container,
    /// LXC image metadata (`metadata.yaml`, templates) that goes with a container tarball:
    /// checked against that tarball (its `lxc` pair), which is then booted as a container.
    ContainerMetadata,
    /// A cloud's or hypervisor's disk (VHD, VHDX, VMDK, qcow2 or raw, perhaps wrapped in an
    /// OVA, a Vagrant box, a tar.gz or gzip), booted with the firmware its own partition table
    /// asks for (a GPT with an EFI system partition and no BIOS boot partition: UEFI).
    CloudDisk,
    /// A disk that is one ext4 file system without partition table, whose kernel the
    /// platform's own GRUB loads from `/boot/grub/grub.cfg` (Linode's "kernel from disk"):
    /// the harness reads the default entry's kernel, initrd and command line out of the file
    /// system and boots them directly, the disk on virtio-scsi as `sda`.
    KernelFromDisk,
    /// An MBR disk without boot code whose bootable ext4 partition holds
    /// `/boot/extlinux/extlinux.conf` for U-Boot (nixpkgs' SD card images): the harness reads
    /// the default label's kernel, initrd and command line and boots them directly.
    Extlinux,
    /// An image for one cloud or hypervisor, not booted by the harness.
    CloudOnly,
    /// An SD card image for an aarch64 board (MBR, a FAT firmware partition, an ext4 root
    /// holding `/boot/extlinux/extlinux.conf`), booted the way a board boots it: U-Boot on
    /// `qemu-system-aarch64 -M virt` (TCG) reads the extlinux.conf of its bootable partition.
    UbootBoard,
    /// An image for a board's own firmware (SD card), not booted by the harness.
    Board,
}

impl Profile {
    /// Whether the harness can boot images of this profile.
    pub fn bootable(self) -> bool {
        !matches!(self, Profile::CloudOnly | Profile::Board)
    }

    /// Whether the image boots as a container (systemd-nspawn), not a machine.
    pub fn is_container(self) -> bool {
        matches!(self, Profile::Container | Profile::ContainerMetadata)
    }

    /// Whether the build result carries its own QEMU runner (`bin/run-*-vm`).
    pub fn uses_runner(self) -> bool {
        matches!(self, Profile::DirectKernel | Profile::VmBootloader)
    }

    /// The profile's name as the registry spells it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The systems a format builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum System {
    /// Any system nixpkgs supports.
    #[serde(rename = "any")]
    Any,
    /// x86_64-linux only.
    #[serde(rename = "x86_64-linux")]
    X86_64Linux,
    /// aarch64-linux only.
    #[serde(rename = "aarch64-linux")]
    Aarch64Linux,
}

impl System {
    /// The Nix system string, or `any`.
    pub fn name(self) -> &'static str {
        match self {
            System::Any => "any",
            System::X86_64Linux => "x86_64-linux",
            System::Aarch64Linux => "aarch64-linux",
        }
    }
}

/// How an output file wraps its disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Packing {
    /// gzip around the disk file.
    Gzip,
    /// A gzip-compressed tar holding the disk file (and perhaps its descriptors).
    TarGz,
    /// An uncompressed tar holding the disk file and its descriptors (an OVA).
    Tar,
    /// A Proxmox VMA archive (perhaps zstd-compressed): its first disk is booted.
    Vma,
    /// zstd around the disk file when the file is a zstd frame (nixpkgs' `sdImage.compressImage`,
    /// on by default: `*.img.zst`); a file that is not one is the disk itself.
    Zstd,
}

/// The disk controller a cloud disk is attached to: the closest QEMU has to the one its platform
/// uses, with a driver the image's initrd has (registry field `controller`, its reason in
/// `controller_why`). Spelt once, kebab-case, for serde and strum alike, as [`Profile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::EnumIter))]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Controller {
    /// q35's built-in AHCI (SATA) controller (`ahci`, in NixOS's default initrd).
    Ahci,
    /// An NVMe controller (`nvme`), as EC2's Nitro instances attach volumes.
    Nvme,
    /// virtio-blk on PCI (`virtio_blk`, `virtio_pci`): the guest's `vda`.
    VirtioBlk,
    /// virtio-scsi on PCI (`virtio_scsi`, `sd_mod`): the guest's `sda`.
    VirtioScsi,
}

impl Controller {
    /// The controller's name as the registry spells it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One format: a record of the registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Format {
    /// The name users pass to `-f`, as upstream nixos-generators spells it.
    pub name: String,
    /// One line for `--list`.
    pub description: String,
    /// `config.system.build.<attr>` on nixpkgs without image variants.
    pub attr: String,
    /// nixpkgs' `system.build.images.<variant>`, used where it exists (25.05 and later).
    pub variant: Option<String>,
    /// Glob, relative to the build result, that selects the image file.
    pub output: String,
    /// The systems the format builds for.
    pub system: System,
    /// How the image boots.
    pub profile: Profile,
    /// Whether `--disk-size` changes the image.
    pub disk_size: bool,
    /// QEMU's block driver for the output file (`raw`, `qcow2`, `vpc`, ...), disk profiles only.
    pub disk: Option<String>,
    /// How the output file wraps the disk, if it does.
    pub packing: Option<Packing>,
    /// Why `--check` cannot boot it (present exactly for the formats it cannot boot).
    pub not_checked: Option<String>,
    /// The disk controller the harness attaches a cloud disk to (cloud-disk formats only).
    pub controller: Option<Controller>,
    /// One line: why that controller (the platform's, and the initrd's driver for it).
    pub controller_why: Option<String>,
}

impl Format {
    /// The controller the harness attaches this format's disk to: the registry's for a cloud
    /// disk, else AHCI (q35's own; the profiles that attach disks otherwise say so).
    pub fn disk_controller(&self) -> Controller {
        self.controller.unwrap_or(Controller::Ahci)
    }
}

impl Format {
    /// Finds this format's image file inside a build result directory: the first match of
    /// [`Format::output`] in sorted order, or `None`.
    pub fn locate(&self, result: &Path) -> Option<PathBuf> {
        locate(&self.output, result)
    }

    /// Whether `file`, a path relative to a build result, is what `output` selects.
    pub fn matches(&self, file: &Path) -> bool {
        matcher(&self.output).is_some_and(|m| m.is_match(file))
    }
}

fn matcher(pattern: &str) -> Option<globset::GlobMatcher> {
    Some(
        globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .ok()?
            .compile_matcher(),
    )
}

/// The first file (or symlink to a file) under `root` whose relative path matches `pattern`;
/// when `root` is itself a file (a file-shaped build result), `root` if its name matches.
fn locate(pattern: &str, root: &Path) -> Option<PathBuf> {
    let matcher = matcher(pattern)?;
    if root.is_file() {
        let name = Path::new(root.file_name()?);
        return matcher.is_match(name).then(|| root.to_path_buf());
    }
    let mut found = Vec::new();
    // Symlinks to files count (a build result links into the store), but the walk descends
    // only into real directories, which keeps it finite; unreadable directories are skipped.
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        let path = entry.path();
        if !entry.file_type().is_dir() && path.is_file() {
            let rel = path.strip_prefix(root).expect("walked under root");
            if matcher.is_match(rel) {
                found.push(entry.into_path());
            }
        }
    }
    found.sort();
    found.into_iter().next()
}

/// Something is wrong with the registry itself (a bug in this program, caught by its tests).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The TOML does not parse into format records.
    #[error("formats/registry.toml does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// A record breaks a rule of the table.
    #[error("formats/registry.toml: format {format:?}: {problem}")]
    Invalid {
        /// The offending format.
        format: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The parsed registry, sorted by name.
#[derive(Debug)]
pub struct Registry {
    formats: Vec<Format>,
}

#[derive(Deserialize)]
struct File {
    format: Vec<Format>,
}

impl Registry {
    /// Parses and checks a registry text.
    pub fn parse(text: &str) -> Result<Registry, RegistryError> {
        let mut formats = toml::from_str::<File>(text)?.format;
        formats.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in formats.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(invalid(&pair[0], "listed twice"));
            }
        }
        for f in &formats {
            if globset::Glob::new(&f.output).is_err() {
                return Err(invalid(f, "output is not a valid glob"));
            }
            if f.profile.bootable() == f.not_checked.is_some() {
                return Err(invalid(
                    f,
                    "`not_checked` says why a format cannot be booted: required for those, and only for them",
                ));
            }
            let is_disk = matches!(
                f.profile,
                Profile::BiosDisk
                    | Profile::EfiDisk
                    | Profile::CloudDisk
                    | Profile::KernelFromDisk
                    | Profile::Extlinux
                    | Profile::UbootBoard
            );
            if is_disk != f.disk.is_some() {
                return Err(invalid(
                    f,
                    "`disk` is required for disk profiles and only for them",
                ));
            }
            if f.packing.is_some() && f.disk.is_none() {
                return Err(invalid(f, "`packing` needs `disk`"));
            }
            let cloud = f.profile == Profile::CloudDisk;
            if cloud != f.controller.is_some() || cloud != f.controller_why.is_some() {
                return Err(invalid(
                    f,
                    "`controller` and `controller_why` are required for cloud-disk formats and only for them",
                ));
            }
        }
        Ok(Registry { formats })
    }

    /// Every format, sorted by name.
    pub fn formats(&self) -> &[Format] {
        &self.formats
    }

    /// The format of that exact name.
    pub fn get(&self, name: &str) -> Option<&Format> {
        self.formats.iter().find(|f| f.name == name)
    }

    /// Up to three known names closest to `name` (for "did you mean").
    pub fn nearest(&self, name: &str) -> Vec<&str> {
        let mut scored: Vec<(usize, &str)> = self
            .formats
            .iter()
            .map(|f| (strsim::levenshtein(name, &f.name), f.name.as_str()))
            .collect();
        scored.sort();
        let best = scored.first().map_or(0, |s| s.0);
        let limit = best.max(name.len() / 2).max(2);
        scored
            .into_iter()
            .filter(|(d, n)| *d <= limit || n.starts_with(name) || name.starts_with(n))
            .take(3)
            .map(|(_, n)| n)
            .collect()
    }
}

fn invalid(f: &Format, problem: &str) -> RegistryError {
    RegistryError::Invalid {
        format: f.name.clone(),
        problem: problem.into(),
    }
}

impl Registry {
    /// The format table of the README, in Markdown, generated from the registry.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from(
            "| format | what it builds | boots as | `--check` | system | output file |\n|---|---|---|---|---|---|\n",
        );
        for f in &self.formats {
            let check = match &f.not_checked {
                None => "yes".to_string(),
                Some(why) => format!("no: {why}"),
            };
            let profile = match f.controller {
                Some(c) => format!("{} ({c})", f.profile),
                None => f.profile.to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | `{}` |\n",
                f.name,
                f.description,
                profile,
                check,
                f.system.name(),
                f.output
            ));
        }
        out
    }
}

/// The registry built into this binary.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::parse(include_str!("../registry.toml"))
            .expect("the built-in registry is checked by the formats crate's tests")
    })
}

#[cfg(test)]
mod tests;
