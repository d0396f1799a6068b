# Format "sd-aarch64-installer": SD card installer image for aarch64 boards. Build with --system
# aarch64-linux. Based on reading NixOS/nixpkgs
# nixos/modules/installer/sd-card/sd-image-aarch64-installer.nix and
# nixos/modules/installer/sd-card/sd-image.nix (`system.build.sdImage`, output sd-image/<name>.img,
# zstd-compressed by default); where the registry names a variant, the `sd-card` variant of
# nixos/modules/image/images.nix is used when present.
import ../nix/mk-format.nix {
  name = "sd-aarch64-installer";
  fileExtension = ".img.*";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/installer/sd-card/sd-image-aarch64-installer.nix") ];
    };
}
