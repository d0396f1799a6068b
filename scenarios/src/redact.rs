//! Normalisation of facts for golden snapshots: whatever changes from run to run (temporary
//! paths, ports, vsock CIDs, sizes, UUIDs, machine ids, Nix store hashes) becomes a placeholder,
//! so a snapshot diff means the way a format boots changed.

use std::{path::Path, sync::OnceLock};

use regex::Regex;

struct Rule {
    re: Regex,
    with: &'static str,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            (
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "<uuid>",
            ),
            (r"/nix/store/[0-9a-df-np-sv-z]{32}-", "/nix/store/<hash>-"),
            (r"\b[0-9a-f]{32}\b", "<machine-id>"),
            (r"vsock-stream:(\d+):\d+", "vsock-stream:$1:<port>"),
            (r"\b(port|cid|guest-cid|guest_cid)=\d+", "$1=<n>"),
            (r"::\d+-", "::<port>-"),
            (r"\bsize=\d+[kKmMgGtT]?", "size=<size>"),
            (r"/tmp/[^\s,:=]+", "<tmp>"),
        ]
        .into_iter()
        .map(|(re, with)| Rule {
            re: Regex::new(re).expect("static regex"),
            with,
        })
        .collect()
    })
}

/// Replaces run-to-run values in one piece of text with placeholders.
pub fn redact(text: &str) -> String {
    rules().iter().fold(text.to_owned(), |acc, rule| {
        rule.re.replace_all(&acc, rule.with).into_owned()
    })
}

/// Known directories whose paths become named placeholders before the generic rules apply.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// The machine's run directory, shown as `<run>`.
    pub run_dir: Option<std::path::PathBuf>,
    /// Where the images come from (the stand-ins directory), shown as `<images>`.
    pub images: Option<std::path::PathBuf>,
}

impl Roots {
    fn replace(&self, arg: &str) -> String {
        let mut out = arg.to_owned();
        for (root, name) in [(&self.run_dir, "<run>"), (&self.images, "<images>")] {
            if let Some(root) = root.as_deref().and_then(Path::to_str) {
                if !root.is_empty() {
                    out = out.replace(root.trim_end_matches('/'), name);
                }
            }
        }
        out
    }
}

/// Options whose value is a setting of the run or of the host, not of the format: memory size,
/// and the accelerator and CPU model (KVM where it works, TCG elsewhere).
const RUN_SETTINGS: [(&str, &str); 3] = [("-m", "<mem>"), ("-accel", "<accel>"), ("-cpu", "<cpu>")];

/// The shape of a QEMU command line: known roots named, run-to-run values redacted, and the
/// values of `RUN_SETTINGS` replaced.
pub fn qemu_arg_shape(args: &[String], roots: &Roots) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut placeholder = None;
    for arg in args {
        if let Some(p) = placeholder.take() {
            out.push(p);
            continue;
        }
        placeholder = RUN_SETTINGS
            .iter()
            .find(|(opt, _)| opt == arg)
            .map(|(_, p)| (*p).to_owned());
        let arg = redact(&roots.replace(arg));
        // `-machine accel=kvm` spells the accelerator inside the machine option.
        let arg = arg
            .replace("accel=kvm", "accel=<accel>")
            .replace("accel=tcg", "accel=<accel>");
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_volatile_values() {
        let line = "root=UUID=0b1c2d3e-aaaa-bbbb-cccc-0123456789ab init=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system/init";
        assert_eq!(
            redact(line),
            "root=UUID=<uuid> init=/nix/store/<hash>-nixos-system/init"
        );
        assert_eq!(
            redact("io.systemd.credential:vmm.notify_socket=vsock-stream:2:40123"),
            "io.systemd.credential:vmm.notify_socket=vsock-stream:2:<port>"
        );
        assert_eq!(redact("0123456789abcdef0123456789abcdef"), "<machine-id>");
        assert_eq!(
            redact("memory-backend-memfd,id=mem,size=1024M,share=on"),
            "memory-backend-memfd,id=mem,size=<size>,share=on"
        );
    }

    #[test]
    fn qemu_shape_names_roots_and_hides_memory() {
        let roots = Roots {
            run_dir: Some("/tmp/ng-abc123".into()),
            images: Some("/root/.cache/nixos-generate/standins/0123".into()),
        };
        let args: Vec<String> = [
            "qemu-system-x86_64",
            "-m",
            "1024",
            "-accel",
            "tcg",
            "-machine",
            "q35,accel=kvm",
            "-chardev",
            "socket,id=ser,path=/tmp/ng-abc123/serial.sock,server=on,wait=off",
            "-drive",
            "file=/root/.cache/nixos-generate/standins/0123/raw-efi/nixos.img,format=raw",
            "-device",
            "vhost-user-vsock-pci,chardev=vsk,guest-cid=5",
            "-kernel",
            "/tmp/other/bzImage",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            qemu_arg_shape(&args, &roots),
            [
                "qemu-system-x86_64",
                "-m",
                "<mem>",
                "-accel",
                "<accel>",
                "-machine",
                "q35,accel=<accel>",
                "-chardev",
                "socket,id=ser,path=<run>/serial.sock,server=on,wait=off",
                "-drive",
                "file=<images>/raw-efi/nixos.img,format=raw",
                "-device",
                "vhost-user-vsock-pci,chardev=vsk,guest-cid=<n>",
                "-kernel",
                "<tmp>",
            ]
        );
    }
}
