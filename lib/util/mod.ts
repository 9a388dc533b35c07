/** Shared utilities: errors, seeded RNG, hashing, atomic file writes, paths. @module */
export * from "./errors.ts";
export * from "./rng.ts";
export * from "./hash.ts";
export * from "./fs.ts";
export * from "./paths.ts";
export * from "./version.ts";
