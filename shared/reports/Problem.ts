/** An RFC 9457 problem body (`application/problem+json`). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  "invalid-params"?: InvalidParam[];
}

export interface InvalidParam {
  name: string;
  reason: string;
}

// Problem types are URNs: stable identifiers a client can branch on, not pages to fetch.
const typeBase = "urn:twin-reconciler:problem:";

/** 400: the request's parameters named in `invalidParams` are wrong. */
export function invalidParamsProblem(invalidParams: InvalidParam[]): Problem {
  const names = [...new Set(invalidParams.map((p) => p.name))];
  return {
    type: `${typeBase}invalid-parameters`,
    title: "Your request parameters didn't validate.",
    status: 400,
    detail: `Fix the parameter${names.length === 1 ? "" : "s"} ${names.map((n) => `'${n}'`).join(", ")} and retry.`,
    "invalid-params": invalidParams,
  };
}

export function notFoundProblem(detail: string): Problem {
  return { type: `${typeBase}not-found`, title: "Not found.", status: 404, detail };
}

export function conflictProblem(detail: string): Problem {
  return { type: `${typeBase}conflict`, title: "The twin's state does not allow this.", status: 409, detail };
}

/** 503: the store (or the settings that open it) failed; the request may succeed later. */
export function storeUnavailableProblem(): Problem {
  return {
    type: `${typeBase}store-unavailable`,
    title: "The compliance store is unavailable.",
    status: 503,
    detail: "The compliance store could not be reached or failed; retry later. The host log has the cause.",
  };
}

/** 405: the route exists but not for this method (the response's Allow header lists the ones it takes). */
export function methodNotAllowedProblem(detail: string): Problem {
  return { type: `${typeBase}method-not-allowed`, title: "Method not allowed.", status: 405, detail };
}

/** 500: the function threw something other than a store failure. */
export function internalErrorProblem(detail: string): Problem {
  return { type: `${typeBase}internal-error`, title: "The request failed.", status: 500, detail };
}
