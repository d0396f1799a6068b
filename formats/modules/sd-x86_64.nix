# Format "sd-x86_64": SD card image for x86_64 (extlinux).
# Based on reading NixOS/nixpkgs nixos/modules/installer/sd-card/sd-image-x86_64.nix and
# nixos/modules/installer/sd-card/sd-image.nix (`system.build.sdImage`, output
# sd-image/<name>.img, zstd-compressed by default); where the registry names a variant, the
# `sd-card` variant of nixos/modules/image/images.nix is used when present.
import ../nix/mk-format.nix {
  name = "sd-x86_64";
  fileExtension = ".img.*";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/installer/sd-card/sd-image-x86_64.nix") ];
    };
}
