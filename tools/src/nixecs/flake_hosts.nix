# A flake's hosts (name → { system; }) without its inputs: `nixecs validate` evaluates the
# flake's `outputs` with a stand-in for the nixecs input whose lib.mkHosts returns only the
# table the real one writes as `nixecsHosts` (lib/default.nix). Any other input, or any use
# of one beyond what that table needs, fails the evaluation: validate then says it could not
# check. Run by nix-instantiate --eval --strict --json with NIX_PATH empty.
{ dir }:
let
  flake = import (dir + "/flake.nix");
  inputUrls = flake.inputs or { };
  isNixecs =
    name: name == "nixecs" || builtins.match ".*nixecs.*" (inputUrls.${name}.url or "") != null;
  nixecs = {
    lib.mkHosts =
      { hosts, ... }:
      {
        nixecsHosts = builtins.mapAttrs (_: h: {
          system = builtins.head (h.systems or [ (h.system or "x86_64-linux") ]);
          systems = h.systems or [ (h.system or "x86_64-linux") ];
          ami = h.ami or true;
        }) hosts;
      };
    lib.systems = [
      "x86_64-linux"
      "aarch64-linux"
    ];
    outPath = dir;
  };
  self = {
    outPath = dir;
  };
  unavailable = name: throw "the flake's input `${name}` is not available to nixecs validate";
  inputs = builtins.mapAttrs (
    name: _:
    if name == "self" then
      self
    else if isNixecs name then
      nixecs
    else
      unavailable name
  ) (builtins.functionArgs flake.outputs);
in
(flake.outputs inputs).nixecsHosts
