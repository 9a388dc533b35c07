/**
 * What the notebooks use (`import * as nb from "../lib/notebook/mod.ts"`): the
 * `parameters` cell (`nb.parameters`, validated against the profile table),
 * the study helpers (set-up, training and sweeping the variants, tables,
 * provenance), the generated interpretations and matched-accuracy comparisons,
 * `showFinding` and the notebook side of the run manifest, in-place progress
 * bars and the sweep result cache.
 *
 * The headless runner (`noiselab reproduce`), its index page and the
 * manifest's reader side are the CLI's (lib/cli/reproduce.ts,
 * lib/cli/notebook_runner.ts, lib/cli/index_page.ts) and are not exported here.
 * @module
 */
export * from "./progress.ts";
export * from "./profiles.ts";
export * from "./cache.ts";
export {
  type ArtifactKind,
  findingLine,
  type ManifestArtifact,
  recordArtifact,
  recordFinding,
  recordParameters,
  showFinding,
  verdictSummary,
} from "./manifest.ts";
export * from "./study.ts";
export * from "./interpret.ts";
export * from "./trajectory.ts";
export * from "./analog.ts";
export { parameters, withParameters } from "./params.ts";
