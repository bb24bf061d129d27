# The files the nixecs package is built and checked from, in one place:
# package.nix builds from them, and modules/userdata.nix copies them (with the
# flake files) into the `<nixecs>` source on instances, so that `nix`
# userdata builds the package there the same way.
# tools/tests/test_package_checkphase.py replays the package's check phase on
# exactly this set, evaluated with real Nix.
#
# Paths, not `maybeMissing`: a file the package needs that moves away is an
# evaluation error here rather than a package that silently lost it.
{ lib }:
let
  root = ../..;
in
{
  inherit root;
  fileset = lib.fileset.unions [
    (root + "/tools/pyproject.toml")
    (root + "/tools/README.md")
    (root + "/tools/src")
    (root + "/tools/tests")
    # tests/test_host_demo_bench.py checks `make demo`'s simulated boot and
    # `make bench`'s apply benchmark, which live beside the package.
    (root + "/tools/demo_host.py")
    (root + "/tools/bench_host.py")
    # The tests render and check the example fleet (tests/conftest.py EXAMPLES).
    (root + "/examples")
  ];
}
