//! Console text -> typed findings: boot milestones, success, and failures as they happen.
//! Knows NixOS's own messages (stage 1/2) as well as Debian's initramfs and systemd's.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

use crate::{MilestoneKind, Reason};

/// What one piece of console text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A boot stage was reached.
    Milestone(MilestoneKind),
    /// multi-user.target was reached.
    Ready,
    /// The boot failed.
    Failed(Reason),
}

/// Failure patterns, checked first, in this order (the first match wins).
const FAILURES: &[(Reason, &str)] = &[
    (Reason::KernelPanic, r"Kernel panic"),
    (
        Reason::EmergencyMode,
        r"You are in emergency mode|Entering emergency mode|Reached target .*(Emergency Mode|emergency\.target)",
    ),
    (
        Reason::RescueMode,
        r"You are in rescue mode|Reached target .*(Rescue Mode|rescue\.target)",
    ),
    (
        Reason::InitrdFailure,
        r"An error occurred in stage 1|Gave up waiting for root|ALERT!|[Dd]ropping to a shell",
    ),
    (
        Reason::NoBootableDevice,
        r"No bootable device|No bootable option or device was found|BdsDxe: No bootable option",
    ),
];

/// Success: systemd reached multi-user.target (old and new spellings).
const READY: &str = r"Reached target .*(Multi-User System|multi-user\.target)";

/// Milestones, checked after failures and success (the first match wins).
const MILESTONES: &[(MilestoneKind, &str)] = &[
    (MilestoneKind::Kernel, r"Linux version \d"),
    (
        MilestoneKind::Initrd,
        r"NixOS Stage 1|Loading, please wait|Run /init as init process|Running in initrd|\((Initrd|Initramfs)\)|initrd\.target",
    ),
    (
        MilestoneKind::Bootloader,
        r"GNU GRUB|Welcome to GRUB|Booting `|Loading Linux|ISOLINUX|SYSLINUX|systemd-boot|Booting from (Hard Disk|DVD/CD)|Found /(boot/)?extlinux/extlinux\.conf|Retrieving file: .*extlinux",
    ),
    (
        MilestoneKind::Systemd,
        r"NixOS Stage 2|^\s*Welcome to |systemd\[1\]: .*running in system mode",
    ),
    (
        MilestoneKind::Firmware,
        r"SeaBIOS|BdsDxe|EDK II|UEFI firmware|iPXE|^U-Boot \d{4}\.\d{2}",
    ),
];

/// A boot loader or firmware prompt, at the end of the text (no newline follows a prompt).
const PROMPT: &str = r"(^|[\s>])(grub>|grub rescue>|Shell>)\s*$";
/// The Debian initramfs shell prompt.
const INITRAMFS_PROMPT: &str = r"^\(initramfs\)\s*$";
/// U-Boot's command prompt: after its banner and before any kernel, U-Boot's distro boot tried
/// every device and found nothing to boot.
const UBOOT_PROMPT: &str = r"^=>\s*$";

struct Patterns {
    failures: RegexSet,
    ready: Regex,
    milestones: RegexSet,
    prompt: Regex,
    initramfs_prompt: Regex,
    uboot_prompt: Regex,
    ovmf_failed: Regex,
    ovmf_shell: Regex,
    grub_rescue: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        failures: RegexSet::new(FAILURES.iter().map(|f| f.1)).expect("valid failure patterns"),
        ready: Regex::new(READY).expect("valid ready pattern"),
        milestones: RegexSet::new(MILESTONES.iter().map(|m| m.1)).expect("valid milestones"),
        prompt: Regex::new(PROMPT).expect("valid prompt pattern"),
        initramfs_prompt: Regex::new(INITRAMFS_PROMPT).expect("valid prompt pattern"),
        uboot_prompt: Regex::new(UBOOT_PROMPT).expect("valid prompt pattern"),
        ovmf_failed: Regex::new(r"BdsDxe: failed to load|Boot Failed\.").expect("valid"),
        ovmf_shell: Regex::new(r#"BdsDxe: (loading|starting) Boot[0-9A-F]+ "EFI Internal Shell"|UEFI Interactive Shell"#)
            .expect("valid"),
        grub_rescue: Regex::new(r"Entering rescue mode\.\.\.|Minimal BASH-like line editing is supported")
            .expect("valid"),
    })
}

/// Classifies console text line by line, keeping the little state some decisions need
/// (whether the kernel started, whether UEFI boot options failed).
#[derive(Debug, Default, Clone)]
pub struct TextDetector {
    saw_data: bool,
    kernel: bool,
    uboot: bool,
    efi_failed_loads: u32,
}

impl TextDetector {
    /// A detector that has seen nothing.
    pub fn new() -> TextDetector {
        TextDetector::default()
    }

    /// One complete console line (ANSI escapes already removed).
    pub fn line(&mut self, line: &str) -> Vec<Finding> {
        let p = patterns();
        let mut out = Vec::new();
        if !self.saw_data && !line.trim().is_empty() {
            self.saw_data = true;
            out.push(Finding::Milestone(MilestoneKind::Firmware));
        }
        if let Some(i) = p.failures.matches(line).iter().next() {
            out.push(Finding::Failed(FAILURES[i].0));
            return out;
        }
        if p.ready.is_match(line) {
            out.push(Finding::Ready);
            return out;
        }
        if p.ovmf_failed.is_match(line) {
            self.efi_failed_loads += 1;
        }
        if p.ovmf_shell.is_match(line) && !self.kernel {
            // The firmware fell through to its shell: after failed boot options that means
            // there was nothing to boot.
            out.push(Finding::Failed(if self.efi_failed_loads > 0 {
                Reason::NoBootableDevice
            } else {
                Reason::BootloaderStuck
            }));
            return out;
        }
        if !self.kernel && p.grub_rescue.is_match(line) {
            out.push(Finding::Failed(Reason::BootloaderStuck));
            return out;
        }
        if let Some(f) = self.prompt(line) {
            out.push(f);
            return out;
        }
        if let Some(i) = p.milestones.matches(line).iter().next() {
            let kind = MILESTONES[i].0;
            if kind == MilestoneKind::Kernel {
                self.kernel = true;
            }
            if kind == MilestoneKind::Firmware && line.starts_with("U-Boot") {
                self.uboot = true;
            }
            out.push(Finding::Milestone(kind));
        }
        out
    }

    /// The unterminated end of the console (prompts are not followed by a newline).
    pub fn partial(&mut self, text: &str) -> Option<Finding> {
        self.prompt(text)
    }

    fn prompt(&self, text: &str) -> Option<Finding> {
        let p = patterns();
        if p.initramfs_prompt.is_match(text) {
            return Some(Finding::Failed(Reason::InitrdFailure));
        }
        if self.uboot && !self.kernel && p.uboot_prompt.is_match(text) {
            return Some(Finding::Failed(Reason::NoBootableDevice));
        }
        if p.prompt.is_match(text) {
            let stuck = text.contains("Shell>") && self.efi_failed_loads > 0;
            return Some(Finding::Failed(if stuck {
                Reason::NoBootableDevice
            } else {
                Reason::BootloaderStuck
            }));
        }
        None
    }
}

/// The start of a kernel console message: its timestamp, `[   28.288083] ` (seconds with six
/// decimals, then a space). The kernel prints these into the serial console whatever else is
/// being printed, so readers of console text recognise them with this one pattern.
pub const KERNEL_TIMESTAMP: &str = r"\[ *\d+\.\d{6}\] ";

/// True for the kernel's report of an oops on a breakpoint (`int3`) trap: `Oops: int3: 0000
/// [#1] PREEMPT SMP NOPTI` (Linux 6.x), `int3: 0000 [#1] SMP` (older). Under multi-threaded TCG
/// a vCPU can run a stale `int3` that the kernel's live patching has already removed
/// ([`crate::options::default_cpus`]).
pub fn int3_oops(line: &str) -> bool {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| Regex::new(r"\bint3: [0-9a-f]{4} \[#\d+\]").expect("valid pattern"))
        .is_match(line)
}

/// Removes ANSI/VT100 escape sequences, carriage returns and the other control characters
/// except newline and tab (the `strip-ansi-escapes` crate, a VT parser; it keeps only newlines
/// of the controls, so tabs are kept around it).
pub fn strip_ansi(text: &str) -> String {
    text.split('\t')
        .map(strip_ansi_escapes::strip_str)
        .collect::<Vec<_>>()
        .join("\t")
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect()
}

/// The last `n` lines of console `text` (ANSI escapes stripped), joined with newlines.
pub fn tail_lines(text: &str, n: usize) -> String {
    let clean = strip_ansi(text);
    let lines: Vec<&str> = clean.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use MilestoneKind as M;

    #[test]
    fn int3_oopses_in_both_spellings_and_nothing_else() {
        assert!(int3_oops(
            "[   11.482311] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"
        ));
        assert!(int3_oops("[    3.1] int3: 0000 [#1] SMP"));
        assert!(!int3_oops(
            "[    3.1] Oops: general protection fault, probably for non-canonical address"
        ));
        assert!(!int3_oops("systemd[1]: Started int3: 0000 tests."));
    }

    fn one(lines: &[&str]) -> Vec<Finding> {
        let mut d = TextDetector::new();
        lines.iter().flat_map(|l| d.line(l)).collect()
    }

    fn last(lines: &[&str]) -> Option<Finding> {
        one(lines).pop()
    }

    #[test]
    fn milestones_in_a_debian_boot() {
        let f = one(&[
            "SeaBIOS (version 1.16.2-debian-1.16.2-1)",
            "  GNU GRUB  version 2.12",
            "[    0.000000] Linux version 6.12.117+deb13-cloud-amd64 (debian-kernel@lists.debian.org)",
            "Loading, please wait...",
            "Welcome to Debian GNU/Linux 13 (trixie)!",
        ]);
        assert_eq!(
            f,
            vec![
                Finding::Milestone(M::Firmware),
                Finding::Milestone(M::Firmware),
                Finding::Milestone(M::Bootloader),
                Finding::Milestone(M::Kernel),
                Finding::Milestone(M::Initrd),
                Finding::Milestone(M::Systemd),
            ]
        );
    }

    #[test]
    fn nixos_stages_and_systemd_initrd() {
        assert_eq!(
            last(&["<<< NixOS Stage 1 >>>"]),
            Some(Finding::Milestone(M::Initrd))
        );
        assert_eq!(
            last(&["<<< NixOS Stage 2 >>>"]),
            Some(Finding::Milestone(M::Systemd))
        );
        assert_eq!(
            last(&["Welcome to NixOS 25.05 (Warbler) (Initrd)!"]),
            Some(Finding::Milestone(M::Initrd))
        );
        assert_eq!(
            last(&["[    1.2] systemd[1]: Running in initrd."]),
            Some(Finding::Milestone(M::Initrd))
        );
    }

    #[test]
    fn success_spellings() {
        for l in [
            "[  OK  ] Reached target multi-user.target - Multi-User System.",
            "[  OK  ] Reached target Multi-User System.",
        ] {
            assert_eq!(last(&[l]), Some(Finding::Ready), "{l}");
        }
        assert_ne!(
            last(&["Starting multi-user.target soon"]),
            Some(Finding::Ready)
        );
    }

    #[test]
    fn failures_as_they_happen() {
        let cases: &[(&str, Reason)] = &[
            ("[    1.5] Kernel panic - not syncing: VFS: Unable to mount root fs", Reason::KernelPanic),
            ("You are in emergency mode. After logging in, type \"journalctl -xb\"", Reason::EmergencyMode),
            ("[  OK  ] Reached target emergency.target - Emergency Mode.", Reason::EmergencyMode),
            ("You are in rescue mode. After logging in, type \"journalctl -xb\"", Reason::RescueMode),
            ("[  OK  ] Reached target rescue.target - Rescue Mode.", Reason::RescueMode),
            ("An error occurred in stage 1 of the boot process, which must mount the root filesystem", Reason::InitrdFailure),
            ("Gave up waiting for root file system device.  Common problems:", Reason::InitrdFailure),
            ("ALERT!  UUID=1234 does not exist.  Dropping to a shell!", Reason::InitrdFailure),
            ("No bootable device.", Reason::NoBootableDevice),
            ("BdsDxe: No bootable option or device was found.", Reason::NoBootableDevice),
        ];
        for (line, reason) in cases {
            assert_eq!(last(&[line]), Some(Finding::Failed(*reason)), "{line}");
        }
    }

    #[test]
    fn prompts_without_newline() {
        let mut d = TextDetector::new();
        assert_eq!(
            d.partial("grub> "),
            Some(Finding::Failed(Reason::BootloaderStuck))
        );
        assert_eq!(
            d.partial("grub rescue> "),
            Some(Finding::Failed(Reason::BootloaderStuck))
        );
        assert_eq!(
            d.partial("(initramfs) "),
            Some(Finding::Failed(Reason::InitrdFailure))
        );
        assert_eq!(
            d.partial("Shell> "),
            Some(Finding::Failed(Reason::BootloaderStuck))
        );
        assert_eq!(
            d.partial("grub>grub>  "),
            Some(Finding::Failed(Reason::BootloaderStuck))
        );
        assert_eq!(d.partial("standin login: "), None);
        assert_eq!(d.partial("root@standin:~# "), None);
    }

    #[test]
    fn ovmf_falling_through_to_its_shell() {
        let f = last(&[
            "BdsDxe: failed to load Boot0001 \"UEFI QEMU HARDDISK QM00001 \" from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0): Not Found",
            "BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)",
        ]);
        assert_eq!(f, Some(Finding::Failed(Reason::NoBootableDevice)));
        let mut d = TextDetector::new();
        d.line("BdsDxe: failed to load Boot0001 \"UEFI QEMU HARDDISK\": Not Found");
        assert_eq!(
            d.partial("Shell> "),
            Some(Finding::Failed(Reason::NoBootableDevice))
        );
        assert_eq!(
            last(&["error: no such device: root.", "Entering rescue mode..."]),
            Some(Finding::Failed(Reason::BootloaderStuck))
        );
        // GRUB fell back to its command line after failing to load the kernel.
        assert_eq!(
            last(&[
                "error: you need to load the kernel first.",
                "   Minimal BASH-like line editing is supported. For the first word, TAB   ",
            ]),
            Some(Finding::Failed(Reason::BootloaderStuck))
        );
    }

    #[test]
    fn uboot_finding_nothing_to_boot() {
        let mut d = TextDetector::new();
        let first = d.line("U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)");
        assert_eq!(
            first.last(),
            Some(&Finding::Milestone(MilestoneKind::Firmware))
        );
        d.line("EFI boot manager: Cannot load any image");
        d.line("No ethernet found.");
        assert_eq!(
            d.partial("=> "),
            Some(Finding::Failed(Reason::NoBootableDevice))
        );
        // Found an extlinux.conf: the boot loader milestone; after the kernel, `=>` is no prompt.
        let mut d = TextDetector::new();
        d.line("U-Boot 2023.01");
        assert_eq!(
            d.line("Found /boot/extlinux/extlinux.conf").last(),
            Some(&Finding::Milestone(MilestoneKind::Bootloader))
        );
        d.line("[    0.000000] Linux version 6.12.118+deb13-cloud-arm64 (gcc)");
        assert_eq!(d.partial("=> "), None);
        // Without U-Boot's banner a `=>` means nothing.
        assert_eq!(TextDetector::new().partial("=> "), None);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\nd\n", 2), "c\nd");
        assert_eq!(tail_lines("a", 30), "a");
    }

    #[test]
    fn strips_escapes() {
        assert_eq!(
            strip_ansi(
                "[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mmulti-user.target\x1b[0m\r"
            ),
            "[  OK  ] Reached target multi-user.target"
        );
        assert_eq!(strip_ansi("\x1b[2J\x1b[01;01HBdsDxe: x"), "BdsDxe: x");
        assert_eq!(
            strip_ansi("a\tb\x1b]0;title\x07c\x1b(Bd\u{9b}e\x08\n"),
            "a\tbcde\n"
        );
    }
}
