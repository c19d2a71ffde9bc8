export { PLACEHOLDER_PRESETS, placeholderNotice, presetOf } from './placeholder.js';
export type { CaptionEncoderConfig, ResolvedCaptionEncoderConfig } from './text-encoder.js';
export {
  CAPTION_ENCODER_PREFIX,
  CaptionEncoder,
  captionEncoderFromTensors,
  captionEncoderWeightShapes,
  createCaptionEncoder,
  resolveCaptionEncoderConfig,
} from './text-encoder.js';
