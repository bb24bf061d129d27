# devShells.default: the Python tool's runtime and test dependencies, Nix
# formatting and cfn-lint (from the Python environment).
{ pkgs }:
pkgs.mkShell {
  packages = [
    (pkgs.python3.withPackages (
      ps: with ps; [
        pyyaml
        click
        boto3
        rich
        pytest
        pytest-xdist
        hypothesis
        moto
        cfn-lint
        mypy
      ]
    ))
    pkgs.ruff
    pkgs.nixfmt
    pkgs.nixfmt-tree
  ];

  # tools/tests/test_package_checkphase.py compares its lib.fileset stand-in
  # with nixpkgs' own lib where this is set.
  NIXECS_NIXPKGS_LIB = "${pkgs.path}/lib";

  shellHook = ''
    export PYTHONPATH="$PWD/tools/src''${PYTHONPATH:+:$PYTHONPATH}"
  '';
}
