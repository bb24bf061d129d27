# The host this system was built from, recorded in the store so that `nix` userdata
# extends *it* on an instance (the team's own host, not only nixecs' ecs-node):
# `nixecs.lib.mkHost` sets `nixecs.host.*` from the host's module files, and this module
# writes them back as a NixOS module file (`nixecs.host.file`), which userdata.nix puts in
# NIX_PATH as `<nixecs-host>` and the rendered userdata imports. Evaluating that file on
# the instance sets the same `nixecs.host.*` again, so a rebuilt system records the very
# same host (a fixed point), and needs no network: every file it names is in the closure.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.nixecs.host;

  # Store path strings are written as `(/. + "…")`: a store name may hold characters
  # (`?`, `=`) that a Nix path literal may not.
  pathExpr = s: "(/. + ${lib.strings.escapeNixString s})";
  strings = l: "[ ${lib.concatMapStringsSep " " lib.strings.escapeNixString l} ]";
  # "/nix/store/<32-char hash>-<name>" → "<name>": builtins.path must be given the same
  # name to yield the same store path.
  storeName =
    p:
    let
      base = baseNameOf p;
    in
    builtins.substring 33 (builtins.stringLength base) base;

  # userdata.nix imports this module, not the reverse: the module system reads the whole
  # import tree before it deduplicates, so a cycle would never end.
  nixecsSource =
    if options ? nixecs.userdata.source then
      config.nixecs.userdata.source
    else
      throw "nixecs.host.file needs modules/userdata.nix (its nixecs.userdata.source)";

  imports =
    map (m: pathExpr "${nixecsSource}/${m}") cfg.nixecsModules
    ++ lib.optionals (cfg.source != null) (map (m: pathExpr "${cfg.source}/${m}") cfg.modules);

  str = v: if v == null then "null" else lib.strings.escapeNixString v;
  lines = [
    "imports = ["
  ]
  ++ map (i: "  ${i}") imports
  ++ [ "];" ]
  ++ lib.optional (cfg.system != null) "nixpkgs.hostPlatform = ${str cfg.system};"
  # The same overlay as the flake's overlays.default, from the `<nixecs>` copy.
  ++ lib.optional cfg.overlay "nixpkgs.overlays = [ (final: _prev: import ${pathExpr "${nixecsSource}/pkgs"} { pkgs = final; }) ];"
  ++ [
    "nixecs.host = {"
    "  name = ${str cfg.name};"
    "  system = ${str cfg.system};"
    "  source = ${
      if cfg.source == null then
        "null"
      else
        "builtins.path { path = ${pathExpr cfg.source}; name = ${str (storeName cfg.source)}; }"
    };"
    "  modules = ${strings cfg.modules};"
    "  nixecsModules = ${strings cfg.nixecsModules};"
    "  overlay = ${lib.boolToString cfg.overlay};"
    "};"
  ];

  recorded = ''
    # The host this system was built from (nixecs.host, modules/host.nix): `nix` userdata
    # imports it as <nixecs-host>. Written at build time; every path is in the closure.
    { ... }:
    {
    ${lib.concatMapStrings (l: "  ${l}\n") lines}}
  '';

  relative = lib.types.strMatching "[^/].*";
in
{
  options.nixecs.host = {
    name = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "web";
      description = "The host's name (its `nixosConfigurations` attribute), recorded in the image; set by `nixecs.lib.mkHost`.";
    };

    system = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "aarch64-linux";
      description = "The `nixpkgs.hostPlatform` the host was built for, written back by the recorded host file; set by `nixecs.lib.mkHost`. `null` records none.";
    };

    source = lib.mkOption {
      type = lib.types.nullOr lib.types.pathInStore;
      default = null;
      example = lib.literalExpression "self.outPath";
      description = ''
        The store path of the flake that holds the host's own module files
        (`nixecs.host.modules` are relative to it). Kept in the system
        closure by the recorded host file. Set by `nixecs.lib.mkHost` from
        its `src` argument.
      '';
    };

    modules = lib.mkOption {
      type = lib.types.listOf relative;
      default = [ ];
      example = [ "hosts/web.nix" ];
      description = "The host's module files, relative to `nixecs.host.source`, imported again by `nix` userdata.";
    };

    nixecsModules = lib.mkOption {
      type = lib.types.listOf relative;
      default = [ "hosts/ecs-node" ];
      example = [
        "hosts/ecs-node"
        "modules/ci.nix"
      ];
      description = ''
        The host's module files from nixecs itself, relative to
        `nixecs.userdata.source` (the `<nixecs>` copy). The default, the
        ECS node profile, is what `nix` userdata imported before hosts
        were recorded.
      '';
    };

    overlay = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether the recorded host adds nixecs' overlay (`pkgs.nixecs`, …) to `nixpkgs.overlays`, as `nixecs.lib.mkHost` does.";
    };

    unrecorded = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      internal = true;
      description = "Modules `nixecs.lib.mkHost` was given that are not files it can name on the instance (a warning lists them).";
    };

    text = lib.mkOption {
      type = lib.types.str;
      default = recorded;
      defaultText = lib.literalMD "a module importing the recorded files and setting `nixecs.host.*` to the same values";
      readOnly = true;
      internal = true;
      description = "The text of `nixecs.host.file`.";
    };

    file = lib.mkOption {
      type = lib.types.pathInStore;
      default = "${pkgs.writeText "nixecs-host.nix" cfg.text}";
      defaultText = lib.literalMD "a module importing the recorded files and setting `nixecs.host.*` to the same values";
      readOnly = true;
      description = "The recorded host: the NixOS module `nix` userdata imports as `<nixecs-host>`.";
    };
  };

  config = lib.mkIf (options ? nixecs.userdata.enable && config.nixecs.userdata.enable) {
    # For people and tools on the instance: which host is this, built from which files.
    environment.etc."nixecs/host.nix".source = cfg.file;

    warnings = lib.optional (cfg.unrecorded != [ ]) ''
      nixecs.lib.mkHost${
        lib.optionalString (cfg.name != null) " (${cfg.name})"
      }: ${toString (builtins.length cfg.unrecorded)} module(s) are not files it can record (${lib.concatStringsSep ", " cfg.unrecorded}): `nix` userdata on this host's instances rebuilds without them. Put them in files of the flake passed as `src`.'';
  };
}
