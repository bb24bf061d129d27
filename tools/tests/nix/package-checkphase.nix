# What the nixecs package's check phase runs on, read from pkgs/ itself:
# pkgs/default.nix's callPackage of pkgs/nixecs/package.nix, evaluated with
# a stub python3Packages (no nixpkgs needed) whose buildPythonApplication
# returns its arguments. tools/tests/test_package_checkphase.py replays the
# check phase from this; it is not a second list of the package's files.
#
# usage: nix-instantiate --eval --strict --json package-checkphase.nix \
#          --arg root /path/to/checkout [--arg nixpkgsLib /path/to/nixpkgs/lib]
#
# Without nixpkgsLib, lib is stub-lib.nix plus the part of lib.fileset below
# (paths, `unions`, `maybeMissing`, `toSource`, `toList`); a function it lacks
# is an evaluation error naming it. With nixpkgsLib, the real lib.fileset
# computes the file list (the test compares the two where a lib is at hand).
{
  root,
  nixpkgsLib ? null,
}:
let
  rootStr = toString root;

  # lib.fileset, as far as package.nix uses it: a file set is the list of the
  # files (absolute path strings) under its paths. Like the real one, a path
  # that does not exist is an error unless wrapped in maybeMissing.
  stubFileset = rec {
    _isFileset = s: builtins.isAttrs s && s ? _files;
    _filesUnder =
      p:
      let
        type = (builtins.readDir (dirOf p)).${baseNameOf p};
      in
      if type == "directory" then
        builtins.concatLists (
          map (n: _filesUnder (p + "/${n}")) (builtins.attrNames (builtins.readDir p))
        )
      else
        [ (toString p) ];
    _coerce =
      s:
      if _isFileset s then
        s
      else if builtins.isPath s then
        (
          if builtins.pathExists s then
            { _files = _filesUnder s; }
          else
            throw "lib.fileset: ${toString s} does not exist (use maybeMissing if it may)"
        )
      else
        throw "lib.fileset: not a path or file set: ${builtins.typeOf s}";
    maybeMissing = p: if builtins.pathExists p then _coerce p else { _files = [ ]; };
    unions = sets: { _files = builtins.concatLists (map (s: (_coerce s)._files) sets); };
    union = a: b: unions [ a b ];
    toList = s: (_coerce s)._files;
    toSource =
      { root, fileset }:
      {
        _nixecsSource = {
          inherit root;
          files = toList fileset;
        };
      };
  };

  realLib = import nixpkgsLib;
  lib =
    if nixpkgsLib == null then
      import ./stub-lib.nix // { fileset = stubFileset; }
    else
      realLib
      // {
        fileset = realLib.fileset // {
          toSource =
            { root, fileset }:
            {
              _nixecsSource = {
                inherit root;
                files = map toString (realLib.fileset.toList fileset);
              };
            };
        };
      };

  # nixpkgs attribute name -> the Python distribution it provides (what the
  # replay lets the tests import). A name package.nix uses that is missing
  # here is an "undefined variable" error: add it with its distribution.
  distributions = {
    pyyaml = "PyYAML";
    jinja2 = "Jinja2";
    click = "click";
    boto3 = "boto3";
    rich = "rich";
    setuptools = "setuptools";
    pytestCheckHook = "pytest";
    pytest = "pytest";
    pytest-xdist = "pytest-xdist";
    hypothesis = "hypothesis";
    matplotlib = "matplotlib";
    jsonschema = "jsonschema";
    moto = "moto";
    cfn-lint = "cfn-lint";
  };
  pythonPackage = attr: dist: {
    type = "derivation";
    pname = attr;
    _distribution = dist;
  };

  # The arguments the replay models; any other argument (preCheck, patches,
  # doCheck, ...) is reported so the test fails until the replay models it.
  modelled = [
    "pname"
    "version"
    "pyproject"
    "src"
    "sourceRoot"
    "build-system"
    "dependencies"
    "nativeCheckInputs"
    "disabledTestMarks"
    "disabledTests"
    "disabledTestPaths"
    "pytestFlags"
    "pythonImportsCheck"
    "meta"
  ];

  python3Packages = builtins.mapAttrs pythonPackage distributions // {
    buildPythonApplication = args: args // { _buildPythonApplication = true; };
  };

  pkgs = {
    inherit lib python3Packages;
    callPackage =
      path: overrides:
      let
        f = import path;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // overrides);
  };

  package = (import (root + "/pkgs") { inherit pkgs; }).nixecs;
  source = package.src._nixecsSource;
  relative =
    file:
    let
      prefix = toString source.root + "/";
      n = builtins.stringLength prefix;
    in
    if builtins.substring 0 n file == prefix then
      builtins.substring n (builtins.stringLength file - n) file
    else
      throw "${file} is outside the source root ${toString source.root}";
  dists = map (p: p._distribution or (throw "not a stub Python package: ${p.pname or p.name or "?"}"));
in
assert package._buildPythonApplication or false;
{
  rootIsCheckout = toString source.root == rootStr;
  files = map relative source.files;
  sourceRoot = package.sourceRoot or "source";
  pyproject = package.pyproject or false;
  buildSystem = dists (package.build-system or [ ]);
  dependencies = dists (package.dependencies or [ ]);
  nativeCheckInputs = dists (package.nativeCheckInputs or [ ]);
  disabledTestMarks = package.disabledTestMarks or [ ];
  disabledTests = package.disabledTests or [ ];
  disabledTestPaths = package.disabledTestPaths or [ ];
  pytestFlags = package.pytestFlags or [ ];
  pythonImportsCheck = package.pythonImportsCheck or [ ];
  # The files of modules/userdata.nix's default `<nixecs>` source (its
  # `nixecs.userdata.source` default; stub-lib.nix's mkOption keeps its
  # arguments in `_option`), which must hold what the package needs.
  userdataSource =
    let
      module = import (root + "/modules/userdata.nix");
      evaluated = module {
        lib = lib // {
          fileset = lib.fileset // {
            toSource = args: {
              outPath = builtins.toJSON (map relative (lib.fileset.toSource args)._nixecsSource.files);
            };
          };
        };
        config = throw "userdata-source: config is not evaluated";
        options = { };
        pkgs = throw "userdata-source: pkgs is not evaluated";
        utils = throw "userdata-source: utils is not evaluated";
      };
      option = evaluated.options.nixecs.userdata.source;
    in
    builtins.fromJSON (option._option or option).default;
  unmodelled = builtins.filter (n: !(builtins.elem n modelled) && n != "_buildPythonApplication") (
    builtins.attrNames package
  );
}
