/**
 * The parameters cell's one call: resolve and validate a notebook's knobs where
 * they are set.
 * @module
 */
import { NoiselabError } from "../util/errors.ts";
import { tracked } from "../util/pending.ts";
import { recordParameters } from "./manifest.ts";
import {
  beginParameters,
  generationOf,
  parametersFailed,
  parametersResolved,
  rememberValues,
  sameAsCurrent,
  stamp,
} from "../util/session.ts";
import { type NotebookId, type NotebookParams, resolveParams, validateParams } from "./profiles.ts";

/**
 * Resolve a notebook's parameters in its `parameters` cell: the profile's
 * defaults with every non-null knob of `knobs` replacing them (`knobs.profile`
 * picks the profile), validated before anything runs. The result is frozen and
 * stamped with a generation (lib/util/session.ts; a new one unless the values are
 * unchanged since the cell's last successful run): results computed from it
 * carry the stamp, and a later cell that mixes them with another run's
 * parameters, or runs after this cell failed, refuses with a message saying
 * what to re-run.
 * @param notebook the notebook id ("01" ... "05")
 * @param knobs `{ profile, ...every knob of the parameters cell }`
 * @throws NoiselabError naming the bad parameter (and marks the session failed)
 */
export function parameters(notebook: NotebookId, knobs: Record<string, unknown>): Readonly<NotebookParams> {
  let p: NotebookParams;
  try {
    const { profile, ...rest } = knobs;
    if (typeof profile !== "string") {
      throw new NoiselabError(`parameter profile: expected a profile name, got ${JSON.stringify(profile)}`, "profile");
    }
    p = resolveParams(notebook, profile, rest);
  } catch (e) {
    parametersFailed(beginParameters(), e instanceof Error ? e.message : String(e));
    throw e;
  }
  const values = structuredClone(p) as unknown as Record<string, unknown>;
  // re-running the cell unchanged keeps everything computed from it valid
  const generation = sameAsCurrent(values) ?? beginParameters();
  rememberValues(generation, values);
  parametersResolved(generation, values);
  // the index page shows the parameters in effect (a no-op outside reproduce)
  void tracked("recording the parameters in the run manifest", recordParameters(values));
  return stamp(deepFreeze(p), generation);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

/**
 * A copy of notebook parameters with some values changed (e.g. one training
 * seed of several), keeping their generation stamp so results computed from the
 * copy count as computed from the parameters cell's run. Validated like
 * {@link parameters}.
 * @throws NoiselabError naming a bad value
 */
export function withParameters(
  p: Readonly<NotebookParams>,
  changes: Partial<NotebookParams>,
): Readonly<NotebookParams> {
  const q = validateParams({ ...structuredClone(p), ...structuredClone(changes) } as NotebookParams);
  return stamp(deepFreeze(q), generationOf(p));
}
