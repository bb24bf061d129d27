# The example application (apps/bananas): a small HTTP inventory of bananas,
# standard library only. Its tests run in the check phase.
{
  lib,
  python3Packages,
}:
python3Packages.buildPythonApplication {
  pname = "bananas";
  version = "1.0.0";
  pyproject = true;

  src = lib.fileset.toSource {
    root = ../../apps/bananas;
    fileset = lib.fileset.unions [
      ../../apps/bananas/pyproject.toml
      ../../apps/bananas/README.md
      ../../apps/bananas/src
      ../../apps/bananas/tests
    ];
  };

  build-system = [ python3Packages.setuptools ];

  # No runtime dependencies: http.server is in the standard library.
  dependencies = [ ];

  nativeCheckInputs = [ python3Packages.pytestCheckHook ];

  pythonImportsCheck = [ "bananas.server" ];

  meta = {
    description = "The nixecs example application: an inventory of bananas over HTTP";
    license = lib.licenses.mit;
    mainProgram = "bananas";
    platforms = lib.platforms.linux;
  };
}
