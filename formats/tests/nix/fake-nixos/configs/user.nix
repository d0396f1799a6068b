# A user's configuration for the module-level tests; `mark` comes from specialArgs when given.
{ specialArgs, ... }:
{
  boot.kernelParams = [
    "user-param"
    "mark=${specialArgs.mark or "none"}"
  ];
}
