// dependency-cruiser (npm run lint): the folder rules of ARCHITECTURE.md that eslint cannot see.
// no cycle between the folders (rooms) of shared/, and none between its modules either; and the code
// the Azure package runs (functions/, shared/) needs no devDependency.
// (Deep imports into a package's dist/, lib/ or src/ are an eslint rule, eslint.config.mjs: it sees
// the import as written, while dependency-cruiser only sees where it resolves.)
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-folder-cycle-in-shared",
      severity: "error",
      comment: "A folder of shared/ depends on another that depends back on it (e.g. twin <-> events): move the shared type down to where both can import it.",
      scope: "folder",
      from: { path: "^shared/" },
      to: { path: "^shared/", circular: true },
    },
    {
      name: "no-module-cycle-in-shared",
      severity: "error",
      comment: "A module of shared/ imports itself through others.",
      from: { path: "^shared/" },
      to: { circular: true },
    },
    {
      name: "no-dev-dependency-in-azure-package",
      severity: "error",
      comment: "functions/ and shared/ run in Azure, whose package has production dependencies only (scripts/stage-package.js). " +
        "shared/store/openPglite.ts is the exception: the local store, loaded only by openStore's dynamic import.",
      from: { path: "^(functions|shared)/", pathNot: "^shared/store/openPglite\\.ts$" },
      to: { dependencyTypes: ["npm-dev"], dependencyTypesNot: ["type-only"] },
    },
    {
      name: "pglite-only-on-demand",
      severity: "error",
      comment: "PGlite is not in the Azure package: the product loads shared/store/openPglite.ts with a dynamic import, when the local store is opened.",
      from: { path: "^(functions|shared)/" },
      to: { path: "^shared/store/openPglite\\.ts$", dynamic: false, dependencyTypesNot: ["type-only"] },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|coverage|\\.data)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
    cache: false,
  },
};
