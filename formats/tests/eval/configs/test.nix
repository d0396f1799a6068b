# The scenarios' configuration (scenarios/test-configuration.nix), as the NixOS matrix passes it.
{ imports = [ ../../../../scenarios/test-configuration.nix ../user-flake/small-channel.nix ]; }
