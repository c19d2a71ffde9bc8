import { TRAIN_PREDICTIONS } from '@t2md/distill';
import { POS_EMBED_KINDS } from '@t2md/dit';
import { Command, Help, Option } from 'commander';
import { benchCommand } from './commands/bench.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { infoCommand } from './commands/info.js';
import { QUICK_EVAL_DEFAULTS } from './commands/quick-eval.js';
import { sampleCommand } from './commands/sample.js';
import { distillCommand, trainCommand } from './commands/train.js';
import { BACKENDS, categoryMixArg, choiceArg, fileExtArg, intArg, layoutArg, numArg, posNumArg, resolutionArg } from './options.js';
import { cliVersion } from './versions.js';

const SAMPLERS = ['ddpm', 'ddim', 'dpmpp-2m', 'euler'] as const;
const PRESETS = ['tiny', 'shapes'] as const;
const STAGES = ['forcing', 'distill', 'adapt', 'finetune', 'all'] as const;
const SCANS = ['bi', 'uni'] as const;
const TRAINABLE = ['all', 'mixers', 'mamba'] as const;
const MODEL_DTYPES = ['f32', 'f16'] as const;

const posEmbedOverride = () =>
  new Option(
    '--pos-embed <kind>',
    "sample with this positional embedding instead of the model file's: sincos, centered or interpolated (e.g. interpolated to draw a sincos model at another size)",
  ).argParser(choiceArg('--pos-embed', POS_EMBED_KINDS));

/** The stage-config flags shared by train and distill (they override the preset's for the stage(s) run). */
const batchSizeOption = () =>
  new Option('--batch-size <n>', "images per step (overrides the stage's)").argParser(intArg('--batch-size', 1, 65_536));
const lrOption = () => new Option('--lr <x>', "peak learning rate (overrides the stage's)").argParser(posNumArg('--lr'));
const timeLimitOption = () =>
  new Option(
    '--time-limit <minutes>',
    'stop after this many minutes (the step in flight finishes; checkpoint and model are saved; exit 0; --resume continues)',
  ).argParser(posNumArg('--time-limit'));

/** `t2md train` / `t2md distill`: the loss weighting and the quick GenEval-style check during training (quick-eval.ts). */
function addRecipeOptions(c: Command): Command {
  return c
    .option('--warmup <steps>', "linear learning-rate warm-up steps (overrides the stage's)", intArg('--warmup', 0))
    .option(
      '--lr-decay <kind>',
      "after the warm-up: constant or cosine (overrides the stage's)",
      choiceArg('--lr-decay', ['constant', 'cosine']),
    )
    .option('--ema-decay <d>', "EMA decay in [0, 1) (overrides the stage's)", numArg('--ema-decay', 0, 0.999999))
    .option(
      '--caption-dropout <p>',
      "probability of training on the null caption, in [0, 1) (overrides the stage's)",
      numArg('--caption-dropout', 0, 0.99),
    )
    .option(
      '--resolution <px>',
      "image side(s) the stage trains at: 64, or 32,64 (one drawn per step), or 32:1,64:4 (weighted) (overrides the stage's)",
      resolutionArg(),
    )
    .option(
      '--category-mix <weights>',
      "how often each category is drawn, e.g. position=2,counting=2 (integers; unnamed ones weigh 1; overrides the stage's)",
      categoryMixArg(),
    )
    .option(
      '--recompute',
      "recompute each DiT block's activations in the backward instead of keeping them (less memory, about one more forward per step; same gradients)",
    )
    .option(
      '--min-snr <gamma>',
      'min-SNR-γ weighting of the denoising loss (e.g. 5; 0 = off; default: 5 for the shapes teacher, else off)',
      numArg('--min-snr', 0, 1e6),
    )
    .option(
      '--x0-weight <cap>',
      'weight the denoising loss toward high noise: × clamp(1/SNR_t, 1, cap), normalised over t (e.g. 10-100; 1 = off; ε models only)',
      numArg('--x0-weight', 1, 1e6),
    )
    .option(
      '--eval-every <steps>',
      'score the EMA weights every this many steps (and at the end) into metrics.jsonl',
      intArg('--eval-every', 1),
    )
    .option(
      '--eval-prompts <n>',
      'prompts of that score (balanced over the six categories)',
      intArg('--eval-prompts', 6, 10_000),
      QUICK_EVAL_DEFAULTS.prompts,
    )
    .option('--eval-steps <n>', 'DPM-Solver++ steps per image of that score', intArg('--eval-steps', 1, 1000), QUICK_EVAL_DEFAULTS.steps);
}

/** `t2md train` / `t2md distill`: where the weights start, and the float type of the model files. */
function addModelFileOptions(c: Command, init: string): Command {
  return c
    .option('--init <file>', init)
    .option(
      '--model-dtype <type>',
      'f32 (default) or f16 (half the size, for models that ship) for model.safetensors; the checkpoint stays f32',
      choiceArg('--model-dtype', MODEL_DTYPES),
    );
}

const backendOption = () =>
  new Option('--backend <name>', 'backend: auto, webgpu, wasm or cpu (default auto, or T2MD_BACKEND)').argParser(
    choiceArg('--backend', BACKENDS),
  );

/**
 * Help that marks what is required: required options say so, and a command's usage line names them
 * (`Usage: t2md train --out <dir> [options]`).
 */
const helpConfig: Partial<Help> = {
  optionDescription(option) {
    const text = Help.prototype.optionDescription.call(this, option);
    return option.mandatory ? `${text} (required)` : text;
  },
  commandUsage(cmd) {
    const usage = Help.prototype.commandUsage.call(this, cmd);
    const required = cmd.options.filter((o) => o.mandatory).map((o) => o.flags);
    return required.length > 0 ? usage.replace('[options]', `${required.join(' ')} [options]`) : usage;
  },
};

/**
 * One of commander's error messages as one sentence on one line: `error: unknown command 'evl'\n(Did
 * you mean eval?)` becomes `unknown command 'evl'; did you mean eval?`, and a full stop ends what has none.
 */
export function usageSentence(message: string): string {
  const text = message
    .replace(/^error: /, '')
    .trim()
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\s*\(Did you mean (.+?)\?\)$/, '; did you mean $1?');
  return /[.?!]$/.test(text) ? text : `${text}.`;
}

/** Builds the `t2md` command tree. Each command's action resolves when its work is done. */
export function buildProgram(): Command {
  const program = new Command('t2md')
    .description('Diffusion Transformer-to-Mamba distillation on TensorFlow.js and WebGPU')
    .version(cliVersion(), '-V, --version', 'print the version of t2md')
    .configureHelp(helpConfig)
    .option('--debug', 'print the stack of an unexpected failure')
    .exitOverride()
    // commander prints its own usage errors (as one sentence: usageSentence); bin.ts only picks the exit code.
    .configureOutput({ outputError: (str, write) => write(`t2md: ${usageSentence(str)} See t2md --help.\n`) });

  program
    .command('info')
    .description('show the backend, the WebGPU adapter and its limits, and package versions')
    .option('--json', 'print one JSON document')
    .addOption(backendOption())
    .action(infoCommand);

  program
    .command('sample')
    .description('generate an image (a grid with --count) for a prompt of the shapes world')
    .argument('<prompt>', 'e.g. "two red circles left of a blue square"')
    .option('--model <name>', 'teacher, student, or a model/checkpoint file', 'student')
    .option(
      '--steps <n>',
      "sampling steps (default: a shipped model's measured count from models/sampling.json, else 20)",
      intArg('--steps', 1, 1000),
    )
    .option('--sampler <name>', 'ddpm, ddim, dpmpp-2m or euler', choiceArg('--sampler', SAMPLERS), 'dpmpp-2m')
    .option('--cfg <x>', 'classifier-free guidance scale (1 = off)', numArg('--cfg', 0, 100), 4.5)
    .option('--seed <n>', 'random seed', intArg('--seed', 0), 0)
    .option('--size <px>', "image side in pixels (default: the model's)", intArg('--size', 1, 4096))
    .option('--count <n>', 'images to draw, laid out as a grid', intArg('--count', 1, 64), 1)
    .option('--scale <n>', 'draw each pixel n × n in the PNG, e.g. 4 to look at 32-px samples', intArg('--scale', 1, 16), 1)
    .option('--out <file.png>', 'where to write the PNG', fileExtArg('--out', '.png', 'the image is a PNG'), 'sample.png')
    .addOption(posEmbedOverride())
    .addOption(backendOption())
    .action(sampleCommand);

  const train = program
    .command('train')
    .description('train the teacher DiT on the shapes world')
    .requiredOption('--out <dir>', 'folder for latest.safetensors, metrics.jsonl and model.safetensors')
    .option('--preset <name>', 'tiny (minutes on a CPU) or shapes (the real default, for a GPU)', choiceArg('--preset', PRESETS))
    .option('--steps <n>', 'steps (overrides the preset)', intArg('--steps', 1))
    .addOption(batchSizeOption())
    .addOption(lrOption())
    .addOption(timeLimitOption())
    .option('--resume', 'continue from DIR/latest.safetensors at its step')
    .option(
      '--prediction <type>',
      "what the teacher predicts: epsilon (the default) or v = √ᾱ·ε − √(1−ᾱ)·x0 (min-SNR then weights min(SNR, γ)/(SNR+1)); with --init, the file's unless given",
      choiceArg('--prediction', TRAIN_PREDICTIONS),
    )
    .option(
      '--text-lr-scale <k>',
      "learning-rate multiplier of the caption encoder: its weights step at k·lr, the DiT's at lr (default 1)",
      posNumArg('--text-lr-scale'),
    )
    .addOption(backendOption());
  addModelFileOptions(
    addRecipeOptions(train),
    "start from this teacher model file's weights, with a fresh optimiser and schedule (e.g. a committed model, to train it on; the preset defaults to the file's)",
  ).action(trainCommand);

  const distill = program
    .command('distill')
    .description('distill a hybrid SA/Mamba student from a teacher (forcing → distill → adapt → finetune)')
    .requiredOption('--teacher <path>', "the teacher's model.safetensors (or the t2md train --out folder holding it)")
    .requiredOption('--out <dir>', 'folder for latest.safetensors, metrics.jsonl and model.safetensors')
    .option('--preset <name>', 'tiny or shapes (default: the teacher file says)', choiceArg('--preset', PRESETS))
    .option('--stage <name>', 'forcing, distill, adapt, finetune or all', choiceArg('--stage', STAGES), 'all')
    .option('--steps <n>', 'steps per stage (overrides the preset)', intArg('--steps', 1))
    .addOption(batchSizeOption())
    .addOption(lrOption())
    .option('--lambda-pseudo <x>', 'weight of L_pseudo (teacher output as soft label; 0 drops it)', numArg('--lambda-pseudo', 0, 1e6))
    .option('--lambda-mixer <x>', 'weight of L_mixer (per-layer token-mixer outputs; 0 drops it)', numArg('--lambda-mixer', 0, 1e6))
    .option(
      '--lambda-guidance <x>',
      "weight of L_guidance, the student's guidance direction ε(c) − ε(∅) against the teacher's on batches paired with and without the caption (0 = off; distill, adapt and finetune; even batch sizes)",
      numArg('--lambda-guidance', 0, 1e6),
    )
    .option(
      '--pseudo-x0 <cap>',
      "weight L_pseudo toward high noise: clamp(1/SNR_t, 1, cap), normalised (1 = off, the paper's; ε teachers only)",
      numArg('--pseudo-x0', 1, 1e6),
    )
    .option('--trainable <set>', 'what the stage(s) train: all, mixers or mamba', choiceArg('--trainable', TRAINABLE))
    .option('--no-teacher-init', "start the student fresh instead of from the teacher's shared weights (ablation)")
    .option('--layout <layout>', "student block layout, e.g. '(HM-WM)x4' for no self-attention (default: the preset's)", layoutArg())
    .option('--scan <dir>', 'Mamba mixers scan both directions (bi, default) or one (uni)', choiceArg('--scan', SCANS))
    .option(
      '--pos-embed <kind>',
      "the student's positional embedding from the stage(s) run on: sincos (the teacher's), centered (adapt's and finetune's default) or interpolated (sincos at the teacher's grid, scaled into its range at others) (overrides the stage's)",
      choiceArg('--pos-embed', POS_EMBED_KINDS),
    )
    .addOption(timeLimitOption())
    .option('--resume', 'continue from DIR/latest.safetensors at its step')
    .addOption(backendOption());
  addModelFileOptions(
    addRecipeOptions(distill),
    "start the student from this student model file instead of the teacher's weights (e.g. a committed model, to run further stages on it)",
  ).action(distillCommand);

  program
    .command('eval')
    .description('score a model with the GenEval-style checker on a fixed, balanced prompt set')
    .requiredOption('--model <name>', 'teacher, student, or a model/checkpoint file')
    .option('--prompts <n>', 'prompts (balanced over the six categories)', intArg('--prompts', 6, 100_000), 200)
    .option('--json', 'print one JSON document')
    .option('--steps <n>', 'sampling steps', intArg('--steps', 1, 1000), 20)
    .option('--sampler <name>', 'ddpm, ddim, dpmpp-2m or euler', choiceArg('--sampler', SAMPLERS), 'dpmpp-2m')
    .option('--cfg <x>', 'guidance scale', numArg('--cfg', 0, 100), 4.5)
    .option('--seed <n>', 'prompt-set and sampling seed', intArg('--seed', 0), 0)
    .option('--batch <n>', 'prompts per model call (scores depend on it: keep it fixed across models)', intArg('--batch', 1, 256), 25)
    .option('--size <px>', "image side in pixels (default: the model's)", intArg('--size', 1, 4096))
    .addOption(posEmbedOverride())
    .addOption(backendOption())
    .action((opts) => evalCommand(opts));

  program
    .command('convert')
    .description("write a model file's weights with another positional embedding and/or float type (the command is added to its record)")
    .argument('<model>', 'teacher, student, or a model/checkpoint file')
    .requiredOption(
      '--out <file.safetensors>',
      'the new model file (may be the input: it is replaced atomically)',
      fileExtArg('--out', '.safetensors', 'a model file is safetensors'),
    )
    .addOption(
      new Option(
        '--pos-embed <kind>',
        "the new file's positional embedding: sincos, centered or interpolated (interpolated keeps a sincos model's own grid and draws other sizes in its range)",
      ).argParser(choiceArg('--pos-embed', POS_EMBED_KINDS)),
    )
    .option(
      '--model-dtype <type>',
      "float type of the new file's weights: f16 or f32 (default: the input's)",
      choiceArg('--model-dtype', MODEL_DTYPES),
    )
    .action(convertCommand);

  program
    .command('bench')
    .description(
      'benchmark the scan ops, the attention kernel, teacher-vs-student scaling, the GEMM, elementwise kernels, training steps or sampling',
    )
    .argument('<which>', 'scan, attention, scaling, matmul, elementwise, train or sample')
    .option('--json', 'print one JSON document')
    .option('--quick', 'small sizes (CPU, SwiftShader)')
    .option('--out <file>', 'results file (default inside this repository: bench/results/<date>-<card>.json)')
    .option('--allow-dirty', 'measure a tree that differs from its commit (the rows record dirty: true)')
    .option('--sizes <list>', "sequence lengths / token counts / elements, comma-separated (default: the bench's sweep)")
    .option(
      '--batches <list>',
      'train: batch sizes, comma-separated (default 128,512,1024); scaling: batch sizes (default 1,2); sample: images (default 1,4,16)',
    )
    .option('--step <name>', 'train: teacher or distill (default both)')
    .option('--recompute [steps]', 'train: run these steps (teacher, distill; no value: both) with activation recomputation')
    .option('--steps <n>', 'train: timed steps per block (default 10); sample: timed steps (default 3)', intArg('--steps', 1, 10_000))
    .option('--model <list>', 'sample: teacher, student or model files, comma-separated (default teacher,student)')
    .option(
      '--tiles <list>',
      "scan: ssdScan's WebGPU GEMM micro-tiles, comma-separated (4x4, 4x4p, 8x4, 4x8, 8x8) or all (default: the default tile)",
    )
    .option('--no-profile', 'train, scan, sample: skip the per-op profile')
    .addOption(backendOption())
    .action(benchCommand);

  program
    .command('demo')
    .description('the main job: sample the shipped teacher and student (training tiny ones first if none ship)')
    .option('--out <dir>', 'output folder', 'demo-output')
    .action(demoCommand);

  return program;
}
