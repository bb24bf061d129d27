# The flake's `lib`: hosts from module files, as a user's flake declares them
# (templates/fleet) and as this flake declares its own ecs-node and ci.
#
#   nixecs.lib.mkHost { name = "web"; modules = [ ./hosts/web.nix ]; system = "x86_64-linux"; src = self; }
#     → lib.nixosSystem's result (a nixosConfiguration)
#   nixecs.lib.mkHosts { src = self; hosts.web.modules = [ nixecs.nixosModules.ecs-node ./hosts/web.nix ]; }
#     → { nixosConfigurations.<host>; packages.<system>.<host>-ami; }
#
# Each host's module files are recorded in the image (modules/host.nix), so that `nix`
# userdata on its instances extends that host. A file is recorded when it lies in `src` (the
# user's flake, `self`) or in nixecs itself; `nixosModules.*` of nixecs are recorded by the
# file they import. Anything else (an inline module, another flake's module) still builds
# into the image, with a warning that boot-time `nix` userdata rebuilds without it.
{ self, nixpkgs }:
let
  inherit (nixpkgs) lib;

  nixecsRoot = toString ../.;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  under = root: s: root != null && lib.hasPrefix (root + "/") s;
  relativeTo = root: s: lib.removePrefix (root + "/") s;

  # A module → { file = "<path string>"; } when it is a file (a path, or nixecs'
  # `{ _file = f; imports = [ f ]; }` wrappers), else { }.
  fileOf =
    m:
    if builtins.isPath m || (builtins.isString m && lib.hasPrefix "/" m) then
      { file = toString m; }
    else if
      builtins.isAttrs m
      && builtins.attrNames m == [
        "_file"
        "imports"
      ]
      && m.imports == [ m._file ]
    then
      { file = toString m._file; }
    else
      { };

  describe =
    i: m:
    let
      f = fileOf m;
    in
    if f ? file then f.file else "module #${toString i} (${builtins.typeOf m})";

  record =
    src: modules:
    let
      srcRoot = if src == null then null else toString src;
      indexed = lib.imap0 (i: m: {
        inherit i m;
        f = fileOf m;
      }) modules;
      # nixecs' own files first: a user flake that is nixecs itself (this repository)
      # records them against the `<nixecs>` copy, which every host with userdata has.
      inNixecs = e: e.f ? file && under nixecsRoot e.f.file;
      inSrc = e: e.f ? file && !(inNixecs e) && under srcRoot e.f.file;
    in
    {
      nixecsModules = map (e: relativeTo nixecsRoot e.f.file) (builtins.filter inNixecs indexed);
      modules = map (e: relativeTo srcRoot e.f.file) (builtins.filter inSrc indexed);
      unrecorded = map (e: describe e.i e.m) (builtins.filter (e: !(inNixecs e || inSrc e)) indexed);
    };

  mkHost =
    {
      modules,
      name ? null,
      system ? "x86_64-linux",
      src ? null,
    }:
    let
      r = record src modules;
    in
    lib.nixosSystem {
      modules = modules ++ [
        (
          { lib, options, ... }:
          {
            # The image file is named after the host (only the image variant declares it).
            image = lib.optionalAttrs (name != null && options ? image.baseName) {
              baseName = lib.mkOverride 899 "nixecs-${name}";
            };
          }
        )
        {
          nixpkgs.hostPlatform = system;
          nixpkgs.overlays = [ self.overlays.default ];
          nixecs.host = {
            inherit name system;
            inherit (r) modules nixecsModules unrecorded;
            overlay = true;
            # The flake's store path (with its context: kept in the closure).
            source = if src == null || r.modules == [ ] then null else "${src}";
          };
        }
      ];
    };

  # hosts.<name> = { modules; system ? "x86_64-linux"; ami ? true; }
  mkHosts =
    {
      hosts,
      src ? null,
    }:
    let
      configurations = lib.mapAttrs (
        name: h:
        mkHost {
          inherit name src;
          inherit (h) modules;
          system = h.system or "x86_64-linux";
        }
      ) hosts;
      amis =
        system:
        lib.mapAttrs' (name: _: lib.nameValuePair "${name}-ami" configurations.${name}.config.system.build.images.amazon) (
          lib.filterAttrs (_: h: (h.ami or true) && (h.system or "x86_64-linux") == system) hosts
        );
    in
    {
      nixosConfigurations = configurations;
      packages = lib.genAttrs systems amis;
    };
in
{
  inherit mkHost mkHosts systems;
}
