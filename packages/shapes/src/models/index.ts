export { PLACEHOLDER_PRESETS, placeholderNotice, presetOf } from './placeholder.js';
export type {
  ShippedModelName,
  ShippedSampling,
  StepTable,
  StepTableEval,
  StepTableModel,
  StepTableRow,
} from './sampling.js';
export { chooseSteps, FALLBACK_STEPS, parseStepTable, sha256Hex, shippedSampling, shippedStepTable } from './sampling.js';
export type { CaptionEncoderConfig, ResolvedCaptionEncoderConfig } from './text-encoder.js';
export {
  CAPTION_ENCODER_PREFIX,
  CaptionEncoder,
  captionEncoderFromTensors,
  captionEncoderWeightShapes,
  createCaptionEncoder,
  resolveCaptionEncoderConfig,
} from './text-encoder.js';
