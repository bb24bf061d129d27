# The module that records a host's module files in its image (nixecs.host.*, read by
# modules/host.nix), so that `nix` userdata on its instances extends that very host.
# A file is recorded when it lies in `src` (the user's flake, `self`) or in nixecs itself
# (nixecs first: this repository is both); nixecs' `nixosModules.*` are recorded by the file
# they import. Anything else (an inline module, another flake's module) still builds into
# the image, with a warning that boot-time `nix` userdata rebuilds without it.
{ lib }:
{
  modules,
  name ? null,
  system ? null,
  src ? null,
  overlay ? false,
}:
let
  nixecsRoot = toString ../.;
  srcRoot = if src == null then null else toString src;

  under = root: s: root != null && lib.hasPrefix (root + "/") s;
  relativeTo = root: s: lib.removePrefix (root + "/") s;

  # A module → { file = "<path string>"; } when it is a file (a path, an absolute path
  # string, or a `{ _file = f; imports = [ f ]; }` wrapper as flake.nix makes), else { }.
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

  indexed = lib.imap0 (i: m: {
    inherit i m;
    f = fileOf m;
  }) modules;
  inNixecs = e: e.f ? file && under nixecsRoot e.f.file;
  inSrc = e: e.f ? file && !(inNixecs e) && under srcRoot e.f.file;
  recorded = builtins.filter inSrc indexed;
  describe = e: if e.f ? file then e.f.file else "module #${toString e.i} (${builtins.typeOf e.m})";
in
{
  nixecs.host = {
    inherit name system overlay;
    nixecsModules = map (e: relativeTo nixecsRoot e.f.file) (builtins.filter inNixecs indexed);
    modules = map (e: relativeTo srcRoot e.f.file) recorded;
    unrecorded = map describe (builtins.filter (e: !(inNixecs e || inSrc e)) indexed);
    # The flake's store path; the string's context keeps it in the closure.
    source = if recorded == [ ] then null else "${src}";
  };
}
