//! Tests of the format registry: the built-in table, its checks, names and file lookup.

use super::*;
use strum::IntoEnumIterator;

/// strum's name of every variant is the one serde reads from the registry, so the two
/// spellings cannot drift apart.
#[test]
fn names_round_trip_through_serde() {
    fn check<T>(all: impl Iterator<Item = T>, name: fn(T) -> &'static str)
    where
        T: Copy + std::fmt::Debug + PartialEq + std::fmt::Display + serde::de::DeserializeOwned,
    {
        for v in all {
            let read: T = serde_json::from_value(serde_json::json!(name(v)))
                .unwrap_or_else(|e| panic!("{v:?} is `{}` to strum; serde: {e}", name(v)));
            assert_eq!(read, v, "{}", name(v));
            assert_eq!(v.to_string(), name(v));
        }
    }
    check(Profile::iter(), Profile::name);
    check(Controller::iter(), Controller::name);
    assert_eq!(Profile::KernelFromDisk.name(), "kernel-from-disk");
    assert_eq!(Profile::UbootBoard.to_string(), "uboot-board");
    assert_eq!(Controller::VirtioBlk.name(), "virtio-blk");
    assert_eq!(Controller::VirtioScsi.to_string(), "virtio-scsi");
}

#[test]
fn builtin_registry_parses_and_has_every_upstream_format() {
    let names: Vec<&str> = registry()
        .formats()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let upstream = [
        "amazon",
        "azure",
        "cloudstack",
        "do",
        "docker",
        "gce",
        "hyperv",
        "install-iso",
        "install-iso-hyperv",
        "iso",
        "kexec",
        "kexec-bundle",
        "kubevirt",
        "linode",
        "lxc",
        "lxc-metadata",
        "openstack",
        "proxmox",
        "proxmox-lxc",
        "qcow",
        "qcow-efi",
        "raw",
        "raw-efi",
        "sd-aarch64",
        "sd-aarch64-installer",
        "sd-x86_64",
        "vagrant-virtualbox",
        "virtualbox",
        "vm",
        "vm-bootloader",
        "vm-nogui",
        "vmware",
    ];
    assert_eq!(names, upstream);
}

#[test]
fn every_builtin_format_has_its_module() {
    for f in registry().formats() {
        let rel = format!("modules/{}.nix", f.name);
        assert!(
            crate::FILES.iter().any(|(p, _)| *p == rel),
            "missing formats/{rel}"
        );
    }
}

#[test]
fn rejects_duplicates_and_bad_disk_fields() {
    let rec = |name: &str, profile: &str, disk: &str| {
        format!(
            "[[format]]\nname={name:?}\ndescription=\"d\"\nattr=\"a\"\noutput=\"*.img\"\n\
             system=\"any\"\nprofile={profile:?}\ndisk_size=false\n{disk}\n"
        )
    };
    let dup = rec("x", "iso", "") + &rec("x", "iso", "");
    assert!(Registry::parse(&dup)
        .unwrap_err()
        .to_string()
        .contains("listed twice"));
    let nodisk = rec("x", "bios-disk", "");
    assert!(Registry::parse(&nodisk)
        .unwrap_err()
        .to_string()
        .contains("`disk`"));
    assert!(Registry::parse(&rec("x", "bios-disk", "disk=\"raw\"")).is_ok());
}

#[test]
fn nearest_names_a_typo() {
    assert_eq!(registry().nearest("raw-ef")[0], "raw-efi");
    assert_eq!(registry().nearest("isso")[0], "iso");
    assert!(registry().nearest("qcow2").contains(&"qcow"));
}

#[test]
fn locate_finds_the_first_match_under_a_result() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("iso")).unwrap();
    std::fs::write(dir.path().join("iso/b.iso"), "").unwrap();
    std::fs::write(dir.path().join("iso/a.iso"), "").unwrap();
    std::fs::write(dir.path().join("nix-support"), "").unwrap();
    let iso = registry().get("iso").unwrap();
    assert_eq!(
        iso.locate(dir.path()).unwrap(),
        dir.path().join("iso/a.iso")
    );
    assert!(registry().get("vm").unwrap().locate(dir.path()).is_none());
}

#[test]
fn locate_accepts_a_file_shaped_result_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let boxed = dir.path().join("abc-nixos-image-vagrant.box");
    std::fs::write(&boxed, "").unwrap();
    let vagrant = registry().get("vagrant-virtualbox").unwrap();
    assert_eq!(vagrant.locate(&boxed).unwrap(), boxed);
    let bundle = dir.path().join("abc-kexec_bundle");
    std::fs::write(&bundle, "").unwrap();
    assert_eq!(
        registry()
            .get("kexec-bundle")
            .unwrap()
            .locate(&bundle)
            .unwrap(),
        bundle
    );
    assert!(registry().get("iso").unwrap().locate(&boxed).is_none());
}

#[test]
fn cloud_disks_name_their_platforms_controller() {
    let c = |name: &str| registry().get(name).unwrap().disk_controller();
    assert_eq!(c("amazon"), Controller::Nvme);
    assert_eq!(c("gce"), Controller::VirtioScsi);
    for name in ["openstack", "do", "kubevirt", "cloudstack", "proxmox"] {
        assert_eq!(c(name), Controller::VirtioBlk, "{name}");
    }
    for name in [
        "azure",
        "hyperv",
        "virtualbox",
        "vagrant-virtualbox",
        "raw",
        "qcow-efi",
    ] {
        assert_eq!(c(name), Controller::Ahci, "{name}");
    }
    let missing = r#"
        [[format]]
        name = "x"
        description = "x"
        attr = "x"
        output = "*.vhd"
        system = "any"
        profile = "cloud-disk"
        disk_size = true
        disk = "vpc"
        controller = "nvme"
    "#;
    let err = Registry::parse(missing).unwrap_err().to_string();
    assert!(err.contains("controller_why"), "{err}");
    assert!(registry()
        .markdown_table()
        .contains("| cloud-disk (nvme) |"));
}
