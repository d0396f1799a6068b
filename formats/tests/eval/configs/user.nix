# A user's configuration for the CLI routes of routes.nix: the bundled configuration, plus the
# top-level image options of the format named by the special argument `ngTestFormat` (which
# arrives the way `--special-arg ngTestFormat <name>` passes it, so this also proves that
# special arguments reach the modules).
{ ngTestFormat, ... }:
let
  options = (import ../image-options.nix).${ngTestFormat};
in
{
  imports = [ ./bundled.nix ] ++ (if options == null then [ ] else [ options ]);
}
