# The nixecs tool (tools/): fleet file to userdata and CloudFormation, and
# the host-side commands the NixOS modules run at boot.
{
  lib,
  python3Packages,
}:
let
  source = import ./source.nix { inherit lib; };
in
python3Packages.buildPythonApplication {
  pname = "nixecs";
  version = "0.1.0";
  pyproject = true;

  # The tests read ../examples (the repository root is tools/..), so the
  # source keeps that layout and the build runs in tools/. The file set is
  # source.nix's, shared with the `<nixecs>` copy modules/userdata.nix makes.
  src = lib.fileset.toSource { inherit (source) root fileset; };
  sourceRoot = "source/tools";

  build-system = [ python3Packages.setuptools ];

  dependencies = with python3Packages; [
    pyyaml
    click
    boto3
    rich
  ];

  nativeCheckInputs = with python3Packages; [
    pytestCheckHook
    pytest-xdist
    hypothesis
    # tests/test_fleet_schema.py validates the examples with `nixecs schema`
    # (nixpkgs pkgs/development/python-modules/jsonschema).
    jsonschema
    # `nixecs scaling simulate --plot` (an optional extra) is tested too.
    matplotlib
  ];

  # Tests that need a moto server, Nix itself or cfn-lint run in `make test`
  # and CI, not in the sandbox. `--strict-markers` in pyproject.toml makes a
  # misspelt marker an error. `make test` replays this check phase
  # (tools/tests/test_package_checkphase.py, from this file evaluated).
  disabledTestMarks = [
    "moto"
    "nix"
    "cfnlint"
    "system"
    # docs/ is not in the package's source (source.nix)
    "repo"
  ];

  pythonImportsCheck = [
    "nixecs"
    "nixecs.settings"
  ];

  meta = {
    description = "NixOS container instances for Amazon ECS: fleet file to userdata and CloudFormation, boot-time userdata applier";
    license = lib.licenses.mit;
    mainProgram = "nixecs";
    platforms = lib.platforms.linux;
  };
}
