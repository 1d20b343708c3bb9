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
