# The bundled configuration (formats/nix/configuration.nix), as the CLI routes pass it.
{ imports = [ ../../../nix/configuration.nix ../user-flake/small-channel.nix ]; }
