// Stand-in for the worker-provided '@azure/functions-core' module (not on npm; its types live in
// Azure/azure-functions-nodejs-library `types-core/index.d.ts`). It captures what `app.*` registers
// — metadata (bindings, retry options) and the raw handler — so the local host and the tests can
// invoke the real functions. Limits: no hooks are ever fired and `log` only collects.
"use strict";
class Disposable {
  constructor(fn) { this._fn = fn; }
  static from(...ds) { return new Disposable(() => ds.forEach((d) => d.dispose())); }
  dispose() { if (this._fn) { this._fn(); this._fn = undefined; } }
}
const state = { functions: new Map(), hooks: [], programmingModel: undefined, logs: [] };
module.exports = {
  version: "twin-reconciler-local",
  hostVersion: "twin-reconciler-local",
  Disposable,
  __state: state,
  registerFunction(metadata, callback) {
    if (state.functions.has(metadata.name)) throw new Error(`function "${metadata.name}" is registered twice`);
    state.functions.set(metadata.name, { metadata, callback });
    return new Disposable(() => state.functions.delete(metadata.name));
  },
  registerHook(hookName, callback) {
    const hook = { hookName, callback };
    state.hooks.push(hook);
    return new Disposable(() => state.hooks.splice(state.hooks.indexOf(hook), 1));
  },
  setProgrammingModel(model) { state.programmingModel = model; },
  getProgrammingModel() { return state.programmingModel; },
  log(level, category, message) { state.logs.push({ level, category, message }); },
};
