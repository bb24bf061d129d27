# A stand-in for nixpkgs' lib, for static checks that must run without
# nixpkgs (CI has none). mkOption records its arguments; types record their
# structure so that submodule options can be walked. Only what the
# checks force is implemented; add to it when a module needs more.
let
  leaf = name: { _typeName = name; };
in
rec {
  mkOption = args: { _option = args; };
  mkEnableOption = name: mkOption {
    description = "Whether to enable ${name}.";
    type = types.bool;
  };
  mkPackageOption = _pkgs: name: _extra: mkOption {
    description = "The ${toString name} package to use.";
    type = types.package;
  };
  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };
  literalMD = text: {
    _type = "literalMD";
    inherit text;
  };
  mdDoc = text: text;

  types = {
    bool = leaf "bool";
    str = leaf "str";
    lines = leaf "lines";
    int = leaf "int";
    float = leaf "float";
    number = leaf "number";
    package = leaf "package";
    path = leaf "path";
    pathInStore = leaf "pathInStore";
    port = leaf "port";
    anything = leaf "anything";
    raw = leaf "raw";
    unspecified = leaf "unspecified";
    deferredModule = leaf "deferredModule";
    ints = {
      unsigned = leaf "ints.unsigned";
      u16 = leaf "ints.u16";
      positive = leaf "ints.positive";
      between = _lo: _hi: leaf "ints.between";
    };
    strMatching = _re: leaf "strMatching";
    enum = _values: leaf "enum";
    separatedString = _sep: leaf "separatedString";
    attrsOf = t: { _elem = t; };
    lazyAttrsOf = t: { _elem = t; };
    listOf = t: { _elem = t; };
    nullOr = t: { _alts = [ t ]; };
    uniq = t: { _alts = [ t ]; };
    functionTo = t: { _alts = [ t ]; };
    either = a: b: { _alts = [ a b ]; };
    oneOf = ts: { _alts = ts; };
    submodule = m: { _submodules = if builtins.isList m then m else [ m ]; };
    submoduleWith = args: { _submodules = args.modules; };
  };

  # Used by flake.nix and tests/default.nix when their outputs' names are checked.
  mapAttrs = builtins.mapAttrs;
  listToAttrs = builtins.listToAttrs;
  concatLists = builtins.concatLists;
  head = builtins.head;
  filter = builtins.filter;
  mapAttrsToList = f: set: map (n: f n set.${n}) (builtins.attrNames set);
  genAttrs = names: f: builtins.listToAttrs (map (n: nameValuePair n (f n)) names);
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
  optionalAttrs = cond: set: if cond then set else { };
  filterAttrs =
    pred: set:
    builtins.listToAttrs (
      builtins.concatMap (
        n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]
      ) (builtins.attrNames set)
    );
  hasSuffix =
    suffix: s:
    let
      ls = builtins.stringLength s;
      lx = builtins.stringLength suffix;
    in
    ls >= lx && builtins.substring (ls - lx) lx s == suffix;
  removeSuffix =
    suffix: s:
    if hasSuffix suffix s then
      builtins.substring 0 (builtins.stringLength s - builtins.stringLength suffix) s
    else
      s;
  nixosSystem = _args: { config = throw "stub nixosSystem: no configuration"; };
}
