//! The architecture an image is for, where a cheap look tells: a kexec kernel's header, or the
//! QEMU binary a VM run script starts. Disks and ISOs are not looked into (that would mean
//! reading the EFI system partition); for them `--system` is the guard.

use std::io::Read;
use std::path::Path;

/// The only architecture the harness boots (with `qemu-system-x86_64`).
pub const HOST_ARCH: &str = "x86_64";

/// The architecture of a Linux kernel image from its first bytes: an arm64 `Image` (magic
/// `ARM\x64` at 0x38), an x86 bzImage (`HdrS` at 0x202), or a PE/EFI image by its machine
/// field. `None` when none of these matches.
pub fn kernel_arch(head: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0x38, b"ARM\x64") {
        return Some("aarch64");
    }
    if at(0x38, b"RSC\x05") {
        return Some("riscv64");
    }
    if at(0x202, b"HdrS") {
        return Some(HOST_ARCH);
    }
    if at(0, b"MZ") {
        let pe = u32::from_le_bytes(head.get(0x3c..0x40)?.try_into().ok()?) as usize;
        if at(pe, b"PE\0\0") {
            let machine = u16::from_le_bytes(head.get(pe + 4..pe + 6)?.try_into().ok()?);
            return match machine {
                0x8664 => Some(HOST_ARCH),
                0xaa64 => Some("aarch64"),
                0x5064 => Some("riscv64"),
                0x014c => Some("i686"),
                _ => None,
            };
        }
    }
    None
}

/// The architecture a VM run script's `qemu-system-<arch>` starts, when it names one that is
/// not x86 (`qemu-kvm`, NixOS's choice on x86_64, names none).
pub fn script_arch(script: &str) -> Option<String> {
    let mut found = None;
    for (i, _) in script.match_indices("qemu-system-") {
        let arch: String = script[i + "qemu-system-".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if arch == HOST_ARCH || arch == "i386" {
            return None;
        }
        if !arch.is_empty() {
            found.get_or_insert(arch);
        }
    }
    found
}

/// The first `n` bytes of a file (fewer if it is shorter).
pub fn head(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(n).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(mut v: Vec<u8>, off: usize, bytes: &[u8]) -> Vec<u8> {
        v[off..off + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn kernels_by_header() {
        let zero = vec![0u8; 4096];
        assert_eq!(
            kernel_arch(&at(zero.clone(), 0x38, b"ARM\x64")),
            Some("aarch64")
        );
        assert_eq!(
            kernel_arch(&at(zero.clone(), 0x202, b"HdrS")),
            Some("x86_64")
        );
        let pe = |machine: u16| {
            let v = at(at(zero.clone(), 0, b"MZ"), 0x3c, &0x80u32.to_le_bytes());
            at(at(v, 0x80, b"PE\0\0"), 0x84, &machine.to_le_bytes())
        };
        assert_eq!(kernel_arch(&pe(0xaa64)), Some("aarch64"));
        assert_eq!(kernel_arch(&pe(0x8664)), Some("x86_64"));
        assert_eq!(kernel_arch(&zero), None);
        assert_eq!(kernel_arch(b"MZ"), None);
    }

    #[test]
    fn run_scripts_by_qemu_binary() {
        assert_eq!(
            script_arch("exec /nix/store/x-qemu/bin/qemu-system-aarch64 -machine virt"),
            Some("aarch64".into())
        );
        assert_eq!(script_arch("exec /nix/store/x/bin/qemu-kvm -cpu max"), None);
        assert_eq!(script_arch("exec qemu-system-x86_64 -m 1024"), None);
    }
}
