//! Tests of image preparation: the machine an ESP's boot loader picks, SD images.

use super::*;

#[tokio::test]
async fn the_esp_loader_picks_the_machine() {
    use crate::esp::tests::{fat_with, gpt_disk, iso};
    let registry = formats::registry();
    let raw_efi = registry.get("raw-efi").unwrap();
    let d = tempfile::tempdir().unwrap();
    let disk = |name: &str, bytes: Vec<u8>| {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let arm = disk("arm.img", gpt_disk(&fat_with("BOOTAA64.EFI")));
    let b = prepare(raw_efi, &arm, d.path(), None, None).await.unwrap();
    assert_eq!(
        b,
        Bootable::Aarch64Disk {
            path: arm.clone(),
            format: "raw".into(),
            snapshot: true,
            boot: ArmBoot::Uefi
        }
    );
    let x86 = disk("x86.img", gpt_disk(&fat_with("BOOTX64.EFI")));
    let b = prepare(raw_efi, &x86, d.path(), None, None).await.unwrap();
    assert!(matches!(b, Bootable::Disk { uefi: true, .. }), "{b:?}");
    let riscv = disk("riscv.img", gpt_disk(&fat_with("BOOTRISCV64.EFI")));
    let e = prepare(raw_efi, &riscv, d.path(), None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("riscv64"), "{e}");
    let arm_iso = disk("arm.iso", iso(&fat_with("BOOTAA64.EFI")));
    let b = prepare(registry.get("iso").unwrap(), &arm_iso, d.path(), None, None)
        .await
        .unwrap();
    assert_eq!(b, Bootable::Aarch64Iso(arm_iso.clone()));
    // A qcow2's head is converted and read; --system tells without reading.
    let qcow = registry.get("qcow-efi").unwrap();
    let arm_q = d.path().join("arm.qcow2");
    let converted = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&arm)
        .arg(&arm_q)
        .status();
    if converted.is_ok_and(|s| s.success()) {
        let b = prepare(qcow, &arm_q, d.path(), None, None).await.unwrap();
        assert!(b.is_foreign(), "{b:?}");
        assert!(!d.path().join("esp-head.raw").exists());
    }
    let q = d.path().join("x.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&q)
        .arg("1M")
        .status();
    if st.is_ok_and(|s| s.success()) {
        let b = prepare(qcow, &q, d.path(), None, Some("aarch64-linux"))
            .await
            .unwrap();
        assert!(b.is_foreign(), "{b:?}");
        let b = prepare(qcow, &q, d.path(), None, None).await.unwrap();
        assert!(!b.is_foreign(), "{b:?}");
    }
}

#[tokio::test]
async fn sd_images_boot_through_uboot_zstd_or_not() {
    let sd = formats::registry().get("sd-aarch64").unwrap();
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("nixos.img");
    std::fs::write(&plain, vec![7u8; 1 << 17]).unwrap();
    let b = prepare(sd, &plain, d.path(), None, None).await.unwrap();
    assert_eq!(
        b,
        Bootable::Aarch64Disk {
            path: plain.clone(),
            format: "raw".into(),
            snapshot: true,
            boot: ArmBoot::UBoot
        }
    );
    let zst = d.path().join("nixos.img.zst");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..3].copy_from_slice(b"MBR");
    std::fs::write(&zst, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
    let run = d.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let b = prepare(sd, &zst, &run, None, None).await.unwrap();
    let Bootable::Aarch64Disk { path, snapshot, .. } = b else {
        panic!("{b:?}")
    };
    assert!(path.starts_with(&run) && !snapshot);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
