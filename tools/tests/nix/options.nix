# Every option the given NixOS module files declare, with whether it has a
# non-empty description; evaluated with the stub lib, without nixpkgs.
# usage: nix-instantiate --eval --strict --json options.nix --arg files '[ ./a.nix ]'
{ files }:
let
  lib = import ./stub-lib.nix;

  moduleArgs = name: {
    inherit lib name;
    config = throw "the option check does not evaluate config";
    options = { };
    pkgs = throw "the option check does not evaluate pkgs";
    modulesPath = "/nixpkgs/nixos/modules";
    utils = { };
  };

  callModule =
    name: m:
    let
      f = if builtins.isPath m || builtins.isString m then import m else m;
    in
    if builtins.isFunction f then
      f (builtins.intersectAttrs (builtins.functionArgs f) (moduleArgs name))
    else
      f;

  walkType =
    path: t:
    if !builtins.isAttrs t then
      [ ]
    else if t ? _elem then
      walkType "${path}.<name>" t._elem
    else if t ? _alts then
      builtins.concatMap (walkType path) t._alts
    else if t ? _submodules then
      builtins.concatMap (m: walkOptions path ((callModule "<name>" m).options or { })) t._submodules
    else
      [ ];

  walkOptions =
    path: v:
    if builtins.isAttrs v && v ? _option then
      [
        {
          name = path;
          described =
            let
              d = v._option.description or null;
            in
            builtins.isString d && builtins.match "[[:space:]]*" d == null;
        }
      ]
      ++ walkType path (v._option.type or null)
    else if builtins.isAttrs v && !(v ? _type) then
      builtins.concatMap (n: walkOptions (if path == "" then n else "${path}.${n}") v.${n}) (
        builtins.attrNames v
      )
    else
      [ ];

  optionsOf =
    file:
    let
      m = callModule "<name>" file;
    in
    map (o: o // { file = toString file; }) (walkOptions "" (m.options or { }));
in
builtins.concatMap optionsOf files
