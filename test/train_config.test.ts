/** Training config: defaults, overrides and validation of every field before any work. */
import assert from "node:assert/strict";
import { DEFAULT_TRAIN_CONFIG, resolveTrainConfig, TRAIN_CONFIG_KEYS } from "../lib/train/config.ts";
import { modelId } from "../lib/train/store.ts";
import { NoiselabError } from "../lib/util/errors.ts";

function rejects(partial: Record<string, unknown>, param: string, re?: RegExp) {
  assert.throws(() => resolveTrainConfig(partial), (e: unknown) => {
    assert.ok(e instanceof NoiselabError, `expected NoiselabError, got ${e}`);
    assert.equal(e.subject, param, `subject of "${e.message}"`);
    assert.ok(e.message.startsWith(param + ":"), e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

Deno.test("defaults resolve and overrides apply", () => {
  const c = resolveTrainConfig({});
  assert.deepEqual(c, { ...DEFAULT_TRAIN_CONFIG });
  const d = resolveTrainConfig({ model: "resnet8", bn: 3, epochs: 7, optimizer: "sgd", lr: 0.1 });
  assert.equal(d.model, "resnet8");
  assert.equal(d.bn, 3);
  assert.equal(d.epochs, 7);
  assert.equal(d.momentum, DEFAULT_TRAIN_CONFIG.momentum);
  assert.equal(TRAIN_CONFIG_KEYS.length, Object.keys(c).length);
});

Deno.test("every bad field is rejected with a message naming it", () => {
  rejects({ epoch: 3 }, "epoch", /unknown training parameter/);
  rejects({ epochs: 0 }, "epochs", />= 1/);
  rejects({ epochs: 2.5 }, "epochs", /integer/);
  rejects({ epochs: "3" }, "epochs", /number/);
  rejects({ batchSize: -1 }, "batchSize");
  rejects({ trainSize: 50001 }, "trainSize", /larger than the cifar10 training split/);
  rejects({ testSize: 10001 }, "testSize", /test split/);
  rejects({ trainSize: 0 }, "trainSize");
  rejects({ dataset: "mnist" }, "dataset", /cifar10, cifar100/);
  rejects({ source: "png" }, "source");
  rejects({ model: "resnet21" }, "model", /6n\+2.*got 21/);
  rejects({ model: "alexnet" }, "model", /unknown model/);
  rejects({ model: "resnet20", bn: 20 }, "bn", /19 BN layers/);
  rejects({ bn: "some" }, "bn");
  rejects({ bn: [0, 0] }, "bn");
  rejects({ width: 0 }, "width");
  rejects({ optimizer: "rmsprop" }, "optimizer");
  rejects({ lr: 0 }, "lr");
  rejects({ lr: Infinity }, "lr");
  rejects({ momentum: 1 }, "momentum");
  rejects({ optimizer: "sgd", momentum: 0, nesterov: true }, "nesterov");
  rejects({ weightDecay: -1e-4 }, "weightDecay");
  rejects({ weightDecayMode: "l2" }, "weightDecayMode");
  rejects({ schedule: "linear" }, "schedule");
  rejects(
    { schedule: "step", epochs: 10, stepMilestones: [5, 20] },
    "stepMilestones",
    /beyond the last epoch/,
  );
  rejects({ stepMilestones: [5, 3] }, "stepMilestones", /increasing/);
  rejects({ warmupEpochs: 5, epochs: 5 }, "warmupEpochs");
  rejects({ augment: "yes" }, "augment");
  rejects({ seed: -1 }, "seed");
  rejects({ adamEpsilon: 0 }, "adamEpsilon");
  rejects({ stepGamma: 0 }, "stepGamma");
});

Deno.test("the BN limit follows the model: resnet8 has 7 BN slots", () => {
  assert.equal(resolveTrainConfig({ model: "resnet8", bn: 7 }).bn, 7);
  rejects({ model: "resnet8", bn: 8 }, "bn", /7 BN layers/);
  // explicit indices: each must name one of the model's BN layers (0..6)
  assert.deepEqual(resolveTrainConfig({ model: "resnet8", bn: [0, 6] }).bn, [0, 6]);
  rejects(
    { model: "resnet8", bn: [0, 99] },
    "bn",
    /invalid index 99 \(resnet8 has 7 BN layers.*indices 0\.\.6\)/,
  );
  rejects({ model: "resnet8", bn: [7] }, "bn", /invalid index 7/);
  rejects({ model: "resnet8", bn: [-1] }, "bn", /invalid index -1/);
  rejects({ model: "resnet8", bn: [1.5] }, "bn", /invalid index 1\.5/);
});

Deno.test("model id: stable, and changes with any config field or the data", () => {
  const a = resolveTrainConfig({ model: "resnet8" });
  const b = resolveTrainConfig({ model: "resnet8" });
  assert.equal(modelId(a, "d1", "cpu"), modelId(b, "d1", "cpu"));
  assert.match(modelId(a, "d1", "cpu"), /^[0-9a-f]{12}$/);
  assert.notEqual(modelId(a, "d1", "cpu"), modelId(a, "d2", "cpu"));
  assert.notEqual(modelId(a, "d1", "cpu"), modelId({ ...a, seed: 1 }, "d1", "cpu"));
  assert.notEqual(modelId(a, "d1", "cpu"), modelId({ ...a, bn: "none" }, "d1", "cpu"));
});

Deno.test("resolveTrainConfig: fewer duplicate ids — BN indices sorted, model names lower case, ResNet-only fields at their defaults for VGG", () => {
  assert.deepEqual(resolveTrainConfig({ model: "resnet8", bn: [2, 0] }).bn, [0, 2]);
  const vgg = resolveTrainConfig({ model: "vgg11", shortcut: "projection", residualInit: "scaled" });
  assert.equal(vgg.shortcut, DEFAULT_TRAIN_CONFIG.shortcut);
  assert.equal(vgg.residualInit, DEFAULT_TRAIN_CONFIG.residualInit);
  assert.deepEqual(vgg, resolveTrainConfig({ model: "vgg11" }));
  // the model name as lib/models reads it
  assert.deepEqual(resolveTrainConfig({ model: " ResNet8 " }), resolveTrainConfig({ model: "resnet8" }));
  // ResNets keep them, however their name is spelled
  assert.equal(resolveTrainConfig({ model: " ResNet8", shortcut: "projection" }).shortcut, "projection");
  const r = resolveTrainConfig({ model: "resnet8", shortcut: "projection", residualInit: "scaled" });
  assert.equal(r.shortcut, "projection");
  assert.equal(r.residualInit, "scaled");
});
