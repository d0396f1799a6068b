//! THE pairing table: which scenarios run on which format. Adding a scenario means a variant
//! in [`Scenario`] plus its name; adding a pairing means one line in [`SPECIAL`].

use formats::Format;

/// One named check run on a booted machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// The harness verdict reached multi-user.target; facts about how it booted.
    Boot,
    /// A root shell on the serial console: system state, os-release, kernel command line.
    Console,
    /// The power button pressed through QMP (`system_powerdown`: ACPI's button, or on an
    /// aarch64 `virt` booted with a device tree a GPIO key on its PL061; SIGTERM to
    /// systemd-nspawn for a container) ends QEMU (nspawn) cleanly within a bound.
    Poweroff,
    /// The installer reaches its login prompt and the installer tools are in PATH.
    InstallIso,
}

impl Scenario {
    /// Every scenario, in the order trials are listed.
    pub const ALL: [Scenario; 4] = [
        Scenario::Boot,
        Scenario::Console,
        Scenario::Poweroff,
        Scenario::InstallIso,
    ];

    /// The scenario's name in trial names and snapshot names.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Boot => "boot",
            Scenario::Console => "console",
            Scenario::Poweroff => "poweroff",
            Scenario::InstallIso => "install-iso",
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

use Scenario::*;

/// What every bootable format gets unless [`SPECIAL`] says otherwise.
pub const BOOTABLE: &[Scenario] = &[Boot, Console, Poweroff];

/// Formats whose scenarios differ from [`BOOTABLE`].
pub const SPECIAL: &[(&str, &[Scenario])] = &[
    ("install-iso", &[Boot, InstallIso]),
    ("install-iso-hyperv", &[Boot, InstallIso]),
    // The metadata is checked against its lxc pair, which then boots: console and power-off
    // would only repeat lxc's own pairings on the same root file system.
    ("lxc-metadata", &[Boot]),
    ("sd-aarch64-installer", &[Boot, InstallIso]),
];

/// The scenarios paired with `format`: empty when the harness cannot boot it.
pub fn scenarios_for(format: &Format) -> &'static [Scenario] {
    if !format.profile.bootable() {
        return &[];
    }
    SPECIAL
        .iter()
        .find(|(name, _)| *name == format.name)
        .map_or(BOOTABLE, |(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bootable_format_boots_and_installers_check_their_tools() {
        let registry = formats::registry();
        for format in registry.formats() {
            let s = scenarios_for(format);
            assert_eq!(format.profile.bootable(), !s.is_empty(), "{}", format.name);
            if format.profile.bootable() {
                assert_eq!(s[0], Boot, "{} starts with boot", format.name);
            }
        }
        let raw_efi = registry.get("raw-efi").expect("raw-efi");
        assert_eq!(scenarios_for(raw_efi), &[Boot, Console, Poweroff]);
        let installer = registry.get("install-iso").expect("install-iso");
        assert_eq!(scenarios_for(installer), &[Boot, InstallIso]);
        // Containers boot with systemd-nspawn: console and power-off (SIGTERM) too.
        let docker = registry.get("docker").expect("docker");
        assert_eq!(scenarios_for(docker), &[Boot, Console, Poweroff]);
        let metadata = registry.get("lxc-metadata").expect("lxc-metadata");
        assert_eq!(scenarios_for(metadata), &[Boot]);
        // sd-aarch64 gets power-off too. Booted by U-Boot (a device tree), `virt`'s power button
        // is a GPIO key on its PL061, there with `-machine acpi=off` only (harness::aarch64,
        // uboot_disk); the stand-in's Debian generic arm64 kernel hears it (GPIO_PL061=y,
        // KEYBOARD_GPIO=m, gpio_keys loaded by udev; ci/standins/README.md, "aarch64"), as
        // NixOS's kernel should (arm64's defconfig has both =y).
        let sd = registry.get("sd-aarch64").expect("sd-aarch64");
        assert_eq!(scenarios_for(sd), &[Boot, Console, Poweroff]);
    }

    #[test]
    fn special_names_exist_in_the_registry() {
        for (name, _) in SPECIAL {
            assert!(formats::registry().get(name).is_some(), "{name}");
        }
    }
}
