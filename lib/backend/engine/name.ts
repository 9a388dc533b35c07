/**
 * The name the oneDNN engine registers with TensorFlow.js (`tf.setBackend("onednn")`) and is chosen by
 * (`NOISELAB_BACKEND=onednn`, `--backend onednn`, notebook `backend: "onednn"`). Called `noiselab` until
 * 2026-11; stored ids keep that name (lib/backend/mod.ts `storeBackendName`).
 * @module
 */
export const ENGINE_NAME = "onednn";
