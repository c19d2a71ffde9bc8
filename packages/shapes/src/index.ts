/**
 * @t2md/shapes: a procedural text-to-image world (caption grammar, renderer, tokenizer, seeded dataset)
 * and a GenEval-style checker that scores images against their captions.
 */

export * from './generate/index.js';
export * from './models/index.js';
export * from './world/index.js';
