# A user's configuration customising nixpkgs' raw variant through image.modules: it must merge
# with nixpkgs' variant module and with nixos-generate's tweaks, not replace them.
{
  imports = [ ./user.nix ];
  image.modules.raw = {
    boot.kernelParams = [ "user-variant-param" ];
  };
}
