/*
 * Import direction and cycles, checked in the test command
 * (scripts/test/imports.test.ts) and by `npm run depcruise`.
 *
 *   shared/src: lib <- fdt <- abi <- mm <- kho <- proc (a layer imports only
 *   layers to its left); kernel-a and kernel-b import only @khosim/shared;
 *   nothing outside scripts/ imports scripts; no relative import crosses a
 *   workspace; no cycle, type-only imports included.
 */
const LAYERS = ["lib", "fdt", "abi", "mm", "kho", "proc"];

/** One rule per layer: it may not import the layers after it. */
const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `shared-layers-${layer}`,
  comment: `shared/src/${layer} may import only ${LAYERS.slice(0, i).join(", ") || "nothing of shared"} (lib <- fdt <- abi <- mm <- kho <- proc)`,
  severity: "error",
  from: { path: `^shared/src/${layer}/` },
  to: { path: `^shared/src/(${LAYERS.slice(i + 1).join("|")})/` },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: "no-circular",
      comment: "no import cycle, type-only imports included",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "kernels-import-shared-only",
      comment: "kernel-a and kernel-b are process shells: they import @khosim/shared, node and nothing else",
      severity: "error",
      from: { path: "^(kernel-a|kernel-b)/src/" },
      to: { pathNot: ["^(kernel-a|kernel-b)/src/", "^shared/src/"], dependencyTypesNot: ["core"] },
    },
    {
      name: "nothing-imports-scripts",
      comment: "scripts (the tools) may import anything; nothing imports them",
      severity: "error",
      from: { pathNot: "^scripts/" },
      to: { path: "^scripts/" },
    },
    {
      name: "no-relative-import-across-workspaces",
      comment: "another workspace is imported through its package exports (@khosim/shared/<layer>), never by relative path",
      severity: "error",
      from: { path: "^(shared|kernel-a|kernel-b|scripts)/" },
      to: { dependencyTypes: ["local"], pathNot: "^$1/" },
    },
    {
      name: "src-not-to-test",
      comment: "source never imports test code",
      severity: "error",
      from: { path: "^[^/]+/src/" },
      to: { path: "^[^/]+/test/" },
    },
    {
      name: "not-to-unresolvable",
      comment: "every import resolves",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)dist/" },
    tsPreCompilationDeps: true,
    combinedDependencies: false,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["@khosim/source", "import", "require", "node", "types", "default"],
      extensions: [".ts", ".js", ".mjs", ".cjs", ".json", ".d.ts"],
      mainFields: ["module", "main", "types"],
    },
  },
};
