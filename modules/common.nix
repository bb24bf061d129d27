# Options shared by every nixecs module. Imported by each module so that each
# works on its own; the module system deduplicates imports by file.
{ lib, pkgs, ... }:
{
  options.nixecs.package = lib.mkOption {
    type = lib.types.package;
    default = pkgs.nixecs or (pkgs.callPackage ../pkgs/nixecs/package.nix { });
    defaultText = lib.literalExpression "pkgs.nixecs or (pkgs.callPackage ./pkgs/nixecs/package.nix { })";
    description = ''
      The `nixecs` tool used on the host by `nixecs-userdata.service`
      (`nixecs apply`), `nixecs-secrets.service` (`nixecs secrets fetch`) and
      `nixecs-drain.service` (`nixecs drain`). Defaults to the package from
      this repository, so a configuration that imports `<nixecs/hosts/ecs-node>`
      evaluates without the flake.
    '';
  };
}
