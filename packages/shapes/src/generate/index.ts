export { generate } from './generate.js';
export type { CaptionEncoderLike, GenerateOptions, GenerateResult } from './generate.js';
