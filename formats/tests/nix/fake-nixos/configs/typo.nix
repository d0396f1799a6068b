# A configuration with a misspelt option: every format must still reject it.
{
  imports = [ ./user.nix ];
  servics.openssh.enable = true;
}
