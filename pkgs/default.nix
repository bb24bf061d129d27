# Our packages, for the overlay and the flake's `packages` output.
{ pkgs }:
let
  bananas = pkgs.callPackage ./bananas/package.nix { };
in
{
  nixecs = pkgs.callPackage ./nixecs/package.nix { };
  inherit bananas;
  bananas-image = pkgs.callPackage ./bananas/image.nix { inherit bananas; };
}
