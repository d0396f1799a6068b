# Format "vm-nogui": the "vm" format without a display: QEMU runs with -nographic, so the
# serial console (and QEMU's monitor, Ctrl-a c) is the terminal the script runs in; a `resize`
# command, run at login, sets the console's rows and columns from the terminal.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/qemu-vm.nix
# (`virtualisation.graphics = false` adds -nographic and makes ttyS0 the last, i.e. main,
# console). No explicit `-serial`: -nographic already puts serial port 0 on stdio, and a caller
# (such as the boot harness) can still give its own `-serial` to the run script.
import ../nix/mk-format.nix {
  name = "vm-nogui";
  legacy =
    {
      lib,
      pkgs,
      modulesPath,
      ...
    }:
    let
      # Asks the terminal for its size (xterm's CSI 18 t report) and applies it to the tty.
      resize = pkgs.writeShellScriptBin "resize" ''
        [ -t 0 ] && [ -e /dev/tty ] || exit 0
        saved=$(stty -g)
        stty raw -echo min 0 time 5
        printf '\033[18t' > /dev/tty
        IFS=';t' read -r _ rows cols _ < /dev/tty || true
        stty "$saved"
        if [ -n "''${rows:-}" ] && [ -n "''${cols:-}" ]; then
          stty rows "$rows" cols "$cols"
        fi
      '';
    in
    {
      imports = [ (modulesPath + "/virtualisation/qemu-vm.nix") ];
      virtualisation.diskSize = lib.mkDefault 2048;
      virtualisation.graphics = false;
      environment.systemPackages = [ resize ];
      environment.loginShellInit = "${resize}/bin/resize";
    };
}
