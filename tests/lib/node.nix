# What every scenario's machine shares: all nixecs modules, the fake IMDS, an
# ECS host with userdata applied at boot, and option documentation whose
# warnings (an undocumented option, say) fail the test.
{ lib, ... }:
{
  imports = [
    ../../modules
    ./fake-imds.nix
  ];
  documentation.nixos.options.warningsAreErrors = true;

  nixecs.ecs.enable = lib.mkDefault true;
  nixecs.userdata.enable = lib.mkDefault true;
}
