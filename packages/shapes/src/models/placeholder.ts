import { PRESET_KEY } from '@t2md/dit';

/**
 * Presets whose models only show that the pipeline runs, not what it can reach: `tiny` trains 16 px
 * models in minutes on a CPU. A model file made with one of them is a placeholder, and the README, the
 * playground and `t2md demo` say so. The notice is read from the files' own metadata (`t2md.preset`),
 * so it goes away by itself when models trained with a real preset (`shapes`, on a GPU) ship.
 */
export const PLACEHOLDER_PRESETS: readonly string[] = ['tiny'];

/** The preset a model file was trained with (its `t2md.preset` metadata), or undefined when it names none. */
export function presetOf(metadata: Readonly<Record<string, string>>): string | undefined {
  try {
    const name = (JSON.parse(metadata[PRESET_KEY] ?? 'null') as { name?: unknown } | null)?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One sentence saying that the shipped models are placeholders, when any of the files' metadata says it
 * was trained with a placeholder preset; undefined when none was.
 */
export function placeholderNotice(...metadata: Readonly<Record<string, string>>[]): string | undefined {
  const presets = [...new Set(metadata.map(presetOf).filter((p): p is string => p != null && PLACEHOLDER_PRESETS.includes(p)))];
  if (presets.length === 0) return undefined;
  return `The shipped models are placeholders: trained with the ${presets.join(' and ')} preset${presets.length > 1 ? 's' : ''} in minutes on a CPU, they show that the pipeline runs and rarely draw what the prompt asks; models trained with the shapes preset on a GPU are to replace them.`;
}
