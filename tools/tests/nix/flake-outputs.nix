# The attribute names of the flake's outputs, evaluated with a stub nixpkgs
# input (no nixpkgs needed): { <output> = [ names ]; <output>.<system> = …; }.
{ root }:
let
  lib = import ./stub-lib.nix;
  stubPackage = name: {
    type = "derivation";
    inherit name;
  };
  pkgs = {
    inherit lib;
    callPackage = path: _args: stubPackage (toString path);
    testers.runNixOSTest = test: stubPackage (toString test);
    nixfmt = stubPackage "nixfmt";
    nixfmt-tree = stubPackage "nixfmt-tree";
    path = root;
  };
  nixpkgs = {
    inherit lib;
    outPath = "/nixpkgs";
    legacyPackages = {
      x86_64-linux = pkgs;
      aarch64-linux = pkgs;
    };
  };
  flake = import (root + "/flake.nix");
  self = outputs // {
    outPath = root;
  };
  outputs = flake.outputs {
    inherit self nixpkgs;
  };
  names = set: builtins.attrNames set;
in
{
  inputs = names flake.inputs;
  outputs = names outputs;
  nixosModules = names outputs.nixosModules;
  nixosConfigurations = names outputs.nixosConfigurations;
  packages = builtins.mapAttrs (_: names) outputs.packages;
  checks = builtins.mapAttrs (_: names) outputs.checks;
  devShells = builtins.mapAttrs (_: names) outputs.devShells;
  formatter = names outputs.formatter;
  overlays = names outputs.overlays;
  lib = names outputs.lib;
  templates = names outputs.templates;
  nixops = names outputs.nixopsConfigurations.default;
  nixopsNetwork = names outputs.nixopsConfigurations.default.network;
}
