# NixOS VM tests, one file per scenario, discovered from this directory:
# tests/<name>.nix becomes checks.<system>.vm-<name>. Helpers live in lib/.
{ pkgs }:
let
  inherit (pkgs) lib;
  scenarios = lib.filterAttrs (
    name: type: type == "regular" && name != "default.nix" && lib.hasSuffix ".nix" name
  ) (builtins.readDir ./.);
in
lib.mapAttrs' (
  file: _:
  lib.nameValuePair "vm-${lib.removeSuffix ".nix" file}" (
    pkgs.testers.runNixOSTest (./. + "/${file}")
  )
) scenarios
