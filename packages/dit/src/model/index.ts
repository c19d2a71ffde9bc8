export type { TokenMixer } from './attention-layers.js';
export { CrossAttention, SelfAttention } from './attention-layers.js';
export type { BlockResult } from './block.js';
export { DiTBlock, Mlp } from './block.js';
export type { LoadWeightsOptions } from './checkpoint.js';
export { CONFIG_METADATA_KEY, loadDiT, loadWeightsInto, saveDiT } from './checkpoint.js';
export type { DiTConfig, MambaSettings, PosEmbedKind, ResolvedDiTConfig } from './config.js';
export { MAMBA_DEFAULTS, POS_EMBED_KINDS, resolveConfig } from './config.js';
export type { DenoiserFn } from './denoiser.js';
export { captionedDenoiser } from './denoiser.js';
export type { ForwardCapture, ForwardOptions, MixerTap } from './dit.js';
export { createDiT, DiT, mixerWeightKind } from './dit.js';
export { CaptionEmbedder, PatchEmbed, TimestepEmbedder } from './embedders.js';
export { FinalLayer } from './final-layer.js';
export type { MixerKind } from './layout.js';
export { formatLayout, MIXER_KINDS, parseLayout } from './layout.js';
export { MambaMixer, resolveGrid } from './mamba-mixer.js';
export type {
  CheckpointTensors,
  LoadedCheckpoint,
  LoadTrainedOptions,
  ModelFloatDtype,
  ModelPrediction,
  TextEncoderFactory,
  TextEncoderLike,
  TextEncoderSpec,
  TrainedModel,
} from './model-file.js';
export {
  decodeCheckpoint,
  disposeCheckpoint,
  EMA,
  encodeCheckpoint,
  encodeTrainedModel,
  fromCheckpoint,
  loadTrainedModel,
  MODEL_PREDICTIONS,
  MODEL_PREFIX,
  OPT_M,
  OPT_V,
  PREDICTION_KEY,
  PRESET_KEY,
  parseMetadataJson,
  readPrediction,
  TEXT_ENCODER_KEY,
  TEXT_ENCODER_PREFIX,
  TRAIN_KEY,
} from './model-file.js';
export type { Params, WeightInit } from './nn.js';
export { Linear, layerNorm, modulate } from './nn.js';
export { adaNorm, adaNormRef, affineLayerNorm } from './ops/ada-norm.js';
export { gatedAdd, gatedAddRef } from './ops/gated-add.js';
export { timestepFeatures } from './ops/timestep-features.js';
export { gridCoordinates, sincosPosEmbed } from './pos-embed.js';
export { ditPresets, pixartXL2, shapesStudent, shapesTeacher, t2mdXL2, tinyStudent, tinyTeacher } from './presets.js';
export { transferFromTeacher } from './transfer.js';
