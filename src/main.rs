//! nixos-generate: one NixOS configuration in, a bootable image of any format out.

fn main() {
    for f in formats::registry().formats() {
        println!("{}", f.name);
    }
}
