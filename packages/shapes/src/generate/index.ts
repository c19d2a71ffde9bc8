export type { CaptionEncoderLike, GenerateOptions, GenerateResult } from './generate.js';
export { generate } from './generate.js';
