# devShells.default: the Python tool's runtime and test dependencies, Nix
# formatting and cfn-lint (from the Python environment).
{ pkgs }:
pkgs.mkShell {
  packages = [
    (pkgs.python3.withPackages (
      ps: with ps; [
        pyyaml
        jinja2
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

  shellHook = ''
    export PYTHONPATH="$PWD/tools/src''${PYTHONPATH:+:$PYTHONPATH}"
  '';
}
