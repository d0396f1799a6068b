# Format "sd-aarch64": SD card image for aarch64 boards (U-Boot/extlinux; Raspberry Pi firmware
# partition). Build with --system aarch64-linux. Based on reading NixOS/nixpkgs
# nixos/modules/installer/sd-card/sd-image-aarch64.nix and
# nixos/modules/installer/sd-card/sd-image.nix (`system.build.sdImage`, output sd-image/<name>.img,
# zstd-compressed by default); where the registry names a variant, the `sd-card` variant of
# nixos/modules/image/images.nix is used when present.
import ../nix/mk-format.nix {
  name = "sd-aarch64";
  fileExtension = ".img.*";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/installer/sd-card/sd-image-aarch64.nix") ];
    };
}
